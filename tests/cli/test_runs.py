"""What ``--out`` may hold (issue 17): a finished run is never overwritten silently, a folder that is not
ours is never written into, a run with other options or data is refused before anything is written,
one process at a time (lock file), TOML sections and value types, Ctrl-C and SIGKILL mid-run."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

from csg2a_graph.cli.main import main
from tests.conftest import LINCS3_FILES, REPO, link_raw

FAST = ["--epochs", "2", "--batch-size", "64", "--lr", "1e-3", "--drug-encoder", "gin", "--hidden-channels", "16"]


def _snapshot(folder):
    return {f: (folder / f).read_bytes() for f in sorted(os.listdir(folder)) if (folder / f).is_file()}


def _err(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("csg2a: error:"), err
    return err[0]


@pytest.fixture(scope="module")
def lincs_root(tmp_path_factory):
    return link_raw(tmp_path_factory.mktemp("runs_lincs"), LINCS3_FILES)


def test_a_finished_run_is_continued_refused_or_replaced_never_overwritten(lincs_root, tmp_path, capsys):
    out = tmp_path / "pre"
    base = ["pretrain", "--root", str(lincs_root), "--out", str(out)]
    assert main(base + FAST + ["-q"]) == 0
    before = _snapshot(out)
    assert len(pd.read_csv(out / "metrics.csv")) == 2 and json.loads(before["run.json"])["state"] == "finished"
    capsys.readouterr()
    # other options: refused in one line naming them, nothing touched (model.pt, config.toml, metrics)
    assert main(base + ["--epochs", "1"] + FAST[2:] + ["-q"]) == 2
    msg = _err(capsys)
    assert "other options" in msg and "epochs: 2 -> 1" in msg and "--overwrite" in msg
    assert _snapshot(out) == before
    # --resume with a new learning rate: refused before config.toml is rewritten
    assert main(base + FAST[:4] + ["--lr", "1e-2"] + FAST[6:] + ["--resume", "-q"]) == 2
    assert "lr: 0.001 -> 0.01" in _err(capsys)
    assert _snapshot(out) == before
    # the same options: continued (a finished run reports again), the trained model unchanged
    assert main(base + FAST) == 0
    assert "holds a finished run with the same options: continuing" in capsys.readouterr().out
    assert len(pd.read_csv(out / "metrics.csv")) == 2
    import torch

    a = torch.load(out / "model.pt", weights_only=True)["model"]
    b = torch.load(__import__("io").BytesIO(before["model.pt"]), weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # --overwrite replaces it
    assert main(base + ["--epochs", "1"] + FAST[2:] + ["--overwrite", "-q"]) == 0
    assert len(pd.read_csv(out / "metrics.csv")) == 1
    assert json.loads((out / "run.json").read_text())["options"]["epochs"] == 1
    assert not (out / ".lock").exists()


def test_a_folder_that_is_not_a_run_is_never_written_into(lincs_root, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    (out / "metrics.csv").write_text("epoch,foo\n0,1\n")
    before = _snapshot(out)
    for extra in ([], ["--overwrite"], ["--resume"]):
        assert main(["pretrain", "--root", str(lincs_root), "--out", str(out), *FAST, *extra, "-q"]) == 2
        assert "holds no csg2a-graph run" in _err(capsys)
        assert _snapshot(out) == before and sorted(os.listdir(out)) == ["metrics.csv", "notes.txt"]
    assert main(["pretrain", "--root", str(lincs_root), "--out", str(tmp_path / "none"), *FAST, "--resume"]) == 2
    assert "holds no run to continue" in _err(capsys)


def test_one_process_per_folder_and_a_stale_lock_is_reported(lincs_root, tmp_path, capsys):
    out = tmp_path / "locked"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(
            json.dumps(
                {
                    "pid": sleeper.pid,
                    "host": socket.gethostname(),
                    "started": "2026-11-30 08:00:00",
                    "command": "pretrain",
                }
            )
        )
        assert main(["pretrain", "--root", str(lincs_root), "--out", str(out), *FAST, "-q"]) == 2
        msg = _err(capsys)
        assert f"in use by pid {sleeper.pid}" in msg and sorted(os.listdir(out)) == [".lock"]
    finally:
        sleeper.kill()
        sleeper.wait()
    # the holder is gone (killed): its lock is reported, then taken over
    assert main(["pretrain", "--root", str(lincs_root), "--out", str(out), *FAST]) == 0
    assert f"stale lock of pid {sleeper.pid}" in capsys.readouterr().err
    assert (out / "model.pt").exists() and not (out / ".lock").exists()
    # another host's lock cannot be checked: refused, with the file to delete
    (out / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "x", "command": "pretrain"}))
    assert main(["pretrain", "--root", str(lincs_root), "--out", str(out), *FAST, "-q"]) == 2
    assert "host elsewhere" in _err(capsys)


def test_cv_refuses_a_folder_made_with_other_settings(gdsc2_root, tmp_path, capsys):
    import shutil

    out = tmp_path / "cv"
    args = [
        "cv",
        "--dataset",
        "gdsc",
        "--root",
        str(gdsc2_root),
        "--models",
        "drug-mean",
        "additive",
        "--subsample",
        "1500",
        "--folds",
        "1",
        "-q",
    ]
    assert main(args + ["--out", str(out)]) == 0
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = (copy / "results.csv").read_bytes()
    assert main(args[:-3] + ["--subsample", "1000", "--folds", "1", "--lr", "1e-2", "--out", str(copy), "-q"]) == 2
    msg = _err(capsys)
    assert "subsample: 1500 -> 1000" in msg and "lr: 0.0001 -> 0.01" in msg
    assert (copy / "results.csv").read_bytes() == before
    cfg = (copy / "config.toml").read_text()
    assert "subsample = 1500" in cfg  # the refused run wrote nothing
    # the copied run with its own settings is continued (finished rows skipped)
    assert main(args + ["--out", str(copy)]) == 0
    assert (copy / "results.csv").read_bytes() == before
    # a cv folder may grow (another model, on the same folds and data); a model's options may not change
    assert main(args[:6] + ["drug-mean", "additive", "cell-mean"] + args[8:] + ["--out", str(copy)]) == 0
    res = pd.read_csv(copy / "results.csv")
    assert sorted(res.model) == ["additive", "cell-mean", "drug-mean"]
    assert res[res.model != "cell-mean"].to_csv(index=False) == pd.read_csv(out / "results.csv").to_csv(index=False)
    assert main(args + ["--rf-trees", "7", "--out", str(copy), "-q"]) == 2
    assert "rf_trees: 100 -> 7" in _err(capsys)


def test_toml_sections_and_value_types(lincs_root, tmp_path, capsys):
    cfg = tmp_path / "both.toml"
    cfg.write_text("batch-size = 64\n[pretrain]\nepochs = 1\n[finetune]\nepochs = 7\n")
    out = tmp_path / "pre"
    assert (
        main(
            [
                "pretrain",
                "--root",
                str(lincs_root),
                "--out",
                str(out),
                "--config",
                str(cfg),
                "--drug-encoder",
                "gin",
                "--hidden-channels",
                "16",
                "-q",
            ]
        )
        == 0
    )
    assert len(pd.read_csv(out / "metrics.csv")) == 1  # the [pretrain] section, not the last one
    assert "batch_size = 64" in (out / "config.toml").read_text()
    cases = {
        "[trainer]\nepochs = 1\n": "unknown section [trainer]",
        "epochs = 2.5\n": "--epochs: expected an integer",
        "epochs = 0\n": "--epochs",
        'lr = "fast"\n': "--lr",
        "amp = 1\n": "--amp is a flag",
        'score = "cosine"\n': "--score must be one of",
        "max-minutes = -5\n": "--max-minutes",
    }
    for text, message in cases.items():
        cfg.write_text(text)
        assert main(["pretrain", "--root", str(lincs_root), "--out", str(tmp_path / "x"), "--config", str(cfg)]) == 2
        assert message in _err(capsys), text
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "0"], "--epochs: must be >= 1"),
        (["--patience", "0"], "--patience: must be >= 1"),
        (["--max-batches", "0"], "--max-batches: must be >= 1"),
        (["--max-minutes", "-5"], "--max-minutes: must be a positive number"),
        (["--max-minutes", "0"], "--max-minutes: must be a positive number"),
        (["--lr", "-1"], "--lr: must be a positive number"),
    ],
)
def test_runs_that_would_train_nothing_are_refused(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["finetune", "--dataset", "gdsc", "--root", str(tmp_path), "--out", str(tmp_path / "o"), *argv])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_library_config_refuses_the_same():
    from csg2a_graph.train.loop import TrainConfig

    for bad in (
        {"epochs": 0},
        {"patience": 0},
        {"max_batches": 0},
        {"max_minutes": 0},
        {"max_minutes": -5},
        {"epochs": 2.5},
        {"lr": float("nan")},
        {"batch_size": True},
    ):
        with pytest.raises((ValueError, TypeError)):
            TrainConfig(**bad)


def test_device_that_is_not_there_is_one_line(lincs_root, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["pretrain", "--root", str(lincs_root), "--out", str(tmp_path / "o"), *FAST, "--device", "cuda"]) == 2
    assert "no CUDA device" in _err(capsys)
    assert main(["pretrain", "--root", str(lincs_root), "--out", str(tmp_path / "o"), *FAST, "--device", "gpu0"]) == 2
    assert "not a device name" in _err(capsys)
    assert not (tmp_path / "o" / "run.json").exists()


def test_quiet_prints_no_progress_bars(lincs_root, tmp_path, capsys):
    assert main(["pretrain", "--root", str(lincs_root), "--out", str(tmp_path / "q"), *FAST, "-q"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and "epoch" not in cap.err and "it/s" not in cap.err


def test_help_and_argument_errors_come_before_heavy_imports():
    code = (
        "import sys\nfrom csg2a_graph.cli.main import main\n"
        "try:\n    main(['finetune', '--dataset', 'gdsc', '--root', 'r', '--out', 'o', '--epochs', '0'])\n"
        "except SystemExit:\n    pass\n"
        "try:\n    main(['explain', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'torch_geometric', 'captum', 'rdkit', 'pandas') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout + r.stderr


def _cli(args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    code = "import sys; from csg2a_graph.cli.main import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _wait_for_epoch(out, n, proc, timeout=240):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if (out / "metrics.csv").exists() and len((out / "metrics.csv").read_text().splitlines()) > n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before epoch {n}: {proc.communicate()}")
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_runs_continue_to_the_same_result(sig, lincs_root, tmp_path):
    """SIGINT (Ctrl-C: a one-line hint, the lock released) or SIGKILL (a stale lock, reported) after the
    first epoch, then the same command: bit-identical metrics to an uninterrupted run."""
    args = ["pretrain", "--root", str(lincs_root), "--epochs", "6", *FAST[2:], "-q", "--seed", "3"]
    whole = tmp_path / "whole"
    r = _cli(args + ["--out", str(whole)])
    assert r.wait(timeout=300) == 0, r.communicate()
    cut = tmp_path / "cut"
    p = _cli(args + ["--out", str(cut)])
    _wait_for_epoch(cut, 1, p)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert p.returncode == 130 and "interrupted; run the same command again to continue" in err
        assert not (cut / ".lock").exists()
    else:
        assert p.returncode == -9 and (cut / ".lock").exists()
    assert len(pd.read_csv(cut / "metrics.csv")) < 6
    again = _cli(args + ["--out", str(cut)])
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    if sig == signal.SIGKILL:
        assert "stale lock" in err
    a, b = pd.read_csv(whole / "metrics.csv"), pd.read_csv(cut / "metrics.csv")
    cols = [c for c in a.columns if c != "seconds"]
    pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=True)
    import torch

    wa = torch.load(whole / "model.pt", weights_only=True)["model"]
    wb = torch.load(cut / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # bit-identical weights


def test_a_run_from_an_older_version_continues_when_new_options_stay_off(lincs_root, tmp_path, capsys):
    """A run.json written before an option existed (here --fast, --residual) continues with the option at its off
    default; turning the new option on is a change and is refused."""
    out = tmp_path / "pre"
    base = ["pretrain", "--root", str(lincs_root), "--out", str(out)]
    assert main(base + FAST + ["-q"]) == 0
    marker = json.loads((out / "run.json").read_text())
    for k in ("fast", "residual"):
        marker["options"].pop(k)
    (out / "run.json").write_text(json.dumps(marker))
    capsys.readouterr()
    assert main(base + FAST) == 0
    assert "with the same options: continuing" in capsys.readouterr().out
    assert main(base + FAST + ["--fast", "-q"]) == 2
    assert "fast: False -> True" in _err(capsys)  # the continued run recorded it off
