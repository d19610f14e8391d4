import pandas as pd
import pytest
import torch

from csg2a_graph.data import match_names
from csg2a_graph.datasets import NCI60
from csg2a_graph.datasets.nci60 import nci60_cell_key
from tests.conftest import link_raw, shared

NCI60_FILES = [
    "nci60/AOD_IOA_GI50.csv",
    "nci60/rcellminer_public_drug_info_2_14.txt",
    "nci60/nci60_gcrma_u133a_landmark.csv",
    "string/STRING_edges.csv",
]


@pytest.fixture(scope="module")
def nci60(tmp_path_factory):
    return NCI60(str(link_raw(tmp_path_factory.mktemp("nci60"), NCI60_FILES)), log=False)


def test_cell_keys():
    assert nci60_cell_key("LC:NCI-H23") == nci60_cell_key("NCI-H23") == nci60_cell_key("LC:NCI_H23") == "NCIH23"
    assert nci60_cell_key("CNS:SF_268") == nci60_cell_key("SF-268")
    assert nci60_cell_key("LE:HL-60(TB)") == "HL60TB"


def test_affix_fallback_never_steals_a_direct_match():
    m, rep = match_names(
        ["MCF7", "MCF7/ATCC", "MDA-MB-231/ATCC"], ["BR:MCF7", "BR:MDA-MB-231"], nci60_cell_key, suffixes=("/ATCC",)
    )
    assert m == {"MCF7": "BR:MCF7", "MDA-MB-231/ATCC": "BR:MDA-MB-231"}
    assert rep.ambiguous == ["MCF7/ATCC"]


def test_real_nci60_counts(nci60):
    r = nci60.report
    gi50 = pd.read_csv(shared("nci60", "AOD_IOA_GI50.csv"))
    assert r["rows_read"] == len(gi50) == 10849
    # all 181 NSCs have SMILES (cisplatin's Pt complex only without RDKit's valence check)
    assert nci60.num_drugs == 181 and r["molecules"]["relaxed_valence"] == ["119875"]
    # every one of the 59 CellMiner expression lines is matched; NCI-H23 has no expression
    assert nci60.num_cells == 59 and nci60.num_genes == 978
    assert "NCI-H23" in r["cell_join"]["unmatched_names"]
    assert r["dropped"]["cell_without_expression"] == 682
    assert nci60.num_pairs == 10849 - 682 == 10167
    # y is NLOGGI50 of the row, e.g. 6-thioguanine (NSC 752) on NCI-H522
    row = gi50[(gi50.NSC == 752) & (gi50.CELL == "NCI-H522")].NLOGGI50.item()
    p = nci60.pairs
    i = ((p["cell"] == nci60.cells.index("NCI-H522")) & (p["drug"] == nci60.drugs.index("752"))).nonzero().item()
    assert p["y"][i].item() == pytest.approx(row, abs=1e-5)
    assert nci60.drug_meta["name"][nci60.drugs.index("752")] == "6-Thioguanine"
    assert p["time"][0].item() == 48.0
    assert nci60.prior_edge_index.size(1) == 2 * 1771 + 978


def test_nci60_splits_and_loader(nci60):
    s = nci60.get_idx_split("cell_blind", fold=3)
    cell = nci60.pairs["cell"]
    assert not set(cell[s["test"]].tolist()) & set(cell[s["train"]].tolist())
    b = next(iter(nci60.loader(s["train"], batch_size=64)))
    assert b.expr.shape == (64, 978) and torch.isfinite(b.expr).all()


def keep_sensitive(data):  # module-level: a stable pre_filter (its source is its cache key)
    return bool(data.y.item() > 5.0)


def double_x_shift_y(data):
    data.x = 2 * data.x
    data.y = data.y + 1
    return data


def test_pre_filter_and_pre_transform_as_pyg_defines_them(tmp_path):
    """Applied once per pair before the processed file is written, part of its name, seen by both loaders."""
    import os

    from torch_geometric.loader import DataLoader

    root = str(link_raw(tmp_path, NCI60_FILES))
    plain = NCI60(root, log=False)
    f = NCI60(root, pre_filter=keep_sensitive, log=False)
    y = plain.pairs["y"]
    assert f.num_pairs == int((y > 5.0).sum()) and (f.pairs["y"] > 5.0).all()
    assert f.report["dropped"]["pre_filter"] == plain.num_pairs - f.num_pairs
    b = next(iter(DataLoader(f[:64], batch_size=64)))
    assert torch.equal(b.y, next(iter(f.loader(torch.arange(64), batch_size=64))).y)
    t = NCI60(root, pre_transform=double_x_shift_y, log=False)
    torch.testing.assert_close(t.expression, 2 * plain.expression)
    torch.testing.assert_close(t.pairs["y"], plain.pairs["y"] + 1)
    assert len(os.listdir(os.path.join(root, "processed"))) >= 3  # one processed file per (options, pre_*)
    again = NCI60(root, pre_transform=double_x_shift_y, log=False)  # same callable: the same file, no rebuild
    assert torch.equal(again.pairs["y"], t.pairs["y"])

    def touch_drug(data):
        data.drug_x = data.drug_x + 1
        return data

    with pytest.raises(ValueError, match="changed \\['drug_x'\\]"):
        NCI60(root, pre_transform=touch_drug, log=False)


def test_nci60_overflowing_gi50_is_dropped(tmp_path):
    from csg2a_graph.datasets import NCI60

    raw = tmp_path / "raw"
    raw.mkdir()
    gi = pd.read_csv(shared("nci60", "AOD_IOA_GI50.csv"), nrows=4000, index_col=0)
    gi.loc[gi.index[0], "NLOGGI50"] = 1e308
    gi.to_csv(raw / "AOD_IOA_GI50.csv")
    (raw / "rcellminer_public_drug_info_2_14.txt").symlink_to(shared("nci60", "rcellminer_public_drug_info_2_14.txt"))
    (raw / "nci60_gcrma_u133a_landmark.csv").symlink_to(shared("nci60", "nci60_gcrma_u133a_landmark.csv"))
    ds = NCI60(str(tmp_path), prior=None, log=False)
    assert torch.isfinite(ds.pairs["y"]).all() and ds.report["dropped"]["nonfinite_response"] == 1
    assert ds.y_direction == "higher_is_sensitive"
