"""Regression metrics in one place: RMSE, Pearson, Spearman, R², and per-group Pearson.

ln IC50 varies mostly between drugs, so a global Pearson rewards knowing each drug's mean;
``grouped_pearson()`` (correlation within each drug, averaged) cannot be gamed that way.
"""

from __future__ import annotations

from typing import Dict

import numpy as np


def _np(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64).reshape(-1)


def rmse(y, p) -> float:
    y, p = _np(y), _np(p)
    return float(np.sqrt(np.mean((y - p) ** 2)))


def pearson(y, p) -> float:
    y, p = _np(y), _np(p)
    if y.size < 2 or _constant(y) or _constant(p):
        return float("nan")  # undefined, not 0: a constant prediction has no correlation
    return float(np.corrcoef(y, p)[0, 1])


def _constant(a: np.ndarray) -> bool:
    return bool(np.ptp(a) <= 1e-12 * max(1.0, float(np.abs(a).max())))


def _rank(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(a)


def spearman(y, p) -> float:
    y, p = _np(y), _np(p)
    return pearson(_rank(y), _rank(p)) if y.size >= 2 else float("nan")


def r2(y, p) -> float:
    y, p = _np(y), _np(p)
    ss = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - p) ** 2) / ss) if ss > 0 else float("nan")


def grouped_pearson(y, p, groups, min_size: int = 3, method=None) -> float:
    """Mean over groups (e.g. drugs) of the Pearson correlation (or ``method(y, p)``) within each group
    of ``>= min_size`` pairs.
    """
    y, p, g = _np(y), _np(p), np.asarray(groups).reshape(-1)
    corr = method or pearson
    vals = []
    for key in np.unique(g):
        sel = g == key
        if sel.sum() >= min_size:
            r = corr(y[sel], p[sel])
            if np.isfinite(r):
                vals.append(r)
    return float(np.mean(vals)) if vals else float("nan")


def grouped_spearman(y, p, groups, min_size: int = 3) -> float:
    """Mean over groups of the Spearman correlation within each group (see ``grouped_pearson()``)."""
    return grouped_pearson(y, p, groups, min_size, method=spearman)


def regression_metrics(y, p, drug=None, cell=None) -> Dict[str, float]:
    """``rmse, pcc, scc, r2`` (+ ``pcc_per_drug`` / ``pcc_per_cell`` when groups are given)."""
    out = {"rmse": rmse(y, p), "pcc": pearson(y, p), "scc": spearman(y, p), "r2": r2(y, p)}
    if drug is not None:
        out["pcc_per_drug"] = grouped_pearson(y, p, drug)
    if cell is not None:
        out["pcc_per_cell"] = grouped_pearson(y, p, cell)
    return out


def normalized_metrics(y, p, baseline) -> Dict[str, float]:
    """DrEval's normalised metrics: Pearson, Spearman and R² of ``y - baseline`` against ``p - baseline``, with
    ``baseline`` the NaiveMeanEffects (our ``additive``: overall + drug + cell mean) predictions of the same pairs
    and fold — what a model predicts beyond the means. The baseline itself (and any model equal to it) gets NaN
    correlations: it has nothing beyond the means.
    """
    y, p, b = _np(y), _np(p), _np(baseline)
    yy, pp = y - b, p - b
    return {"pcc_norm": pearson(yy, pp), "scc_norm": spearman(yy, pp), "r2_norm": r2(yy, pp)}


def profile_metrics(y, p) -> Dict[str, float]:
    """For predicted profiles ``[B, N]``: MSE, RMSE and the mean per-sample Pearson."""
    y = y.detach().cpu().double().numpy() if hasattr(y, "detach") else np.asarray(y, dtype=np.float64)
    p = p.detach().cpu().double().numpy() if hasattr(p, "detach") else np.asarray(p, dtype=np.float64)
    mse = float(np.mean((y - p) ** 2))
    yc, pc = y - y.mean(1, keepdims=True), p - p.mean(1, keepdims=True)
    den = np.sqrt((yc**2).sum(1) * (pc**2).sum(1))
    r = np.where(den > 0, (yc * pc).sum(1) / np.where(den > 0, den, 1), np.nan)
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "pcc": float(np.nanmean(r)) if np.isfinite(r).any() else float("nan"),
    }


__all__ = [
    "rmse",
    "pearson",
    "spearman",
    "r2",
    "grouped_pearson",
    "grouped_spearman",
    "regression_metrics",
    "normalized_metrics",
    "profile_metrics",
]
