"""A GIN drug encoder trained from scratch (PyG ``GINEConv`` over the store's atom and bond features)."""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import GINEConv

from csg2a_graph.nn.encoders.base import atom_encoder, bond_encoder, pool_atoms


class GINEncoder(nn.Module):
    """``num_layers`` GINE layers (Hu et al. 2020's edge-aware GIN) with BatchNorm and ReLU, pooled per molecule.

    Args:
        hidden_channels: atom state width (the output width too).
        num_layers: message-passing layers.
        dropout: dropout after every layer.
        pool: ``"mean"``, ``"sum"`` or ``"max"`` over each molecule's largest fragment.
    """

    def __init__(self, hidden_channels: int = 128, num_layers: int = 3, dropout: float = 0.0, pool: str = "mean"):
        super().__init__()
        self.out_channels, self.pool, self.dropout = hidden_channels, pool, dropout
        self.atom = atom_encoder(hidden_channels)
        self.bonds = nn.ModuleList([bond_encoder(hidden_channels) for _ in range(num_layers)])
        self.convs = nn.ModuleList(
            [
                GINEConv(
                    nn.Sequential(
                        nn.Linear(hidden_channels, 2 * hidden_channels),
                        nn.ReLU(),
                        nn.Linear(2 * hidden_channels, hidden_channels),
                    ),
                    train_eps=True,
                )
                for _ in range(num_layers)
            ]
        )
        self.norms = nn.ModuleList([nn.BatchNorm1d(hidden_channels) for _ in range(num_layers)])

    def forward(self, graph) -> Tensor:
        h = self.atom(graph.x)
        for k, (conv, bond, norm) in enumerate(zip(self.convs, self.bonds, self.norms)):
            h = norm(conv(h, graph.edge_index, bond(graph.edge_attr)))
            if k < len(self.convs) - 1:
                h = h.relu()
            h = nn.functional.dropout(h, self.dropout, self.training)
        return pool_atoms(h, graph, self.pool)


__all__ = ["GINEncoder"]
