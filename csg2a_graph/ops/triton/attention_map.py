"""Triton kernel for batch-mean attention maps, one block of rows at a time.

``M[i, j] = mean_b phi(q_bi . q_bj * scale)`` for a chunk of rows ``i``; with
``phi`` softmax the per-sample row normaliser ``lse[b, i]`` comes from the flash
forward. ``attention_map`` streams chunks through this kernel and keeps a
running top-k, so ``N x N`` is never held when only the top pairs are wanted.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from csg2a_graph.ops.triton._utils import SCORE_ID, dot_precision


@triton.jit
def _mean_map_kernel(
    Q,
    LSE,
    OUT,
    B,
    N,
    H,
    row0,
    R,
    scale,
    inv_b,
    SCORE: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_H: tl.constexpr,
    PREC: tl.constexpr,
):
    offs_m = row0 + tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_h = tl.arange(0, BLOCK_H)
    mask_m = (offs_m < row0 + R) & (offs_m < N)
    mask_n = offs_n < N
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for b in range(B):
        q = tl.load(
            Q + b * N * H + offs_m[:, None] * H + offs_h[None, :],
            mask=mask_m[:, None] & (offs_h[None, :] < H),
            other=0.0,
        )
        k = tl.load(
            Q + b * N * H + offs_n[:, None] * H + offs_h[None, :],
            mask=mask_n[:, None] & (offs_h[None, :] < H),
            other=0.0,
        )
        s = tl.dot(q, tl.trans(k), input_precision=PREC) * scale
        if SCORE == 1:
            lse = tl.load(LSE + b * N + offs_m, mask=mask_m, other=0.0)
            s = tl.exp(s - lse[:, None])
        elif SCORE == 2:
            s = tl.sigmoid(s)
        acc += s
    out = acc * inv_b
    tl.store(OUT + (offs_m[:, None] - row0) * N + offs_n[None, :], out, mask=mask_m[:, None] & mask_n[None, :])


def mean_map_rows(q: Tensor, score: str, scale: float, row0: int, rows: int, lse: Optional[Tensor] = None) -> Tensor:
    """``[rows, N]`` block of the batch-mean map ``mean_b phi(q_b q_b^T * scale)`` (prior excluded)."""
    q = q.contiguous()
    B, N, H = q.shape
    block_h = max(16, triton.next_power_of_2(H))
    if block_h > 128:
        raise ValueError(f"the map kernel supports h <= 128, got h={H}")
    out = torch.empty(rows, N, device=q.device, dtype=torch.float32)
    bm, bn = 32, 64
    grid = (triton.cdiv(rows, bm), triton.cdiv(N, bn))
    _mean_map_kernel[grid](
        q,
        lse if lse is not None else q,
        out,
        B,
        N,
        H,
        row0,
        rows,
        scale,
        1.0 / B,
        SCORE=SCORE_ID[score],
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_H=block_h,
        PREC=dot_precision(q.dtype),
    )
    return out


__all__ = ["mean_map_rows"]
