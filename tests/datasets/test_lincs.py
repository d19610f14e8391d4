
import numpy as np
import pandas as pd
import pytest
import torch

from csg2a_graph.data.gene_space import GeneSpace
from csg2a_graph.datasets import LINCSL1000
from tests.conftest import link_raw, shared

L3 = ["lincs/cmappy_test_l1000_LJP005_A375_24H.gct", "lincs/deepce_brd_smiles.csv",
      "lincs/dhimmel_lincs_pertinfo.tsv.gz", "string/STRING_edges.csv"]
L5 = ["lincs/l1ktools_modzs_n272x978.gctx", "lincs/deepce_brd_smiles.csv", "lincs/dhimmel_lincs_pertinfo.tsv.gz",
      "lincs/transigen_basal_dmso_modz_165cells.csv"]


@pytest.fixture(scope="module")
def level3(tmp_path_factory):
    return LINCSL1000(str(link_raw(tmp_path_factory.mktemp("l3"), L3)), level=3, log=False)


def test_level3_treated_wells_paired_with_plate_dmso(level3):
    r = level3.report
    assert r["profiles_read"] == 377 and r["dmso_wells"] == 26 and r["plates_with_dmso"] == 1
    d = r["dropped"]
    assert d["other_pert_type"] == 23  # trt_poscon wells
    assert d["plate_without_dmso"] == 0
    assert 328 - d["drug_without_smiles"] - d["invalid_smiles"] == level3.num_pairs == 322
    assert level3.num_drugs == 54 and level3.summary()["num_cells"] == 1
    assert level3.num_genes == 978 and r["genes"]["num_alias_matched"] == 44  # GSE92742-era symbols
    # the basal profile is the mean of the 26 DMSO wells, on the CSG2A gene axis
    expr = pd.read_csv(shared("lincs", "ljp005_a375_24h_level3_expression.csv"), index_col=0)
    meta = pd.read_csv(shared("lincs", "ljp005_a375_24h_level3_meta.csv"), index_col=0)
    dmso = expr[meta.pert_type == "ctl_vehicle"].mean(0)
    assert list(expr.columns) == level3.gene_space.genes
    np.testing.assert_allclose(level3.expression[0].numpy(), dmso.to_numpy(), rtol=1e-4, atol=1e-4)
    # y is the treated well's own profile; dose and time parsed from the file
    trt = expr[meta.pert_type == "trt_cp"].to_numpy()
    for i in (0, 100, 321):  # every y is one treated well's profile
        assert np.abs(trt - level3.pairs["y"][i].numpy()).max(axis=1).min() < 1e-3
    assert torch.allclose(level3.pairs["dose"].unique(), torch.tensor([0.04, 0.12, 0.37, 1.11, 3.33, 10.0]))
    assert level3.pairs["time"].unique().tolist() == [24.0]
    b = next(iter(level3.loader(batch_size=32)))
    assert b.y.shape == (32, 978) and b.expr.shape == (32, 978)


