"""Gene-gene attention of a CSG²A model: per-sample and per-drug mean maps, top gene pairs, and the
attention on the STRING prior's edges.

The map of pair ``b`` is ``S_b = q_b q_b^T / sqrt(h) + A`` with ``q_b`` the condition-specific gene
representation of ``CSG2AConv`` (paper Eq. 2). Per-drug maps average ``S_b``
over the drug's pairs; for the linear score that mean is one Gram product of the stacked ``q``
(``attention_map()``), and ``topk`` streams row blocks so ``N x N`` is never held.
``include_prior=False`` leaves ``A`` out: the prior is the same for every drug, so comparisons
between drugs (MoA analysis) use the learned part only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from csg2a_graph.errors import InputTypeError
from csg2a_graph.explain.attribution import _is_csg2a, _pretrained
from csg2a_graph.ops.attention_map import attention_map


def _check(model):
    if not _is_csg2a(model):
        raise ValueError(f"attention maps need a CSG2A model, got {type(model).__name__}")
    pre = _pretrained(model)
    if not pre.attention:
        raise ValueError("this CSG2A network was built with attention=False (the linear ablation): it has no map")
    return pre


class _Source:
    """Where the gene representations ``q`` come from: a CSG²A model of this package, or any model holding a
    ``CSG2AConv`` (``conv=``, found when it holds exactly one) with ``condition=`` (a
    function of a ``PairBatch`` giving the condition ``[B, N]`` or ``[B, N, C]``; needed
    when the conv has condition channels) and ``inputs=`` (the conv's input ``[B, N]``/``[B, N, F]``; default
    ``batch.expr``).
    """

    def __init__(self, model, conv=None, condition=None, inputs=None):
        self.model, self.ours = model, conv is None and _is_csg2a(model)
        if self.ours:
            self.pre = _check(model)
            self.conv = self.pre.conv
            return
        from csg2a_graph.nn import CSG2AConv

        if conv is None:
            convs = [m for m in model.modules() if isinstance(m, CSG2AConv)] if hasattr(model, "modules") else []
            if len(convs) != 1:
                raise ValueError(
                    f"{type(model).__name__} holds {len(convs)} CSG2AConv layers: pass conv= (the layer "
                    "whose attention to read) and condition= (batch -> its cond input)"
                )
            conv = convs[0]
        if not isinstance(conv, CSG2AConv):
            raise InputTypeError(f"conv must be a CSG2AConv, got {type(conv).__name__}")
        if conv.cond_channels and condition is None:
            raise ValueError("this CSG2AConv takes a condition: pass condition=lambda batch: <its cond [B, N]>")
        self.pre, self.conv, self.condition, self.inputs = None, conv, condition, inputs

    def _xc(self, batch):
        x = self.inputs(batch) if self.inputs is not None else batch.expr
        x = x.float()
        if x.dim() == 2:
            x = x.unsqueeze(-1)
        c = self.condition(batch) if self.condition is not None else None
        if c is not None and c.dim() == 2:
            c = c.unsqueeze(-1)
        return x, c

    def queries(self, batch) -> Tensor:
        with torch.no_grad():
            if self.ours:
                pre, model = self.pre, self.model
                cond = pre.condition(batch.drug_graph, batch.drug_index, batch.dose, batch.time)
                g = model.scale_input(batch.expr.float()) if pre is not model else batch.expr.float()
                return pre.conv.gene_representation(g.unsqueeze(-1), cond.unsqueeze(-1))
            x, c = self._xc(batch)
            return self.conv.gene_representation(x, c)

    def prior(self, include_prior: bool, prior=None):
        if self.ours:
            return _prior(self.pre, include_prior)
        return prior if include_prior else None

    def genes(self, measured_only: bool, dataset=None, genes=None):
        if self.ours:
            return map_genes(self.model, measured_only)
        n = self.conv.num_genes
        names = (
            list(genes)
            if genes is not None
            else (
                list(dataset.gene_space.genes)
                if dataset is not None and dataset.num_genes == n
                else [str(i) for i in range(n)]
            )
        )
        if len(names) != n:
            raise ValueError(f"genes= names {len(names)} genes, the conv has {n}")
        return torch.arange(n), names

    def edge_attention(self, batch, prior=None):
        with torch.no_grad():
            if self.ours:
                pre, model = self.pre, self.model
                if not (pre.use_prior and pre.prior_edge_index.numel()):
                    raise ValueError("this model has no prior edges")
                cond = pre.condition(batch.drug_graph, batch.drug_index, batch.dose, batch.time)
                g = model.scale_input(batch.expr.float()) if pre is not model else batch.expr.float()
                _, (ei, alpha) = pre.mix(g, cond, return_attention_weights=True)
                return ei, alpha
            if prior is None:
                raise ValueError("pass prior=(edge_index, edge_weight): the gene-level prior your model gives the conv")
            x, c = self._xc(batch)
            ei, ew = prior
            _, (ei, alpha) = self.conv(x, ei, ew, cond=c, return_attention_weights=True)
            return ei, alpha


def gene_queries(model, batch, *, conv=None, condition=None, inputs=None) -> Tensor:
    """``q [B, N, h]`` of a ``PairBatch``: over the pretrained gene space for our models,
    or of ``conv`` in any model (``condition=`` / ``inputs=``: see ``drug_attention_maps()``).
    """
    return _Source(model, conv, condition, inputs).queries(batch)


def _prior(pre, include_prior: bool):
    if include_prior and pre.use_prior and pre.prior_edge_index.numel():
        return pre.prior_edge_index, pre.prior_edge_weight
    return None


@dataclass
class DrugMaps:
    """Per-drug mean maps ``maps[drug id] [n, n]`` over ``genes``, from ``counts[drug id]`` pairs."""

    maps: Dict[int, Tensor]
    counts: Dict[int, int]
    genes: List[str]


def map_genes(model, measured_only: bool = True) -> Tuple[Tensor, List[str]]:
    """Positions (in the pretrained gene space) and names of the genes a map is reported over:
    the fine-tuning input's measured genes (default), or all genes of the pretrained space.
    """
    pre = _check(model)
    if pre is model or not measured_only:
        return torch.arange(pre.num_genes), list(pre.genes)
    pos = model.gene_index[model.measured]
    return pos, [pre.genes[i] for i in pos.tolist()]


def drug_attention_maps(
    model,
    dataset,
    index=None,
    drugs: Optional[Sequence[int]] = None,
    *,
    include_prior: bool = False,
    measured_only: bool = True,
    batch_size: int = 256,
    max_pairs_per_drug: Optional[int] = None,
    device=None,
    progress: bool = True,
    conv=None,
    condition=None,
    inputs=None,
    prior=None,
    genes=None,
) -> DrugMaps:
    """Per-drug mean attention maps and the pair count per drug.

    Sums ``q_b q_b^T`` per drug over batches (``N x N`` per drug held, nothing per pair), so any
    number of pairs fits. ``drugs`` restricts to those drug ids (memory: ``4 N^2`` bytes per drug).
    ``measured_only`` reports the maps over the genes the fine-tuning data measured (genes the
    input lacks carry only the condition's term and no expression).

    Any model holding a ``CSG2AConv`` works, not only ours: ``conv=`` the layer (found
    when the model holds exactly one), ``condition=`` a function ``batch -> cond [B, N]`` (what your forward
    passes as ``cond``; required when the conv has condition channels), ``inputs=`` ``batch -> x [B, N]``
    (default ``batch.expr``), ``prior=(edge_index, edge_weight)`` for ``include_prior``, ``genes=`` the names
    (default the dataset's). The maps are then ``phi(q q^T scale)`` of that conv, over all its genes; for one
    batch of your own, ``csg2a_graph.ops.attention_map(conv.gene_representation(x, cond), prior)`` is the same.
    """
    from csg2a_graph.data.pairs import as_pair_index

    src = _Source(model, conv, condition, inputs)
    conv_ = src.conv
    was_training = model.training
    model = model.eval()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    index = as_pair_index(index, dataset.num_pairs)
    drug_of = dataset.pairs["drug"][index]
    if drugs is not None:
        keep = torch.isin(drug_of, torch.as_tensor(list(drugs)))
        index, drug_of = index[keep], drug_of[keep]
    if max_pairs_per_drug is not None:
        g = torch.Generator().manual_seed(0)
        perm = torch.randperm(index.numel(), generator=g)
        index, drug_of = index[perm], drug_of[perm]
        rank = torch.zeros_like(drug_of)
        seen: Dict[int, int] = {}
        for i, d in enumerate(drug_of.tolist()):
            rank[i] = seen.get(d, 0)
            seen[d] = int(rank[i].item()) + 1
        keep = rank < max_pairs_per_drug
        index = index[keep].sort().values
    N = conv_.num_genes
    scale = conv_.scale
    if conv_.score != "linear":
        raise ValueError(
            f"per-drug maps sum q q^T (the linear score); this conv's score is {conv_.score!r}: use "
            "csg2a_graph.ops.attention_map(q, prior, score=...) per batch"
        )
    sums: Dict[int, Tensor] = {}
    counts: Dict[int, int] = {}
    loader = dataset.loader(index, batch_size=batch_size)
    it = loader
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(loader, total=len(loader), desc="attention maps", unit="batch")
    pos, names = src.genes(measured_only, dataset, genes)
    pos = pos.to(device)
    n = pos.numel()
    for batch in it:
        b = batch.to(device)
        q = src.queries(b).float()[:, pos]  # only the reported genes' rows and columns
        for d in b.drug.unique().tolist():
            qs = q[b.drug == d]
            flat = qs.permute(1, 0, 2).reshape(n, -1)
            sums[d] = sums.get(d, torch.zeros(n, n, device=device)) + flat @ flat.T
            counts[d] = counts.get(d, 0) + qs.size(0)
    prior = src.prior(include_prior, prior)
    model.train(was_training)
    A = None
    if prior is not None:
        from csg2a_graph.ops._checks import as_edges
        from csg2a_graph.ops.reference import dense_prior

        A = dense_prior(as_edges(prior, N, device=device, dtype=torch.float32), N, torch.float32, device)[pos][:, pos]
    maps = {d: (s * (scale / counts[d]) + (A if A is not None else 0)).cpu() for d, s in sums.items()}
    return DrugMaps(maps, counts, names)


def top_gene_pairs(attention: Tensor, genes: Sequence[str], k: int = 1000, unique_pairs: bool = True):
    """The ``k`` entries of largest ``|S_ij|`` (``i != j``) of a map as a DataFrame ``gene_i, gene_j, attention``."""
    import pandas as pd

    N = attention.size(0)
    if attention.shape != (N, N) or len(genes) != N:
        raise ValueError(f"attention must be [N, N] over {len(genes)} genes, got {tuple(attention.shape)}")
    mask = torch.ones(N, N, dtype=torch.bool).triu(1) if unique_pairs else ~torch.eye(N, dtype=torch.bool)
    vals = attention[mask]
    ij = mask.nonzero()
    k = min(k, vals.numel())
    top = vals.abs().topk(k).indices
    g = list(genes)
    return pd.DataFrame(
        {
            "gene_i": [g[i] for i in ij[top, 0].tolist()],
            "gene_j": [g[j] for j in ij[top, 1].tolist()],
            "attention": vals[top].numpy(),
        }
    )


def sample_top_pairs(
    model, batch, k: int = 100, include_prior: bool = False, *, conv=None, condition=None, inputs=None, prior=None
) -> Tuple[Tensor, Tensor]:
    """Per pair of ``batch``: the ``k`` gene pairs of largest ``|S_ij|``, streamed (``[B, 2, k]``, ``[B, k]``).
    Any model holding a ``CSG2AConv``: see ``drug_attention_maps()``.
    """
    src = _Source(model, conv, condition, inputs)
    q = src.queries(batch)
    return attention_map(
        q,
        src.prior(include_prior, prior),
        score=src.conv.score,
        reduce_batch=None,  # type: ignore[return-value]
        topk=k,
        scale=src.conv.scale,
    )


def prior_edge_attention(model, batch, *, conv=None, condition=None, inputs=None, prior=None) -> Tuple[Tensor, Tensor]:
    """The attention ``S_ij`` on every STRING prior edge for each pair of ``batch``: ``(edge_index [2, E], alpha [B, E])``
    (through ``CSG2AConv``'s ``return_attention_weights``). Any model holding a ``CSG2AConv``: pass
    ``prior=(edge_index, edge_weight)`` (the gene-level prior your model gives the conv) and see
    ``drug_attention_maps()`` for ``conv=``, ``condition=``, ``inputs=``.
    """
    return _Source(model, conv, condition, inputs).edge_attention(batch, prior)


def map_correlations(maps: Dict[int, Tensor], center: bool = False) -> Tuple[List[int], Tensor]:
    """Pearson correlation between flattened off-diagonal maps: ``(drug ids, [D, D])``.

    ``center=True`` first subtracts the mean map over the drugs, leaving each drug's own part:
    ``q_b q_b^T`` mixes an expression term common to every drug with the condition's term, so
    raw maps of all drugs correlate highly; the centred maps compare what the drugs add.
    """
    ids = sorted(maps)
    if not ids:
        raise ValueError("no maps")
    N = maps[ids[0]].size(0)
    off = ~torch.eye(N, dtype=torch.bool)
    X = torch.stack([maps[d][off].double() for d in ids])
    if center:
        X = X - X.mean(0, keepdim=True)
    X = X - X.mean(1, keepdim=True)
    X = X / X.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return ids, (X @ X.T).float()


__all__ = [
    "DrugMaps",
    "map_genes",
    "gene_queries",
    "drug_attention_maps",
    "top_gene_pairs",
    "sample_top_pairs",
    "prior_edge_attention",
    "map_correlations",
]
