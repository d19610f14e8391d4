"""Randomisation tests (DrEval's, plus one no other framework can run): replace one input view of a dataset, at
training *and* test time, to show what a model really uses. Each mode returns a view of the dataset with the same
pairs, responses and splits (the view shares everything else):

- ``cell-permute``: each cell line gets another line's expression (a permutation of the expression rows);
- ``cell-noise``: expression replaced by Gaussian noise with each gene's mean and sd over the lines;
- ``drug-permute``: each drug gets another drug's molecule (a permutation of the drug ids the pairs point to);
- ``prior-rewire``: the STRING prior rewired by degree-preserving double edge swaps (every gene keeps its degree,
  the edges go elsewhere): does the model use *which* genes interact?
- ``prior-remove``: no prior at all;

  (a model given a pretrained network gets that network's own prior rewired or removed too,
  ``prior_randomized_like()``: the network carries the prior it was pretrained with);
- ``pretrain-untrained``: a model given a pretrained network (``pretrained=``) gets the same architecture
  untrained instead (its prior and drug encoder kept, ``untrained_like()``): what does LINCS pretraining add?
  Models without a pretrained network have no row for it.

A model that loses nothing under a mode does not use that view. Means-based baselines are invariant to the
permutations by construction (a consistent relabelling), which is the check's own control.
"""

from __future__ import annotations

import copy
from typing import Any, Tuple, cast

import numpy as np
import torch
from torch import Tensor

RANDOMIZATIONS = ("cell-permute", "cell-noise", "drug-permute", "prior-rewire", "prior-remove", "pretrain-untrained")
#: the modes that replace a model's input rather than the data
MODEL_RANDOMIZATIONS = ("pretrain-untrained",)


def _derangement(n: int, g: torch.Generator) -> Tensor:
    """A random permutation of ``n`` with no fixed point (every item moves), ``n >= 2``."""
    while True:
        p = torch.randperm(n, generator=g)
        if n < 2 or not bool((p == torch.arange(n)).any()):
            return p


def rewire_prior(
    edge_index: Tensor, edge_weight: Tensor, num_genes: int, seed: int = 0, swaps_per_edge: int = 10
) -> Tuple[Tensor, Tensor]:
    """The prior with its undirected edges rewired by degree-preserving double edge swaps (self loops kept as they
    are; the edge weights shuffled over the new edges). Returns ``(edge_index, edge_weight)`` both directions.
    """
    import networkx as nx

    src, dst = edge_index
    loops = src == dst
    und = (src < dst) & ~loops
    pairs = torch.stack([src[und], dst[und]], 1).tolist()
    w = edge_weight[und]
    graph = nx.Graph()
    graph.add_nodes_from(range(num_genes))
    graph.add_edges_from(pairs)
    E = graph.number_of_edges()
    if E >= 2:
        nx.double_edge_swap(graph, nswap=swaps_per_edge * E, max_tries=100 * swaps_per_edge * E, seed=seed)
    new = torch.tensor(sorted(graph.edges()), dtype=torch.long).view(-1, 2)
    g = torch.Generator().manual_seed(seed)
    w = w[torch.randperm(w.numel(), generator=g)][: new.size(0)]
    s = torch.cat([new[:, 0], new[:, 1], src[loops]])
    d = torch.cat([new[:, 1], new[:, 0], dst[loops]])
    ww = torch.cat([w, w, edge_weight[loops]])
    order = torch.from_numpy(np.lexsort((s.numpy(), d.numpy())))
    return torch.stack([s[order], d[order]]), ww[order]