def test_level5_signatures_with_basal_table(tmp_path):
    ds = LINCSL1000(str(link_raw(tmp_path, L5)), level=5, log=False)
    r = ds.report
    assert r["profiles_read"] == 272
    assert r["dropped"]["cell_without_basal"] == 65  # signatures whose cell line has no basal row
    assert ds.num_pairs == 272 - 65 == 207
    # two Broad ids without SMILES take their compound's SMILES by name, and merge with it
    assert r["smiles_via_pert_iname"] == ["BRD-U73308409", "BRD-U88459701"]
    assert r["broad_ids_merged"] == {"BRD-A82307304": ["BRD-U88459701"], "BRD-K56343971": ["BRD-U73308409"]}
    assert sorted(set(ds.drug_meta["name"])) == ["atorvastatin", "vemurafenib", "venlafaxine"]
    # basal and target on one scale (issue 8): the signature is a z-score of change, so the basal table
    # (absolute log2, median ~8.4) is robust-z-scored per gene over its 165 cells
    assert ds.target == "signature"
    basal = pd.read_csv(shared("lincs", "transigen_basal_dmso_modz_165cells.csv"), index_col=0)
    assert 7 < float(np.median(basal.to_numpy())) < 10
    b = basal.to_numpy(np.float64)
    med = np.median(b, axis=0)
    z = (b - med) / (1.4826 * np.median(np.abs(b - med), axis=0))
    c = ds.cells[0]
    np.testing.assert_allclose(ds.expression[0].numpy(), z[list(basal.index).index(c)], rtol=2e-3, atol=1e-4)
    assert abs(float(ds.expression.median())) < 0.5 and abs(float(ds.pairs["y"].median())) < 0.5
    with pytest.raises(ValueError, match="target"):
        LINCSL1000(str(tmp_path), level=5, target="perturbed", log=False)
    # the two atorvastatin ids (stereo/salt variants: one InChIKey skeleton) are one compound in splits
    assert any(len(v) == 2 for v in ds.report["compounds"]["merged"].values())
    s = ds.get_idx_split("drug_blind", fold=0, n_folds=3)
    dtest = set(ds.pairs["drug"][s["test"]].tolist())
    assert not dtest & set(ds.pairs["drug"][s["train"]].tolist())
    group = ds.drug_meta["compound_group"]
    gtest = {group[d] for d in dtest}
    assert not gtest & {group[d] for d in ds.pairs["drug"][s["train"]].tolist()}


def _write_gct13(path, rids, symbols, cols):
    """A small plate in GCT 1.3 layout: cols = [(cid, pert_type, pert_id, dose, plate)]."""
    rmeta = ["pr_gene_symbol"] if symbols is not None else []
    lines = ["#1.3", f"{len(rids)}\t{len(cols)}\t{len(rmeta)}\t5",
             "\t".join(["id"] + rmeta + [c[0] for c in cols])]
    na = ["na"] * len(rmeta)
    for i, name in enumerate(["pert_type", "pert_id", "pert_idose", "pert_itime", "det_plate"]):
        vals = [str(c[i + 1]) if i < 4 else str(c[4]) for c in cols] if i != 3 else ["24 h"] * len(cols)
        if i == 2:
            vals = [c[3] for c in cols]
        lines.append("\t".join([name] + na + vals))
    rng = np.random.default_rng(0)
    for j, r in enumerate(rids):
        lines.append("\t".join([r] + ([symbols[j]] if symbols is not None else [])
                               + [f"{v:.3f}" for v in rng.normal(size=len(cols))]))
    path.write_text("\n".join(lines) + "\n")


def test_probe_only_rows_plates_without_dmso_and_missing_smiles(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    probes = ["1007_s_at", "121_at", "200814_at", "NOT_A_PROBE"]  # DDR1, PAX8, PSME1, unknown
    cols = [("P1:A01", "ctl_vehicle", "DMSO", "-666", "P1"), ("P1:A02", "ctl_vehicle", "DMSO", "-666", "P1"),
            ("P1:A03", "trt_cp", "BRD-K00000001", "10 µM", "P1"), ("P2:A01", "trt_cp", "BRD-K00000001", "1 um", "P2"),
            ("P1:A04", "trt_cp", "BRD-K00000002", "500 nM", "P1"), ("P1:A05", "trt_cp", "BRD-K00000003", "x", "P1")]
    _write_gct13(raw / "plate.gct", probes, None, cols)
    (raw / "compounds_smiles.csv").write_text("BRD-K00000001,CCO\nBRD-K00000003,CCN\n")
    ds = LINCSL1000(str(tmp_path), gene_space=GeneSpace.landmark(), prior=None, log=False)
    r = ds.report
    assert r["row_mapping"] == {"symbol": 0, "row_id": 3, "gene_info": 0, "unmapped": 1}
    assert ds.gene_space.genes == ["DDR1", "PAX8", "PSME1"]
    assert r["dropped"] == {"other_pert_type": 0, "plate_without_dmso": 1, "drug_without_smiles": 1,
                            "unparsed_dose_or_time": 1, "invalid_smiles": 0}
    assert ds.num_pairs == 1 and ds.pairs["dose"].tolist() == [10.0]
    with pytest.raises(FileNotFoundError, match="gct"):
        LINCSL1000(str(tmp_path / "empty"), log=False)
