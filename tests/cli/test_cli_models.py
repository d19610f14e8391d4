"""The model commands end to end on the real files: pretrain, finetune, cv, predict, --config, errors."""

import pandas as pd
import pytest
import torch

from csg2a_graph.cli.main import main
from tests.conftest import LINCS3_FILES, link_raw

FAST = ["--epochs", "2", "--batch-size", "64", "--lr", "1e-3", "-q"]


@pytest.fixture(scope="module")
def pretrained_ckpt(tmp_path_factory, gcn_weights):
    d = tmp_path_factory.mktemp("cli_pre")
    root = link_raw(d / "lincs", LINCS3_FILES)
    out = d / "out"
    assert (
        main(
            [
                "pretrain",
                "--dataset",
                "lincs",
                "--root",
                str(root),
                "--out",
                str(out),
                "--drug-weights",
                gcn_weights,
                *FAST,
            ]
        )
        == 0
    )
    assert (out / "config.toml").exists() and (out / "metrics.csv").exists()
    return str(out / "model.pt")


def test_finetune_and_predict_with_a_malformed_smiles(pretrained_ckpt, gdsc2_root, gdsc2, tmp_path, capsys):
    out = tmp_path / "ft"
    assert (
        main(
            [
                "finetune",
                "--dataset",
                "gdsc",
                "--root",
                str(gdsc2_root),
                "--pretrained",
                pretrained_ckpt,
                "--split",
                "drug_blind",
                "--fold",
                "0",
                "--out",
                str(out),
                "--max-batches",
                "20",
                *FAST,
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == ""  # -q: nothing but errors
    import json

    m = json.loads((out / "test_metrics.json").read_text())
    assert {"rmse", "pcc", "scc", "r2"} <= set(m) and (out / "model.pt").exists()
    p = gdsc2.pairs
    rows = []
    for i in (0, 1000, 50000):
        cell, drug = gdsc2.cells[int(p["cell"][i])], int(p["drug"][i])
        rows.append({"cell": cell, "smiles": gdsc2.molecules.smiles[drug], "drug": ""})
    rows.append({"cell": rows[0]["cell"], "smiles": "C1CC(((", "drug": ""})  # malformed SMILES
    rows.append({"cell": "NOT-A-CELL", "smiles": "CCO", "drug": ""})  # unknown cell line
    rows.append({"cell": rows[1]["cell"], "smiles": "", "drug": gdsc2.drugs[3]})  # by drug name
    pd.DataFrame(rows).to_csv(tmp_path / "pairs.csv", index=False)
    expr = pd.DataFrame(gdsc2.expression.numpy(), index=gdsc2.cells, columns=gdsc2.gene_space.genes)
    expr.to_csv(tmp_path / "expr.csv")
    preds = tmp_path / "preds.csv"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(out / "model.pt"),
                "--input",
                str(tmp_path / "pairs.csv"),
                "--out",
                str(preds),
                "--dataset",
                "gdsc",
                "--root",
                str(gdsc2_root),
                "-q",
            ]
        )
        == 0
    )
    df = pd.read_csv(preds, keep_default_na=False)
    assert len(df) == 6 and {"y_pred", "y_name", "y_unit", "y_direction", "genes_filled"} <= set(df.columns)
    assert (
        df.columns[-1] == "error" and set(df.y_name) == {"ln IC50"} and set(df.y_direction) == {"higher_is_resistant"}
    )
    assert df.error[3].startswith("invalid SMILES") and df.error[4].startswith("unknown cell line")
    ok = df[df.error == ""]
    assert len(ok) == 4 and ok.y_pred.astype(float).notna().all()
    # the same predictions from an expression file (already on the training scale) as from the dataset
    preds2 = tmp_path / "preds2.csv"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(out / "model.pt"),
                "--input",
                str(tmp_path / "pairs.csv"),
                "--out",
                str(preds2),
                "--expression",
                str(tmp_path / "expr.csv"),
                "--normalize",
                "none",
                "-q",
            ]
        )
        == 0
    )
    df2 = pd.read_csv(preds2, keep_default_na=False)
    assert df2.error[5].startswith("unknown drug")  # names need the dataset
    a = df.y_pred[:3].astype(float).to_numpy()
    b = df2.y_pred[:3].astype(float).to_numpy()
    assert abs(a - b).max() < 1e-4


