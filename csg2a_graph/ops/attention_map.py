"""Attention maps for interpretation: tiled materialisation, batch-mean maps, streaming top-k."""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from csg2a_graph.errors import EnvironmentProblem
from csg2a_graph.ops._checks import as_edges, check_finite, default_scale
from csg2a_graph.ops.attention import triton_usable
from csg2a_graph.ops.reference import dense_prior, dense_scores, edge_scores
from csg2a_graph.typing import Prior


def _acc(t: Tensor) -> torch.dtype:
    """The dtype maps are accumulated and returned in: float64 for float64 input, else float32 (half inputs
    accumulate in float32).
    """
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _map_rows(q: Tensor, score: str, scale: float, r0: int, r1: int, lse: Optional[Tensor], use_triton: bool) -> Tensor:
    """Rows ``r0:r1`` of the batch-mean map ``mean_b phi(q_b q_b^T scale)`` as ``[r, N]`` (float32; float64 for
    float64 ``q``).
    """
    if use_triton:
        from csg2a_graph.ops.triton.attention_map import mean_map_rows

        return mean_map_rows(q, score, scale, r0, r1 - r0, lse)
    B, N, h = q.shape
    if score == "linear":  # mean_b q_b q_b^T = Q_stack Q_stack^T / B: one Gram product
        qs = q.permute(1, 0, 2).reshape(N, B * h)
        return (qs[r0:r1] @ qs.T).to(_acc(q)) * (scale / B)
    s = torch.matmul(q[:, r0:r1], q.transpose(1, 2)) * scale
    p = torch.softmax(s, dim=-1) if score == "softmax" else torch.sigmoid(s)
    return p.mean(0).to(_acc(q))


def _softmax_lse(q: Tensor, scale: float, block: int) -> Tensor:
    B, N, _ = q.shape
    out = torch.empty(B, N, device=q.device, dtype=_acc(q))
    for r0 in range(0, N, block):
        s = torch.matmul(q[:, r0 : r0 + block], q.transpose(1, 2)).to(out.dtype) * scale
        out[:, r0 : r0 + block] = torch.logsumexp(s, dim=-1)
    return out


