"""Shared argument handling of the gene-gene attention ops."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from csg2a_graph.errors import InputTypeError
from csg2a_graph.typing import REDUCES, SCORES, SUPPORTS, Edges, check_choice


def as_edges(prior, num_genes: int, device=None, dtype=None) -> Optional[Edges]:
    """Normalise a prior to ``(edge_index [2, E] long, edge_weight [E])`` or ``None``.

    Accepts ``(edge_index, edge_weight)`` (weight may be ``None`` = 1), a torch
    sparse ``[N, N]`` tensor (COO or CSR; entry ``[i, j]`` is the weight of
    ``j -> i``), or ``None``. Raises on out-of-range indices or a wrong size.
    """
    if prior is None:
        return None
    if isinstance(prior, Tensor):
        if not prior.is_sparse and prior.layout not in (torch.sparse_csr, torch.sparse_coo):
            raise InputTypeError(
                "a tensor prior must be a torch sparse [N, N] tensor; pass (edge_index, edge_weight) for an edge list"
            )
        if tuple(prior.shape) != (num_genes, num_genes):
            raise ValueError(f"prior is {tuple(prior.shape)} but q has N={num_genes} genes")
        coo = prior.to_sparse_coo().coalesce()
        rows, cols = coo.indices()
        edge_index = torch.stack([cols, rows])
        edge_weight = coo.values()
    else:
        try:
            edge_index, edge_weight = prior
        except (TypeError, ValueError):
            raise InputTypeError("prior must be (edge_index, edge_weight), a torch sparse tensor or None") from None
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must be [2, E], got {tuple(edge_index.shape)}")
    edge_index = edge_index.long()
    E = edge_index.size(1)
    if E and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_genes):
        raise ValueError(
            f"prior edge_index has indices outside [0, {num_genes}) "
            f"(min {int(edge_index.min())}, max {int(edge_index.max())}); "
            "was it built for another gene space?"
        )
    if edge_weight is None:
        edge_weight = torch.ones(E, device=edge_index.device, dtype=dtype or torch.float32)
    if edge_weight.numel() != E:
        raise ValueError(f"edge_weight has {edge_weight.numel()} entries for {E} edges")
    if device is not None:
        edge_index = edge_index.to(device)
        edge_weight = edge_weight.to(device)
    if dtype is not None:
        edge_weight = edge_weight.to(dtype)
    return edge_index, edge_weight


def check_inputs(q: Tensor, x: Tensor, score: str, support: str, reduce: str, validate: bool = True):
    """Shapes to ``q [B, N, h]`` and ``x [B, N, F]``; returns ``(q, x, squeeze_batch, squeeze_feat)``."""
    check_choice("score", score, SCORES)
    check_choice("support", support, SUPPORTS)
    check_choice("reduce", reduce, REDUCES)
    squeeze_b = q.dim() == 2
    if squeeze_b:
        q = q.unsqueeze(0)
        x = x.unsqueeze(0)
    if q.dim() != 3:
        raise ValueError(f"q must be [B, N, h] (or [N, h]), got {tuple(q.shape)}")
    squeeze_f = x.dim() == 2
    if squeeze_f:
        x = x.unsqueeze(-1)
    if x.dim() != 3 or x.shape[:2] != q.shape[:2]:
        raise ValueError(
            f"x must be [B, N] or [B, N, F] matching q [B, N, h] = {tuple(q.shape)}; "
            f"got {tuple(x.shape) if not squeeze_f else tuple(x.shape[:-1])}"
        )
    if validate:
        check_finite("q", q)
        check_finite("x", x)
    return q, x, squeeze_b, squeeze_f


def check_finite(name: str, t: Tensor) -> None:
    """Raise naming the samples that hold NaN or inf (``t``: ``[B, ...]``): one non-finite gene
    would silently turn every gene of its sample NaN through the attention.
    """
    bad = ~torch.isfinite(t)
    if bad.any():
        n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
        rows = bad.reshape(bad.size(0), -1).any(1).nonzero().view(-1).tolist() if t.dim() > 1 else []
        where = f" in samples {rows[:8]}{' ...' if len(rows) > 8 else ''}" if rows else ""
        raise ValueError(f"{name} contains {n_nan} NaN and {n_inf} inf values{where}")


def default_scale(h: int, scale: Optional[float]) -> float:
    return 1.0 / math.sqrt(h) if scale is None else float(scale)


def restore(out: Tensor, squeeze_b: bool, squeeze_f: bool) -> Tensor:
    if squeeze_f:
        out = out.squeeze(-1)
    if squeeze_b:
        out = out.squeeze(0)
    return out
