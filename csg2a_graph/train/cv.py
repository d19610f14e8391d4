"""Cross-validation: dataset x schemes x folds x models -> one results CSV on identical folds.

Every model of a run sees the same folds from ``dataset.get_idx_split`` (saved under
``out_dir/splits``). Each (model, scheme, fold) appends one row to ``results.csv`` as soon as it
finishes, with its test predictions in ``predictions/``, so a stopped run resumes where it stopped
(finished rows are skipped). ``summary.md`` holds the mean ± sd table.

Model runners are registered by name (``csg2a_graph.registry.register_runner()``; where each lives:
``csg2a_graph.registry``); a runner gets the dataset, the
fold's split, its options and a run folder, and returns test predictions. A *label* may name a
variant: ``model_options={"csg2a-unfrozen": {"runner": "csg2a", "freeze": False}}``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from csg2a_graph.registry import RUNNERS, load_builtin, register_runner
from csg2a_graph.train.metrics import normalized_metrics, regression_metrics
from csg2a_graph.train.tables import append_row
from csg2a_graph.train.tune import tune as tune_model
from csg2a_graph.typing import PairDatasetLike

logger = logging.getLogger(__name__)

RESULT_COLUMNS = [
    "model",
    "scheme",
    "fold",
    "seed",
    "randomization",
    "rmse",
    "pcc",
    "scc",
    "r2",
    "pcc_per_drug",
    "pcc_per_cell",
    "pcc_norm",
    "scc_norm",
    "r2_norm",
    "n_train",
    "n_val",
    "n_test",
    "epochs",
    "best_epoch",
    "pairs_seen",
    "trials",
    "tuned",
    "seconds",
    "git_revision",
]
#: the columns of results.csv files written before the normalised metrics (migrated when a run continues)
_OLD_COLUMNS = [
    c
    for c in RESULT_COLUMNS
    if not c.endswith("_norm")
    and c not in ("seed", "randomization", "epochs", "best_epoch", "pairs_seen", "trials", "tuned")
]
METRICS = ["rmse", "pcc", "scc", "r2", "pcc_per_drug", "pcc_norm", "scc_norm", "r2_norm"]


def load_builtin_runners() -> Dict[str, Callable]:
    """The registered runners (``csg2a_graph.registry.RUNNERS``) once the package's are loaded."""
    load_builtin()
    return RUNNERS


def git_revision() -> str:
    """What code made a result: ``"<version>"``, plus ``"+g<short sha>"`` (and ``".dirty"`` with local
    edits) only when the package runs from a git checkout of csg2a-graph itself. An installed wheel
    inside a user's git project records the version alone, never the user's commit.
    """
    from csg2a_graph import __version__

    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../csg2a_graph
    top = os.path.dirname(pkg)
    pyproject = os.path.join(top, "pyproject.toml")
    try:
        with open(pyproject) as f:
            ours = 'name = "csg2a-graph"' in f.read()
    except OSError:
        ours = False
    if not ours or not os.path.exists(os.path.join(top, ".git")):
        return __version__
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=top, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "csg2a_graph"],
            cwd=top,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except Exception:  # noqa: BLE001 - no git on the PATH
        return __version__
    return f"{__version__}+g{sha}{'.dirty' if dirty else ''}" if sha else __version__


def subsample_split(split: Dict[str, Tensor], keep: Optional[Tensor]) -> Dict[str, Tensor]:
    """Restrict each part of ``split`` to the pairs of the boolean mask ``keep``."""
    if keep is None:
        return split
    from csg2a_graph.data.splits import Split

    out = {k: v[keep[v]] if isinstance(v, Tensor) and v.dtype == torch.long else v for k, v in split.items()}
    dropped = split["dropped"] if "dropped" in split or isinstance(split, Split) else None
    return Split(out, None if dropped is None else dropped[keep[dropped]])


