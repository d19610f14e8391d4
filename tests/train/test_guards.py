"""The trainer never keeps a diverged model, never crashes on a batch of one, and never mixes another
run's metrics (issue 17). Real GDSC2 pairs, a small CSG2A trained from scratch."""

import os

import pandas as pd
import pytest
import torch

from csg2a_graph.cli.main import main
from csg2a_graph.train.loop import TrainConfig, TrainingDiverged
from csg2a_graph.train.pipeline import finetune

NET = {"drug_encoder": "morgan", "hidden_channels": 8}


def _split(ds, n_train, n_val=200, fold=0):
    s = ds.get_idx_split("mixed", fold=fold)
    return {"train": s["train"][:n_train], "val": s["val"][:n_val], "test": s["test"][:100]}


@pytest.mark.parametrize(
    "lr, factor, what",
    [(1e3, 100.0, "(?i)nan|infinite|non-finite|MSE"), (1.0, 5.0, "validation MSE .* target variance")],
)
def test_a_diverging_run_stops_and_keeps_only_finite_weights(gdsc2, tmp_path, lr, factor, what):
    """lr 1e3 blows the weights up (NaN); lr 1 leaves them finite but the first epoch ends with a validation
    error many times the target variance (here 5x, to keep the test short; the default is 100x): both stop with TrainingDiverged; model.pt is never written, checkpoint.pt (if an epoch
    finished) holds finite weights only."""
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=what) as e:
        finetune(
            gdsc2,
            str(out),
            None,
            _split(gdsc2, 2000),
            {"drug_encoder": "gin", "hidden_channels": 64},
            TrainConfig(epochs=20, batch_size=64, lr=lr, progress=False, divergence_factor=factor),
        )
    assert "Lower the learning rate" in str(e.value)
    assert not (out / "model.pt").exists()
    if (out / "checkpoint.pt").exists():
        st = torch.load(out / "checkpoint.pt", weights_only=True)
        assert all(torch.isfinite(v).all() for v in st["model"].values() if v.is_floating_point())
        assert all(torch.isfinite(v).all() for v in st["best_model"].values() if v.is_floating_point())
        assert all(r["val_mse"] < 100 * float(gdsc2.pairs["y"].var()) for r in st["history"])


def test_a_model_no_better_than_the_mean_is_said(gdsc2_root, tmp_path, capsys):
    out = tmp_path / "ft"
    assert (
        main(
            [
                "finetune",
                "--dataset",
                "gdsc",
                "--root",
                str(gdsc2_root),
                "--out",
                str(out),
                "--lr",
                "1e-9",
                "--max-batches",
                "2",
                "--epochs",
                "1",
                "--drug-encoder",
                "morgan",
                "--hidden-channels",
                "8",
                "-q",
            ]
        )
        == 0
    )
    assert "no better than predicting the training mean" in capsys.readouterr().err
    import json

    assert json.loads((out / "test_metrics.json").read_text())["warnings"]


def test_divergence_is_one_line_on_the_command_line(gdsc2_root, tmp_path, capsys):
    out = tmp_path / "ft"
    rc = main(
        [
            "finetune",
            "--dataset",
            "gdsc",
            "--root",
            str(gdsc2_root),
            "--out",
            str(out),
            "--lr",
            "1000",
            "--max-batches",
            "30",
            "--epochs",
            "3",
            "--drug-encoder",
            "morgan",
            "--hidden-channels",
            "8",
            "-q",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training diverged at epoch" in err[0]
    assert not (out / "model.pt").exists() and not (out / "test_metrics.json").exists()


@pytest.mark.parametrize("n_train", [33, 65])
def test_a_last_batch_of_one_pair_is_merged(gdsc2, tmp_path, n_train):
    """BatchNorm cannot normalise one sample: a training size of k*batch + 1 used to crash."""
    trainer, _ = finetune(
        gdsc2, None, None, _split(gdsc2, n_train, 50), dict(NET), TrainConfig(epochs=1, batch_size=32, progress=False)
    )
    assert len(trainer.history) == 1
    loader = gdsc2.loader(torch.arange(n_train), batch_size=32, merge_singleton=True)
    sizes = [len(b) for b in loader]
    assert sum(sizes) == n_train and min(sizes) > 1 and len(loader) == len(sizes)
    assert [len(b) for b in gdsc2.loader(torch.arange(n_train), batch_size=32)][-1] == 1  # not merged by default


def test_one_training_pair_is_refused(gdsc2, tmp_path):
    with pytest.raises(ValueError, match="at least 2"):
        finetune(gdsc2, None, None, _split(gdsc2, 1), dict(NET), TrainConfig(epochs=1, progress=False))


def test_a_fresh_fit_never_appends_to_another_runs_metrics(gdsc2, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.csv").write_text("epoch,foo\n0,1\n")
    finetune(
        gdsc2, str(out), None, _split(gdsc2, 200, 50), dict(NET), TrainConfig(epochs=2, batch_size=64, progress=False)
    )
    m = pd.read_csv(out / "metrics.csv")
    assert list(m.epoch) == [0, 1] and "foo" not in m.columns


def test_checkpoints_keep_the_target_and_the_expression_scale(gdsc2, tmp_path):
    from csg2a_graph.train.checkpoint import load_model

    finetune(gdsc2, str(tmp_path), None, _split(gdsc2, 200, 50), dict(NET), TrainConfig(epochs=1, progress=False))
    info = load_model(os.path.join(tmp_path, "model.pt")).checkpoint_info
    assert info["target"] == {
        "name": "ln IC50",
        "unit": "ln(µM)",
        "direction": "higher_is_resistant",
        "dataset": "GDSC2",
    }
    norm = info["normalization"]
    assert norm["method"] == "robust_z" and norm["median"].shape == (gdsc2.num_genes,)
    assert torch.isfinite(norm["median"]).sum() == int(gdsc2.gene_mask.sum())
    assert torch.equal(info["measured_genes"], gdsc2.gene_mask)


def test_the_schedule_anneals_then_holds_the_floor(gdsc2, tmp_path):
    """No warm restart: the learning rate falls along a half cosine for `patience` epochs, then stays at min_lr."""
    from csg2a_graph.train.loop import cosine_then_hold

    f = cosine_then_hold(1e-4, 1e-5, 20)
    lrs = [1e-4 * f(e) for e in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[20] == pytest.approx(1e-5)
    assert all(a >= b for a, b in zip(lrs, lrs[1:])) and all(v == pytest.approx(1e-5) for v in lrs[20:])
    trainer, _ = finetune(
        gdsc2,
        None,
        None,
        _split(gdsc2, 128, 32),
        dict(NET),
        TrainConfig(epochs=8, patience=3, batch_size=64, lr=1e-3, min_lr=1e-4, progress=False, divergence_factor=None),
    )
    seen = [r["lr"] for r in trainer.history]  # the lr after each epoch's step
    assert seen[2:] == pytest.approx([1e-4] * (len(seen) - 2)) and seen[0] > seen[1] > seen[2]
