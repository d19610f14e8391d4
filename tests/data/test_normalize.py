import numpy as np
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
