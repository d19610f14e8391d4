"""What every drug encoder shares: atom embeddings of the store's features and masked pooling."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from csg2a_graph.data.molecules import ATOM_FEATURE_SIZES, BOND_FEATURE_SIZES


def pool_atoms(h: Tensor, graph, pool: str = "mean") -> Tensor:
    """Pool per-atom states ``h [A, C]`` to ``[num_graphs, C]`` over each molecule's largest fragment
    (``graph.main_fragment``; all atoms when absent).
    """
    batch = graph.batch if getattr(graph, "batch", None) is not None else h.new_zeros(h.size(0), dtype=torch.long)
    size = int(graph.num_graphs) if hasattr(graph, "num_graphs") else int(batch.max()) + 1
    if pool not in ("mean", "sum", "max"):
        raise ValueError(f"pool must be 'mean', 'sum' or 'max', got {pool!r}")
    keep = getattr(graph, "main_fragment", None)
    if keep is None:
        return scatter(h, batch, 0, dim_size=size, reduce=pool)
    # atoms off the main fragment go to one extra segment, dropped: no boolean indexing, whose output size would
    # need a device->host sync every batch on a GPU
    batch = torch.where(keep, batch, torch.full_like(batch, size))
    return scatter(h, batch, 0, dim_size=size + 1, reduce=pool)[:size]


class CategoricalEmbedding(nn.Module):
    """Sum of one embedding per integer feature column (PyG ``from_rdmol`` features).

    Values outside a column's table are clamped into it (never an index error).
    """

    def __init__(self, sizes, dim: int):
        super().__init__()
        self.sizes = list(sizes)
        self.embs = nn.ModuleList([nn.Embedding(s, dim) for s in self.sizes])

    def forward(self, x: Tensor) -> Tensor:
        x = x.long()
        out = torch.zeros(())
        for k, emb in enumerate(self.embs):
            out = out + emb(x[:, k].clamp(0, self.sizes[k] - 1))
        return out


class AtomEncoder(CategoricalEmbedding):
    """``[num_atoms, 9]`` categorical atom features of our drug graphs (``batch.drug_graph.x``, PyG's
    ``from_smiles`` columns, ``ATOM_FEATURE_SIZES``) -> ``[num_atoms, dim]``:
    the sum of one embedding per column, as OGB's ``AtomEncoder``.
    """

    def __init__(self, dim: int):
        super().__init__(ATOM_FEATURE_SIZES, dim)


class BondEncoder(CategoricalEmbedding):
    """``[num_bonds, 3]`` categorical bond features (``drug_graph.edge_attr``) -> ``[num_bonds, dim]``."""

    def __init__(self, dim: int):
        super().__init__(BOND_FEATURE_SIZES, dim)


def atom_encoder(dim: int) -> CategoricalEmbedding:
    return CategoricalEmbedding(ATOM_FEATURE_SIZES, dim)


def bond_encoder(dim: int) -> CategoricalEmbedding:
    return CategoricalEmbedding(BOND_FEATURE_SIZES, dim)


__all__ = ["pool_atoms", "CategoricalEmbedding", "AtomEncoder", "BondEncoder", "atom_encoder", "bond_encoder"]
