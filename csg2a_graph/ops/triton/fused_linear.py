r"""Fused Triton kernel for the linear CSG²A layer with gene-specific expansion.

The layer's gene representation is ``q[b, i] = x[b, i] * W_gene[i] + c[b, i] * W_cond[i]``
(``W ∈ R^{N×h}``, one row per gene). The kernels build ``q`` tile by tile in
registers and contract it right away, so neither ``q`` (``B×N×h``) nor the
attention (``B×N×N``) is ever written to memory:

forward
    ``u_b = Σ_j q_bj a_bj`` (``a = x`` for ``matmul``, ``1`` for ``rowsum``): a reduction over genes;
    ``t_bi = scale · q_bi · u_b``; ``out = t + A x`` (``matmul``) or ``x ⊙ (t + A1)`` (``rowsum``).
backward (``g = ∂L/∂out``)
    ``r = g`` (``matmul``) or ``g ⊙ x`` (``rowsum``); ``v_b = scale Σ_i r_bi q_bi``;
    ``∂q_bi = scale r_bi u_b + a_bi v_b``; then ``∂x``, ``∂c``, ``∂W_gene``, ``∂W_cond`` from ``∂q``.

The sparse prior term ``A x`` is added by torch's gather-scatter outside the
kernel (it is ``O(E)`` and has its own autograd); ``A 1`` enters as a vector.

Limitations (said plainly): one input channel (``F = 1``, the paper's layer);
prior weights are constants in this path (their gradient is not computed);
fp32 accumulation for fp16/bf16 inputs; ``h <= 256``.
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _qt_reduce_kernel(X, C, WG, WC, A, U, N, H, mult,
                      USE_A: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr, TILES: tl.constexpr):
    """U[b, :] += mult * Σ_i q[b, i, :] * a[b, i] over this program's TILES row tiles."""
    b = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_h = tl.arange(0, BLOCK_H)
    mask_h = offs_h < H
    acc = tl.zeros([BLOCK_H], dtype=tl.float32)
    for t in range(TILES):
        offs_n = (pid_n * TILES + t) * BLOCK_N + tl.arange(0, BLOCK_N)
        mask_n = offs_n < N
        x = tl.load(X + b * N + offs_n, mask=mask_n, other=0.0).to(tl.float32)
        c = tl.load(C + b * N + offs_n, mask=mask_n, other=0.0).to(tl.float32)
        m2 = mask_n[:, None] & mask_h[None, :]
        wg = tl.load(WG + offs_n[:, None] * H + offs_h[None, :], mask=m2, other=0.0).to(tl.float32)
        wc = tl.load(WC + offs_n[:, None] * H + offs_h[None, :], mask=m2, other=0.0).to(tl.float32)
        q = x[:, None] * wg + c[:, None] * wc
        if USE_A:
            a = tl.load(A + b * N + offs_n, mask=mask_n, other=0.0).to(tl.float32)
            q = q * a[:, None]
        acc += tl.sum(q, axis=0)
    tl.atomic_add(U + b * H + offs_h, acc * mult, mask=mask_h)


@triton.jit
def _fwd_kernel(X, C, WG, WC, U, DEG, OUT, N, H, scale,
                ROWSUM: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr):
    b = tl.program_id(0)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_h = tl.arange(0, BLOCK_H)
    mask_n = offs_n < N
    mask_h = offs_h < H
    m2 = mask_n[:, None] & mask_h[None, :]
    x = tl.load(X + b * N + offs_n, mask=mask_n, other=0.0).to(tl.float32)
    c = tl.load(C + b * N + offs_n, mask=mask_n, other=0.0).to(tl.float32)
    wg = tl.load(WG + offs_n[:, None] * H + offs_h[None, :], mask=m2, other=0.0).to(tl.float32)
    wc = tl.load(WC + offs_n[:, None] * H + offs_h[None, :], mask=m2, other=0.0).to(tl.float32)
    u = tl.load(U + b * H + offs_h, mask=mask_h, other=0.0)
    q = x[:, None] * wg + c[:, None] * wc
    t = tl.sum(q * u[None, :], axis=1) * scale
    if ROWSUM:
        deg = tl.load(DEG + offs_n, mask=mask_n, other=0.0).to(tl.float32)
        t = x * (t + deg)
    tl.store(OUT + b * N + offs_n, t.to(OUT.dtype.element_ty), mask=mask_n)