def cross_validate(
    dataset: PairDatasetLike,
    models: Sequence[str],
    schemes: Sequence[str] = ("mixed",),
    folds: Union[int, Sequence[int]] = 10,
    n_folds: int = 10,
    out_dir: str = "cv",
    model_options: Optional[Dict[str, Dict]] = None,
    seed: int = 0,
    subsample: Optional[int] = None,
    seeds: int = 1,
    randomize: Sequence[str] = (),
    tune: int = 0,
    randomize_models: Optional[Sequence[str]] = None,
    jobs: int = 1,
    executor: Optional[str] = None,
    ray_address: Optional[str] = None,
    threads: Optional[int] = None,
    gpus_per_run: float = 0,
):
    """Run every model on every (scheme, fold) and write ``results.csv``, ``summary.md``, predictions and splits.

    Args:
        dataset: a pair dataset with scalar responses (GDSC, NCI-60).
        models: labels of registered runners (``csg2a``, ``rf``...) or of variants in ``model_options``.
        schemes: split schemes (``mixed``, ``cell_blind``, ``drug_blind``, ``disjoint``).
        folds: how many folds to run (the first ``folds``) or which fold ids.
        n_folds: folds of the scheme (10: 80/10/10).
        model_options: per label, the runner's options (``"runner"`` names the runner of a variant).
        subsample: keep a random ``subsample`` pairs (seeded) before splitting: a smaller, stated run.
        seeds: train every model ``seeds`` times per fold, with seeds ``seed``, ``seed + 1``... (the folds stay
            those of ``seed``); the summary gives mean ± sd over folds and seeds.
        randomize: randomisation tests (``csg2a_graph.train.randomize.RANDOMIZATIONS``): each model is also
            run on a view of the data with one input replaced, on the same folds; rows say which
            (``randomization``) and the summary pairs each with the unperturbed run.
        randomize_models: the models the randomisations run for (default: all of ``models``); e.g. only ``csg2a``,
            since rewiring the prior cannot change a model that never reads it.
        tune: Optuna trials per model and fold on the validation split (``csg2a_graph.train.tune``; models
            without a declared search space run untuned); the chosen values are the row's ``tuned``.
        jobs: how many runs at once (issue 28.4). Tuning runs first (one task per model and fold), then every
            (model, fold, seed, randomisation) is its own task; the results equal those of ``jobs=1`` (a test
            compares them) and rows are appended as tasks finish.
        executor: ``"serial"``, ``"process"`` (worker processes on this machine; the default when ``jobs > 1``),
            ``"ray"`` (``csg2a_graph.train.executors``) or ``"stacked"``: the CSG²A fine-tunings of one frozen
            pretrained network trained stepped together in this process, up to ``jobs`` per stack (``jobs=1``: all;
            ``csg2a_graph.train.stacked``; equal to one by one within float tolerance), the other models one by one.
        ray_address: an existing Ray cluster (default: a local one for the run).
        threads: CPU threads per run (default: this machine's cores shared among ``jobs``; the serial path keeps
            the process's setting).
        gpus_per_run: GPUs a Ray task asks for (1 on a GPU cluster).

    Returns:
        a ``pandas.DataFrame`` of all rows in ``results.csv``.
    """
    import pandas as pd

    from csg2a_graph.train.executors import EXECUTORS, run_tasks

    load_builtin_runners()
    model_options = model_options or {}
    for m in models:
        runner = model_options.get(m, {}).get("runner", m)
        if runner not in RUNNERS:
            raise ValueError(f"unknown model {m!r}; registered runners: {sorted(RUNNERS)}")
    fold_ids = list(range(folds)) if isinstance(folds, int) else [int(f) for f in folds]
    if any(f < 0 or f >= n_folds for f in fold_ids):
        raise ValueError(f"fold ids must lie in [0, {n_folds}), got {fold_ids}")
    executor = executor or ("serial" if jobs == 1 else "process")
    if executor not in (*EXECUTORS, "stacked"):
        raise ValueError(f"executor must be one of {(*EXECUTORS, 'stacked')}, got {executor!r}")
    os.makedirs(os.path.join(out_dir, "splits"), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "predictions"), exist_ok=True)
    keep = None
    if subsample is not None and subsample < dataset.num_pairs:
        g = torch.Generator().manual_seed(seed)
        keep = torch.zeros(dataset.num_pairs, dtype=torch.bool)
        keep[torch.randperm(dataset.num_pairs, generator=g)[:subsample]] = True
    results_path = os.path.join(out_dir, "results.csv")
    _migrate(results_path, out_dir, dataset, seed)
    done = set()
    if os.path.exists(results_path):
        prev = pd.read_csv(results_path)
        done = {(r.model, r.scheme, int(r.fold), int(r.seed), str(r.randomization)) for r in prev.itertuples()}
    from csg2a_graph.train.randomize import RANDOMIZATIONS, prior_randomized_like, untrained_like

    bad = [r for r in randomize if r not in RANDOMIZATIONS]
    if bad:
        raise ValueError(f"unknown randomisations {bad}; choose from {list(RANDOMIZATIONS)}")
    if randomize_models is not None:
        stray = [m for m in randomize_models if m not in models]
        if stray:
            raise ValueError(f"randomize_models {stray} are not among the run's models {list(models)}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1, got {seeds!r}")
    rev = git_revision()
    pairs = dataset.pairs
    run_kw: Dict[str, Any] = dict(
        jobs=jobs,
        executor="serial" if executor == "stacked" else executor,
        threads=threads,
        address=ray_address,
        gpus_per_task=gpus_per_run,
    )

    # 1. the folds, saved (or checked against the saved ones), and which rows remain
    splits: Dict[tuple, Dict] = {}
    rows: List[Dict] = []  # the remaining rows, in the serial order scheme > fold > randomisation > seed > model
    for scheme in schemes:
        for fold in fold_ids:
            split_path = os.path.join(out_dir, "splits", f"{scheme}_fold{fold}.pt")
            split = subsample_split(dataset.get_idx_split(scheme, fold=fold, n_folds=n_folds, seed=seed), keep)
            if os.path.exists(split_path):
                saved = torch.load(split_path, weights_only=True)
                if not all(torch.equal(saved[k], split[k]) for k in ("train", "val", "test")):
                    raise ValueError(f"{split_path} differs from this run's split: use another --out")
            else:
                torch.save({k: split[k] for k in ("train", "val", "test")}, split_path)
            splits[(scheme, fold)] = split
            for rand in ["none", *randomize]:
                for k in range(seeds):
                    run_seed = seed + k
                    for label in models:
                        if rand != "none" and randomize_models is not None and label not in randomize_models:
                            continue
                        if (label, scheme, fold, run_seed, rand) in done:
                            logger.info(
                                "%s %s fold %d seed %d %s: done earlier, skipped", label, scheme, fold, run_seed, rand
                            )
                            continue
                        opts = dict(model_options.get(label, {}))
                        runner_name = opts.pop("runner", label)
                        if rand == "pretrain-untrained":
                            if not opts.get("pretrained"):
                                logger.info("%s: no pretrained network, no pretrain-untrained row", label)
                                continue
                            opts["pretrained"] = untrained_like(
                                opts["pretrained"], os.path.join(out_dir, "untrained", f"{label}.pt"), seed
                            )
                        elif rand in ("prior-rewire", "prior-remove") and opts.get("pretrained"):
                            # the network's own prior, not only the dataset's (which a pretrained network ignores)
                            opts["pretrained"] = prior_randomized_like(
                                opts["pretrained"],
                                os.path.join(out_dir, "randomized", f"{label}_{rand}_fold{fold}.pt"),
                                rand,
                                seed + 1000 * fold + 7,
                            )
                        tag = (
                            f"{label}_{scheme}_fold{fold}"
                            + (f"_seed{run_seed}" if run_seed != seed else "")
                            + (f"_{rand}" if rand != "none" else "")
                        )
                        rows.append(
                            {
                                "label": label,
                                "runner": runner_name,
                                "scheme": scheme,
                                "fold": fold,
                                "seed": run_seed,
                                "rand": rand,
                                "opts": opts,
                                "tag": tag,
                            }
                        )

    # serial: fold by fold (tune, then that fold's runs), so a long run has whole folds early; parallel: all at once
    fold_keys = list(splits)
    groups = [[k] for k in fold_keys] if executor == "serial" else [fold_keys]
    naive: Dict[tuple, Tensor] = {}  # the NaiveMeanEffects (additive) predictions per fold: the normalised base
    for group in groups:
        g_rows = [r for r in rows if (r["scheme"], r["fold"]) in group]
        # 2. tuning: once per (model, scheme, fold) on the unperturbed data's validation pairs, kept in tuned.json
        tuned: Dict[tuple, tuple] = {}
        to_tune = []
        if tune:
            for key in dict.fromkeys((r["label"], r["scheme"], r["fold"]) for r in g_rows):
                label, scheme, fold = key
                tdir = os.path.join(out_dir, "runs", f"{label}_{scheme}_fold{fold}")
                saved_tuning = _read_tuned(tdir)
                if saved_tuning is not None:
                    tuned[key] = saved_tuning
                    continue
                opts = dict(model_options.get(label, {}))
                runner_name = opts.pop("runner", label)
                os.makedirs(tdir, exist_ok=True)
                to_tune.append(
                    (key, (RUNNERS[runner_name], runner_name, splits[(scheme, fold)], opts, tune, seed, tdir))
                )
        for i, result in run_tasks(_tune_task, dataset, [t for _, t in to_tune], **run_kw):
            key = to_tune[i][0]
            tuned[key] = result
            _write_tuned(to_tune[i][1][-1], *result)
            logger.info("%s %s fold %d tuned: %s", *key, result[1]["values"])

        # 3. the runs, each its own task; the driver alone writes results.csv
        tasks = []
        for r in g_rows:
            opts, info = r["opts"], {"trials": 0, "values": {}}
            key = (r["label"], r["scheme"], r["fold"])
            if key in tuned:
                tuned_opts, info = tuned[key]
                opts = {**tuned_opts, **({"pretrained": opts["pretrained"]} if "pretrained" in opts else {})}
            r["info"] = info
            run_dir = os.path.join(out_dir, "runs", r["tag"])
            os.makedirs(run_dir, exist_ok=True)
            split = splits[(r["scheme"], r["fold"])]
            logger.info(
                "%s on %s fold %d (seed %d, %s): %d train / %d val / %d test pairs",
                r["label"],
                r["scheme"],
                r["fold"],
                r["seed"],
                r["rand"],
                split["train"].numel(),
                split["val"].numel(),
                split["test"].numel(),
            )
            tasks.append(
                (RUNNERS[r["runner"]], split, opts, run_dir, r["seed"], r["rand"], seed + 1000 * r["fold"] + 7)
            )
        finished = (
            _stacked_fits(dataset, tasks, jobs)
            if executor == "stacked"
            else run_tasks(_fit_task, dataset, tasks, **run_kw)
        )
        for i, out in finished:
            r = g_rows[i]
            split = splits[(r["scheme"], r["fold"])]
            test = split["test"]
            y = pairs["y"][test]
            pred = torch.tensor(out["pred"])
            met = regression_metrics(y, pred, drug=pairs["drug"][test].numpy(), cell=pairs["cell"][test].numpy())
            if (r["scheme"], r["fold"]) not in naive:
                naive[(r["scheme"], r["fold"])] = RUNNERS["additive"](dataset, split, {}, "", seed).reshape(-1).cpu()
            met.update(normalized_metrics(y, pred, naive[(r["scheme"], r["fold"])]))
            row = {
                "model": r["label"],
                "scheme": r["scheme"],
                "fold": r["fold"],
                "seed": r["seed"],
                "randomization": r["rand"],
                **met,
                "n_train": split["train"].numel(),
                "n_val": split["val"].numel(),
                "n_test": test.numel(),
                **out["budget"],
                "trials": r["info"]["trials"],
                "tuned": json.dumps(r["info"]["values"], sort_keys=True) if r["info"]["values"] else None,
                "seconds": round(out["seconds"], 2),
                "git_revision": rev,
            }
            _write_predictions(os.path.join(out_dir, "predictions", f"{r['tag']}.csv"), dataset, test, y, pred)
            _append(results_path, row)
            what = "" if (r["seed"] == seed and r["rand"] == "none") else f" (seed {r['seed']}, {r['rand']})"
            print(
                f"{r['label']:>16} {r['scheme']:>10} fold {r['fold']}{what}: RMSE {met['rmse']:.3f}  PCC "
                f"{met['pcc']:.3f}  per-drug PCC {met['pcc_per_drug']:.3f}  normalised PCC "
                f"{met['pcc_norm']:.3f}  ({out['seconds']:.0f} s)",
                flush=True,
            )
    df = pd.read_csv(results_path)
    write_summary(df, os.path.join(out_dir, "summary.md"))
    return df


