r"""The Molecule Attention Transformer (MAT) architecture, randomly initialised.

`Maziarka et al., "Molecule Attention Transformer" (2020) <https://arxiv.org/abs/2002.08264>`_.
Each head mixes three attention maps over the atoms of a molecule (plus a dummy node):

.. math::
    P = \lambda_a\,\mathrm{softmax}(QK^\top/\sqrt{d_k}) + \lambda_d\, \mathrm{softmax}(-D) + \lambda_g\, \hat{A}

with :math:`D` the inter-atomic distances and :math:`\hat A` the row-normalised adjacency.
The CSG²A paper used MAT weights pretrained on 2M ZINC15 molecules; those weights sit on a
file host that these machines cannot reach, so this module starts from random weights and
takes ``weights=PATH`` (a ``state_dict`` of this module) when you have them. Distances here are
topological (shortest-path bond counts, computed once per SMILES), not the 3D conformer
distances of the MAT paper, so that atom order always matches the stored graph.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.utils import to_dense_adj, to_dense_batch

from csg2a_graph.nn.encoders.base import atom_encoder


class MoleculeAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, lambdas=(0.33, 0.33, 0.34), dropout: float = 0.0):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        self.h, self.dk = heads, d_model // heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.lambdas = lambdas
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor, adj: Tensor, dist: Tensor) -> Tensor:
        B, M, _ = x.shape
        q, k, v = self.qkv(x).view(B, M, 3, self.h, self.dk).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.dk)
        key_mask = ~mask[:, None, None, :]
        p_att = scores.masked_fill(key_mask, float("-inf")).softmax(-1)
        p_dist = (-dist).masked_fill(~mask[:, None, :], float("-inf")).softmax(-1)[:, None]
        deg = adj.sum(-1, keepdim=True).clamp_min(1)
        p_adj = (adj / deg)[:, None]
        la, ld, lg = self.lambdas
        p = la * p_att + ld * p_dist + lg * p_adj
        y = (self.dropout(p) @ v).transpose(1, 2).reshape(B, M, -1)
        return self.out(y)


class MATEncoder(nn.Module):
    """MAT: atom embedding + dummy node, ``num_layers`` pre-norm blocks, mean over real atoms.

    Args:
        d_model, num_layers, heads: the transformer size (MAT: 1024, 8, 16; defaults are smaller).
        weights: optional path to a ``state_dict`` of this module.
    """

    def __init__(self, d_model: int = 256, num_layers: int = 4, heads: int = 8, dropout: float = 0.0,
                 lambdas=(0.33, 0.33, 0.34), weights: Optional[str] = None):
        super().__init__()
        self.out_channels = d_model
        self.embed = atom_encoder(d_model)
        self.dummy = nn.Parameter(torch.zeros(1, 1, d_model))
        self.attn = nn.ModuleList([MoleculeAttention(d_model, heads, lambdas, dropout) for _ in range(num_layers)])
        self.ff = nn.ModuleList([nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.LeakyReLU(), nn.Dropout(dropout),
                                               nn.Linear(2 * d_model, d_model)) for _ in range(num_layers)])
        self.n1 = nn.ModuleList([nn.LayerNorm(d_model) for _ in range(num_layers)])
        self.n2 = nn.ModuleList([nn.LayerNorm(d_model) for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d_model)
        self._dist: Dict[str, np.ndarray] = {}
        if weights is not None:
            self.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)

    def _distances(self, graph, sizes) -> Tensor:
        """``[G, M, M]`` topological distances, cached per SMILES (dummy node at distance 1e6... masked)."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import shortest_path

        G, M = len(sizes), max(sizes) + 1
        out = torch.full((G, M, M), 1e4)
        ptr = graph.ptr.tolist()
        ei = graph.edge_index.cpu().numpy()
        smiles = getattr(graph, "smiles", [None] * G)
        for g in range(G):
            n = sizes[g]
            d = self._dist.get(smiles[g]) if smiles[g] is not None else None
            if d is None or d.shape[0] != n:
                sel = (ei[0] >= ptr[g]) & (ei[0] < ptr[g + 1])
                a = coo_matrix((np.ones(sel.sum()), (ei[0, sel] - ptr[g], ei[1, sel] - ptr[g])), shape=(n, n)).tocsr()
                d = shortest_path(a, unweighted=True)
                d[np.isinf(d)] = 1e4  # other fragments: far away
                if smiles[g] is not None:
                    self._dist[smiles[g]] = d
            out[g, 1:n + 1, 1:n + 1] = torch.from_numpy(d).float()
        out[:, 0, 0] = 0.0
        return out

    def forward(self, graph) -> Tensor:
        h = self.embed(graph.x)
        x, mask = to_dense_batch(h, graph.batch)
        G = x.size(0)
        sizes = mask.sum(1).tolist()
        adj = to_dense_adj(graph.edge_index, graph.batch, max_num_nodes=x.size(1))
        # dummy node first: connected to nothing, reachable by attention only
        x = torch.cat([self.dummy.expand(G, 1, -1), x], 1)
        mask = torch.cat([mask.new_ones(G, 1), mask], 1)
        adj = nn.functional.pad(adj, (1, 0, 1, 0))
        dist = self._distances(graph, sizes).to(x.device)[:, :x.size(1), :x.size(1)]
        for attn, ff, n1, n2 in zip(self.attn, self.ff, self.n1, self.n2):
            x = x + attn(n1(x), mask, adj, dist)
            x = x + ff(n2(x))
        x = self.norm(x)
        real = mask.clone()
        real[:, 0] = False
        return (x * real[..., None]).sum(1) / real.sum(1, keepdim=True).clamp_min(1)


__all__ = ["MATEncoder", "MoleculeAttention"]
