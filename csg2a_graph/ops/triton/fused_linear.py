r"""Fused Triton kernels for the linear CSG²A layer with gene-specific expansion.

The layer's gene representation is ``q[b, i] = x[b, i] W_gene[i] + c[b, i] W_cond[i]``
(``W ∈ R^{N×h}``, one row per gene). Because ``q`` is linear in the per-gene
weights, every contraction with it folds into a product with ``W``:

forward (``a = x`` for ``matmul``, ``1`` for ``rowsum``)
    ``U = (a⊙x) W_gene + (a⊙c) W_cond``  (``[B, h]``, reduction over genes);
    ``t = scale · (x ⊙ U W_geneᵀ + c ⊙ U W_condᵀ)``;
    ``out = t + A x`` (``matmul``) or ``x ⊙ (t + A1)`` (``rowsum``).
backward (``g = ∂L/∂out``; ``r = g`` or ``g ⊙ x``)
    ``V = scale · ((r⊙x) W_gene + (r⊙c) W_cond)``; with ``P = U W_geneᵀ``, ``Q = U W_condᵀ``,
    ``P' = V W_geneᵀ``, ``Q' = V W_condᵀ``:
    ``∂c = scale r⊙Q + a⊙Q'``, ``∂x = (scale r⊙P + a⊙P') + (matmul: x⊙P' + c⊙Q' | rowsum: g⊙(t + A1))``,
    ``∂W_gene = scale (r⊙x)ᵀ U + (a⊙x)ᵀ V``, ``∂W_cond = scale (r⊙c)ᵀ U + (a⊙c)ᵀ V``.

Each stage is one kernel whose prologue builds its operands (``a⊙x``, ``r⊙c``, ...)
from the raw inputs and whose tiles go through tensor-core dots, so neither
``q`` (``B×N×h``) nor the attention (``B×N×N``) is ever written. The sparse
prior term ``A x`` is added by torch's gather-scatter outside the kernels (it
is ``O(E)`` and has its own autograd); ``A 1`` enters as a vector.

Limitations (said plainly): one input channel (``F = 1``, the paper's layer);
prior weights are constants in this path (their gradient is not computed);
``h <= 256``; fp32 inputs use 3xTF32 dots unless torch's TF32 switch is on.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from csg2a_graph.ops.triton._utils import choose_stages, dot_precision, launch, operand_bytes, shared_memory_limit


@triton.jit
def _bn(P, offs_b, offs_n, m2, N):
    """fp32 tile ``P[offs_b, offs_n]`` of a contiguous ``[B, N]`` tensor (zeros outside ``m2``)."""
    return tl.load(P + offs_b[:, None] * N + offs_n[None, :], mask=m2, other=0.0).to(tl.float32)


@triton.jit
def _reduce_genes(
    X,
    C,
    R,
    WG,
    WC,
    U,
    B,
    N,
    H,
    mult,
    tiles,
    WEIGHT: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_H: tl.constexpr,
    PREC: tl.constexpr,
):
    """U[b] += mult * sum_i (w_bi x_bi) W_gene[i] + (w_bi c_bi) W_cond[i] over this program's gene tiles.

    WEIGHT: 0 -> w = 1, 1 -> w = x, 2 -> w = R (a given [B, N] tensor).
    """
    offs_b = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_h = tl.arange(0, BLOCK_H)
    mb = offs_b < B
    mh = offs_h < H
    acc = tl.zeros([BLOCK_B, BLOCK_H], dtype=tl.float32)
    for t in range(tiles):
        offs_n = (tl.program_id(1) * tiles + t) * BLOCK_N + tl.arange(0, BLOCK_N)
        mn = offs_n < N
        m2 = mb[:, None] & mn[None, :]
        x = _bn(X, offs_b, offs_n, m2, N)
        c = _bn(C, offs_b, offs_n, m2, N)
        if WEIGHT == 1:
            w = x
        elif WEIGHT == 2:
            w = _bn(R, offs_b, offs_n, m2, N)
        else:
            w = tl.where(m2, 1.0, 0.0)
        mw = mn[:, None] & mh[None, :]
        wg = tl.load(WG + offs_n[:, None] * H + offs_h[None, :], mask=mw, other=0.0).to(tl.float32)
        wc = tl.load(WC + offs_n[:, None] * H + offs_h[None, :], mask=mw, other=0.0).to(tl.float32)
        acc += tl.dot(w * x, wg, input_precision=PREC)
        acc += tl.dot(w * c, wc, input_precision=PREC)
    tl.atomic_add(U + offs_b[:, None] * H + offs_h[None, :], acc * mult, mask=mb[:, None] & mh[None, :])


@triton.jit
def _project(U, WG, WC, offs_b, offs_n, mb, mn, H, BLOCK_H: tl.constexpr, PREC: tl.constexpr):
    """(U W_geneᵀ, U W_condᵀ) on a [BLOCK_B, BLOCK_N] tile."""
    offs_h = tl.arange(0, BLOCK_H)
    mh = offs_h < H
    u = tl.load(U + offs_b[:, None] * H + offs_h[None, :], mask=mb[:, None] & mh[None, :], other=0.0)
    mw = mn[:, None] & mh[None, :]
    wg = tl.load(WG + offs_n[:, None] * H + offs_h[None, :], mask=mw, other=0.0).to(tl.float32)
    wc = tl.load(WC + offs_n[:, None] * H + offs_h[None, :], mask=mw, other=0.0).to(tl.float32)
    return tl.dot(u, tl.trans(wg), input_precision=PREC), tl.dot(u, tl.trans(wc), input_precision=PREC)


@triton.jit
def _fwd_out(
    X,
    C,
    U,
    WG,
    WC,
    DEG,
    OUT,
    B,
    N,
    H,
    scale,
    ROWSUM: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_H: tl.constexpr,
    PREC: tl.constexpr,
):
    offs_b = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mb = offs_b < B
    mn = offs_n < N
    m2 = mb[:, None] & mn[None, :]
    x, c = _bn(X, offs_b, offs_n, m2, N), _bn(C, offs_b, offs_n, m2, N)
    p, q = _project(U, WG, WC, offs_b, offs_n, mb, mn, H, BLOCK_H, PREC)
    t = scale * (x * p + c * q)
    if ROWSUM:
        deg = tl.load(DEG + offs_n, mask=mn, other=0.0).to(tl.float32)
        t = x * (t + deg[None, :])
    tl.store(OUT + offs_b[:, None] * N + offs_n[None, :], t.to(OUT.dtype.element_ty), mask=m2)


@triton.jit
def _bwd_inputs(
    X,
    C,
    G,
    U,
    V,
    WG,
    WC,
    DEG,
    DX,
    DC,
    B,
    N,
    H,
    scale,
    ROWSUM: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_H: tl.constexpr,
    PREC: tl.constexpr,
):
    offs_b = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mb = offs_b < B
    mn = offs_n < N
    m2 = mb[:, None] & mn[None, :]
    x, c, g = _bn(X, offs_b, offs_n, m2, N), _bn(C, offs_b, offs_n, m2, N), _bn(G, offs_b, offs_n, m2, N)
    p, q = _project(U, WG, WC, offs_b, offs_n, mb, mn, H, BLOCK_H, PREC)
    pv, qv = _project(V, WG, WC, offs_b, offs_n, mb, mn, H, BLOCK_H, PREC)
    if ROWSUM:
        r = g * x
        deg = tl.load(DEG + offs_n, mask=mn, other=0.0).to(tl.float32)
        dx = scale * r * p + pv + g * (scale * (x * p + c * q) + deg[None, :])
        dc = scale * r * q + qv
    else:
        dx = scale * g * p + 2.0 * x * pv + c * qv
        dc = scale * g * q + x * qv
    tl.store(DX + offs_b[:, None] * N + offs_n[None, :], dx, mask=m2)
    tl.store(DC + offs_b[:, None] * N + offs_n[None, :], dc, mask=m2)


@triton.jit
def _bwd_weights(
    X,
    C,
    G,
    U,
    V,
    DWG,
    DWC,
    B,
    N,
    H,
    scale,
    tiles,
    ROWSUM: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_H: tl.constexpr,
    PREC: tl.constexpr,
):
    """dW_gene[i] += scale (r⊙x)ᵀ U + (a⊙x)ᵀ V (and W_cond with c) over this program's batch tiles."""
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_h = tl.arange(0, BLOCK_H)
    mn = offs_n < N
    mh = offs_h < H
    acc_g = tl.zeros([BLOCK_N, BLOCK_H], dtype=tl.float32)
    acc_c = tl.zeros([BLOCK_N, BLOCK_H], dtype=tl.float32)
    for t in range(tiles):
        offs_b = (tl.program_id(1) * tiles + t) * BLOCK_B + tl.arange(0, BLOCK_B)
        mb = offs_b < B
        m2 = mb[:, None] & mn[None, :]
        x, c, g = _bn(X, offs_b, offs_n, m2, N), _bn(C, offs_b, offs_n, m2, N), _bn(G, offs_b, offs_n, m2, N)
        mu = mb[:, None] & mh[None, :]
        u = tl.load(U + offs_b[:, None] * H + offs_h[None, :], mask=mu, other=0.0)
        v = tl.load(V + offs_b[:, None] * H + offs_h[None, :], mask=mu, other=0.0)
        if ROWSUM:
            r = g * x
            a = tl.where(m2, 1.0, 0.0)
        else:
            r = g
            a = x
        acc_g += tl.dot(tl.trans(scale * r * x), u, input_precision=PREC)
        acc_g += tl.dot(tl.trans(a * x), v, input_precision=PREC)
        acc_c += tl.dot(tl.trans(scale * r * c), u, input_precision=PREC)
        acc_c += tl.dot(tl.trans(a * c), v, input_precision=PREC)
    ptr = offs_n[:, None] * H + offs_h[None, :]
    m = mn[:, None] & mh[None, :]
    tl.atomic_add(DWG + ptr, acc_g, mask=m)
    tl.atomic_add(DWC + ptr, acc_c, mask=m)