def attention_map(
    q: Tensor,
    prior: Prior = None,
    *,
    score: str = "linear",
    support: str = "dense",
    reduce_batch: Optional[str] = "mean",
    topk: Optional[int] = None,
    scale: Optional[float] = None,
    unique_pairs: Optional[bool] = None,
    block_size: int = 512,
    impl: Optional[str] = None,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    r"""Attention maps ``S = phi(q q^T scale) + A`` for interpretation.

    Args:
        q: ``[B, N, h]`` gene representations (e.g. of all samples of one drug).
        prior: as in ``csg2a_attention()``.
        score, support: as in ``csg2a_attention()``.
        reduce_batch: ``"mean"`` for the batch-mean map (for the linear score one
            Gram product of the stacked ``q``), ``None`` for per-sample maps.
        topk: return only the ``topk`` entries of largest ``|S_ij|`` (``i != j``),
            streaming row blocks so ``N x N`` is never held.
        unique_pairs: with ``topk``, count each unordered pair once (``i < j``);
            default ``True`` unless ``score="softmax"`` (not symmetric).
        block_size: rows per streamed block.
        impl: ``"triton"`` or ``"torch"`` (default: Triton on CUDA when available).

    Returns:
        Without ``topk``: ``[N, N]`` (mean) or ``[B, N, N]``; with ``support="prior"``
        the map is sparse and returned as ``(edge_index, values)`` with ``values``
        ``[E]`` or ``[B, E]``. With ``topk``: ``(index [2, k], values [k])`` where
        ``index[0]`` is the row gene ``i`` and ``index[1]`` the column gene ``j``
        (per sample: ``[B, 2, k]``, ``[B, k]``).
    """
    if q.dim() == 2:
        q = q.unsqueeze(0)
    if q.dim() != 3:
        raise ValueError(f"q must be [B, N, h], got {tuple(q.shape)}")
    if reduce_batch not in ("mean", None):
        raise ValueError(f"reduce_batch must be 'mean' or None, got {reduce_batch!r}")
    if score not in ("linear", "softmax", "sigmoid") or support not in ("dense", "prior"):
        raise ValueError(f"unknown score {score!r} or support {support!r}")
    if impl not in (None, "triton", "torch"):
        raise ValueError(f"attention_map impl must be 'triton', 'torch' or None, got {impl!r}")
    check_finite("q", q)
    B, N, h = q.shape
    s = default_scale(h, scale)
    edges = as_edges(prior, N, device=q.device, dtype=_acc(q))
    if unique_pairs is None:
        unique_pairs = score != "softmax"

    if support == "prior":
        if edges is None:
            raise ValueError("support='prior' needs a prior")
        vals = edge_scores(q.to(_acc(q)), edges, score, s, N) + edges[1]  # [B, E]
        if reduce_batch == "mean":
            vals = vals.mean(0)
        if topk is None:
            return edges[0], vals
        ei = edges[0]
        keep = (ei[0] != ei[1]) & ((ei[1] < ei[0]) if unique_pairs else torch.ones_like(ei[0], dtype=torch.bool))
        v = vals[..., keep]
        idx = torch.stack([ei[1, keep], ei[0, keep]])  # (row i = target, column j = source)
        k = min(topk, v.size(-1))
        top = v.abs().topk(k, dim=-1).indices
        if v.dim() == 1:
            return idx[:, top], v[top]
        return idx[:, top].permute(1, 0, 2), v.gather(1, top)

    if reduce_batch is None:
        if topk is None:
            A = dense_prior(edges, N, q.dtype, q.device)
            return dense_scores(q, score, s) + A
        res = [
            attention_map(
                q[b : b + 1],
                prior,
                score=score,
                reduce_batch="mean",
                topk=topk,
                scale=scale,
                unique_pairs=unique_pairs,
                block_size=block_size,
                impl=impl,
            )
            for b in range(B)
        ]
        return torch.stack([r[0] for r in res]), torch.stack([r[1] for r in res])

    use_triton = (impl == "triton") or (impl is None and q.is_cuda and triton_usable(q))
    if use_triton and not triton_usable(q):
        raise EnvironmentProblem("impl='triton' needs Triton and a CUDA tensor (or TRITON_INTERPRET=1)")
    lse = _softmax_lse(q, s, block_size) if score == "softmax" else None
    chunks = []
    best_v = torch.empty(0, device=q.device)
    best_i = torch.empty(2, 0, dtype=torch.long, device=q.device)
    for r0 in range(0, N, block_size):
        r1 = min(r0 + block_size, N)
        if score == "softmax" and not use_triton:
            assert lse is not None
            p = torch.exp(torch.matmul(q[:, r0:r1], q.transpose(1, 2)).to(lse.dtype) * s - lse[:, r0:r1, None]).mean(0)
        else:
            p = _map_rows(q, score, s, r0, r1, lse, use_triton)
        if edges is not None:
            (src, dst), w = edges
            sel = (dst >= r0) & (dst < r1)
            p = p.index_put((dst[sel] - r0, src[sel]), w[sel].to(p.dtype), accumulate=True)
        if topk is None:
            chunks.append(p)
            continue
        rows = torch.arange(r0, r1, device=q.device).view(-1, 1)
        cols = torch.arange(N, device=q.device).view(1, -1)
        valid = (cols > rows) if unique_pairs else (cols != rows)
        v = p.masked_fill(~valid, float("nan")).flatten()
        ok = ~torch.isnan(v)
        flat = torch.nonzero(ok).flatten()
        v = v[ok]
        k = min(topk, v.numel())
        top = v.abs().topk(k).indices
        cand_i = torch.stack([flat[top] // N + r0, flat[top] % N])
        best_v = torch.cat([best_v, v[top]])
        best_i = torch.cat([best_i, cand_i], dim=1)
        if best_v.numel() > topk:
            keep = best_v.abs().topk(topk).indices
            best_v, best_i = best_v[keep], best_i[:, keep]
    if topk is None:
        return torch.cat(chunks, dim=0)
    order = best_v.abs().argsort(descending=True)
    return best_i[:, order], best_v[order]


__all__ = ["attention_map"]