def _fit_task(
    dataset, runner: Callable, split, opts: Dict, run_dir: str, run_seed: int, rand: str, rand_seed: int
) -> Dict:
    """One row's training (run by any executor): the test predictions, seconds and budget."""
    from csg2a_graph.train.randomize import randomized

    data = _randomized_cached(dataset, rand, rand_seed, randomized)
    t0 = time.perf_counter()
    pred = runner(data, split, opts, run_dir, run_seed).reshape(-1).detach().cpu()
    secs = time.perf_counter() - t0
    return {"pred": pred.numpy(), "seconds": secs, "budget": budget(run_dir, split["train"].numel(), opts)}


def _stackable(task: tuple) -> bool:
    """Whether a fit task is a CSG²A fine-tuning of a frozen pretrained network (what ``StackedTrainer`` runs)."""
    from csg2a_graph.train.runners import run_csg2a

    runner, _, opts = task[0], task[1], task[2]
    return runner is run_csg2a and bool(opts.get("pretrained")) and opts.get("freeze", True) is not False


def _stacked_fits(dataset, tasks: Sequence[tuple], max_stack: int):
    """``executor="stacked"`` (issue 28.4): the CSG²A fine-tunings that share a frozen network, data view and options
    (they differ in fold, scheme and seed) are trained stepped together (``csg2a_graph.train.stacked``), at most
    ``max_stack`` per stack when ``max_stack > 1`` (else every such run at once); every other task runs as
    ``_fit_task``. Yields ``(index, out)`` as ``run_tasks`` does. A stack's wall time is shared equally among its
    rows (``seconds``).
    """
    from csg2a_graph.train.loop import TrainConfig
    from csg2a_graph.train.pipeline import finetune_model
    from csg2a_graph.train.randomize import randomized
    from csg2a_graph.train.stacked import StackedTrainer

    groups: Dict[str, List[int]] = {}
    for i, t in enumerate(tasks):
        if not _stackable(t):
            yield i, _fit_task(dataset, *t)
            continue
        opts, rand, rand_seed = t[2], t[5], t[6]
        key = json.dumps([opts, rand, rand_seed if rand != "none" else None], sort_keys=True, default=str)
        groups.setdefault(key, []).append(i)
    for members in groups.values():
        size = max_stack if max_stack > 1 else len(members)
        for start in range(0, len(members), size):
            chunk = members[start : start + size]
            first = tasks[chunk[0]]
            opts = dict(first[2])
            data = _randomized_cached(dataset, first[5], first[6], randomized)
            train = dict(opts.pop("train", {}))
            pretrained = opts.pop("pretrained")
            seeds = [int(tasks[i][4]) for i in chunk]
            cfg = TrainConfig.from_dict({**train, "seed": seeds[0]})
            t0 = time.perf_counter()
            models = [finetune_model(data, pretrained, opts, s) for s in seeds]
            trainer = StackedTrainer(models, cfg, seeds=seeds, out_dirs=[tasks[i][3] for i in chunk])
            trainer.fit(data, [tasks[i][1] for i in chunk])
            preds = trainer.predict(data, [tasks[i][1]["test"] for i in chunk])
            secs = (time.perf_counter() - t0) / len(chunk)
            logger.info("%d CSG2A runs stepped together in %.0f s", len(chunk), secs * len(chunk))
            for i, pred in zip(chunk, preds):
                t = tasks[i]
                yield (
                    i,
                    {
                        "pred": pred.reshape(-1).numpy(),
                        "seconds": secs,
                        "budget": budget(t[3], t[1]["train"].numel(), t[2]),
                    },
                )


