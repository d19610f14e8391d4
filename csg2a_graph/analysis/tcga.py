"""Patients (paper A.5, Table 3, Fig. 4): do GDSC-trained models give TCGA responders lower predicted IC50?

For every drug with more than ``min_group`` responders (CR/PR) *and* non-responders (SD/PD), a
one-sided two-sample t-test of predicted ln IC50: H1 responders < non-responders (the paper's
test; Student's t, and Welch's beside it). A model predicting ``higher = sensitive`` (e.g. NCI-60
GI50 models) is turned by ``direction``.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
from torch import Tensor

TTEST_COLUMNS = [
    "drug",
    "n_responders",
    "n_nonresponders",
    "t",
    "p_one_sided",
    "p_welch_one_sided",
    "mean_pred_responders",
    "mean_pred_nonresponders",
    "model",
]


def tcga_ttests(tcga, predictions: Dict[str, Tensor], min_group: int = 10, direction: Optional[Dict[str, str]] = None):
    """One row per (model, drug with > ``min_group`` patients in both groups).

    Args:
        tcga: the ``TCGA`` dataset (``y = 1`` responder).
        predictions: ``model label -> [num_pairs]`` predicted ln IC50 for every TCGA pair.
        direction: per label, ``"higher_is_sensitive"`` to negate that model's predictions.
    """
    import pandas as pd
    from scipy.stats import ttest_ind

    p = tcga.pairs
    names = np.asarray([str(n) for n in (tcga.drug_meta.get("name") or tcga.drugs)])
    y = p["y"].numpy()
    drug = p["drug"].numpy()
    rows = []
    for label, pred in predictions.items():
        pred = np.asarray(pred, dtype=np.float64).reshape(-1)
        if pred.size != tcga.num_pairs:
            raise ValueError(f"{label}: {pred.size} predictions for {tcga.num_pairs} TCGA pairs")
        if (direction or {}).get(label) == "higher_is_sensitive":
            pred = -pred
        for d in np.unique(drug):
            sel = drug == d
            r, n = pred[sel & (y == 1)], pred[sel & (y == 0)]
            if len(r) <= min_group or len(n) <= min_group:
                continue
            t = ttest_ind(r, n, alternative="less")
            w = ttest_ind(r, n, alternative="less", equal_var=False)
            rows.append(
                {
                    "drug": names[d],
                    "n_responders": len(r),
                    "n_nonresponders": len(n),
                    "t": float(t.statistic),
                    "p_one_sided": float(t.pvalue),
                    "p_welch_one_sided": float(w.pvalue),
                    "mean_pred_responders": float(r.mean()),
                    "mean_pred_nonresponders": float(n.mean()),
                    "model": label,
                }
            )
    return pd.DataFrame(rows, columns=TTEST_COLUMNS)


def summary_table(df) -> "object":
    """Per model: the drugs with p < 0.05 and p < 0.1 and their counts (the paper's Table 3 layout)."""
    import pandas as pd

    out = []
    for model, g in df.groupby("model", sort=False):
        a, b = g[g.p_one_sided < 0.05], g[g.p_one_sided < 0.1]
        out.append(
            {
                "model": model,
                "drugs_tested": len(g),
                "p<0.05": len(a),
                "drugs_p<0.05": ", ".join(a.drug),
                "p<0.1": len(b),
                "drugs_p<0.1": ", ".join(b.drug),
            }
        )
    return pd.DataFrame(out)


def plot_tcga(tcga, predictions: Dict[str, Tensor], df, path: str) -> None:
    """Box + strip plot of predicted ln IC50 per drug, responders vs non-responders (Fig. 4)."""
    from csg2a_graph.analysis.common import pyplot

    plt = pyplot()
    drugs = list(dict.fromkeys(df.drug))
    models = list(predictions)
    if not drugs:
        return
    names = np.asarray([str(n) for n in (tcga.drug_meta.get("name") or tcga.drugs)])
    p = tcga.pairs
    y, drug = p["y"].numpy(), names[p["drug"].numpy()]
    fig, axes = plt.subplots(len(models), len(drugs), figsize=(1.6 * len(drugs) + 1, 2.6 * len(models)), squeeze=False)
    rng = np.random.default_rng(0)
    for i, m in enumerate(models):
        pred = np.asarray(predictions[m], dtype=np.float64)
        for j, d in enumerate(drugs):
            ax = axes[i, j]
            groups = [pred[(drug == d) & (y == 1)], pred[(drug == d) & (y == 0)]]
            ax.boxplot(groups, showfliers=False, widths=0.6)
            for k, g in enumerate(groups):
                ax.scatter(k + 1 + rng.uniform(-0.18, 0.18, len(g)), g, s=3, alpha=0.5, color=f"C{k}")
            row = df[(df.model == m) & (df.drug == d)]
            pv = row.p_one_sided.iloc[0] if len(row) else float("nan")
            ax.set_title(f"{d}\np={pv:.2g}", fontsize=7)
            ax.set_xticks([1, 2])
            ax.set_xticklabels(["R", "NR"], fontsize=7)
            ax.tick_params(labelsize=6)
            if j == 0:
                ax.set_ylabel(f"{m}\npredicted ln IC50", fontsize=7)
    fig.suptitle("TCGA: predicted ln IC50 of responders (R, CR/PR) vs non-responders (NR, SD/PD)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["tcga_ttests", "summary_table", "plot_tcga", "TTEST_COLUMNS"]
