"""Expression normalisation: robust z-scores (paper A.3.2 / A.5)."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

MAD_TO_SD = 1.4826  # makes the MAD a consistent estimator of the s.d. for normal data


def robust_stats(x: Tensor, dim: int = 0) -> Tuple[Tensor, Tensor]:
    r"""Per-gene ``(median, 1.4826 * MAD)`` along ``dim``, NaNs ignored.

    The median is the true median (the mean of the two middle values for an even count),
    as in the paper's formula; ``torch.nanmedian`` returns the lower one, which for a few
    samples gives MAD = 0 or a tiny MAD and huge z. Computed in float64 with NumPy.
    """
    import warnings

    import numpy as np

    a = x.detach().cpu().double().numpy()
    with warnings.catch_warnings():  # an all-NaN gene is flagged as degenerate by the caller
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(a, axis=dim, keepdims=True)
        mad = np.nanmedian(np.abs(a - med), axis=dim, keepdims=True) * MAD_TO_SD
    return torch.from_numpy(med), torch.from_numpy(mad)


def robust_zscore(
    x: Tensor, dim: int = 0, eps: float = 1e-8, min_samples: int = 1, stats: Optional[Tuple[Tensor, Tensor]] = None
) -> Tuple[Tensor, Tensor]:
    r"""Robust z-score along ``dim`` (default: per gene over samples of a ``[samples, genes]`` matrix).

    $$
    z_i = \frac{x_i - \mathrm{median}(X)}{1.4826\cdot\mathrm{MAD}(X)}
    $$

    with the true median (``robust_stats()``). NaNs are ignored in the median and MAD and
    stay NaN. Genes whose MAD is 0 (constant, e.g. filled) or that have fewer than
    ``min_samples`` non-NaN values cannot be scaled: they are set to 0 and flagged.
    ``stats``: use these ``(median, scaled MAD)`` (e.g. of a reference population)
    instead of the statistics of ``x`` itself.

    Returns:
        ``(z, degenerate)`` where ``degenerate`` is a bool mask over the
        reduced-out axis' complement (one entry per gene) marking MAD == 0.
    """
    x = x.float()
    med, mad = robust_stats(x, dim) if stats is None else (stats[0].double(), stats[1].double())
    degenerate = (mad <= eps) | torch.isnan(mad)
    if min_samples > 1 and stats is None:
        degenerate |= (~torch.isnan(x)).sum(dim, keepdim=True) < min_samples
    z = (x.double() - med) / torch.where(degenerate, torch.ones_like(mad), mad)
    z = torch.where(degenerate.expand_as(z), torch.zeros_like(z), z).float()
    return z, degenerate.squeeze(dim)


def clip_report(z: Tensor, clip: Optional[float]) -> Tuple[Tensor, dict]:
    """Optionally clip ``|z|`` at ``clip``; report the extremes either way."""
    finite = z[torch.isfinite(z)]
    rep = {
        "max_abs": round(float(finite.abs().max()), 3) if finite.numel() else None,
        "values_above_10": int((finite.abs() > 10).sum()),
        "clip": clip,
        "values_clipped": 0,
    }
    if clip is not None:
        if not clip > 0:
            raise ValueError(f"clip must be a positive number, got {clip!r}")
        rep["values_clipped"] = int((finite.abs() > clip).sum())
        z = z.clamp(-clip, clip)
    return z, rep


def modz(profiles: Tensor, min_weight: float = 0.01) -> Tensor:
    r"""CMap's moderated z-score (MODZ) of replicate profiles ``[k, N]`` -> ``[N]``.

    Each replicate is weighted by its mean Spearman correlation with the others
    (clipped at ``min_weight``), weights normalised to sum to one; one replicate
    is returned as is.
    """
    k = profiles.size(0)
    if k == 1:
        return profiles[0].clone()
    ranks = profiles.argsort(dim=1).argsort(dim=1).float()
    ranks = ranks - ranks.mean(dim=1, keepdim=True)
    ranks = ranks / ranks.norm(dim=1, keepdim=True).clamp_min(1e-12)
    rho = ranks @ ranks.T
    w = ((rho.sum(dim=1) - rho.diagonal()) / (k - 1)).clamp_min(min_weight)
    w = w / w.sum()
    return (w.unsqueeze(1) * profiles).sum(0)


__all__ = ["robust_zscore", "robust_stats", "clip_report", "modz", "MAD_TO_SD"]
