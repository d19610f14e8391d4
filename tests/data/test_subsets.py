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
