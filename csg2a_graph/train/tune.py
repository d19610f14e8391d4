"""Tuning on the validation split with equal budgets (issue 26.3): every model with a declared search space gets
the same number of Optuna trials (TPE, seeded) per fold; each trial trains on the fold's training pairs and is
scored by RMSE on its *validation* pairs — the test pairs are never passed to a trial (tested). The chosen values
go into the results row (``trials``, ``tuned``).

A stopped tuning loses no finished trial: each trial's options and score are kept in ``tune/trial{n}/trial.json``
and a continued run replays them through the same seeded sampler (which proposes the same values again, so the
study is the one an uninterrupted run would have made) instead of training them again.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any, Dict, Tuple

import torch

from csg2a_graph._names import DEEP_BASELINES

#: the declared search spaces: option -> (kind, low, high[, "log"]); "train.lr" sets options["train"]["lr"]
SEARCH_SPACES: Dict[str, Dict[str, Tuple]] = {
    "rf": {"n_estimators": ("int", 50, 300), "max_features": ("float", 0.05, 1.0), "min_samples_leaf": ("int", 1, 20)},
    "gbm": {
        "learning_rate": ("float", 0.01, 0.3, "log"),
        "max_leaf_nodes": ("int", 15, 127),
        "l2_regularization": ("float", 1e-6, 1.0, "log"),
    },
    "elastic-net": {"alpha": ("float", 1e-4, 1.0, "log"), "l1_ratio": ("float", 0.05, 1.0)},
    "svm": {"C": ("float", 0.1, 10.0, "log"), "epsilon": ("float", 0.01, 0.5, "log")},
    "csg2a": {"train.lr": ("float", 1e-5, 1e-3, "log"), "train.weight_decay": ("float", 1e-7, 1e-3, "log")},
}
for _deep in DEEP_BASELINES:
    SEARCH_SPACES[_deep] = {
        "train.lr": ("float", 1e-5, 1e-2, "log"),
        "train.weight_decay": ("float", 1e-7, 1e-3, "log"),
    }


def _set(opts: Dict, key: str, value: Any) -> None:
    head, _, rest = key.partition(".")
    if rest:
        sub = opts.setdefault(head, {})
        sub[rest] = value
    else:
        opts[key] = value


def tune(runner, runner_name: str, dataset, split, options: Dict, n_trials: int, seed: int, run_dir: str):
    """``(best options, {"trials", "val_rmse", "values"})``: ``n_trials`` TPE trials of ``runner`` trained on
    ``split["train"]`` and scored on ``split["val"]``; a runner without a search space is returned untuned.
    """
    space = SEARCH_SPACES.get(runner_name)
    if not space or n_trials < 1:
        return options, {"trials": 0, "val_rmse": None, "values": {}}
    import optuna

    from csg2a_graph.data.splits import Split
    from csg2a_graph.train.metrics import rmse

    if split["val"].numel() == 0:
        raise ValueError("tuning needs validation pairs; this split has none")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    val = split["val"]
    trial_split = Split({"train": split["train"], "val": val, "test": val})  # the test pairs never enter a trial
    y = dataset.pairs["y"][val]

    def objective(trial):
        opts = copy.deepcopy(options)
        for key, spec in space.items():
            kind, lo, hi = spec[:3]
            log = len(spec) > 3 and spec[3] == "log"
            v = trial.suggest_int(key, lo, hi, log=log) if kind == "int" else trial.suggest_float(key, lo, hi, log=log)
            _set(opts, key, v)
        d = os.path.join(run_dir, "tune", f"trial{trial.number}")
        done = _read_trial(d, trial.params)
        if done is not None:
            return done
        os.makedirs(d, exist_ok=True)
        pred = runner(dataset, trial_split, opts, d, seed).reshape(-1).cpu()
        value = rmse(y, pred) if torch.isfinite(pred).all() else float("inf")
        _write_trial(d, trial.params, value)
        return value

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials)
    best = copy.deepcopy(options)
    for key, v in study.best_params.items():
        _set(best, key, v)
    info = {"trials": len(study.trials), "val_rmse": float(study.best_value), "values": dict(study.best_params)}
    with open(os.path.join(run_dir, "tune", "best.json"), "w") as f:
        json.dump(info, f, indent=1)
    return best, info


def _read_trial(trial_dir: str, params: Dict[str, Any]):
    """The kept score of a finished trial with exactly these options, else ``None`` (train it)."""
    path = os.path.join(trial_dir, "trial.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            kept = json.load(f)
    except (OSError, ValueError):
        return None  # a half-written file: train the trial again
    if kept.get("params") != params:
        return None  # the search space or the sampler changed since: the kept score is for other options
    return float(kept["value"])


def _write_trial(trial_dir: str, params: Dict[str, Any], value: float) -> None:
    tmp = os.path.join(trial_dir, "trial.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"params": params, "value": value}, f)
    os.replace(tmp, os.path.join(trial_dir, "trial.json"))


__all__ = ["SEARCH_SPACES", "tune"]
