"""Issue 28.4-5: ``cv --jobs N`` and ``--executor ray`` give the rows of running the runs one by one — the same
metrics, predictions and trained weights, bit for bit (every process on one CPU thread)."""

import os

import pandas as pd
import pytest
import torch

from csg2a_graph.train.cv import cross_validate
from csg2a_graph.train.executors import run_tasks

METRICS = [
    "rmse",
    "pcc",
    "scc",
    "r2",
    "pcc_per_drug",
    "pcc_norm",
    "r2_norm",
    "epochs",
    "best_epoch",
    "pairs_seen",
    "trials",
    "tuned",
]
OPTS = {
    "rf": {"n_estimators": 8, "max_features": 0.1},
    "csg2a": {
        "drug_encoder": "morgan",
        "hidden_channels": 8,
        "train": {"epochs": 2, "max_batches": 3, "progress": False},
    },
}


def _run(gdsc2, out, small=False, **kw):
    if small:  # one seed, no tuning: 3 runs
        return cross_validate(
            gdsc2,
            ["additive", "csg2a"],
            ["mixed"],
            folds=1,
            out_dir=str(out),
            subsample=1200,
            randomize=["cell-permute"],
            randomize_models=["csg2a"],
            model_options=OPTS,
            threads=1,
            **kw,
        )
    return cross_validate(
        gdsc2,
        ["additive", "rf", "csg2a"],
        ["mixed"],
        folds=1,
        out_dir=str(out),
        subsample=1200,
        seeds=2,
        randomize=["cell-permute"],
        randomize_models=["csg2a"],
        tune=1,
        model_options=OPTS,
        threads=1,
        **kw,
    )


def _same(a: pd.DataFrame, b: pd.DataFrame, out_a, out_b, rows=3 * 2 + 2):
    key = ["model", "scheme", "fold", "seed", "randomization"]
    a, b = a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)
    assert len(a) == len(b) == rows  # (3 models x 2 seeds + csg2a x 2 seeds randomised)
    pd.testing.assert_frame_equal(a[key + METRICS], b[key + METRICS], check_exact=True)
    for name in sorted(os.listdir(out_a / "predictions")):
        pa, pb = pd.read_csv(out_a / "predictions" / name), pd.read_csv(out_b / "predictions" / name)
        pd.testing.assert_frame_equal(pa, pb, check_exact=True)
    runs = [d for d in os.listdir(out_a / "runs") if (out_a / "runs" / d / "model.pt").exists()]
    assert len(runs) == len([n for n in os.listdir(out_a / "predictions") if n.startswith("csg2a")])  # all saved
    for d in runs:
        wa = torch.load(out_a / "runs" / d / "model.pt", weights_only=False)
        wb = torch.load(out_b / "runs" / d / "model.pt", weights_only=False)
        sa, sb = _state(wa), _state(wb)
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), d


def _state(ckpt):
    sd = ckpt.get("state_dict", ckpt.get("model", ckpt)) if isinstance(ckpt, dict) else ckpt.state_dict()
    return {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}


@pytest.fixture(scope="module")
def serial(gdsc2, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "cv"
    before = torch.get_num_threads()
    try:
        return out, _run(gdsc2, out)
    finally:
        torch.set_num_threads(before)


def test_jobs_give_the_rows_of_the_serial_run(gdsc2, serial, tmp_path):
    out_s, df_s = serial
    out = tmp_path / "cv"
    df = _run(gdsc2, out, jobs=2)
    _same(df_s, df, out_s, out)
    # the tuned values were kept, so a continued run tunes nothing again and adds no row
    assert (out / "runs" / "rf_mixed_fold0" / "tune" / "tuned.json").exists()
    assert len(_run(gdsc2, out, jobs=2)) == len(df)


def test_ray_gives_the_rows_of_the_serial_run(gdsc2, tmp_path):
    """On a local Ray cluster (2 CPUs), a smaller run: Ray's start-up dominates."""
    pytest.importorskip("ray")
    before = torch.get_num_threads()
    try:
        df_s = _run(gdsc2, tmp_path / "serial", small=True)
    finally:
        torch.set_num_threads(before)
    df = _run(gdsc2, tmp_path / "ray", small=True, jobs=2, executor="ray")
    _same(df_s, df, tmp_path / "serial", tmp_path / "ray", rows=3)


def _boom(dataset, i):
    if i == 2:
        raise RuntimeError("task 2 failed")
    return i * 10


@pytest.mark.parametrize("executor", ["serial", "process"])
def test_a_failing_task_stops_the_run_after_the_finished_ones(executor):
    got = []
    with pytest.raises(RuntimeError, match="task 2 failed"):
        for _i, v in run_tasks(_boom, None, [(0,), (1,), (2,), (3,)], jobs=2, executor=executor):
            got.append(v)
    assert set(got) <= {0, 10, 30} and (executor != "serial" or got == [0, 10])


def _wait_then_mark(dataset, seconds, path):
    import time

    time.sleep(seconds)
    with open(path, "w") as f:
        f.write("done")
    return seconds


@pytest.mark.parametrize("executor", ["process", "ray"])
def test_results_come_as_tasks_finish_not_when_all_have(executor, tmp_path):
    # cv appends a row per yielded result: a result held back until every task ends is a row lost when the run stops
    if executor == "ray":
        pytest.importorskip("ray")
    slow, fast = tmp_path / "slow", tmp_path / "fast"
    it = run_tasks(_wait_then_mark, None, [(8.0, str(slow)), (0.0, str(fast))], jobs=2, executor=executor)
    i, _ = next(it)
    assert i == 1 and fast.exists() and not slow.exists()  # the slow task still runs when the fast one is yielded
    assert [j for j, _ in it] == [0]


def test_bad_executor_arguments():
    with pytest.raises(ValueError, match="executor must be one of"):
        list(run_tasks(_boom, None, [(0,)], executor="slurm"))
    with pytest.raises(ValueError, match="jobs must be"):
        list(run_tasks(_boom, None, [(0,)], jobs=0))