@triton.jit
def _bwd_kernel(X, C, WG, WC, G, U, V, DEG, DX, DC, DWG, DWC, B, N, H, scale,
                ROWSUM: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr, B_PER_PROG: tl.constexpr):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    b0 = tl.program_id(1) * B_PER_PROG
    offs_h = tl.arange(0, BLOCK_H)
    mask_n = offs_n < N
    mask_h = offs_h < H
    m2 = mask_n[:, None] & mask_h[None, :]
    wg = tl.load(WG + offs_n[:, None] * H + offs_h[None, :], mask=m2, other=0.0).to(tl.float32)
    wc = tl.load(WC + offs_n[:, None] * H + offs_h[None, :], mask=m2, other=0.0).to(tl.float32)
    if ROWSUM:
        deg = tl.load(DEG + offs_n, mask=mask_n, other=0.0).to(tl.float32)
    acc_wg = tl.zeros([BLOCK_N, BLOCK_H], dtype=tl.float32)
    acc_wc = tl.zeros([BLOCK_N, BLOCK_H], dtype=tl.float32)
    for k in range(B_PER_PROG):
        b = b0 + k
        mrow = mask_n & ((tl.zeros([BLOCK_N], dtype=tl.int32) + b) < B)
        mh = mask_h & ((tl.zeros([BLOCK_H], dtype=tl.int32) + b) < B)
        x = tl.load(X + b * N + offs_n, mask=mrow, other=0.0).to(tl.float32)
        c = tl.load(C + b * N + offs_n, mask=mrow, other=0.0).to(tl.float32)
        g = tl.load(G + b * N + offs_n, mask=mrow, other=0.0).to(tl.float32)
        u = tl.load(U + b * H + offs_h, mask=mh, other=0.0)
        v = tl.load(V + b * H + offs_h, mask=mh, other=0.0)
        q = x[:, None] * wg + c[:, None] * wc
        if ROWSUM:
            r = g * x
            dq = scale * r[:, None] * u[None, :] + v[None, :]
            t = tl.sum(q * u[None, :], axis=1) * scale
            dx = g * (t + deg)
        else:
            dq = scale * g[:, None] * u[None, :] + x[:, None] * v[None, :]
            dx = tl.sum(q * v[None, :], axis=1)
        dq = tl.where(mrow[:, None], dq, 0.0)
        dx += tl.sum(dq * wg, axis=1)
        dc = tl.sum(dq * wc, axis=1)
        tl.store(DX + b * N + offs_n, dx, mask=mrow)
        tl.store(DC + b * N + offs_n, dc, mask=mrow)
        acc_wg += dq * x[:, None]
        acc_wc += dq * c[:, None]
    ptr = offs_n[:, None] * H + offs_h[None, :]
    tl.atomic_add(DWG + ptr, acc_wg, mask=m2)
    tl.atomic_add(DWC + ptr, acc_wc, mask=m2)


def _config(N: int, H: int):
    block_h = max(16, triton.next_power_of_2(H))
    if block_h > 256:
        raise ValueError(f"the fused Triton kernel supports h <= 256, got h={H}")
    block_n = 64 if block_h <= 64 else (32 if block_h <= 128 else 16)
    return block_n, block_h


def _reduce(x, c, wg, wc, a: Optional[Tensor], mult: float, block_n: int, block_h: int) -> Tensor:
    B, N = x.shape
    H = wg.size(1)
    U = torch.zeros(B, H, device=x.device, dtype=torch.float32)
    n_tiles = triton.cdiv(N, block_n)
    # enough programs to fill the GPU (~4 per SM for B >= 32), each reducing TILES tiles
    splits = max(1, min(n_tiles, triton.cdiv(512, max(B, 1))))
    tiles = triton.cdiv(n_tiles, splits)
    grid = (B, triton.cdiv(n_tiles, tiles))
    _qt_reduce_kernel[grid](x, c, wg, wc, a if a is not None else x, U, N, H, mult,
                            USE_A=a is not None, BLOCK_N=block_n, BLOCK_H=block_h, TILES=tiles)
    return U


