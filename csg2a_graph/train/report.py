"""One self-contained ``report.html`` from a ``csg2a cv`` folder (issue 26.7): the run (command, options, revision),
the results table (mean ± sd over folds and seeds, with each row's budget), paired tests, randomisation deltas,
critical-difference diagrams, true-vs-predicted scatter per model, the spread of RMSE over folds and seeds, and
learning curves. Figures are embedded as PNG data URIs, so the file stands alone.
"""

from __future__ import annotations

import base64
import glob
import html
import io
import json
import os
from typing import List


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _table(header: List[str], rows: List[List[str]], cls: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _md_table(lines: List[str], cls: str) -> str:
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines if ln.startswith("|")]
    rows = [r for r in rows if not all(set(c) <= set("-") for c in r)]
    return _table(rows[0], rows[1:], cls) if rows else ""


def write_report(run_dir: str, out: str = "") -> str:
    """Write ``report.html`` for the cv run in ``run_dir`` (or ``out``) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from csg2a_graph.train.cv import _labelled, randomization_table, statistics_lines, write_summary

    results = os.path.join(run_dir, "results.csv")
    if not os.path.exists(results):
        raise FileNotFoundError(f"{run_dir} holds no results.csv: run `csg2a cv --out {run_dir}` first")
    df = pd.read_csv(results)
    if df.empty:
        raise ValueError(f"{results} has no rows yet")
    run = {}
    if os.path.exists(os.path.join(run_dir, "run.json")):
        with open(os.path.join(run_dir, "run.json")) as f:
            run = json.load(f)
    parts = [f"<h1>csg2a-graph cross-validation report</h1><p>{html.escape(os.path.abspath(run_dir))}</p>"]
    opts = run.get("options", {})
    meta = [
        ["command", f"csg2a {run.get('command', 'cv')}"],
        ["state", run.get("state", "?")],
        ["version", run.get("version", "?")],
        ["revision", ", ".join(sorted(set(map(str, df["git_revision"]))))],
        ["created", run.get("created", "?")],
        ["updated", run.get("updated", "?")],
    ]
    meta += [[k, json.dumps(v) if not isinstance(v, str) else v] for k, v in sorted(opts.items())]
    parts.append("<h2>Run</h2>" + _table(["what", "value"], meta, "run"))
    # the results table (summary.md's, as HTML)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # the table as summary.md has it, without touching the run's files
        summary = write_summary(df, os.path.join(tmp, "summary.md")).splitlines()
    first = [ln for ln in summary[: next((i for i, ln in enumerate(summary) if not ln.startswith("|")), len(summary))]]
    parts.append("<h2>Results (mean ± sd over folds and seeds)</h2>" + _md_table(first, "results"))
    stats = statistics_lines(df, run_dir)
    blocks, cur = [], []
    for ln in stats:
        if ln.startswith("|"):
            cur.append(ln)
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    if blocks:
        parts.append("<h2>Paired tests</h2>" + "".join(_md_table(b, "paired") for b in blocks))
    rand = randomization_table(df)
    if rand:
        hdr = "| model | scheme | randomisation | pairs | Δ RMSE | p | Δ normalised PCC | p |"
        parts.append("<h2>Randomisation tests (randomised − unperturbed)</h2>" + _md_table([hdr, *rand], "random"))
    for png in sorted(glob.glob(os.path.join(run_dir, "cd_*.png"))):
        with open(png, "rb") as f:
            uri = "data:image/png;base64," + base64.b64encode(f.read()).decode()
        parts.append(f"<h2>Critical differences: {html.escape(os.path.basename(png)[3:-4])}</h2><img src='{uri}'>")
    # spread of RMSE over folds and seeds
    lab = _labelled(df)
    for scheme in lab.scheme.unique():
        d = lab[lab.scheme == scheme]
        models = list(d.model.unique())
        fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(models)), 3))
        data = [d[d.model == m]["rmse"].dropna().to_numpy() for m in models]
        if all(len(x) > 1 for x in data):
            ax.violinplot(data, showmedians=True)
        for i, x in enumerate(data, 1):
            ax.scatter([i] * len(x), x, s=12, color="black", zorder=3)
        ax.set_xticks(range(1, len(models) + 1), models, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("test RMSE")
        ax.set_title(f"{scheme}: RMSE over folds and seeds", fontsize=9)
        parts.append(f"<h2>Spread: {html.escape(scheme)}</h2><img src='{_png(fig)}'>")
    # true vs predicted, first fold of each unperturbed model
    base = df[df["randomization"].fillna("none") == "none"] if "randomization" in df.columns else df
    for scheme in base.scheme.unique():
        models = list(base[base.scheme == scheme].model.unique())
        fig, axes = plt.subplots(1, len(models), figsize=(3 * len(models), 3), squeeze=False)
        for ax, m in zip(axes[0], models):
            fold = int(base[(base.scheme == scheme) & (base.model == m)].fold.min())
            path = os.path.join(run_dir, "predictions", f"{m}_{scheme}_fold{fold}.csv")
            if os.path.exists(path):
                p = pd.read_csv(path)
                ax.scatter(p.y_true, p.y_pred, s=3, alpha=0.4)
                lo, hi = float(p.y_true.min()), float(p.y_true.max())
                ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
            ax.set_title(f"{m} (fold {fold})", fontsize=8)
            ax.set_xlabel("true", fontsize=8)
        axes[0][0].set_ylabel("predicted", fontsize=8)
        parts.append(f"<h2>True vs predicted: {html.escape(scheme)}</h2><img src='{_png(fig)}'>")
    # learning curves
    curves = sorted(glob.glob(os.path.join(run_dir, "runs", "*", "metrics.csv")))
    if curves:
        fig, ax = plt.subplots(figsize=(6, 3))
        for c in curves[:20]:
            m = pd.read_csv(c)
            if "val_mse" in m:
                ax.plot(m["epoch"], m["val_mse"], marker="o", ms=2, lw=1, label=os.path.basename(os.path.dirname(c)))
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation MSE")
        ax.legend(fontsize=6)
        parts.append(f"<h2>Learning curves</h2><img src='{_png(fig)}'>")
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px}th{background:#eee}img{max-width:100%}"
    )
    doc = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>csg2a-graph report</title><style>{style}</style>"
        f"</head><body>{''.join(parts)}</body></html>"
    )
    path = out or os.path.join(run_dir, "report.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(doc)
    return path


__all__ = ["write_report"]