def _config(B: int, N: int, H: int):
    block_h = max(16, triton.next_power_of_2(H))
    if block_h > 256:
        raise ValueError(f"the fused Triton kernel supports h <= 256, got h={H}")
    block_b = 16 if B <= 16 else (32 if B <= 32 else 64)
    block_n = 64 if block_h <= 64 else 32
    return block_b, block_n, block_h


def _split(outer: int, inner_tiles: int, target: int = 528):
    """Split the reduction so that ~4 programs per H100 SM run: returns (tiles per program, splits)."""
    splits = max(1, min(inner_tiles, triton.cdiv(target, max(outer, 1))))
    tiles = triton.cdiv(inner_tiles, splits)
    return tiles, triton.cdiv(inner_tiles, tiles)


def _stages(x: Tensor, cfg, prec) -> int:
    """Pipeline stages of the reduction loops that fit the device's shared memory (the B >= 2560 fp32 crash:
    3 stages of 3xTF32 tiles need 256 KiB, an H100/H200 block has 227 KiB).
    """
    bb, bn, bh = cfg
    return choose_stages(max(bb, bn), max(bb, bn), bh, operand_bytes(x.dtype, prec), shared_memory_limit(x.device))


def _reduce(x, c, w, wg, wc, weight: int, mult: float, cfg, prec) -> Tensor:
    B, N = x.shape
    H = wg.size(1)
    bb, bn, bh = cfg
    U = torch.zeros(B, H, device=x.device, dtype=torch.float32)
    tiles, splits = _split(triton.cdiv(B, bb), triton.cdiv(N, bn))
    launch(
        _reduce_genes,
        (triton.cdiv(B, bb), splits),
        x,
        c,
        w if w is not None else x,
        wg,
        wc,
        U,
        B,
        N,
        H,
        mult,
        tiles,
        stages=_stages(x, cfg, prec),
        WEIGHT=weight,
        BLOCK_B=bb,
        BLOCK_N=bn,
        BLOCK_H=bh,
        PREC=prec,
    )
    return U


