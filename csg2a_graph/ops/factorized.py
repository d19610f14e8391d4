r"""The exact factorised path for the linear score (the paper's CSG²A).

.. math::
    S x = q\,(q^\top x)\cdot\mathrm{scale} + A x, \qquad
    \textstyle\sum_j S_{ij} = \mathrm{scale}\; q_i \cdot \sum_j q_j + (A\mathbf{1})_i

Cost ``O(B * N * h * F + E * F)`` time and ``O(B * N * (h + F))`` memory;
``[B, N, N]`` is never formed. Exact up to floating-point reassociation.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from csg2a_graph.ops.reference import prior_matmul, prior_rowsum


def factorized_linear(q: Tensor, x: Tensor, edges: Optional[Tuple[Tensor, Tensor]], reduce: str,
                      scale: float) -> Tensor:
    """``q [B, N, h]``, ``x [B, N, F]`` -> ``[B, N, F]``."""
    if reduce == "matmul":
        u = torch.matmul(q.transpose(1, 2), x)  # [B, h, F]
        return torch.matmul(q, u) * scale + prior_matmul(edges, x)
    u = q.sum(dim=1, keepdim=True)  # [B, 1, h]
    rows = (q * u).sum(-1, keepdim=True) * scale  # [B, N, 1]
    deg = prior_rowsum(edges, q.size(1), q.dtype, q.device).view(1, -1, 1)
    return x * (rows + deg)


__all__ = ["factorized_linear"]