def randomized(dataset, mode: str, seed: int = 0):
    """A view of ``dataset`` with one input view replaced (see the module docstring); ``"none"`` returns it as is."""
    if mode in (None, "none") or mode in MODEL_RANDOMIZATIONS:
        return dataset
    if mode not in RANDOMIZATIONS:
        raise ValueError(f"unknown randomisation {mode!r}; choose from {list(RANDOMIZATIONS)}")
    g = torch.Generator().manual_seed(seed)
    view = copy.copy(dataset)
    view.__dict__.pop("_subset_pairs", None)
    if mode == "cell-permute":
        view._expr = dataset._expr[_derangement(dataset._expr.size(0), g)]
    elif mode == "cell-noise":
        e = dataset._expr
        view._expr = e.mean(0) + e.std(0) * torch.randn(e.shape, generator=g)
    elif mode == "drug-permute":
        perm = _derangement(dataset.num_drugs, g)
        view._pairs = {**dataset._pairs, "drug": perm[dataset._pairs["drug"]]}
    elif mode == "prior-rewire":
        if dataset.prior_edge_index is None:
            raise ValueError(f"{dataset.name} has no prior to rewire")
        view.prior_edge_index, view.prior_edge_weight = rewire_prior(
            dataset.prior_edge_index, dataset.prior_edge_weight, dataset.num_genes, seed
        )
    elif mode == "prior-remove":
        view.prior_edge_index, view.prior_edge_weight = None, None
    view.randomization = mode
    return view


def untrained_like(checkpoint: str, path: str, seed: int = 0) -> str:
    """The pretrained CSG²A network of ``checkpoint`` with fresh weights (seed ``seed``), its prior buffers and its
    drug encoder's weights (the pretrained GCN) kept: the control that tells what the LINCS weights add. Saved
    once at ``path``.
    """
    import os

    from csg2a_graph.checkpoint import save_checkpoint
    from csg2a_graph.nn.models.csg2a import CSG2A

    if not os.path.exists(path):
        net = CSG2A.from_checkpoint(checkpoint)
        torch.manual_seed(seed)
        fresh = CSG2A(**net.hparams)
        drug = "cond.drug."  # the drug encoder's weights (the pretrained GCN) are the pretrained network's
        own = fresh.state_dict()
        own.update({k: v for k, v in net.state_dict().items() if k.startswith(drug)})
        fresh.load_state_dict({**own, **{k: net.state_dict()[k] for k in ("prior_edge_index", "prior_edge_weight")}})
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        save_checkpoint(path, fresh)
    return path


def prior_randomized_like(checkpoint: str, path: str, mode: str, seed: int = 0) -> str:
    """The pretrained CSG²A network of ``checkpoint`` with its *own* prior rewired (``mode="prior-rewire"``, the same
    degree-preserving swaps as the data's) or removed (``"prior-remove"``: ``use_prior=False``), every weight kept.

    A pretrained network carries the prior it was pretrained with in its buffers; rewiring the dataset's prior
    alone would leave it untouched, and the randomised row would silently repeat the unperturbed one. Saved once
    at ``path``.
    """
    import os

    from csg2a_graph.checkpoint import save_checkpoint
    from csg2a_graph.nn.models.csg2a import CSG2A

    if mode not in ("prior-rewire", "prior-remove"):
        raise ValueError(f"mode must be 'prior-rewire' or 'prior-remove', got {mode!r}")
    if not os.path.exists(path):
        net: Any = CSG2A.from_checkpoint(checkpoint)
        if mode == "prior-remove":
            out = CSG2A(**{**net.hparams, "use_prior": False})
            out.load_state_dict(net.state_dict())
        else:
            ei0, ew0 = cast(Tensor, net.prior_edge_index), cast(Tensor, net.prior_edge_weight)
            if ei0.numel() == 0:
                raise ValueError(f"{checkpoint}: the network has no prior to rewire")
            ei, ew = rewire_prior(ei0, ew0, int(net.num_genes), seed=seed)
            out = net
            ei0.copy_(ei)
            ew0.copy_(ew)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        save_checkpoint(path, out)
    return path


__all__ = [
    "RANDOMIZATIONS",
    "MODEL_RANDOMIZATIONS",
    "randomized",
    "rewire_prior",
    "untrained_like",
    "prior_randomized_like",
]
