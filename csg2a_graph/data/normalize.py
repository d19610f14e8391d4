"""Expression normalisation: robust z-scores (paper A.3.2 / A.5)."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

MAD_TO_SD = 1.4826  # makes the MAD a consistent estimator of the s.d. for normal data


def robust_zscore(x: Tensor, dim: int = 0, eps: float = 1e-8) -> Tuple[Tensor, Tensor]:
    r"""Robust z-score along ``dim`` (default: per gene over samples of a ``[samples, genes]`` matrix).

    .. math::
        z_i = \frac{x_i - \mathrm{median}(X)}{1.4826\cdot\mathrm{MAD}(X)}

    NaNs are ignored in the median and MAD and stay NaN. Genes whose MAD is 0
    (constant, e.g. filled) cannot be scaled: they are set to 0 and flagged.

    Returns:
        ``(z, degenerate)`` where ``degenerate`` is a bool mask over the
        reduced-out axis' complement (one entry per gene) marking MAD == 0.
    """
    x = x.float()
    med = torch.nanmedian(x, dim=dim, keepdim=True).values
    mad = torch.nanmedian((x - med).abs(), dim=dim, keepdim=True).values * MAD_TO_SD
    degenerate = (mad <= eps) | torch.isnan(mad)
    z = (x - med) / torch.where(degenerate, torch.ones_like(mad), mad)
    z = torch.where(degenerate.expand_as(z), torch.zeros_like(z), z)
    return z, degenerate.squeeze(dim)


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


__all__ = ["robust_zscore", "modz", "MAD_TO_SD"]
