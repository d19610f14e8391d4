import math

import torch

from csg2a_graph.data.normalize import modz
from csg2a_graph.data.units import parse_dose_um, parse_time_h


def test_dose_and_time_strings_of_real_files():
    assert parse_dose_um("10 µM") == parse_dose_um("10.0 um") == parse_dose_um(10, "um") == parse_dose_um("10 uM") == 10
    assert parse_dose_um("500 nM") == 0.5 and parse_dose_um("3.33", "um") == 3.33
    assert (
        math.isnan(parse_dose_um("-666")) and math.isnan(parse_dose_um(-666, "um")) and math.isnan(parse_dose_um("x"))
    )
    assert parse_time_h("24 h") == parse_time_h(24, "h") == 24 and parse_time_h("2 d") == 48
    assert math.isnan(parse_time_h(None)) and math.isnan(parse_dose_um(12, "furlong"))


def test_modz_weights_agreeing_replicates():
    torch.manual_seed(0)
    base = torch.randn(50)
    reps = torch.stack([base + 0.1 * torch.randn(50), base + 0.1 * torch.randn(50), torch.randn(50)])
    m = modz(reps)
    # the outlier replicate gets the smallest weight: the result is closer to the agreeing two
    assert (m - reps[:2].mean(0)).norm() < (reps.mean(0) - reps[:2].mean(0)).norm()
    assert torch.equal(modz(reps[:1]), reps[0])
