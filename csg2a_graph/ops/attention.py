"""The dispatcher: ``csg2a_attention()`` and how it picks a path (see ``csg2a_graph.ops``)."""

from __future__ import annotations

import os
from typing import Optional

from torch import Tensor

from csg2a_graph.errors import EnvironmentProblem
from csg2a_graph.ops._checks import as_edges, check_inputs, default_scale, restore
from csg2a_graph.ops.factorized import factorized_linear
from csg2a_graph.ops.reference import chunked_dense, dense_reference, edgewise
from csg2a_graph.typing import IMPLS, WITH_TRITON, Prior, check_choice


def triton_usable(t: Tensor) -> bool:
    """Triton kernels run on CUDA tensors, or anywhere under ``TRITON_INTERPRET=1`` (tests)."""
    return WITH_TRITON and (t.is_cuda or os.environ.get("TRITON_INTERPRET") == "1")


def choose_impl(q: Tensor, score: str, support: str) -> str:
    if support == "prior":
        return "edgewise"
    if score == "linear":
        return "factorized"
    return "triton" if (q.is_cuda and triton_usable(q)) else "chunked"


def _check_impl(impl: str, score: str, support: str, q: Tensor) -> None:
    check_choice("impl", impl, IMPLS)
    if impl == "factorized" and (score != "linear" or support != "dense"):
        raise ValueError(
            f"impl='factorized' exists only for score='linear', support='dense' (no factorisation of "
            f"score={score!r}, support={support!r}); use 'chunked', 'triton' or 'edgewise'"
        )
    if impl in ("chunked", "triton") and support != "dense":
        raise ValueError(f"impl={impl!r} computes dense support; for support='prior' use impl='edgewise'")
    if impl == "edgewise" and support != "prior":
        raise ValueError("impl='edgewise' computes support='prior' only")
    if impl == "triton":
        if score == "linear":
            raise ValueError(
                "for score='linear' the Triton kernel is the fused layer kernel, which builds q from "
                "the layer weights: use CSG2AConv or ops.triton.fused_linear_attention; "
                "impl='factorized' is exact and as fast given q"
            )
        if not triton_usable(q):
            raise EnvironmentProblem(
                "impl='triton' needs Triton and a CUDA tensor (or TRITON_INTERPRET=1 set before "
                "import, for CPU tests)"
                + ("" if WITH_TRITON else "; Triton is not installed: pip install 'csg2a-graph[triton]'")
            )


def csg2a_attention(
    q: Tensor,
    x: Tensor,
    prior: Prior = None,
    *,
    score: str = "linear",
    support: str = "dense",
    reduce: str = "matmul",
    scale: Optional[float] = None,
    impl: Optional[str] = None,
    validate: bool = True,
    block_size: int = 256,
) -> Tensor:
    r"""CSG²A gene-gene attention applied to ``x``.

    Args:
        q: ``[B, N, h]`` (or ``[N, h]``) gene representations.
        x: ``[B, N]`` or ``[B, N, F]`` (or unbatched) gene values.
        prior: ``(edge_index, edge_weight)`` (``j -> i`` means ``A[i, j]``), a torch
            sparse ``[N, N]`` tensor, or ``None``.
        score: ``"linear"`` (paper), ``"softmax"`` (row-wise) or ``"sigmoid"``.
        support: ``"dense"`` (all gene pairs) or ``"prior"`` (prior edges only).
        reduce: ``"matmul"`` (``S x``, the paper's text) or ``"rowsum"``
            (``x ⊙ S 1``, the authors' released code).
        scale: score scale, default ``1/sqrt(h)``.
        impl: force a path (see the module table); an unsupported combination raises.
        validate: check for NaN (costs a device sync on GPU).
        block_size: rows per block of the ``chunked`` path.

    Returns:
        Tensor shaped like ``x``.
    """
    q3, x3, sb, sf = check_inputs(q, x, score, support, reduce, validate)
    N, h = q3.size(1), q3.size(2)
    edges = as_edges(prior, N, device=q3.device, dtype=q3.dtype)
    if support == "prior" and validate and edges is not None and edges[0].numel():
        key = edges[0][1] * N + edges[0][0]
        if key.unique().numel() != key.numel():
            raise ValueError(
                "the prior has duplicate edges; coalesce it first "
                "(torch_geometric.utils.coalesce) so each gene pair is scored once"
            )
    s = default_scale(h, scale)
    impl = impl or choose_impl(q3, score, support)
    _check_impl(impl, score, support, q3)
    if impl == "factorized":
        out = factorized_linear(q3, x3, edges, reduce, s)
    elif impl == "chunked":
        out = chunked_dense(q3, x3, edges, score, reduce, s, block_size)
    elif impl == "edgewise":
        out = edgewise(q3, x3, edges, score, reduce, s)
    elif impl == "triton":
        from csg2a_graph.ops.triton.flash import flash_attention

        out = flash_attention(q3, x3, edges, score, reduce, s)
    else:
        out = dense_reference(q3, x3, edges, score, support, reduce, s)
    return restore(out, sb, sf)


__all__ = ["csg2a_attention", "choose_impl", "triton_usable", "IMPLS"]
