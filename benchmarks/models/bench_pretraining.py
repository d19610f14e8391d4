"""Does LINCS pretraining learn anything? Each CSG²A variant pretrained on all the real LINCS we have, scored on
held-out compounds against copying the basal profile.

    python benchmarks/models/bench_pretraining.py --out runs/pre [--folds 3] [--epochs 1500] [--variants released paper improved]
    python benchmarks/models/bench_pretraining.py --out runs/pre --report > benchmarks/results/pretraining.md

Data: the LJP005 A375 level-3 plate (322 treated wells) + the 100 TranSiGen basal/perturbed pairs (43 cell
lines), 422 pairs, 68 compounds, on the default robust-z scale (``LINCSL1000(root, level=3)``). Split:
``drug_blind`` with 5 folds: a compound's wells all sit on one side (80/10/10 by compound). Each variant
trains with its own pretraining settings (released/paper: Adam 1e-4, no weight decay, constant lr;
improved: weight decay 1e-5 and the cosine-then-hold schedule), batch 128, patience 20, ``--epochs`` cap.

Scores on the test compounds' pairs: MSE of the predicted perturbed profile; the same for two baselines,
copying the basal profile (``ĝ = g0``) and adding the mean training change (``ĝ = g0 + mean(y - g0)``);
per-profile Pearson correlation of the predicted change ``ĝ - g0`` with the true change ``y - g0``
(undefined for copy-basal, whose change is 0). Results are appended per fold and variant; re-running resumes.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench_accuracy import REPO, WEIGHTS, link  # the same data folder and weights as the accuracy benchmark

FILES = [
    "lincs/cmappy_test_l1000_LJP005_A375_24H.gct",
    "lincs/deepce_brd_smiles.csv",
    "lincs/dhimmel_lincs_pertinfo.tsv.gz",
    "string/STRING_edges.csv",
    "lincs/transigen_example_x1_basal.csv",
    "lincs/transigen_example_x2_perturbed.csv",
    "lincs/transigen_example_meta.csv",
]
#: extra labelled settings: (variant, TrainConfig overrides) — the optimisation budget our earlier benchmarks used
#: "-residual": ĝ = g0 + f(...), output layer at zero (``CSG2A(residual=True)``, issue 26.10): starts as copy-basal
SETTINGS = {
    "released-residual": ("released", {"lr": 1e-3, "batch_size": 32}, {"residual": True}),
    "improved-residual": ("improved", {"lr": 1e-3, "batch_size": 32}, {"residual": True}),
    "released-lr1e-3": ("released", {"lr": 1e-3, "batch_size": 32}),
    "improved-lr1e-3": ("improved", {"lr": 1e-3, "batch_size": 32}),
}
FIELDS = [
    "variant",
    "fold",
    "test_pairs",
    "test_compounds",
    "epochs_run",
    "best_epoch",
    "mse",
    "mse_copy_basal",
    "mse_mean_change",
    "pcc_change",
    "pcc_change_mean_change",
    "seconds",
    "git",
]


def row_pcc(a, b):

    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def git_rev() -> str:
    try:
        return subprocess.check_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], text=True).strip()
    except Exception:  # noqa: BLE001
        return "unknown"


def run(args) -> None:
    import torch

    from csg2a_graph.datasets import LINCSL1000
    from csg2a_graph.nn.models.csg2a import training_defaults
    from csg2a_graph.train import TrainConfig
    from csg2a_graph.train.pipeline import pretrain

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = LINCSL1000(link(out / "lincs", FILES), level=3, log=False)
    print(ds, flush=True)
    table = out / "results.csv"
    done = set()
    if table.exists():
        with open(table) as f:
            done = {(r["variant"], int(r["fold"])) for r in csv.DictReader(f)}
    y, basal = ds.pairs["y"], ds.expression[ds.pairs["cell"]]
    for fold in range(args.folds):
        split = ds.get_idx_split("drug_blind", fold=fold, n_folds=5, seed=0)
        tr, te = split["train"], split["test"]
        mean_change = (y[tr] - basal[tr]).mean(0)
        for label in args.variants:
            if (label, fold) in done:
                continue
            variant, extra, *net = SETTINGS.get(label, (label, {}))
            net_opts = net[0] if net else {}
            t0 = time.time()
            torch.manual_seed(fold)
            cfg = TrainConfig(
                **{
                    "epochs": args.epochs,
                    "patience": 20,
                    "batch_size": 128,
                    "lr": 1e-4,
                    "seed": fold,
                    "progress": False,
                    **training_defaults(variant, "pretrain"),
                    **extra,
                }
            )
            run_dir = out / f"{label}_fold{fold}"
            path = pretrain(
                ds,
                str(run_dir),
                {"variant": variant, "drug_encoder": "pretrained-gcn", "drug_weights": str(WEIGHTS), **net_opts},
                cfg,
                split=split,
                resume=(run_dir / "checkpoint.pt").exists(),
            )
            from csg2a_graph.checkpoint import load_checkpoint, load_model

            model = load_model(path).eval()
            st = load_checkpoint(path)
            from csg2a_graph.train import Trainer

            pred = Trainer(model, TrainConfig(progress=False)).predict(ds, te)
            g0, yt = basal[te], y[te]
            mse = lambda p: float(((p - yt) ** 2).mean())  # noqa: E731
            row = {
                "variant": label,
                "fold": fold,
                "test_pairs": int(te.numel()),
                "test_compounds": len(set(ds.pairs["drug"][te].tolist())),
                "epochs_run": sum(1 for _ in open(run_dir / "metrics.csv")) - 1,
                "best_epoch": st.get("best_epoch"),
                "mse": mse(pred),
                "mse_copy_basal": mse(g0),
                "mse_mean_change": mse(g0 + mean_change),
                "pcc_change": float(row_pcc(pred - g0, yt - g0).mean()),
                "pcc_change_mean_change": float(row_pcc(mean_change.expand_as(g0), yt - g0).mean()),
                "seconds": round(time.time() - t0, 1),
                "git": git_rev(),
            }
            new = not table.exists()
            with open(table, "a", newline="") as f:
                w = csv.DictWriter(f, FIELDS)
                if new:
                    w.writeheader()
                w.writerow(row)
            print(row, flush=True)


def report(args) -> None:
    import pandas as pd
    from scipy import stats

    df = pd.read_csv(Path(args.out) / "results.csv")
    print("# Does LINCS pretraining learn anything? (held-out compounds)\n")
    print(
        f"Command: `python benchmarks/models/bench_pretraining.py --out {args.out} --folds {df.fold.nunique()} "
        f"--epochs {args.epochs}`; machine: {platform.machine()} {os.cpu_count()}-core CPU, torch CPU; "
        f"date {time.strftime('%Y-%m-%d')}; git {', '.join(sorted(set(df.git.astype(str))))}.\n"
    )
    print(
        "Data: LJP005 A375 level-3 plate (322 wells) + 100 TranSiGen pairs (43 lines) = 422 pairs, 68 compounds, "
        "robust z against the 165 LINCS lines. Split: drug_blind, 5 folds (80/10/10 by compound), the first "
        f"{df.fold.nunique()}. Mean ± sd over folds.\n"
    )
    print(
        "| variant | folds | MSE | MSE copy-basal | MSE basal + mean change | PCC of change | PCC, mean change |"
        " best epoch |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for v, g in df.groupby("variant", sort=False):
        f = lambda c: f"{g[c].mean():.3f} ± {g[c].std(ddof=1) if len(g) > 1 else 0:.3f}"  # noqa: E731
        print(
            f"| {v} | {len(g)} | {f('mse')} | {f('mse_copy_basal')} | {f('mse_mean_change')} | {f('pcc_change')} "
            f"| {f('pcc_change_mean_change')} | {g.best_epoch.mean():.0f} |"
        )
    print(
        "\nPaired t-tests over folds (MSE of the network minus MSE of a baseline; negative = the network is better):\n"
    )
    print(
        "| variant | vs copy-basal: mean Δ | p | vs basal + mean change: mean Δ | p "
        "| PCC of change − mean change's: mean Δ | p |"
    )
    print("|---|---|---|---|---|---|---|")
    for v, g in df.groupby("variant", sort=False):
        d1, d2 = g.mse - g.mse_copy_basal, g.mse - g.mse_mean_change
        d3 = g.pcc_change - g.pcc_change_mean_change
        p1, p2, p3 = (
            stats.ttest_rel(a, b).pvalue if len(g) > 1 else float("nan")
            for a, b in (
                (g.mse, g.mse_copy_basal),
                (g.mse, g.mse_mean_change),
                (g.pcc_change, g.pcc_change_mean_change),
            )
        )
        print(f"| {v} | {d1.mean():+.3f} | {p1:.3g} | {d2.mean():+.3f} | {p2:.3g} | {d3.mean():+.3f} | {p3:.3g} |")


def cli(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=1500)
    p.add_argument(
        "--variants",
        nargs="+",
        default=["released", "paper", "improved"],
        help=f"variants, or labelled settings {sorted(SETTINGS)}",
    )
    p.add_argument("--report", action="store_true")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    report(args) if args.report else run(args)


if __name__ == "__main__":
    cli()
