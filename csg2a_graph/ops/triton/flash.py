r"""Flash-style Triton kernels for the non-linear dense scores (``softmax``, ``sigmoid``).

Computes ``O = phi(q q^T * scale) V`` with tied query/key ``q [B, N, h]`` and
values ``V [B, N, F]``, tiled over genes: a block of query rows streams over
blocks of key rows with an online softmax (FlashAttention-2), so the memory is
``O(B * N * (h + F))`` and no ``N x N`` block outlives one tile. The backward
recomputes the scores tile by tile (one kernel for ``dq``-as-query, one for
``dq``-as-key and ``dV``) and returns ``dq = dQ + dK`` because ``q`` is used on
both sides.

The prior enters *after* ``phi`` in CSG²A (``S = phi(.) + A``), so its
contribution ``A V`` separates exactly and is added by the sparse gather-scatter
outside the kernel: no dense or block-sparse bias tile is needed. (A prior
*inside* the softmax would need one; CSG²A does not define that variant.)

Limitations: ``h <= 128``; ``F`` padded to 16 lanes (wasted work for ``F = 1``);
fp16/bf16 inputs use tensor-core dots with fp32 accumulation.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from csg2a_graph.ops.triton._utils import dot_precision


@triton.jit
def _rows(P, b, offs, mask, cols, C, N):
    """Tile ``P[b, offs, :C]`` of a contiguous ``[B, N, C]`` tensor (zeros outside)."""
    return tl.load(
        P + b * N * C + offs[:, None] * C + cols[None, :], mask=mask[:, None] & (cols[None, :] < C), other=0.0
    )


@triton.jit
def _query_side(Q, DO, LSE, DELTA, b, offs_m, mask_m, offs_h, offs_f, N, H, F):
    """What a block of query rows needs in the backward: q, dO, lse, delta."""
    q = _rows(Q, b, offs_m, mask_m, offs_h, H, N)
    do = _rows(DO, b, offs_m, mask_m, offs_f, F, N)
    lse = tl.load(LSE + b * N + offs_m, mask=mask_m, other=0.0)
    delta = tl.load(DELTA + b * N + offs_m, mask=mask_m, other=0.0)
    return q, do, lse, delta


@triton.jit
def _fwd(
    Q,
    V,
    O,
    LSE,
    N,
    H,
    F,
    scale,
    SOFTMAX: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_F: tl.constexpr,
    PREC: tl.constexpr,
):
    b = tl.program_id(0)
    offs_m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_h = tl.arange(0, BLOCK_H)
    offs_f = tl.arange(0, BLOCK_F)
    mask_m = offs_m < N
    q = _rows(Q, b, offs_m, mask_m, offs_h, H, N)
    m_i = tl.zeros([BLOCK_M], dtype=tl.float32) - float("inf")
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_F], dtype=tl.float32)
    for j0 in range(0, N, BLOCK_N):
        offs_n = j0 + tl.arange(0, BLOCK_N)
        mask_n = offs_n < N
        k = _rows(Q, b, offs_n, mask_n, offs_h, H, N)
        v = _rows(V, b, offs_n, mask_n, offs_f, F, N)
        s = tl.dot(q, tl.trans(k), input_precision=PREC) * scale
        if SOFTMAX:
            s = tl.where(mask_n[None, :], s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, axis=1))
            p = tl.exp(s - m_new[:, None])
            alpha = tl.exp(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, axis=1)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PREC)
            m_i = m_new
        else:
            p = tl.where(mask_n[None, :], tl.sigmoid(s), 0.0)
            acc += tl.dot(p.to(v.dtype), v, input_precision=PREC)
    if SOFTMAX:
        acc = acc / l_i[:, None]
        tl.store(LSE + b * N + offs_m, m_i + tl.log(l_i), mask=mask_m)
    tl.store(
        O + b * N * F + offs_m[:, None] * F + offs_f[None, :],
        acc.to(O.dtype.element_ty),
        mask=mask_m[:, None] & (offs_f[None, :] < F),
    )


@triton.jit
def _probs(q, k, lse, delta, do, v, mask_m, mask_n, scale, SOFTMAX: tl.constexpr, PREC: tl.constexpr):
    """Recomputed probabilities ``p`` and score gradient ``ds`` of one tile."""
    s = tl.dot(q, tl.trans(k), input_precision=PREC) * scale
    valid = mask_m[:, None] & mask_n[None, :]
    dp = tl.dot(do, tl.trans(v), input_precision=PREC).to(tl.float32)
    if SOFTMAX:
        p = tl.where(valid, tl.exp(s - lse[:, None]), 0.0)
        ds = p * (dp - delta[:, None])
    else:
        p = tl.where(valid, tl.sigmoid(s), 0.0)
        ds = dp * p * (1.0 - p)
    return p, ds


@triton.jit
def _bwd_dq(
    Q,
    V,
    DO,
    LSE,
    DELTA,
    DQ,
    N,
    H,
    F,
    scale,
    SOFTMAX: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_F: tl.constexpr,
    PREC: tl.constexpr,
):
    b = tl.program_id(0)
    offs_m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_h = tl.arange(0, BLOCK_H)
    offs_f = tl.arange(0, BLOCK_F)
    mask_m = offs_m < N
    q, do, lse, delta = _query_side(Q, DO, LSE, DELTA, b, offs_m, mask_m, offs_h, offs_f, N, H, F)
    dq = tl.zeros([BLOCK_M, BLOCK_H], dtype=tl.float32)
    for j0 in range(0, N, BLOCK_N):
        offs_n = j0 + tl.arange(0, BLOCK_N)
        mask_n = offs_n < N
        k = _rows(Q, b, offs_n, mask_n, offs_h, H, N)
        v = _rows(V, b, offs_n, mask_n, offs_f, F, N)
        p, ds = _probs(q, k, lse, delta, do, v, mask_m, mask_n, scale, SOFTMAX, PREC)
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PREC)
    tl.store(
        DQ + b * N * H + offs_m[:, None] * H + offs_h[None, :], dq * scale, mask=mask_m[:, None] & (offs_h[None, :] < H)
    )


@triton.jit
def _bwd_dkdv(
    Q,
    V,
    DO,
    LSE,
    DELTA,
    DK,
    DV,
    N,
    H,
    F,
    scale,
    SOFTMAX: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_F: tl.constexpr,
    PREC: tl.constexpr,
):
    b = tl.program_id(0)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_h = tl.arange(0, BLOCK_H)
    offs_f = tl.arange(0, BLOCK_F)
    mask_n = offs_n < N
    k = _rows(Q, b, offs_n, mask_n, offs_h, H, N)
    v = _rows(V, b, offs_n, mask_n, offs_f, F, N)
    dk = tl.zeros([BLOCK_N, BLOCK_H], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_F], dtype=tl.float32)
    for i0 in range(0, N, BLOCK_M):
        offs_m = i0 + tl.arange(0, BLOCK_M)
        mask_m = offs_m < N
        q, do, lse, delta = _query_side(Q, DO, LSE, DELTA, b, offs_m, mask_m, offs_h, offs_f, N, H, F)
        p, ds = _probs(q, k, lse, delta, do, v, mask_m, mask_n, scale, SOFTMAX, PREC)
        dv += tl.dot(tl.trans(p).to(do.dtype), do, input_precision=PREC)
        dk += tl.dot(tl.trans(ds).to(q.dtype), q, input_precision=PREC)
    tl.store(
        DK + b * N * H + offs_n[:, None] * H + offs_h[None, :], dk * scale, mask=mask_n[:, None] & (offs_h[None, :] < H)
    )
    tl.store(DV + b * N * F + offs_n[:, None] * F + offs_f[None, :], dv, mask=mask_n[:, None] & (offs_f[None, :] < F))


# (block_m, block_n, num_warps, num_stages) by (16-bit inputs?, block_h); measured on an H100
# with benchmarks/kernels/tune_flash.py (see benchmarks/results/kernels_gpu.md).
TUNED = {
    (True, 16): (128, 64, 4, 3),
    (True, 32): (128, 64, 4, 3),
    (True, 64): (128, 64, 4, 3),
    (True, 128): (64, 64, 4, 2),
    (False, 16): (64, 32, 4, 3),
    (False, 32): (64, 32, 4, 3),
    (False, 64): (64, 32, 4, 3),
    (False, 128): (32, 32, 4, 2),
}


def _blocks(N: int, H: int, F: int, dtype):
    block_h = max(16, triton.next_power_of_2(H))
    if block_h > 128:
        raise ValueError(f"the flash Triton kernel supports h <= 128, got h={H}")
    block_f = max(16, triton.next_power_of_2(F))
    if block_f > 128:
        raise ValueError(f"the flash Triton kernel supports F <= 128 value channels, got F={F}")
    bm, bn, warps, stages = TUNED[(dtype in (torch.float16, torch.bfloat16), block_h)]
    if N <= 32:  # tiny problems (and the CPU interpreter): small tiles
        bm, bn = 16, 16
    return bm, bn, block_h, block_f, warps, stages


class FlashGeneAttention(torch.autograd.Function):
    """``phi(q q^T * scale) V`` for ``phi`` in {softmax, sigmoid}, tiled; see module doc."""

    @staticmethod
    def forward(ctx, q: Tensor, v: Tensor, softmax: bool, scale: float) -> Tensor:
        q, v = q.contiguous(), v.contiguous()
        B, N, H = q.shape
        F = v.size(-1)
        bm, bn, bh, bf, warps, stages = _blocks(N, H, F, q.dtype)
        o = torch.empty_like(v)
        lse = torch.empty(B, N, device=q.device, dtype=torch.float32)
        _fwd[(B, triton.cdiv(N, bm))](
            q,
            v,
            o,
            lse,
            N,
            H,
            F,
            scale,
            SOFTMAX=softmax,
            BLOCK_M=bm,
            BLOCK_N=bn,
            BLOCK_H=bh,
            BLOCK_F=bf,
            PREC=dot_precision(q.dtype),
            num_warps=warps,
            num_stages=stages,
        )
        ctx.save_for_backward(q, v, o, lse)
        ctx.softmax, ctx.scale, ctx.blocks = softmax, scale, (bm, bn, bh, bf, warps, stages)
        return o

    @staticmethod
    def backward(ctx, do: Tensor):
        q, v, o, lse = ctx.saved_tensors
        bm, bn, bh, bf, warps, stages = ctx.blocks
        # the backward tiles hold more live values: halve the query tile of the 16-bit configs
        bm_b = min(bm, 64)
        do = do.contiguous()
        B, N, H = q.shape
        F = v.size(-1)
        delta = (do.float() * o.float()).sum(-1).contiguous() if ctx.softmax else lse  # unused for sigmoid
        dq = torch.empty(B, N, H, device=q.device, dtype=torch.float32)
        dk = torch.empty_like(dq)
        dv = torch.empty(B, N, F, device=q.device, dtype=torch.float32)
        _bwd_dq[(B, triton.cdiv(N, bm_b))](
            q,
            v,
            do,
            lse,
            delta,
            dq,
            N,
            H,
            F,
            ctx.scale,
            SOFTMAX=ctx.softmax,
            BLOCK_M=bm_b,
            BLOCK_N=bn,
            BLOCK_H=bh,
            BLOCK_F=bf,
            PREC=dot_precision(q.dtype),
            num_warps=warps,
            num_stages=stages,
        )
        _bwd_dkdv[(B, triton.cdiv(N, bn))](
            q,
            v,
            do,
            lse,
            delta,
            dk,
            dv,
            N,
            H,
            F,
            ctx.scale,
            SOFTMAX=ctx.softmax,
            BLOCK_M=bm_b,
            BLOCK_N=bn,
            BLOCK_H=bh,
            BLOCK_F=bf,
            PREC=dot_precision(q.dtype),
            num_warps=warps,
            num_stages=stages,
        )
        return (dq + dk).to(q.dtype), dv.to(v.dtype), None, None


def flash_attention(q: Tensor, x: Tensor, edges, score: str, reduce: str, scale: float) -> Tensor:
    """Dense-support ``softmax``/``sigmoid`` CSG²A on ``q [B, N, h]``, ``x [B, N, F]``."""
    from csg2a_graph.ops.reference import prior_matmul, prior_rowsum

    softmax = score == "softmax"
    if reduce == "matmul":
        return FlashGeneAttention.apply(q, x, softmax, scale) + prior_matmul(edges, x)
    deg = prior_rowsum(edges, q.size(1), x.dtype, x.device).view(1, -1, 1)
    if softmax:  # each softmax row sums to one: the row sums do not depend on q
        return x * (1.0 + deg) + 0.0 * q.sum()
    ones = torch.ones(q.size(0), q.size(1), 1, device=q.device, dtype=q.dtype)
    return x * (FlashGeneAttention.apply(q, ones, False, scale) + deg)


__all__ = ["FlashGeneAttention", "flash_attention"]
