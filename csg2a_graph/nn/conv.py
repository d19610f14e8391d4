"""The CSG²A gene-gene attention layer as a PyG ``MessagePassing`` module."""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from csg2a_graph.data.prior import batched_prior
from csg2a_graph.errors import InputTypeError
from csg2a_graph.ops._checks import check_finite
from csg2a_graph.ops.attention import choose_impl, csg2a_attention, triton_usable
from csg2a_graph.ops.attention_map import _softmax_lse
from csg2a_graph.ops.factorized import expanded_linear
from csg2a_graph.ops.reference import edge_scores, segment_softmax
from csg2a_graph.typing import IMPLS, REDUCES, SCORES, SUPPORTS, WITH_TRITON, check_choice

if WITH_TRITON:  # imported here, not in forward: no import per call (torch.jit / torch.compile trace it)
    from csg2a_graph.ops.triton.fused_linear import fused_linear_attention
else:  # pragma: no cover - without Triton the fused path is never chosen
    fused_linear_attention = None  # type: ignore[assignment]


def _compiling() -> bool:
    return bool(torch.compiler.is_compiling())


class CSG2AConv(MessagePassing):
    r"""Condition-specific gene-gene attention (CSG²A) from
    `Bang et al., "Multi-scale drug response modelling with condition-specific
    gene-gene attention" <https://github.com/eugenebang/CSG2A>`_.

    Every sample is a graph over the same ``N`` genes. Each gene gets a
    condition-specific representation from gene-specific weights (one row per
    gene), the genes attend to each other, and a prior graph (STRING) is added:

    $$
    q_{b,i} = x_{b,i} W^{gene}_i + c_{b,i} W^{cond}_i \in \mathbb{R}^h
    $$

    $$
    S_b = \phi\!\left(q_b q_b^\top / \sqrt{h}\right) + A, \qquad
    \mathbf{x}'_b = S_b\, \mathbf{x}_b \;\;(\texttt{matmul})
    \quad\text{or}\quad
    \mathbf{x}'_{b,i} = \mathbf{x}_{b,i} \textstyle\sum_j S_{b,ij} \;\;(\texttt{rowsum})
    $$

    with $\phi$ the identity (``score="linear"``, the paper), a row
    softmax or a sigmoid, and $A$ the prior given by ``edge_index`` /
    ``edge_weight`` ($A_{ij}$ = weight of edge ``j -> i``). With
    ``support="prior"`` the attention exists only on prior edges. For
    $F > 1$ input channels $W^{gene}_i \in \mathbb{R}^{F\times h}$
    is a per-gene linear map and an output projection ``F -> out_channels`` follows.

    The layer never materialises the ``B x N x N`` attention for the linear
    score (exact factorisation, or the fused Triton kernel on CUDA); see
    ``csg2a_graph.ops`` for the paths.

    Args:
        num_genes (int): ``N``, genes per sample.
        hidden_channels (int): ``h``. (default: ``64``)
        in_channels (int): ``F``, channels per gene. (default: ``1``)
        out_channels (int, optional): output channels; ``None`` keeps ``F``
            without a projection. (default: ``None``)
        cond_channels (int): channels of the condition ``c`` per gene (the
            chemical condition encoder's output ``D`` has 1); ``0`` disables it.
            (default: ``1``)
        score (str): ``"linear"``, ``"softmax"`` or ``"sigmoid"``. (default: ``"linear"``)
        support (str): ``"dense"`` or ``"prior"``. (default: ``"dense"``)
        reduce (str): ``"matmul"`` or ``"rowsum"``. (default: ``"matmul"``)
        scale (float, optional): score scale. (default: ``1/sqrt(h)``)
        bias (bool): bias of the output projection. (default: ``True``)
        impl (str, optional): force a path of ``csg2a_graph.ops.csg2a_attention()``
            or ``"triton"`` for the fused kernel. (default: automatic)
        validate (bool, optional): check ``x`` and ``cond`` for NaN and inf (one NaN gene
            would otherwise turn every gene of its sample NaN). ``None`` checks CPU inputs
            only, since on a GPU the check costs a device sync; ``True`` always, ``False`` never.
            (default: ``None``)

    Shapes (the input's rank decides how ``edge_index`` is read; nothing is guessed from its values):
        - **input:** node features $(B \cdot N, F)$ with genes of each sample
          consecutive (PyG batching, ``edge_index`` $(2, B \cdot E)$ over all
          nodes, as for every PyG conv) or dense $(B, N, F)$ with one gene-level
          ``edge_index`` $(2, E)$ over the ``N`` genes, shared by all samples; ``edge_weight`` $(B \cdot E)$ or $(E)$;
          ``cond`` $(B \cdot N)$, $(B, N)$ or with a trailing ``cond_channels`` axis.
        - **output:** $(B \cdot N, F')$ or $(B, N, F')$; with
          ``return_attention_weights=True`` also ``(edge_index, alpha)`` where
          ``alpha`` holds $S_{b,ij}$ on every input edge: the returned
          ``edge_index`` is the one given, and ``alpha`` has one entry per its edge
          ($(B \cdot E)$ for flat input) or per edge and sample ($(B, E)$ dense).

    Example:
        >>> conv = CSG2AConv(num_genes=978, hidden_channels=64)
        >>> out = conv(x, string_edge_index, cond=drug_condition)   # x: [B, 978, 1]
    """

    def __init__(
        self,
        num_genes: int,
        hidden_channels: int = 64,
        in_channels: int = 1,
        out_channels: Optional[int] = None,
        cond_channels: int = 1,
        score: str = "linear",
        support: str = "dense",
        reduce: str = "matmul",
        scale: Optional[float] = None,
        bias: bool = True,
        impl: Optional[str] = None,
        validate: Optional[bool] = None,
    ):
        super().__init__(aggr="add", node_dim=0)
        for name, v in (("num_genes", num_genes), ("hidden_channels", hidden_channels), ("in_channels", in_channels)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if out_channels is not None and (
            isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels < 1
        ):
            raise ValueError(f"out_channels must be a positive integer or None, got {out_channels!r}")
        if isinstance(cond_channels, bool) or not isinstance(cond_channels, int) or cond_channels < 0:
            raise ValueError(f"cond_channels must be an integer >= 0, got {cond_channels!r}")
        self.validate = validate
        check_choice("score", score, SCORES)
        check_choice("support", support, SUPPORTS)
        check_choice("reduce", reduce, REDUCES)
        if impl is not None:
            check_choice("impl", impl, IMPLS + ("expanded",))
        self.num_genes, self.hidden_channels = num_genes, hidden_channels
        self.in_channels, self.cond_channels = in_channels, cond_channels
        self.out_channels = out_channels
        self.score, self.support, self.reduce, self.impl = score, support, reduce, impl
        self.scale = 1.0 / math.sqrt(hidden_channels) if scale is None else float(scale)
        self.w_gene = nn.Parameter(torch.empty(num_genes, in_channels, hidden_channels))
        self.w_cond = nn.Parameter(torch.empty(num_genes, cond_channels, hidden_channels)) if cond_channels else None
        self.lin = nn.Linear(in_channels, out_channels, bias=bias) if out_channels is not None else None
        self._edge_cache: Tuple = (None, None, None)
        self._checked: Tuple = (None, None)  # the edge_index last validated, and for which (B, N, dense, version)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        fan = self.in_channels + self.cond_channels
        bound = math.sqrt(3.0 / fan)  # unit-variance q for unit-variance inputs
        nn.init.uniform_(self.w_gene, -bound, bound)
        if self.w_cond is not None:
            nn.init.uniform_(self.w_cond, -bound, bound)
        if self.lin is not None:
            self.lin.reset_parameters()

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(genes={self.num_genes}, {self.in_channels}, "
            f"{self.out_channels or self.in_channels}, hidden={self.hidden_channels}, score={self.score}, "
            f"support={self.support}, reduce={self.reduce})"
        )

    # ----------------------------------------------------------------- helpers
    def _validate(self, x: Tensor) -> bool:
        if _compiling():  # a value check is a host sync and a graph break: compiled code skips it
            return False
        return (not x.is_cuda) if self.validate is None else bool(self.validate)

    def _check_edges(self, edge_index: Tensor, B: int, N: int, dense: bool) -> None:
        """Validate ``edge_index`` against the input once per tensor (and per ``B``/rank): the check reads its
        values (a host sync), so it runs when a new prior or batch shape arrives, not every step, and never
        under ``torch.compile``.
        """
        if _compiling() or edge_index.numel() == 0:
            return
        key = (B, N, dense, edge_index._version)
        if self._checked[0] is edge_index and self._checked[1] == key:
            return
        lo, hi = int(edge_index.min()), int(edge_index.max())
        limit = N if dense else B * N
        if hi >= limit or lo < 0:
            what = (
                f"{N} genes (dense x takes a gene-level prior)"
                if dense
                else f"{B} x {N} nodes (flat x takes PyG's batched edge_index; pass x as [B, N, F] "
                "for one gene-level prior shared by all samples)"
            )
            raise ValueError(f"edge_index refers to node {lo if lo < 0 else hi} but there are {what}")
        if not dense and B > 1 and hi < N:  # legal (only graph 0 has edges) but almost always a gene-level prior
            import warnings

            warnings.warn(
                f"x is flat ({B} samples x {N} genes as PyG nodes) but edge_index only joins nodes of the "
                f"first sample (max {hi} < {N}): the prior reaches sample 0 only. For one gene-level prior "
                "shared by all samples pass x as [B, N, F], or batch it for flat x with "
                "csg2a_graph.data.batched_prior(edge_index, edge_weight, B, N)",
                UserWarning,
                stacklevel=4,
            )
        self._checked = (edge_index, key)

    def gene_representation(self, x: Tensor, cond: Optional[Tensor]) -> Tensor:
        """``q [B, N, h]`` from ``x [B, N, F]`` and ``cond [B, N, C]``."""
        # one channel (the paper's layer): a broadcast product; einsum would run N tiny matmuls
        if x.size(-1) == 1:
            q = x * self.w_gene[:, 0]
        else:
            q = torch.einsum("bnf,nfh->bnh", x, self.w_gene)
        if self.w_cond is not None and cond is not None:
            if cond.size(-1) == 1:
                q = torch.addcmul(q, cond, self.w_cond[:, 0])
            else:
                q = q + torch.einsum("bnc,nch->bnh", cond, self.w_cond)
        return q

    def _batched_edges(self, edge_index: Tensor, B: int, N: int) -> Tensor:
        # cached per (the same tensor object, B): the prior is usually one tensor reused every step;
        # identity, not the data pointer, so a new tensor at a recycled address is never mistaken for it
        if _compiling():  # a compiled graph bakes the offsets in; the Python-side cache is not traced
            return batched_prior(edge_index, None, B, N)[0]
        src, key, out = self._edge_cache
        if src is edge_index and key == (B, N, edge_index._version):
            return out
        out = batched_prior(edge_index, None, B, N)[0]
        self._edge_cache = (edge_index, (B, N, edge_index._version), out)
        return out

    def _shape(
        self,
        x: Tensor,
        edge_index: Optional[Tensor],
        edge_weight: Optional[Tensor],
        cond: Optional[Tensor],
        batch: Optional[Tensor],
    ):
        N = self.num_genes
        dense = isinstance(x, Tensor) and x.dim() == 3
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise InputTypeError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
        if x.dtype != self.w_gene.dtype and not torch.is_autocast_enabled(x.device.type):  # autocast casts itself
            raise InputTypeError(
                f"x is {x.dtype} but the layer's parameters are {self.w_gene.dtype}; "
                f"cast one of them (x.to({self.w_gene.dtype}) or conv.to({x.dtype}))"
            )
        if x.dim() == 2 and self.in_channels == 1 and x.size(1) == N and N > 1:
            x = x.unsqueeze(-1)  # [B, N]: one channel per gene, read as dense [B, N, 1]
            dense = True
        if x.dim() == 3:
            B = x.size(0)
            if x.size(1) != N:
                raise ValueError(f"x has {x.size(1)} genes, the layer was built for num_genes={N}")
        elif x.dim() in (1, 2):
            if x.dim() == 1:
                x = x.unsqueeze(-1)
            if x.size(0) % N:
                raise ValueError(
                    f"x has {x.size(0)} nodes, not a multiple of num_genes={N}"
                    + (
                        "; for samples x genes [B, N] give x[:, :, None] ([B, N, 1])"
                        if x.dim() == 2 and x.size(1) == N
                        else ""
                    )
                )
            B = x.size(0) // N
            if batch is not None and batch.numel() and not _compiling() and int(batch.max()) + 1 != B:
                raise ValueError(f"batch says {int(batch.max()) + 1} graphs but x holds {B} x {N} genes")
            x = x.view(B, N, -1)
        else:
            raise ValueError(f"x must be [B*N, F] or [B*N] (PyG nodes) or [B, N, F] (dense), got {tuple(x.shape)}")
        if B == 0:
            raise ValueError("x holds no samples (an empty batch)")
        if x.size(-1) != self.in_channels:
            raise ValueError(f"x has {x.size(-1)} channels, the layer expects in_channels={self.in_channels}")
        if self._validate(x):
            check_finite("x", x)
            if cond is not None:
                check_finite("cond", cond)
        if edge_index is None:
            edge_index = torch.empty(2, 0, dtype=torch.long, device=x.device)
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"edge_index must be [2, E], got {tuple(edge_index.shape)}")
        E_in = edge_index.size(1)
        # No guessing: dense x takes a gene-level prior [2, E] over N genes (shared by all samples);
        # flat x takes PyG's batched edge_index over all B*N nodes, as every PyG conv does.
        per_gene = dense
        self._check_edges(edge_index, B, N, per_gene)
        if edge_weight is not None and edge_weight.numel() != E_in:
            raise ValueError(f"edge_weight has {edge_weight.numel()} entries for {E_in} edges")
        if per_gene and B > 1 and E_in:
            ei = self._batched_edges(edge_index, B, N)
            ew = None if edge_weight is None else edge_weight.repeat(B)
        else:
            ei, ew = edge_index, edge_weight
        if ew is None:
            ew = torch.ones(ei.size(1), device=x.device, dtype=x.dtype)
        if ew.numel() != ei.size(1):
            raise ValueError(f"edge_weight has {ew.numel()} entries for {ei.size(1)} edges")
        if cond is not None:
            if cond.dim() == 1 or (cond.dim() == 2 and cond.size(0) == B * N and tuple(cond.shape) != (B, N)):
                cond = cond.reshape(B, N, -1)
            elif cond.dim() == 2:
                cond = cond.unsqueeze(-1)
            if cond.shape[:2] != (B, N) or cond.size(-1) != self.cond_channels:
                raise ValueError(
                    f"cond must be [B, N] or [B, N, {self.cond_channels}] (or flattened), got {tuple(cond.shape)}"
                )
        return x, cond, ei, ew.to(x.dtype), B, per_gene

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        x: Tensor,
        edge_index: Optional[Tensor] = None,
        edge_weight: Optional[Tensor] = None,
        batch: Optional[Tensor] = None,
        cond: Optional[Tensor] = None,
        return_attention_weights: Optional[bool] = None,
    ) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]:
        """See the class docstring for shapes. ``edge_index`` is the prior."""
        in_dense = x.dim() == 3 or (
            x.dim() == 2 and self.in_channels == 1 and x.size(1) == self.num_genes and self.num_genes > 1
        )
        xd, cond, ei, ew, B, per_gene = self._shape(x, edge_index, edge_weight, cond, batch)
        N, F = self.num_genes, xd.size(-1)
        x_flat = xd.reshape(B * N, F)
        want_alpha = bool(return_attention_weights) or bool(self._message_forward_hooks)

        simple = self.score == "linear" and self.support == "dense" and F == 1 and self.cond_channels <= 1
        use_fused = (
            simple and self.impl in (None, "triton") and triton_usable(xd) and (xd.is_cuda or self.impl == "triton")
        )
        use_expanded = simple and not use_fused and self.impl in (None, "expanded")
        q = None
        c = cond[..., 0] if cond is not None else None
        wc = self.w_cond[:, 0] if self.w_cond is not None else None
        if use_fused:  # Triton: q built tile by tile in registers
            assert fused_linear_attention is not None
            c0 = c if c is not None else torch.zeros_like(xd[..., 0])
            wc0 = wc if wc is not None else torch.zeros_like(self.w_gene[:, 0])
            phi = fused_linear_attention(xd[..., 0], c0, self.w_gene[:, 0], wc0, None, self.reduce, self.scale)
            phi = phi.unsqueeze(-1)
        elif use_expanded:  # four [B, N] x [N, h] GEMMs, no [B, N, h] tensor
            phi = expanded_linear(xd[..., 0], c, self.w_gene[:, 0], wc, None, self.reduce, self.scale).unsqueeze(-1)
        else:
            q = self.gene_representation(xd, cond)
            if self.support == "dense":
                impl = self.impl or choose_impl(q, self.score, "dense")
                phi = csg2a_attention(
                    q,
                    xd,
                    None,
                    score=self.score,
                    support="dense",
                    reduce=self.reduce,
                    scale=self.scale,
                    impl=impl,
                    validate=False,
                )
            else:
                phi = None

        alpha = None
        if self.support == "prior" or want_alpha:
            if q is None:
                q = self.gene_representation(xd, cond)
            q_flat = q.reshape(1, B * N, -1)
            if self.support == "prior" or self.score != "softmax":
                s = edge_scores(q_flat, (ei, ew), self.score, self.scale, B * N, segment_softmax)[0]
            else:  # dense softmax: the edge's value of the full-row softmax
                lse = _softmax_lse(q, self.scale, 256).reshape(-1)
                s_raw = (q_flat[0, ei[1]] * q_flat[0, ei[0]]).sum(-1) * self.scale
                s = torch.exp(s_raw - lse[ei[1]])
            alpha = s + ew

        # prior term (and, for support="prior", the whole attention) by message passing
        weight = alpha if self.support == "prior" else ew
        if self.reduce == "matmul":
            agg = self.propagate(ei, x=x_flat, weight=weight, alpha=alpha, size=(B * N, B * N))
            out = agg.view(B, N, F)
            if phi is not None:
                out = out + phi
        else:
            ones = torch.ones(B * N, 1, device=x.device, dtype=x.dtype)
            rows = self.propagate(ei, x=ones, weight=weight, alpha=alpha, size=(B * N, B * N)).view(B, N, 1)
            out = xd * rows
            if phi is not None:
                out = out + phi

        if self.lin is not None:
            out = self.lin(out)
        if not in_dense:
            out = out.reshape(B * N, -1)
        if return_attention_weights:
            assert alpha is not None  # computed whenever the weights are asked for
            return out, (edge_index, alpha.view(B, -1) if in_dense else alpha)  # type: ignore[return-value]
        return out

    def message(self, x_j: Tensor, weight: Tensor, alpha: Optional[Tensor]) -> Tensor:
        return weight.unsqueeze(-1) * x_j


__all__ = ["CSG2AConv"]
