"""Statistics over cross-validation rows (issue 26.6): paired tests of every model against a reference on the same
(fold, seed), Holm-corrected per scheme, and the Friedman test with a Nemenyi critical-difference diagram when a
scheme has at least 7 folds (Demšar 2006).

Lower-is-better metrics (``rmse``) are negated for ranking, so rank 1 is always the best model.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

import numpy as np

LOWER_IS_BETTER = {"rmse"}


def holm(pvalues: List[float]) -> List[float]:
    """Holm–Bonferroni adjusted p-values (NaN kept as NaN, not counted)."""
    idx = [i for i, p in enumerate(pvalues) if p == p]
    order = sorted(idx, key=lambda i: pvalues[i])
    m = len(order)
    out = [float("nan")] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def _pairs(df, model: str, reference: str, scheme: str, metric: str):
    base = df[(df.model == reference) & (df.scheme == scheme)][["fold", "seed", metric]]
    mine = df[(df.model == model) & (df.scheme == scheme)][["fold", "seed", metric]]
    m = mine.merge(base, on=["fold", "seed"], suffixes=("", "_ref")).dropna(subset=[metric, f"{metric}_ref"])
    return m[metric].to_numpy(float), m[f"{metric}_ref"].to_numpy(float)


def paired_tests(df, reference: str, metric: str = "rmse") -> List[Dict]:
    """Every model against ``reference`` per scheme, on the unperturbed rows paired over (fold, seed): mean
    difference, the Wilcoxon signed-rank test with 6 or more pairs (a paired t-test below that), and Holm's
    correction over the models of a scheme.
    """
    from scipy.stats import ttest_rel, wilcoxon

    if "randomization" in df.columns:
        df = df[df["randomization"].fillna("none") == "none"]
    if "seed" not in df.columns:
        df = df.assign(seed=0)
    rows: List[Dict] = []
    for scheme in df.scheme.unique():
        part = []
        for model in df[df.scheme == scheme].model.unique():
            if model == reference:
                continue
            a, b = _pairs(df, model, reference, scheme, metric)
            if not len(a):
                continue
            d = a - b
            if len(d) >= 6 and np.any(d != 0):
                p, test = float(wilcoxon(a, b).pvalue), "wilcoxon"
            elif len(d) >= 2 and np.std(d) > 0:
                p, test = float(ttest_rel(a, b).pvalue), "paired t"
            else:
                p, test = float("nan"), "—"
            part.append(
                {
                    "scheme": scheme,
                    "model": model,
                    "reference": reference,
                    "metric": metric,
                    "pairs": len(d),
                    "mean_diff": float(d.mean()),
                    "p": p,
                    "test": test,
                }
            )
        for r, ph in zip(part, holm([r["p"] for r in part])):
            r["p_holm"] = ph
        rows += part
    return rows


def friedman_nemenyi(df, scheme: str, metric: str = "rmse", alpha: float = 0.05) -> Optional[Dict]:
    """Friedman test over the models of ``scheme`` with folds as blocks (seeds averaged), and the Nemenyi critical
    difference of their average ranks; ``None`` with fewer than 7 complete folds or 3 models.
    """
    from scipy.stats import friedmanchisquare, studentized_range

    d = df[df.scheme == scheme]
    if "randomization" in d.columns:
        d = d[d["randomization"].fillna("none") == "none"]
    table = d.pivot_table(index="fold", columns="model", values=metric, aggfunc="mean").dropna()
    n, k = table.shape
    if n < 7 or k < 3:
        return None
    vals = -table.to_numpy(float) if metric in LOWER_IS_BETTER else table.to_numpy(float)
    ranks = np.vstack([(k + 1) - _rank(row) for row in vals])  # rank 1 = best
    avg = dict(zip(table.columns, ranks.mean(0)))
    stat = friedmanchisquare(*[table[c].to_numpy(float) for c in table.columns])
    q = float(studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    cd = q * math.sqrt(k * (k + 1) / (6.0 * n))
    return {
        "scheme": scheme,
        "metric": metric,
        "folds": n,
        "models": k,
        "friedman_p": float(stat.pvalue),
        "average_rank": avg,
        "cd": cd,
        "alpha": alpha,
    }


def _rank(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(a)


def plot_cd(result: Dict, path: str) -> str:
    """The critical-difference diagram: models on an axis of average rank (1 = best), a bar of length CD, and thick
    lines joining models whose ranks differ by less than CD (not significantly different).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    avg = sorted(result["average_rank"].items(), key=lambda kv: kv[1])
    k, cd = result["models"], result["cd"]
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.3 * k))
    ax.set_xlim(0.5, k + 0.5)
    ax.set_ylim(-k - 1, 1.5)
    ax.axhline(0, color="black", lw=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.15], color="black", lw=1)
        ax.text(r, 0.3, str(r), ha="center", fontsize=8)
    for i, (name, rank) in enumerate(avg):
        y = -(i + 1)
        ax.plot([rank, rank], [0, y], color="grey", lw=0.8)
        ax.text(
            k + 0.45 if i >= k / 2 else 0.55,
            y,
            f"{name} ({rank:.2f})",
            va="center",
            ha="right" if i >= k / 2 else "left",
            fontsize=8,
        )
        ax.plot([rank, k + 0.4 if i >= k / 2 else 0.6], [y, y], color="grey", lw=0.8)
    ax.plot([1, 1 + cd], [1.1, 1.1], color="red", lw=2)
    ax.text(1 + cd / 2, 1.25, f"CD = {cd:.2f}", ha="center", fontsize=8, color="red")
    bar_y = -0.4
    last = -1
    for i in range(len(avg)):  # maximal runs of models within CD of the run's best: not significantly different
        j = max(jj for jj in range(i, len(avg)) if avg[jj][1] - avg[i][1] < cd)
        if j > i and j > last:
            ax.plot([avg[i][1], avg[j][1]], [bar_y, bar_y], color="black", lw=3)
            bar_y -= 0.25
            last = j
    ax.axis("off")
    ax.set_title(
        f"{result['scheme']}: {result['metric']}, {result['folds']} folds, Friedman p = {result['friedman_p']:.2g}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["holm", "paired_tests", "friedman_nemenyi", "plot_cd", "LOWER_IS_BETTER"]
