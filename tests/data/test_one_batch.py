"""Issue 25.2: one batch vocabulary for the fast loader and PyG's DataLoader, bridges each way, and a fast loader
that prefetches in a thread (same batches, an early stop ends the worker)."""

import threading

import torch
from torch_geometric.loader import DataLoader

from csg2a_graph.data.pairs import PairBatch


def test_both_batches_answer_the_same_names(gdsc2):
    idx = torch.arange(5, 11)
    fast = next(iter(gdsc2.loader(idx, batch_size=6)))
    pyg = next(iter(DataLoader(gdsc2[idx], batch_size=6, follow_batch=["drug_x"])))
    assert fast.num_graphs == pyg.num_graphs == 6
    for name in ("expr", "x", "y", "dose", "time", "cell_id", "drug_id", "cell", "drug"):
        assert torch.equal(getattr(fast, name).reshape(-1), getattr(pyg, name).reshape(-1)), name
    assert torch.equal(fast.batch, pyg.batch)
    assert torch.equal(pyg.pair_id, idx) and torch.equal(fast.pair_id, idx)  # rows of the whole dataset: the same


def test_bridges_round_trip(gdsc2):
    idx = torch.tensor([3, 100, 2000, 100])
    fast = next(iter(gdsc2.loader(idx, batch_size=4)))
    pyg = fast.to_pyg(gdsc2)
    assert pyg.num_graphs == 4 and torch.equal(pyg.x.view(4, -1), fast.expr)
    assert pyg.edge_index.size(1) == 4 * gdsc2.prior_edge_index.size(1) and hasattr(pyg, "drug_x_batch")
    back = PairBatch.from_pyg(pyg, gdsc2)
    for name in ("expr", "y", "dose", "time", "cell", "drug", "index", "drug_index"):
        assert torch.equal(getattr(back, name), getattr(fast, name)), name
    assert torch.equal(back.drug_graph.x, fast.drug_graph.x)
    assert torch.equal(back.drug_graph.bond_dir, fast.drug_graph.bond_dir)  # what the pretrained GCN reads
    sub = gdsc2[torch.arange(1000, 1100)]  # a subset's positions survive the bridge
    b = next(iter(sub.loader(torch.tensor([7, 3]), batch_size=2)))
    assert torch.equal(PairBatch.from_pyg(b.to_pyg(sub), sub).index, torch.tensor([7, 3]))


def test_prefetch_gives_the_same_batches_and_stops_cleanly(gdsc2):
    idx = torch.arange(3000)
    plain = list(gdsc2.loader(idx, batch_size=256, shuffle=True, seed=3))
    ahead = list(gdsc2.loader(idx, batch_size=256, shuffle=True, seed=3, prefetch=3))
    assert len(plain) == len(ahead) and all(
        torch.equal(a.index, b.index) and torch.equal(a.expr, b.expr) for a, b in zip(plain, ahead)
    )
    it = iter(gdsc2.loader(idx, batch_size=64, prefetch=2))
    next(it)
    it.close()  # an early stop: the worker thread ends
    assert not any(t.name == "PairLoader-prefetch" and t.is_alive() for t in threading.enumerate())
    b = next(iter(gdsc2.loader(idx, batch_size=8, pin_memory=True)))  # pinned where CUDA exists, else as is
    assert b.expr.is_pinned() == torch.cuda.is_available()
