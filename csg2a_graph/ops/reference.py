r"""Plain PyTorch definitions of the CSG²A gene-gene attention.

For one sample, with gene representation $q \in \mathbb{R}^{N\times h}$,
values $x \in \mathbb{R}^{N\times F}$ and prior $A$ (``A[i, j]`` is
the weight of edge ``j -> i``):

$$
S = \phi(q q^\top \cdot \mathrm{scale}) + A, \qquad
\mathrm{out} = S x \;(\texttt{matmul}) \quad\text{or}\quad
\mathrm{out}_i = x_i \textstyle\sum_j S_{ij} \;(\texttt{rowsum})
$$

``phi`` is the identity (``linear``, the paper), a row softmax or an elementwise
sigmoid. With ``support="prior"`` the scores exist only on prior edges (softmax
over each gene's prior neighbours).

This module holds

- ``dense_reference()``: the definition, materialising ``[B, N, N]``: for
  tests and tiny N;
- ``chunked_dense()``: the CPU path for non-linear dense scores. Rows are
  processed in blocks under activation checkpointing, so at most one
  ``[B, block, N]`` block of scores is alive in the forward *and* the backward;
- ``edgewise()``: ``support="prior"``: an SDDMM over the edges and a
  scatter, ``O(B * E * h)``.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from csg2a_graph.typing import WITH_TORCH_SCATTER

Edges = Optional[Tuple[Tensor, Tensor]]


def dense_prior(edges: Edges, num_genes: int, dtype, device) -> Tensor:
    """The prior as a dense ``[N, N]`` matrix (``A[dst, src] += w``)."""
    A = torch.zeros(num_genes, num_genes, dtype=dtype, device=device)
    if edges is not None and edges[0].numel():
        (src, dst), w = edges
        A = A.index_put((dst, src), w.to(dtype), accumulate=True)
    return A


def prior_mask(edges: Edges, num_genes: int, device) -> Tensor:
    M = torch.zeros(num_genes, num_genes, dtype=torch.bool, device=device)
    if edges is not None and edges[0].numel():
        M[edges[0][1], edges[0][0]] = True
    return M


def dense_scores(q: Tensor, score: str, scale: float, mask: Optional[Tensor] = None) -> Tensor:
    r"""$\phi(q q^T \cdot scale)$ as ``[B, N, N]`` (zero outside ``mask`` when given)."""
    s = torch.matmul(q, q.transpose(-1, -2)) * scale
    if score == "linear":
        return s if mask is None else s * mask
    if score == "sigmoid":
        p = torch.sigmoid(s)
        return p if mask is None else p * mask
    if mask is None:
        return torch.softmax(s, dim=-1)
    s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    return torch.nan_to_num(p, nan=0.0)  # rows without any prior edge


def dense_reference(
    q: Tensor,
    x: Tensor,
    edges: Edges,
    score: str = "linear",
    support: str = "dense",
    reduce: str = "matmul",
    scale: float = 1.0,
) -> Tensor:
    """The definition. ``q [B, N, h]``, ``x [B, N, F]`` -> ``[B, N, F]``."""
    N = q.size(1)
    mask = prior_mask(edges, N, q.device) if support == "prior" else None
    S = dense_scores(q, score, scale, mask) + dense_prior(edges, N, q.dtype, q.device)
    if reduce == "matmul":
        return torch.matmul(S, x)
    return x * S.sum(-1, keepdim=True)


def prior_matmul(edges: Edges, x: Tensor) -> Tensor:
    """``A x`` for ``x [B, N, F]`` by gather-scatter, ``O(B * E * F)``; differentiable in ``x`` and the weights."""
    if edges is None or edges[0].numel() == 0:
        return torch.zeros_like(x)
    (src, dst), w = edges
    msg = x.index_select(1, src) * w.to(x.dtype).view(1, -1, 1)
    return torch.zeros_like(x).index_add_(1, dst, msg)


def prior_rowsum(edges: Edges, num_genes: int, dtype, device) -> Tensor:
    """``A 1``: the weighted in-degree of each gene, ``[N]``."""
    out = torch.zeros(num_genes, dtype=dtype, device=device)
    if edges is None or edges[0].numel() == 0:
        return out
    return out.index_add_(0, edges[0][1], edges[1].to(dtype))


def _block(q_rows: Tensor, q: Tensor, x: Tensor, A_rows: Tensor, score: str, scale: float, reduce: str) -> Tensor:
    s = torch.matmul(q_rows, q.transpose(-1, -2)) * scale  # [B, blk, N]
    p = torch.softmax(s, dim=-1) if score == "softmax" else (torch.sigmoid(s) if score == "sigmoid" else s)
    if reduce == "matmul":
        return torch.matmul(p, x)
    return p.sum(-1, keepdim=True)


def chunked_dense(
    q: Tensor, x: Tensor, edges: Edges, score: str, reduce: str, scale: float, block_size: int = 256
) -> Tensor:
    """Dense support, any score, rows in blocks; exact, memory ``O(B * block * N)``.

    Each block runs under ``torch.utils.checkpoint.checkpoint()``, so its
    scores are recomputed in the backward instead of being stored.
    """
    B, N, _ = q.shape
    outs = []
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or x.requires_grad)
    for r0 in range(0, N, block_size):
        r1 = min(r0 + block_size, N)
        args: tuple = (q[:, r0:r1], q, x, None, score, scale, reduce)
        if needs_grad:
            outs.append(checkpoint(_block, *args, use_reentrant=False))
        else:
            outs.append(_block(*args))
    phi = torch.cat(outs, dim=1)  # [B, N, F] (matmul) or [B, N, 1] (rowsum)
    if reduce == "matmul":
        return phi + prior_matmul(edges, x)
    deg = prior_rowsum(edges, N, q.dtype, q.device).view(1, N, 1)
    return x * (phi + deg)


def segment_softmax(s: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    """Softmax of ``s [B, E]`` over edges grouped by ``index`` (the target gene).

    Uses torch-scatter's ``scatter_softmax`` when it is installed, PyG's
    torch-native ``torch_geometric.utils.softmax()`` otherwise.
    """
    if WITH_TORCH_SCATTER:
        from torch_scatter import scatter_softmax

        return scatter_softmax(s, index, dim=1, dim_size=num_nodes)
    return segment_softmax_native(s, index, num_nodes)


def segment_softmax_native(s: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    from torch_geometric.utils import softmax

    return softmax(s.transpose(0, 1), index, num_nodes=num_nodes, dim=0).transpose(0, 1)


def edge_scores(
    q: Tensor, edges: Tuple[Tensor, Tensor], score: str, scale: float, num_genes: int, softmax_fn=segment_softmax
) -> Tensor:
    r"""$\phi(q_i \cdot q_j \cdot scale)$ on each edge ``j -> i``: ``[B, E]`` (an SDDMM)."""
    (src, dst), _ = edges
    s = (q.index_select(1, dst) * q.index_select(1, src)).sum(-1) * scale
    if score == "sigmoid":
        return torch.sigmoid(s)
    if score == "softmax":
        return softmax_fn(s, dst, num_genes)
    return s


def edgewise(
    q: Tensor, x: Tensor, edges: Edges, score: str, reduce: str, scale: float, softmax_fn=segment_softmax
) -> Tensor:
    """``support="prior"``: scores on prior edges only. ``O(B * E * h)`` time and memory."""
    B, N, _ = q.shape
    if edges is None or edges[0].numel() == 0:
        return x * 0.0  # no support: S = 0 (kept in the graph so gradients are zeros, not missing)
    (src, dst), w = edges
    S = edge_scores(q, edges, score, scale, N, softmax_fn) + w.to(q.dtype)  # [B, E]
    if reduce == "matmul":
        msg = S.unsqueeze(-1) * x.index_select(1, src)
        return torch.zeros_like(x).index_add_(1, dst, msg)
    rows = torch.zeros(B, N, dtype=S.dtype, device=S.device).index_add_(1, dst, S)
    return x * rows.unsqueeze(-1)


__all__ = [
    "dense_reference",
    "chunked_dense",
    "edgewise",
    "edge_scores",
    "dense_prior",
    "dense_scores",
    "prior_matmul",
    "prior_rowsum",
    "segment_softmax",
    "segment_softmax_native",
]
