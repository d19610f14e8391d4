import numpy as np
import pytest
import torch

from csg2a_graph.data import robust_zscore


def test_robust_zscore_matches_definition():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(51, 4)).astype(np.float32)
    x[:, 3] = 2.0  # constant gene: MAD 0
    z, deg = robust_zscore(torch.from_numpy(x))
    med = np.median(x[:, :3], axis=0)
    mad = np.median(np.abs(x[:, :3] - med), axis=0) * 1.4826
    np.testing.assert_allclose(z[:, :3].numpy(), (x[:, :3] - med) / mad, rtol=1e-5, atol=1e-6)
    assert deg.tolist() == [False, False, False, True]
    assert torch.all(z[:, 3] == 0)


def test_robust_z_uses_the_true_median():
    """Issue 8: torch.nanmedian is the lower median; with 2-4 samples that gave all-zero rows or |z| in the
    thousands (TCGA LIHC, OV)."""
    import torch

    from csg2a_graph.data.normalize import robust_stats, robust_zscore

    x = torch.tensor([[1.0], [2.0], [3.0], [10.0]])
    med, mad = robust_stats(x)
    assert float(med) == 2.5 and float(mad) == pytest.approx(1.4826 * 1.0)
    two = torch.tensor([[4.0, 1.0], [6.0, 1.0]])
    z, degenerate = robust_zscore(two)
    assert z[:, 0].tolist() == pytest.approx([-1 / 1.4826, 1 / 1.4826])  # lower median: [0, 2/1.48/0] -> MAD 0
    assert degenerate.tolist() == [False, True]
    z, degenerate = robust_zscore(two, min_samples=3)  # a stated minimum: too few samples -> flagged, 0
    assert degenerate.all() and (z == 0).all()
    # statistics of a reference population
    z, _ = robust_zscore(torch.tensor([[5.0]]), stats=(torch.tensor([[3.0]]), torch.tensor([[2.0]])))
    assert float(z) == 1.0