class FusedLinearAttention(torch.autograd.Function):
    """Autograd function of the fused linear kernel (prior term excluded, see module doc)."""

    @staticmethod
    def forward(ctx, x: Tensor, c: Tensor, w_gene: Tensor, w_cond: Tensor, deg: Optional[Tensor],
                rowsum: bool, scale: float) -> Tensor:
        x, c, w_gene, w_cond = (t.contiguous() for t in (x, c, w_gene, w_cond))
        B, N = x.shape
        H = w_gene.size(1)
        block_n, block_h = _config(N, H)
        U = _reduce(x, c, w_gene, w_cond, None if rowsum else x, 1.0, block_n, block_h)
        out = torch.empty_like(x)
        if rowsum and deg is None:
            deg = torch.zeros(N, device=x.device, dtype=torch.float32)
        _fwd_kernel[(B, triton.cdiv(N, block_n))](x, c, w_gene, w_cond, U, deg if rowsum else x, out, N, H, scale,
                                                  ROWSUM=rowsum, BLOCK_N=block_n, BLOCK_H=block_h)
        ctx.save_for_backward(x, c, w_gene, w_cond, U, deg if rowsum else None)
        ctx.rowsum, ctx.scale, ctx.blocks = rowsum, scale, (block_n, block_h)
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        x, c, w_gene, w_cond, U, deg = ctx.saved_tensors
        rowsum, scale = ctx.rowsum, ctx.scale
        block_n, block_h = ctx.blocks
        g = g.contiguous()
        B, N = x.shape
        H = w_gene.size(1)
        r = g * x if rowsum else g
        V = _reduce(x, c, w_gene, w_cond, r.contiguous(), scale, block_n, block_h)
        dx = torch.empty(B, N, device=x.device, dtype=torch.float32)
        dc = torch.empty_like(dx)
        dwg = torch.zeros(N, H, device=x.device, dtype=torch.float32)
        dwc = torch.zeros_like(dwg)
        n_tiles = triton.cdiv(N, block_n)
        # ~4 programs per SM of an H100; each program accumulates dW over b_per samples
        b_per = max(1, min(32, (B * n_tiles) // 512))
        grid = (n_tiles, triton.cdiv(B, b_per))
        _bwd_kernel[grid](x, c, w_gene, w_cond, g, U, V, deg if rowsum else x, dx, dc, dwg, dwc, B, N, H, scale,
                          ROWSUM=rowsum, BLOCK_N=block_n, BLOCK_H=block_h, B_PER_PROG=b_per)
        return (dx.to(x.dtype), dc.to(c.dtype), dwg.to(w_gene.dtype), dwc.to(w_cond.dtype), None, None, None)


def fused_linear_attention(x: Tensor, c: Tensor, w_gene: Tensor, w_cond: Tensor, edges, reduce: str = "matmul",
                           scale: Optional[float] = None) -> Tensor:
    """``out [B, N]`` of the linear layer with ``q = x ⊙ W_gene + c ⊙ W_cond`` built on the fly.

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
    scale = 1.0 / H ** 0.5 if scale is None else float(scale)
    rowsum = reduce == "rowsum"
    if rowsum:
        deg = prior_rowsum(edges, x.size(1), torch.float32, x.device).detach()
        return FusedLinearAttention.apply(x, c, w_gene, w_cond, deg, True, scale)
    out = FusedLinearAttention.apply(x, c, w_gene, w_cond, None, False, scale)
    if edges is not None:
        out = out + prior_matmul(edges, x.unsqueeze(-1)).squeeze(-1)
    return out


__all__ = ["fused_linear_attention", "FusedLinearAttention"]
