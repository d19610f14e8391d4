"""Issue 25.1: a PyG subset means what it says. ``ds[idx]`` and ``ds.shuffle()`` are datasets of their own pairs
in every method — ``len``, ``num_pairs``, ``pairs``, ``loader``, ``get_idx_split``, ``summary``, ``repr`` — and a
subset's loader can never yield a pair outside it (on main at e552f0f it yielded all 187,836 pairs of GDSC2,
19,856 of them test pairs)."""

import torch


def _rows(ds, batches):
    """(cell, drug, y) of every pair the batches hold."""
    out = []
    for b in batches:
        out += list(zip(b.cell.tolist(), b.drug.tolist(), b.y.tolist()))
    return out


def _table(ds, index):
    p = ds.pairs
    return list(zip(p["cell"][index].tolist(), p["drug"][index].tolist(), p["y"][index].tolist()))


def test_a_subsets_loader_yields_its_pairs_only(gdsc2):
    split = gdsc2.get_idx_split("drug_blind", fold=0)
    train = gdsc2[split["train"]]
    assert len(train) == train.num_pairs == split["train"].numel() < gdsc2.num_pairs
    got = _rows(train, train.loader(batch_size=4096))
    assert got == _table(gdsc2, split["train"])  # the subset's pairs, in its order, each once
    test_drugs = set(gdsc2.pairs["drug"][split["test"]].tolist())
    assert not {d for _, d, _ in got} & test_drugs  # never a held-out drug
    # pairs / summary / repr speak of the subset
    assert torch.equal(train.pairs["y"], gdsc2.pairs["y"][split["train"]])
    assert train.summary()["num_samples"] == len(train) and train.summary()["subset_of"] == gdsc2.num_pairs
    assert f"{len(train)} of {gdsc2.num_pairs} pairs" in repr(train)
    # positions in the subset, also for indices given to its loader, and dataset[i] agrees with the loader
    b = next(iter(train.loader(torch.tensor([5, 0, 7]), batch_size=3)))
    assert b.index.tolist() == [5, 0, 7]
    assert b.y.tolist() == [float(train[i].y) for i in (5, 0, 7)]
    assert int(train[5].pair_id) == int(split["train"][5])


def test_a_subsets_splits_index_the_subset(gdsc2):
    split = gdsc2.get_idx_split("mixed", fold=0)
    train = gdsc2[split["train"]]
    inner = train.get_idx_split("mixed", fold=1)
    n = len(train)
    assert sum(inner[k].numel() for k in ("train", "val", "test")) + inner["dropped"].numel() == n
    assert all(int(v.max()) < n for v in inner.values() if v.numel())
    val = train[inner["val"]]  # a subset of a subset
    assert _rows(val, val.loader(batch_size=1000)) == _table(gdsc2, split["train"][inner["val"]])
    assert not set(split["train"][inner["test"]].tolist()) & set(split["test"].tolist())


def test_shuffle_is_a_permuted_dataset(gdsc2):
    torch.manual_seed(0)
    sh = gdsc2.shuffle()
    b = next(iter(sh.loader(batch_size=6)))
    assert b.y.tolist() == [float(sh[i].y) for i in range(6)]
    rows = sh.pair_rows()[:6]
    assert rows.tolist() != list(range(6)) and b.cell.tolist() == gdsc2.pairs["cell"][rows].tolist()


def test_the_fast_loader_refuses_a_transform_it_cannot_apply(gdsc2_root):
    """Issue 25.2: dataset[i] applied ``transform=`` but the fast loader (the trainer's) silently did not."""
    import pytest
    from torch_geometric.transforms import BaseTransform

    from csg2a_graph.datasets import GDSC

    class Double(BaseTransform):
        def forward(self, data):
            data.y = data.y * 2
            return data

    ds = GDSC(str(gdsc2_root), transform=Double(), log=False)
    plain = GDSC(str(gdsc2_root), log=False)
    assert float(ds[0].y) == 2 * float(plain[0].y)  # PyG's rule: dataset[i] applies it
    with pytest.raises(ValueError, match="would silently not reach training"):
        ds.loader(batch_size=8)
    b = next(iter(ds.loader(batch_size=8, ignore_transform=True)))
    assert torch.equal(b.y, plain.pairs["y"][:8])


def test_pyg_metadata_without_iterating(gdsc2, lincs3):
    """Issue 25.5: num_classes answered without PyG's pass over every pair; drug-graph feature sizes; y and genes."""
    from csg2a_graph.data.molecules import ATOM_FEATURE_SIZES, BOND_FEATURE_SIZES
    from csg2a_graph.nn import AtomEncoder, BondEncoder

    assert gdsc2.num_classes == 1
    assert lincs3.num_classes == lincs3.num_genes
    d = gdsc2[0]
    assert gdsc2.num_atom_features == d.drug_x.size(1) == len(ATOM_FEATURE_SIZES)
    assert gdsc2.num_bond_features == d.drug_edge_attr.size(1) == len(BOND_FEATURE_SIZES) == 3
    assert gdsc2.num_node_features == d.x.size(1) == 1 and gdsc2.num_edge_features == 0
    assert torch.equal(gdsc2.y, gdsc2.pairs["y"]) and gdsc2.genes == gdsc2.gene_space.genes
    sub = gdsc2[torch.arange(10)]
    assert torch.equal(sub.y, gdsc2.pairs["y"][:10])
    b = next(iter(gdsc2.loader(batch_size=4)))
    h = AtomEncoder(16)(b.drug_graph.x)
    assert h.shape == (b.drug_graph.num_nodes, 16)
    assert BondEncoder(8)(b.drug_graph.edge_attr).shape == (b.drug_graph.edge_attr.size(0), 8)
    assert lincs3.y_name.startswith("perturbed expression profile") and lincs3.y_direction is None


def test_splits_read_valid_and_keep_dropped_out_of_loops(gdsc2):
    """Issue 25.5: OGB's 'valid' is accepted; 'dropped' is no part to loop over, yet still readable."""
    import copy
    import io

    s = gdsc2.get_idx_split("disjoint", fold=0)
    assert sorted(k for k, _ in s.items()) == ["test", "train", "val"]
    assert s["valid"] is s["val"] and s["dropped"].numel() > 0 and s.dropped is s["dropped"]
    n = sum(v.numel() for v in s.values()) + s["dropped"].numel()
    assert n == gdsc2.num_pairs
    buf = io.BytesIO()
    torch.save(s, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=True)  # a plain dict on disk, dropped kept
    assert torch.equal(back["dropped"], s.dropped) and torch.equal(copy.deepcopy(s)["valid"], s["val"])