class FusedLinearAttention(torch.autograd.Function):
    """Autograd function of the fused linear kernels (prior term excluded, see module doc)."""

    @staticmethod
    def forward(
        ctx, x: Tensor, c: Tensor, w_gene: Tensor, w_cond: Tensor, deg: Optional[Tensor], rowsum: bool, scale: float
    ) -> Tensor:
        x, c, w_gene, w_cond = (t.contiguous() for t in (x, c, w_gene, w_cond))
        B, N = x.shape
        H = w_gene.size(1)
        cfg = _config(B, N, H)
        prec = dot_precision(x.dtype)
        U = _reduce(x, c, None, w_gene, w_cond, 0 if rowsum else 1, 1.0, cfg, prec)
        if rowsum and deg is None:
            deg = torch.zeros(N, device=x.device, dtype=torch.float32)
        out = torch.empty_like(x)
        bb, bn, bh = cfg
        _fwd_out[(triton.cdiv(B, bb), triton.cdiv(N, bn))](
            x,
            c,
            U,
            w_gene,
            w_cond,
            deg if rowsum else x,
            out,
            B,
            N,
            H,
            scale,
            ROWSUM=rowsum,
            BLOCK_B=bb,
            BLOCK_N=bn,
            BLOCK_H=bh,
            PREC=prec,
        )
        ctx.save_for_backward(x, c, w_gene, w_cond, U, deg if rowsum else None)
        ctx.rowsum, ctx.scale, ctx.cfg, ctx.prec = rowsum, scale, cfg, prec
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        x, c, w_gene, w_cond, U, deg = ctx.saved_tensors
        rowsum, scale, cfg, prec = ctx.rowsum, ctx.scale, ctx.cfg, ctx.prec
        g = g.contiguous()
        B, N = x.shape
        H = w_gene.size(1)
        bb, bn, bh = cfg
        r = (g * x).contiguous() if rowsum else g
        V = _reduce(x, c, r, w_gene, w_cond, 2, scale, cfg, prec)
        dx = torch.empty(B, N, device=x.device, dtype=torch.float32)
        dc = torch.empty_like(dx)
        dg = deg if rowsum else x
        _bwd_inputs[(triton.cdiv(B, bb), triton.cdiv(N, bn))](
            x,
            c,
            g,
            U,
            V,
            w_gene,
            w_cond,
            dg,
            dx,
            dc,
            B,
            N,
            H,
            scale,
            ROWSUM=rowsum,
            BLOCK_B=bb,
            BLOCK_N=bn,
            BLOCK_H=bh,
            PREC=prec,
        )
        dwg = torch.zeros(N, H, device=x.device, dtype=torch.float32)
        dwc = torch.zeros_like(dwg)
        tiles, splits = _split(triton.cdiv(N, bn), triton.cdiv(B, bb))
        launch(
            _bwd_weights,
            (triton.cdiv(N, bn), splits),
            x,
            c,
            g,
            U,
            V,
            dwg,
            dwc,
            B,
            N,
            H,
            scale,
            tiles,
            stages=_stages(x, cfg, prec),
            ROWSUM=rowsum,
            BLOCK_B=bb,
            BLOCK_N=bn,
            BLOCK_H=bh,
            PREC=prec,
        )
        return (dx.to(x.dtype), dc.to(c.dtype), dwg.to(w_gene.dtype), dwc.to(w_cond.dtype), None, None, None)


