"""``csg2a explain`` and ``csg2a analyze attention|enrich|zero-shot|tcga`` end to end on small real subsets."""

import json

import pandas as pd

from csg2a_graph.cli.main import main
from tests.conftest import shared


def test_explain_writes_attributions_summary_and_plots(finetuned, gdsc2, gdsc2_root, tmp_path, capsys):
    _, split, ckpt = finetuned
    p = gdsc2.pairs
    rows = [{"cell": gdsc2.cells[int(p["cell"][i])], "drug": gdsc2.drugs[int(p["drug"][i])]} for i in split["test"][:3]]
    rows.append({"cell": "NOT-A-LINE", "drug": gdsc2.drugs[0]})
    pd.DataFrame(rows).to_csv(tmp_path / "pairs.csv", index=False)
    out = tmp_path / "ex"
    assert (
        main(
            [
                "explain",
                "--checkpoint",
                ckpt,
                "--pairs",
                str(tmp_path / "pairs.csv"),
                "--method",
                "ig",
                "--dataset",
                "gdsc",
                "--root",
                str(gdsc2_root),
                "--out",
                str(out),
                "--faithfulness",
                "--steps",
                "24",
                "-q",
            ]
        )
        == 0
    )
    df = pd.read_csv(out / "gene_attributions.csv")
    assert list(df.columns) == ["pair", "cell", "drug", "gene", "attribution"]
    assert len(df) == 3 * gdsc2.num_genes and set(df.pair) == {0, 1, 2} and df.attribution.abs().sum() > 0
    s = json.loads((out / "summary.json").read_text())
    assert s["method"] == "ig" and s["n_pairs"] == 3 and s["completeness_max_abs_error"] >= 0
    assert "unknown cell line" in s["rows_with_errors"]["3"]
    for f in ("top_genes.png", "faithfulness.png", "faithfulness.csv", "predictions.csv", "config.toml"):
        assert (out / f).exists(), f
    # a method without completeness, top-k output
    out2 = tmp_path / "sal"
    assert (
        main(
            [
                "explain",
                "--checkpoint",
                ckpt,
                "--pairs",
                str(tmp_path / "pairs.csv"),
                "--method",
                "saliency",
                "--dataset",
                "gdsc",
                "--root",
                str(gdsc2_root),
                "--out",
                str(out2),
                "--top",
                "5",
                "-q",
            ]
        )
        == 0
    )
    assert len(pd.read_csv(out2 / "gene_attributions.csv")) == 15


def test_analyze_attention_and_enrich(finetuned, gdsc2_root, tmp_path):
    _, _, ckpt = finetuned
    out = tmp_path / "att"
    assert (
        main(
            [
                "analyze",
                "attention",
                "--checkpoint",
                ckpt,
                "--root",
                str(gdsc2_root),
                "--out",
                str(out),
                "--moa",
                str(shared("gdsc", "gdsc_drug_moa_rephub.csv")),
                "--split",
                "mixed",
                "--subsample",
                "3000",
                "--max-pairs-per-drug",
                "15",
                "--top-pairs",
                "50",
                "-q",
            ]
        )
        == 0
    )
    s = json.loads((out / "attention_moa.json").read_text())
    assert s["moa_centred"]["within_pairs"] > 0 and s["moa_centred"]["across_pairs"] > 0
    assert (out / "attention_moa.png").exists() and (out / "moa_pairs.csv").exists()
    assert len(pd.read_csv(out / "top_pairs_Fulvestrant.csv")) == 50
    gmt = str(shared("genesets", "enrichr_WikiPathways_2019_Human.gmt"))
    out2 = tmp_path / "enr"
    assert (
        main(
            [
                "analyze",
                "enrich",
                "--checkpoint",
                ckpt,
                "--root",
                str(gdsc2_root),
                "--gmt",
                gmt,
                "--out",
                str(out2),
                "--subsample",
                "4000",
                "--top-pairs",
                "200",
                "--alpha",
                "0.5",
                "-q",
            ]
        )
        == 0
    )
    e = json.loads((out2 / "enrichment.json").read_text())
    assert set(e["attention"]) == {"Fulvestrant", "5-Fluorouracil"}
    assert e["attention"]["Fulvestrant"]["genes_in_top_pairs"] > 10
    assert (out2 / "attention_Fulvestrant.csv").exists() and (out2 / "deg_Oxaliplatin.csv").exists()
    # a plain gene list
    (tmp_path / "genes.txt").write_text("\n".join(["CASP3", "CASP8", "CASP9", "BAX", "BCL2", "TP53", "APAF1", "CYCS"]))
    out3 = tmp_path / "plain"
    assert (
        main(["analyze", "enrich", "--gmt", gmt, "--genes", str(tmp_path / "genes.txt"), "--out", str(out3), "-q"]) == 0
    )
    top = pd.read_csv(out3 / "enrichment.csv").term.iloc[0]
    assert "apoptosis" in top.lower()


def test_analyze_zero_shot_and_tcga(pretrained_csg2a, finetuned, gdsc2_root, tmp_path):
    from tests.analysis.test_analysis import TCGA_FILES
    from tests.conftest import link_raw

    out = tmp_path / "zs"
    assert (
        main(
            [
                "analyze",
                "zero-shot",
                "--pretrained",
                pretrained_csg2a,
                "--root",
                str(gdsc2_root),
                "--out",
                str(out),
                "--subsample",
                "3000",
                "-q",
            ]
        )
        == 0
    )
    z = json.loads((out / "zero_shot.json").read_text())
    assert z["n_pairs"] == 3000 and z["cell_lines"] > 100 and "p_one_sided" in z
    assert (out / "zero_shot.png").exists() and (out / "zero_shot_per_cell.csv").exists()
    root = link_raw(tmp_path / "tcga", TCGA_FILES)
    out2 = tmp_path / "tcga_out"
    assert (
        main(
            ["analyze", "tcga", "--checkpoint", f"csg2a={finetuned[2]}", "--root", str(root), "--out", str(out2), "-q"]
        )
        == 0
    )
    t = pd.read_csv(out2 / "tcga_ttests.csv")
    assert {"drug", "n_responders", "n_nonresponders", "t", "p_one_sided", "model"} <= set(t.columns)
    cis = t[t.drug == "Cisplatin"].iloc[0]
    assert (cis.n_responders, cis.n_nonresponders) == (198, 57)
    assert (out2 / "tcga.png").exists() and (out2 / "tcga_summary.csv").exists()
