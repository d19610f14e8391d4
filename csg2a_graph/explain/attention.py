"""Gene-gene attention of a CSG²A model: per-sample and per-drug mean maps, top gene pairs, and the
attention on the STRING prior's edges.

The map of pair ``b`` is ``S_b = q_b q_b^T / sqrt(h) + A`` with ``q_b`` the condition-specific gene
representation of :class:`~csg2a_graph.nn.CSG2AConv` (paper Eq. 2). Per-drug maps average ``S_b``
over the drug's pairs; for the linear score that mean is one Gram product of the stacked ``q``
(:func:`~csg2a_graph.ops.attention_map`), and ``topk`` streams row blocks so ``N x N`` is never held.
``include_prior=False`` leaves ``A`` out: the prior is the same for every drug, so comparisons
between drugs (MoA analysis) use the learned part only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from csg2a_graph.explain.attribution import _is_csg2a, _pretrained
from csg2a_graph.ops.attention_map import attention_map


def _check(model):
    if not _is_csg2a(model):
        raise ValueError(f"attention maps need a CSG2A model, got {type(model).__name__}")
    pre = _pretrained(model)
    if not pre.attention:
        raise ValueError("this CSG2A network was built with attention=False (the linear ablation): it has no map")
    return pre


def gene_queries(model, batch) -> Tensor:
    """``q [B, N, h]`` of a :class:`~csg2a_graph.data.PairBatch` (over the pretrained gene space)."""
    pre = _check(model)
    with torch.no_grad():
        cond = pre.condition(batch.drug_graph, batch.drug_index, batch.dose, batch.time)
        g = model.scale_input(batch.expr.float()) if pre is not model else batch.expr.float()
        return pre.conv.gene_representation(g.unsqueeze(-1), cond.unsqueeze(-1))


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
    the fine-tuning input's measured genes (default), or all genes of the pretrained space."""
    pre = _check(model)
    if pre is model or not measured_only:
        return torch.arange(pre.num_genes), list(pre.genes)
    pos = model.gene_index[model.measured]
    return pos, [pre.genes[i] for i in pos.tolist()]


def drug_attention_maps(model, dataset, index=None, drugs: Optional[Sequence[int]] = None, *,
                        include_prior: bool = False, measured_only: bool = True, batch_size: int = 256,
                        max_pairs_per_drug: Optional[int] = None, device=None, progress: bool = True) -> DrugMaps:
    """Per-drug mean attention maps and the pair count per drug.

    Sums ``q_b q_b^T`` per drug over batches (``N x N`` per drug held, nothing per pair), so any
    number of pairs fits. ``drugs`` restricts to those drug ids (memory: ``4 N^2`` bytes per drug).
    ``measured_only`` reports the maps over the genes the fine-tuning data measured (genes the
    input lacks carry only the condition's term and no expression).
    """
    from csg2a_graph.data.pairs import as_pair_index

    pre = _check(model)
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
    N = pre.num_genes
    scale = pre.conv.scale
    sums: Dict[int, Tensor] = {}
    counts: Dict[int, int] = {}
    loader = dataset.loader(index, batch_size=batch_size)
    it = loader
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(loader, total=len(loader), desc="attention maps", unit="batch")
    pos, names = map_genes(model, measured_only)
    pos = pos.to(device)
    n = pos.numel()
    for batch in it:
        b = batch.to(device)
        q = gene_queries(model, b).float()[:, pos]  # only the reported genes' rows and columns
        for d in b.drug.unique().tolist():
            qs = q[b.drug == d]
            flat = qs.permute(1, 0, 2).reshape(n, -1)
            sums[d] = sums.get(d, torch.zeros(n, n, device=device)) + flat @ flat.T
            counts[d] = counts.get(d, 0) + qs.size(0)
    prior = _prior(pre, include_prior)
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
    return pd.DataFrame({"gene_i": [g[i] for i in ij[top, 0].tolist()], "gene_j": [g[j] for j in ij[top, 1].tolist()],
                         "attention": vals[top].numpy()})


def sample_top_pairs(model, batch, k: int = 100, include_prior: bool = False) -> Tuple[Tensor, Tensor]:
    """Per pair of ``batch``: the ``k`` gene pairs of largest ``|S_ij|``, streamed (``[B, 2, k]``, ``[B, k]``)."""
    pre = _check(model)
    q = gene_queries(model, batch)
    return attention_map(q, _prior(pre, include_prior), score=pre.conv.score, reduce_batch=None, topk=k,  # type: ignore[return-value]
                         scale=pre.conv.scale)


def prior_edge_attention(model, batch) -> Tuple[Tensor, Tensor]:
    """The attention ``S_ij`` on every STRING prior edge for each pair of ``batch``: ``(edge_index [2, E], alpha [B, E])``
    (through :class:`CSG2AConv`'s ``return_attention_weights``)."""
    pre = _check(model)
    if not (pre.use_prior and pre.prior_edge_index.numel()):
        raise ValueError("this model has no prior edges")
    with torch.no_grad():
        cond = pre.condition(batch.drug_graph, batch.drug_index, batch.dose, batch.time)
        g = model.scale_input(batch.expr.float()) if pre is not model else batch.expr.float()
        _, (ei, alpha) = pre.mix(g, cond, return_attention_weights=True)
    return ei, alpha


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


__all__ = ["DrugMaps", "map_genes", "gene_queries", "drug_attention_maps", "top_gene_pairs", "sample_top_pairs", "prior_edge_attention",
           "map_correlations"]
