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


@pytest.mark.parametrize(
    "n, bs, drop_last, merge, sizes",
    [
        (10, 4, False, False, [4, 4, 2]),
        (9, 4, False, True, [4, 5]),  # a last batch of one joins the one before
        (9, 4, True, False, [4, 4]),
        (8, 4, False, True, [4, 4]),
        (1, 4, False, True, [1]),  # one item alone is still a batch
        (0, 4, False, False, []),
    ],
)
def test_batch_slices(n, bs, drop_last, merge, sizes):
    from csg2a_graph.data.loader import batch_slices

    sl = batch_slices(n, bs, drop_last=drop_last, merge_singleton=merge)
    assert [b - a for a, b in sl] == sizes
    assert all(sl[i][1] == sl[i + 1][0] for i in range(len(sl) - 1))


def test_loader_batches_are_the_shuffled_slices(gdsc2):
    # the stacked trainer rebuilds each run's batches from these two functions: they must be the loader's
    from csg2a_graph.data.loader import batch_slices, shuffled

    index = torch.arange(0, 2000, 7)
    got = [b.index for b in gdsc2.loader(index, batch_size=64, shuffle=True, seed=11, merge_singleton=True)]
    order = shuffled(index, 11)
    want = [order[a:b] for a, b in batch_slices(index.numel(), 64, merge_singleton=True)]
    assert len(got) == len(want) and all(torch.equal(g, w) for g, w in zip(got, want))