def test_cv_two_folds_same_splits_for_every_model(gdsc2_root, tmp_path, capsys, gcn_weights):
    out = tmp_path / "cv"
    cfg = tmp_path / "cv.toml"
    cfg.write_text('schemes = ["mixed"]\nfolds = 2\nsubsample = 3000\nrf-trees = 10\nmax_batches = 10\n')
    assert (
        main(
            [
                "cv",
                "--dataset",
                "gdsc",
                "--root",
                str(gdsc2_root),
                "--models",
                "csg2a",
                "rf",
                "drug-mean",
                "--out",
                str(out),
                "--config",
                str(cfg),
                "--drug-encoder",
                "gin",
                *FAST,
            ]
        )
        == 0
    )
    res = pd.read_csv(out / "results.csv")
    assert len(res) == 6 and set(res.model) == {"csg2a", "rf", "drug-mean"} and set(res.fold) == {0, 1}
    assert {"rmse", "pcc", "scc", "r2", "n_train", "n_test", "seconds", "git_revision"} <= set(res.columns)
    assert res.groupby("fold").n_test.nunique().eq(1).all()  # every model on the same test pairs
    s0 = torch.load(out / "splits" / "mixed_fold0.pt", weights_only=True)
    for m in ("csg2a", "rf", "drug-mean"):
        p = pd.read_csv(out / "predictions" / f"{m}_mixed_fold0.csv")
        assert p.pair.tolist() == s0["test"].tolist()
    assert "± " in (out / "summary.md").read_text()
    written = (out / "config.toml").read_text()
    assert "subsample = 3000" in written and "max_batches = 10" in written  # the resolved config
    # a second run resumes: finished rows are skipped, not recomputed
    assert (
        main(
            [
                "cv",
                "--dataset",
                "gdsc",
                "--root",
                str(gdsc2_root),
                "--models",
                "csg2a",
                "rf",
                "drug-mean",
                "--out",
                str(out),
                "--config",
                str(cfg),
                "--drug-encoder",
                "gin",
                *FAST,
            ]
        )
        == 0
    )
    assert len(pd.read_csv(out / "results.csv")) == 6


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "--checkpoint", "/nonexistent.pt", "--input", "x.csv", "--out", "y.csv"], "not found"),
        (["cv", "--dataset", "gdsc", "--root", "/nonexistent", "--models", "xgboost", "--out", "o"], "unknown models"),
        (["finetune", "--dataset", "gdsc", "--root", "/nonexistent", "--out", "o", "-q"], "no response file"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("csg2a: error:") and message in err[0]


def test_config_errors(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("epochz = 3\n")
    assert main(["pretrain", "--root", "x", "--out", "y", "--config", str(cfg)]) == 2
    assert "unknown options ['epochz']" in capsys.readouterr().err
    cfg.write_text("epochs = [\n")
    assert main(["pretrain", "--root", "x", "--out", "y", "--config", str(cfg)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


@pytest.mark.parametrize(
    "cmd",
    [
        "pretrain",
        "finetune",
        "cv",
        "predict",
        "quickstart",
        "explain",
        "analyze attention",
        "analyze enrich",
        "analyze zero-shot",
        "analyze tcga",
    ],
)
def test_every_command_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([*cmd.split(), "--help"])
    assert e.value.code == 0 and "--config" in capsys.readouterr().out


def test_cv_runs_baselines_with_model_options(gdsc2_root, tmp_path, capsys):
    import pandas as pd

    from csg2a_graph.cli.main import main
    from tests.conftest import shared

    kegg = shared("genesets", "msigdb_c2.cp.kegg.v7.5.1.symbols.gmt")
    targets = shared("gdsc", "gdsc_drug_list_20220812.csv")
    out = tmp_path / "cv"
    args = [
        "cv",
        "--dataset",
        "gdsc",
        "--root",
        str(gdsc2_root),
        "--models",
        "additive",
        "svm",
        "pathdnn",
        "--subsample",
        "2000",
        "--folds",
        "1",
        "--n-folds",
        "3",
        "--epochs",
        "1",
        "--schemes",
        "tissue_blind",
        "--out",
        str(out),
        "-q",
    ]
    assert main(args) == 2  # pathdnn without its files: one line naming the option
    assert "--model-option pathdnn.pathways_file=PATH" in capsys.readouterr().err
    assert (
        main(
            args
            + [
                "--model-option",
                f"pathdnn.pathways_file={kegg}",
                "--model-option",
                f"pathdnn.targets_file={targets}",
                "--model-option",
                "svm.n_components=300",
            ]
        )
        == 0
    )
    res = pd.read_csv(out / "results.csv")
    assert set(res.model) == {"additive", "svm", "pathdnn"} and set(res.scheme) == {"tissue_blind"}
    assert res.rmse.notna().all()


def test_the_cli_lists_what_the_library_has(capsys):
    """Schemes, runners, drug encoders and training defaults of the CLI are the library's (one source)."""
    from dataclasses import fields

    from csg2a_graph import _names
    from csg2a_graph.data.splits import SCHEMES
    from csg2a_graph.nn.encoders import DRUG_ENCODERS as ENCODERS
    from csg2a_graph.train.cv import load_builtin_runners
    from csg2a_graph.train.loop import TrainConfig

    assert set(load_builtin_runners()) == set(_names.MODEL_RUNNERS) and SCHEMES == _names.SCHEMES
    assert set(ENCODERS) == set(_names.DRUG_ENCODERS)
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    assert all(defaults[k] == v for k, v in _names.TRAIN_DEFAULTS.items())
    with pytest.raises(SystemExit):
        main(["cv", "--help"])
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # argparse wraps at hyphens
    assert all(m in text for m in _names.MODEL_RUNNERS) and "deepcovdr" in text
