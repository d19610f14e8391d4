import json

import numpy as np
import pytest
import torch

from csg2a_graph.data import load_splits_json, make_split, save_splits_json, write_improve_splits


def _pairs(n_cells=40, n_drugs=30, frac=0.7, seed=0):
    rng = np.random.default_rng(seed)
    c, d = np.meshgrid(np.arange(n_cells), np.arange(n_drugs), indexing="ij")
    keep = rng.random(c.shape) < frac
    return torch.from_numpy(c[keep]), torch.from_numpy(d[keep])


def assert_no_leakage(cell, drug, s, scheme):
    tr, va, te = (set(s[k].tolist()) for k in ("train", "val", "test"))
    assert not (tr & va) and not (tr & te) and not (va & te)
    if scheme == "mixed":
        assert len(tr) + len(va) + len(te) == cell.numel()
    cells = {k: set(cell[s[k]].tolist()) for k in ("train", "val", "test")}
    drugs = {k: set(drug[s[k]].tolist()) for k in ("train", "val", "test")}
    if scheme in ("cell_blind", "disjoint"):
        assert not cells["test"] & (cells["train"] | cells["val"])
        assert not cells["val"] & cells["train"]
    if scheme in ("drug_blind", "disjoint"):
        assert not drugs["test"] & (drugs["train"] | drugs["val"])
        assert not drugs["val"] & drugs["train"]


@pytest.mark.parametrize("scheme", ["mixed", "cell_blind", "drug_blind", "disjoint", "LPO", "LCO", "LDO"])
def test_schemes_do_not_leak_and_cover_folds(scheme):
    cell, drug = _pairs()
    tests = []
    for fold in range(10):
        s = make_split(cell, drug, scheme, fold=fold, n_folds=10, seed=3)
        canon = {"LPO": "mixed", "LCO": "cell_blind", "LDO": "drug_blind"}.get(scheme, scheme)
        assert_no_leakage(cell, drug, s, canon)
        tests.append(s["test"])
        if canon != "disjoint":
            assert s["dropped"].numel() == 0
            n = cell.numel()
            assert abs(s["train"].numel() / n - 0.8) < 0.08
    if scheme != "disjoint":  # every pair is tested exactly once across the 10 folds
        allt = torch.cat(tests)
        assert allt.numel() == cell.numel() and allt.unique().numel() == cell.numel()


def test_disjoint_counts_dropped_and_is_seeded():
    cell, drug = _pairs()
    s = make_split(cell, drug, "disjoint", fold=2, seed=1)
    total = sum(s[k].numel() for k in ("train", "val", "test", "dropped"))
    assert total == cell.numel() and s["dropped"].numel() > 0
    s2 = make_split(cell, drug, "disjoint", fold=2, seed=1)
    assert all(torch.equal(s[k], s2[k]) for k in s)
    assert not torch.equal(
        make_split(cell, drug, "mixed", seed=2)["test"], make_split(cell, drug, "mixed", seed=1)["test"]
    )


def test_bad_arguments():
    cell, drug = _pairs()
    with pytest.raises(ValueError, match="unknown split scheme"):
        make_split(cell, drug, "cancer_blind")
    with pytest.raises(ValueError, match="fold"):
        make_split(cell, drug, "mixed", fold=10)


def test_json_roundtrip_and_improve_files(tmp_path):
    cell, drug = _pairs()
    splits = [make_split(cell, drug, "cell_blind", fold=k) for k in range(3)]
    save_splits_json(splits, tmp_path / "splits.json")
    data = json.loads((tmp_path / "splits.json").read_text())
    assert isinstance(data, list) and set(data[0]) == {"train", "val", "test"}  # chemprop layout
    back = load_splits_json(tmp_path / "splits.json", num_pairs=cell.numel())
    for a, b in zip(splits, back):
        assert all(torch.equal(a[k], b[k]) for k in ("train", "val", "test"))
    with pytest.raises(ValueError, match="another dataset"):
        load_splits_json(tmp_path / "splits.json", num_pairs=5)
    write_improve_splits(splits, tmp_path / "improve")
    lines = (tmp_path / "improve" / "split_1_test.txt").read_text().split()
    assert [int(x) for x in lines] == splits[1]["test"].tolist()


def test_tissue_blind_on_real_gdsc(gdsc2):
    """Leave-tissue-out (drevalpy LTO): no tissue of a test pair is seen in training or validation."""
    labels = gdsc2.cell_meta["tcga"]
    seen = set()
    for fold in range(10):
        s = gdsc2.get_idx_split("tissue_blind", fold=fold)
        tissue = {k: {labels[c] for c in gdsc2.pairs["cell"][v].tolist()} for k, v in s.items() if k != "dropped"}
        assert tissue["test"] and not tissue["test"] & (tissue["train"] | tissue["val"])
        assert not s["dropped"].numel()
        seen |= tissue["test"]
    assert seen == set(labels)  # every tissue is a test tissue once over the 10 folds
    assert torch.equal(gdsc2.get_idx_split("LTO", fold=2)["test"], gdsc2.get_idx_split("tissue_blind", fold=2)["test"])


def test_tissue_blind_needs_labels(lincs3):
    with pytest.raises(ValueError, match="TCGA label"):
        lincs3.get_idx_split("tissue_blind", fold=0, n_folds=3)


@pytest.mark.parametrize(
    "kw,err",
    [
        ({"fold": 1.5}, TypeError),
        ({"n_folds": 5.0}, TypeError),
        ({"seed": None}, TypeError),
        ({"fold": True}, TypeError),
        ({"fold": 10}, ValueError),
        ({"fold": -1}, ValueError),
        ({"seed": -3}, ValueError),
        ({"n_folds": 2}, ValueError),
    ],
)
def test_split_arguments_must_be_integers_in_range(gdsc2, kw, err):
    for scheme in ("mixed", "drug_blind"):
        with pytest.raises(err):
            gdsc2.get_idx_split(scheme, **kw)
    s = gdsc2.get_idx_split("mixed", fold=np.int64(1), n_folds=10, seed=np.int32(0))  # numpy ints are fine
    assert len(s["test"]) > 0


def test_compound_variants_share_one_side_of_drug_blind_splits(gdsc2):
    from csg2a_graph.data.molecules import compound_key

    assert compound_key("CC(=O)O") == compound_key("CC(=O)[O-].[Na+]")  # salt
    assert compound_key("C[C@H](N)C(=O)O") == compound_key("C[C@@H](N)C(=O)O")  # stereo
    groups = gdsc2.report["compounds"]["merged"]
    assert any({"Afuresertib", "GSK2110183B"} <= set(v) for v in groups.values())
    a, b = gdsc2.drugs.index("Afuresertib"), gdsc2.drugs.index("GSK2110183B")
    for fold in range(10):
        s = gdsc2.get_idx_split("drug_blind", fold=fold)
        side = {k: set(gdsc2.pairs["drug"][v].tolist()) for k, v in s.items() if k != "dropped"}
        assert sum(bool({a, b} & d) for d in side.values()) == 1
        assert not any(({a} <= d) != ({b} <= d) for d in side.values())