_RANDOMIZED: Dict[tuple, object] = {}


def _randomized_cached(dataset, rand: str, rand_seed: int, make):
    """The randomised view of a worker's dataset, made once per (mode, seed) and kept until another is asked."""
    if rand == "none":
        return dataset
    key = (id(dataset), rand, rand_seed)
    if key not in _RANDOMIZED:
        _RANDOMIZED.clear()
        _RANDOMIZED[key] = make(dataset, rand, seed=rand_seed)
    return _RANDOMIZED[key]


def _tune_task(
    dataset, runner: Callable, runner_name: str, split, opts: Dict, n_trials: int, seed: int, run_dir: str
) -> tuple:
    return tune_model(runner, runner_name, dataset, split, opts, n_trials, seed, run_dir)


def _read_tuned(run_dir: str) -> Optional[tuple]:
    path = os.path.join(run_dir, "tune", "tuned.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        d = json.load(f)
    return d["options"], d["info"]


def _write_tuned(run_dir: str, options: Dict, info: Dict) -> None:
    """The tuned options of a (model, fold), so a continued run does not tune again."""
    from csg2a_graph.io.files import atomic_write_text

    os.makedirs(os.path.join(run_dir, "tune"), exist_ok=True)
    atomic_write_text(
        os.path.join(run_dir, "tune", "tuned.json"),
        json.dumps({"options": options, "info": info}, indent=1, sort_keys=True, default=str),
    )


def _append(path: str, row: Dict, columns: Sequence[str] = RESULT_COLUMNS) -> None:
    """Append one row to a results CSV (``csg2a_graph.train.tables.append_row()``)."""
    append_row(path, row, columns)


def _write_predictions(path: str, dataset, index: Tensor, y: Tensor, pred: Tensor) -> None:
    import pandas as pd

    p = dataset.pairs
    cells = [dataset.cells[i] for i in p["cell"][index].tolist()]
    drugs = [dataset.drugs[i] for i in p["drug"][index].tolist()]
    names = dataset.drug_meta.get("name") if hasattr(dataset, "drug_meta") else None
    df = pd.DataFrame(
        {"pair": index.numpy(), "cell": cells, "drug": drugs, "y_true": y.numpy(), "y_pred": pred.numpy()}
    )
    if names:
        df.insert(3, "drug_name", [names[i] for i in p["drug"][index].tolist()])
    df.to_csv(path, index=False)


def budget(run_dir: str, n_train: int, options: Dict) -> Dict:
    """What a row's training spent (issue 26.8: a capped run cannot pass for a converged one): epochs run and the
    best (lowest validation MSE) epoch from the run's ``metrics.csv``, and the training pairs seen (epochs x the
    pairs an epoch visits under ``max_batches``); a model fitted once (means, forests) saw its training pairs once
    and has no epochs.
    """
    import pandas as pd

    path = os.path.join(run_dir, "metrics.csv")
    if not os.path.exists(path):
        return {"epochs": None, "best_epoch": None, "pairs_seen": n_train}
    m = pd.read_csv(path)
    train = options.get("train", {}) if isinstance(options.get("train"), dict) else {}
    per_epoch = n_train
    if train.get("max_batches"):
        per_epoch = min(n_train, int(train["max_batches"]) * int(train.get("batch_size", 128)))
    best = int(m.loc[m["val_mse"].idxmin(), "epoch"]) if "val_mse" in m and m["val_mse"].notna().any() else None
    return {"epochs": len(m), "best_epoch": best, "pairs_seen": len(m) * per_epoch}


def _migrate(results_path: str, out_dir: str, dataset, seed: int) -> None:
    """A results.csv written before the normalised metrics gains them, computed from its own saved predictions and
    the additive predictions of the same saved split, so a continued run keeps one table.
    """
    if not os.path.exists(results_path) or not os.path.getsize(results_path):
        return
    import pandas as pd

    from csg2a_graph.train.tables import write_rows

    run_additive = load_builtin_runners()["additive"]

    df = pd.read_csv(results_path)
    if list(df.columns) != _OLD_COLUMNS:
        return
    rows = []
    for r in df.to_dict("records"):
        met = {"pcc_norm": float("nan"), "scc_norm": float("nan"), "r2_norm": float("nan")}
        pred_path = os.path.join(out_dir, "predictions", f"{r['model']}_{r['scheme']}_fold{int(r['fold'])}.csv")
        split_path = os.path.join(out_dir, "splits", f"{r['scheme']}_fold{int(r['fold'])}.pt")
        if os.path.exists(pred_path) and os.path.exists(split_path):
            pr = pd.read_csv(pred_path)
            split = torch.load(split_path, weights_only=True)
            base = run_additive(dataset, split, {}, out_dir, seed).reshape(-1).numpy()
            pos = {int(i): k for k, i in enumerate(split["test"].tolist())}
            b = base[[pos[int(i)] for i in pr["pair"]]]
            met = normalized_metrics(pr["y_true"].to_numpy(), pr["y_pred"].to_numpy(), b)
        rows.append({c: ({**r, **met, "seed": seed, "randomization": "none"}).get(c) for c in RESULT_COLUMNS})
    write_rows(results_path, rows)
    logger.info("%s: normalised metrics added to %d earlier rows", results_path, len(rows))


def _labelled(df):
    """Rows with the randomisation in the model's label (``csg2a [prior-rewire]``)."""
    df = df.copy()
    if "randomization" in df.columns:
        r = df["randomization"].fillna("none").astype(str)
        df["model"] = [m if x == "none" else f"{m} [{x}]" for m, x in zip(df["model"], r)]
    return df


def summarize(df):
    """Mean ± sd over folds (and seeds) per (model, scheme); randomised runs as their own labelled rows."""
    df = _labelled(df)
    cols = [c for c in METRICS if c in df.columns]
    g = df.groupby(["model", "scheme"], sort=False)
    out = g[cols].agg(["mean", "std"])
    out["folds"] = g.size()
    return out


def write_summary(df, path: str) -> str:
    s = summarize(df)
    cols = sorted({c for c, _ in s.columns if c != "folds"}, key=METRICS.index)
    spent = _budget_cells(df)
    lines = [
        "| model | scheme | runs | " + " | ".join(cols) + " | epochs (best) |",
        "|---|---|---|" + "---|" * (len(cols) + 1),
    ]
    for (model, scheme), r in s.iterrows():
        vals = [f"{r[(c, 'mean')]:.3f} ± {0 if np.isnan(r[(c, 'std')]) else r[(c, 'std')]:.3f}" for c in cols]
        lines.append(
            f"| {model} | {scheme} | {int(r['folds'].iloc[0]) if hasattr(r['folds'], 'iloc') else int(r['folds'])} | "
            + " | ".join(vals)
            + f" | {spent.get((model, scheme), '—')} |"
        )
    lines += [
        "",
        "runs: folds x seeds; epochs (best): mean epochs run and mean best-validation epoch (— for models "
        "fitted once); an epoch count at the cap with the best epoch at its end means the cap bound.",
    ]
    lines += statistics_lines(df, os.path.dirname(os.path.abspath(path)))
    paired = randomization_table(df)
    if paired:
        lines += [
            "",
            "Randomisation tests: randomised minus unperturbed, paired over (fold, seed); p of a paired "
            "t-test (NaN with one pair).",
            "",
            "| model | scheme | randomisation | pairs | Δ RMSE | p | Δ normalised PCC | p |",
            "|---|---|---|---|---|---|---|---|",
        ] + paired
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return text


def _budget_cells(df) -> Dict:
    """(model label, scheme) -> "epochs (best)" means, for summary.md."""
    if "epochs" not in df.columns:
        return {}
    d = _labelled(df)
    out = {}
    for key, g in d.groupby(["model", "scheme"], sort=False):
        e = pd_numeric(g["epochs"])
        if e.notna().any():
            b = pd_numeric(g["best_epoch"])
            out[key] = f"{e.mean():.1f} ({b.mean():.1f})"
    return out


def pd_numeric(col):
    import pandas as pd

    return pd.to_numeric(col, errors="coerce")


def statistics_lines(df, out_dir: str) -> List[str]:
    """summary.md's statistics: paired tests against the additive means and against CSG²A (Holm-corrected per
    scheme, RMSE and normalised PCC), and per scheme with >= 7 folds the Friedman test and a CD diagram PNG.
    """
    from csg2a_graph.train.stats import friedman_nemenyi, paired_tests, plot_cd

    out: List[str] = []
    for ref in ("additive", "csg2a"):
        if ref not in set(df.model):
            continue
        rows = paired_tests(df, ref, "rmse") + paired_tests(df, ref, "pcc_norm")
        rows = [r for r in rows if r["pairs"]]
        if not rows:
            continue
        out += [
            "",
            f"Paired against `{ref}` on the same (fold, seed): mean difference (model − {ref}), Wilcoxon "
            "signed-rank (6+ pairs) or paired t, Holm-corrected over the models of a scheme.",
            "",
            "| scheme | model | metric | pairs | mean diff | test | p | p (Holm) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {r['scheme']} | {r['model']} | {r['metric']} | {r['pairs']} | {r['mean_diff']:+.3f} | {r['test']} | "
            f"{r['p']:.2g} | {r['p_holm']:.2g} |"
            for r in rows
        ]
    for scheme in df.scheme.unique():
        res = friedman_nemenyi(df, scheme, "rmse")
        if res is None:
            continue
        png = plot_cd(res, os.path.join(out_dir, f"cd_{scheme}.png"))
        ranks = ", ".join(f"{m} {r:.2f}" for m, r in sorted(res["average_rank"].items(), key=lambda kv: kv[1]))
        out += [
            "",
            f"{scheme}: Friedman over {res['folds']} folds and {res['models']} models, p = "
            f"{res['friedman_p']:.2g}; average RMSE ranks {ranks}; Nemenyi CD = {res['cd']:.2f} "
            f"(`{os.path.basename(png)}`).",
        ]
    return out


def randomization_table(df) -> List[str]:
    """Markdown rows: each randomised (model, scheme, mode) against its unperturbed run on the same (fold, seed)."""
    if "randomization" not in df.columns:
        return []
    from scipy.stats import ttest_rel

    out = []
    base = df[df["randomization"].fillna("none") == "none"]
    for (model, scheme, mode), g in df[df["randomization"].fillna("none") != "none"].groupby(
        ["model", "scheme", "randomization"], sort=False
    ):
        m = g.merge(base[(base.model == model) & (base.scheme == scheme)], on=["fold", "seed"], suffixes=("", "_0"))
        if m.empty:
            continue
        cells = []
        for c in ("rmse", "pcc_norm"):
            d = (m[c] - m[f"{c}_0"]).dropna()
            p = float(ttest_rel(m[c], m[f"{c}_0"], nan_policy="omit").pvalue) if len(d) > 1 else float("nan")
            cells += [f"{d.mean():+.3f}" if len(d) else "—", f"{p:.2g}"]
        out.append(f"| {model} | {scheme} | {mode} | {len(m)} | " + " | ".join(cells) + " |")
    return out


__all__ = [
    "cross_validate",
    "register_runner",
    "load_builtin_runners",
    "RUNNERS",
    "summarize",
    "write_summary",
    "git_revision",
    "RESULT_COLUMNS",
]