def fused_linear_attention(
    x: Tensor, c: Tensor, w_gene: Tensor, w_cond: Tensor, edges, reduce: str = "matmul", scale: Optional[float] = None
) -> Tensor:
    """``out [B, N]`` of the linear layer with ``q = x ⊙ W_gene + c ⊙ W_cond`` never materialised.

    Args:
        x: ``[B, N]`` gene values (expression).
        c: ``[B, N]`` condition representation (the CCE output ``D``).
        w_gene, w_cond: ``[N, h]`` gene-specific expansion weights.
        edges: ``(edge_index, edge_weight)`` of the prior or ``None``.
        reduce: ``"matmul"`` or ``"rowsum"``.
        scale: score scale (default ``1/sqrt(h)``).
    """
    from csg2a_graph.ops.reference import prior_matmul, prior_rowsum

    H = w_gene.size(1)
    scale = 1.0 / H**0.5 if scale is None else float(scale)
    if reduce == "rowsum":
        deg = prior_rowsum(edges, x.size(1), torch.float32, x.device).detach()
        return FusedLinearAttention.apply(x, c, w_gene, w_cond, deg, True, scale)
    out = FusedLinearAttention.apply(x, c, w_gene, w_cond, None, False, scale)
    if edges is not None:
        out = out + prior_matmul(edges, x.unsqueeze(-1)).squeeze(-1)
    return out


__all__ = ["fused_linear_attention", "FusedLinearAttention"]
