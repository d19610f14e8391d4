import numpy as np
import pandas as pd
import pytest
import torch

from csg2a_graph.data.gene_space import GeneSpace
from csg2a_graph.datasets import LINCSL1000
from tests.conftest import link_raw, shared

L3 = [
    "lincs/cmappy_test_l1000_LJP005_A375_24H.gct",
    "lincs/deepce_brd_smiles.csv",
    "lincs/dhimmel_lincs_pertinfo.tsv.gz",
    "string/STRING_edges.csv",
]
L5 = [
    "lincs/l1ktools_modzs_n272x978.gctx",
    "lincs/deepce_brd_smiles.csv",
    "lincs/dhimmel_lincs_pertinfo.tsv.gz",
    "lincs/transigen_basal_dmso_modz_165cells.csv",
]


@pytest.fixture(scope="module")
def level3(tmp_path_factory):
    """The plate on its files' log2 scale (``scale="log2"``), compared value by value with the files."""
    return LINCSL1000(str(link_raw(tmp_path_factory.mktemp("l3"), L3)), level=3, scale="log2", log=False)


PAIRS = [
    "lincs/transigen_example_x1_basal.csv",
    "lincs/transigen_example_x2_perturbed.csv",
    "lincs/transigen_example_meta.csv",
]


@pytest.fixture(scope="module")
def combined(tmp_path_factory):
    """All real level-3 pairs: the LJP005 plate + the 100 TranSiGen basal/perturbed pairs, default scale."""
    return LINCSL1000(str(link_raw(tmp_path_factory.mktemp("l3p"), L3 + PAIRS)), level=3, log=False)


