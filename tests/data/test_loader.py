"""Moved from the input-hardening tests: each failed on the code before its fix."""

import pytest
import torch


def test_loader_reads_a_boolean_mask_as_a_mask_and_refuses_ambiguous_indices(gdsc2):
    mask = torch.zeros(gdsc2.num_pairs, dtype=torch.bool)
    mask[[5, 17, 40]] = True
    for m in (mask, mask.numpy()):
        idx = torch.cat([b.index for b in gdsc2.loader(m, batch_size=2)])
        assert idx.tolist() == [5, 17, 40]
    with pytest.raises(ValueError, match="one entry per pair"):
        gdsc2.loader(torch.tensor([True, False]), batch_size=4)
    with pytest.raises(TypeError, match="integers or a boolean mask"):
        gdsc2.loader(torch.tensor([0.0, 1.0]), batch_size=4)
    with pytest.raises(ValueError, match="one-dimensional"):
        gdsc2.loader(torch.tensor([[0, 1]]), batch_size=4)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        gdsc2.loader(None, batch_size=2.5)
    with pytest.raises(IndexError):
        gdsc2.loader([gdsc2.num_pairs])