def test_shipped_reference_is_the_165_cell_lines(tmp_path):
    """The default scale's reference statistics are the 165-line basal table's (median, 1.4826 MAD)."""
    from csg2a_graph import assets
    from csg2a_graph.data.normalize import robust_stats
    from csg2a_graph.datasets.lincs import MIN_REFERENCE_MAD, read_scale_reference

    genes = GeneSpace.landmark().genes
    med, mad = read_scale_reference(assets.asset("lincs_basal_robust_stats.csv"), genes)
    b = pd.read_csv(shared("lincs", "transigen_basal_dmso_modz_165cells.csv"), index_col=0)[genes]
    m, d = robust_stats(torch.tensor(b.to_numpy(), dtype=torch.float64))
    torch.testing.assert_close(med, m[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(mad, d[0].clamp_min(MIN_REFERENCE_MAD), atol=1e-5, rtol=0)
    # the table itself as reference gives the same statistics
    med2, mad2 = read_scale_reference(str(shared("lincs", "transigen_basal_dmso_modz_165cells.csv")), genes)
    torch.testing.assert_close(med2, med, atol=1e-5, rtol=0)


def test_one_scale_for_pretraining_and_finetuning(combined, level3, gdsc2):
    """Per gene, the pretraining set's basal profiles (one per cell line) and GDSC's robust z have medians
    within 0.5 and MADs within a factor 2 for >= 90 % of the shared genes; on the log2 scale, none."""
    from csg2a_graph.data.normalize import robust_stats

    r = combined.report
    assert r["pairs_added"]["pairs"] == 100 and r["pairs_added"]["compounds"] == 14
    assert combined.num_pairs == 322 + 100 and combined.report["scale"]["genes_scaled"] == 978
    pos = {g: i for i, g in enumerate(combined.gene_space.genes)}
    genes = [g for g, m in zip(gdsc2.gene_space.genes, gdsc2.gene_mask.tolist()) if m and g in pos]
    assert len(genes) >= 400
    gi = torch.tensor([gdsc2.gene_space.genes.index(g) for g in genes])
    gm, gs = robust_stats(gdsc2.expression[:, gi])

    def per_cell(ds):
        cells = np.array(ds.cell_meta["cell_id"])
        x = ds.expression[:, torch.tensor([pos[g] for g in genes])]
        return torch.stack([x[torch.from_numpy(np.flatnonzero(cells == c))].mean(0) for c in sorted(set(cells))])

    basal = per_cell(combined)
    assert basal.size(0) >= 40  # cell lines
    lm, ls = robust_stats(basal)
    near = ((gm - lm).abs() < 0.5) & (ls / gs < 2) & (ls / gs > 0.5)
    assert near.double().mean() >= 0.9, float(near.double().mean())
    # the plate's treated wells on that scale too: y and basal share it (median change ~0)
    assert abs(float((combined.pairs["y"][:322] - combined.expression[0]).median())) < 0.2
    # log2 (the old scale): no gene's median is near GDSC's
    lm2, _ = robust_stats(level3.expression[:, torch.tensor([pos[g] for g in genes])])
    assert ((gm - lm2).abs() < 0.5).double().mean() < 0.05


def test_pairs_are_grouped_by_compound(combined):
    """A compound's wells and pairs are one drug: a drug-blind split keeps them on one side."""
    sp = combined.get_idx_split("drug_blind", fold=0, n_folds=5)
    d = combined.pairs["drug"]
    assert not set(d[sp["train"]].tolist()) & set(d[sp["test"]].tolist())
    with pytest.raises(ValueError, match="pairs_files"):
        LINCSL1000("unused", level=3, pairs_files=["a", "b"])
    with pytest.raises(ValueError, match="both rescale"):
        LINCSL1000("unused", level=3, normalize="robust_z")


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
    lines = ["#1.3", f"{len(rids)}\t{len(cols)}\t{len(rmeta)}\t5", "\t".join(["id"] + rmeta + [c[0] for c in cols])]
    na = ["na"] * len(rmeta)
    for i, name in enumerate(["pert_type", "pert_id", "pert_idose", "pert_itime", "det_plate"]):
        vals = [str(c[i + 1]) if i < 4 else str(c[4]) for c in cols] if i != 3 else ["24 h"] * len(cols)
        if i == 2:
            vals = [c[3] for c in cols]
        lines.append("\t".join([name] + na + vals))
    rng = np.random.default_rng(0)
    for j, r in enumerate(rids):
        lines.append(
            "\t".join(
                [r] + ([symbols[j]] if symbols is not None else []) + [f"{v:.3f}" for v in rng.normal(size=len(cols))]
            )
        )
    path.write_text("\n".join(lines) + "\n")


def test_probe_only_rows_plates_without_dmso_and_missing_smiles(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    probes = ["1007_s_at", "121_at", "200814_at", "NOT_A_PROBE"]  # DDR1, PAX8, PSME1, unknown
    cols = [
        ("P1:A01", "ctl_vehicle", "DMSO", "-666", "P1"),
        ("P1:A02", "ctl_vehicle", "DMSO", "-666", "P1"),
        ("P1:A03", "trt_cp", "BRD-K00000001", "10 µM", "P1"),
        ("P2:A01", "trt_cp", "BRD-K00000001", "1 um", "P2"),
        ("P1:A04", "trt_cp", "BRD-K00000002", "500 nM", "P1"),
        ("P1:A05", "trt_cp", "BRD-K00000003", "x", "P1"),
    ]
    _write_gct13(raw / "plate.gct", probes, None, cols)
    (raw / "compounds_smiles.csv").write_text("BRD-K00000001,CCO\nBRD-K00000003,CCN\n")
    ds = LINCSL1000(str(tmp_path), gene_space=GeneSpace.landmark(), prior=None, log=False)
    r = ds.report
    assert r["row_mapping"] == {"symbol": 0, "row_id": 3, "gene_info": 0, "unmapped": 1}
    assert ds.gene_space.genes == ["DDR1", "PAX8", "PSME1"]
    assert r["dropped"] == {
        "other_pert_type": 0,
        "plate_without_dmso": 1,
        "drug_without_smiles": 1,
        "unparsed_dose_or_time": 1,
        "invalid_smiles": 0,
    }
    assert ds.num_pairs == 1 and ds.pairs["dose"].tolist() == [10.0]
    with pytest.raises(FileNotFoundError, match="gct"):
        LINCSL1000(str(tmp_path / "empty"), log=False)


def test_the_shipped_plate_loads_as_the_docs_say(tmp_path):
    """Issue 25.5: docs/data.md's line for the shipped LINCS plate runs, and the dataset says what y is."""
    from csg2a_graph import assets
    from csg2a_graph.datasets import LINCSL1000

    ds = LINCSL1000(str(tmp_path / "lincs-ljp005"), level=3, log=False, **assets.lincs_plate())
    assert ds.num_pairs == 322 and ds.y.shape == (322, ds.num_genes) and ds.y_direction is None
    assert "profile" in ds.y_name and ds.prior_edge_index is not None


def test_stray_gct_in_a_lincs_root_is_named(tmp_path):
    from csg2a_graph.datasets import LINCSL1000
    from tests.conftest import link_raw
    from tests.datasets.test_lincs import L3

    root = link_raw(tmp_path, L3)
    (root / "raw" / "zz_other_assay.gct").write_text("#1.2\n2\t1\nName\tDescription\ts1\nfoo\tna\t1\nbar\tna\t2\n")
    with pytest.raises(ValueError, match=r"zz_other_assay\.gct: none of its 2 row ids"):
        LINCSL1000(str(root), level=3, log=False)
