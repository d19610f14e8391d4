"""GraphDRP (Nguyen et al., IEEE/ACM TCBB 2022): a GIN over the drug's atoms and a 1-D CNN over the
cell's expression vector. Written from ``docs/baselines.md`` (GraphDRP) (the GINConvNet variant).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GINConv, global_add_pool

from csg2a_graph.baselines.deep import register_deep
from csg2a_graph.data.featurize import DGL_ATOM_SYMBOLS, bond_edge_index, implicit_valence, one_hot
from csg2a_graph.nn.models.base import ResponseModel, register_model

SYMBOLS = [*DGL_ATOM_SYMBOLS, "Unknown"]  # GraphDRP's atom symbols (the last slot for any other)
NUM_ATOM_FEATURES = len(SYMBOLS) + 11 + 11 + 11 + 1  # 78


def _one_hot(value, choices) -> List[float]:
    return one_hot(value, choices, "last")  # out of range -> the last slot (also for degree)


def graphdrp_graph(smiles: str) -> Data:
    """GraphDRP's atom graph: 78-d one-hots (element, degree, total Hs, implicit valence, aromatic),
    **each row divided by its sum** (the original featuriser), bonds in both directions, no edge features.
    Degrees above 10 go to the last slot instead of raising (the original raised).
    """
    from csg2a_graph.data.molecules import parse_smiles

    mol = parse_smiles(smiles)
    if mol is None:
        raise ValueError(f"invalid SMILES: {smiles!r}")
    r = list(range(11))
    feats = []
    for a in mol.GetAtoms():
        implicit = implicit_valence(a)
        f = (
            _one_hot(a.GetSymbol(), SYMBOLS)
            + _one_hot(a.GetDegree(), r)
            + _one_hot(a.GetTotalNumHs(), r)
            + _one_hot(implicit, r)
            + [float(a.GetIsAromatic())]
        )
        feats.append(f)
    x = torch.tensor(feats, dtype=torch.float32)
    x = x / x.sum(1, keepdim=True)
    ei = bond_edge_index(mol)
    return Data(x=x, edge_index=ei)


class SmilesGraphCache:
    """Featurise each SMILES once; ``batch(smiles)`` collates the graphs of a batch's distinct drugs."""

    def __init__(self, featurise=graphdrp_graph):
        self.featurise = featurise
        self._graphs: Dict[str, Data] = {}

    def batch(self, smiles: Sequence[str], device) -> Batch:
        for s in smiles:
            if s not in self._graphs:
                self._graphs[s] = self.featurise(s)
        return Batch.from_data_list([self._graphs[s] for s in smiles]).to(device)


def cnn_out_length(n: int, layers: int = 3, kernel: int = 8, pool: int = 3) -> int:
    for _ in range(layers):
        n = (n - kernel + 1) // pool
    return n


@register_model("graphdrp")
class GraphDRP(ResponseModel):
    r"""GraphDRP, GINConvNet variant: `Nguyen et al., "Graph Convolutional Networks for Drug Response
    Prediction", IEEE/ACM TCBB 19(1) 2022 <https://doi.org/10.1109/TCBB.2021.3060430>`_.

    - drug: 5 x GINConv(MLP 78/32 -> 32 -> 32) each followed by ReLU and BatchNorm, add-pool,
      Linear 32 -> 128, ReLU, Dropout 0.2 (features: ``graphdrp_graph()``);
    - cell: the expression vector as a 1-channel sequence (gene order = the gene space's), 3 x
      [Conv1d(k=8) -> ReLU -> MaxPool(3)] with 32/64/128 channels, flatten, Linear -> 128;
    - head: 256 -> 1024 -> 128 -> 1 with ReLU and Dropout 0.5.

    Choices (``docs/baselines.md`` (GraphDRP)): the cell input is expression (as the CSG²A paper needs for
    TCGA), not the original 735 mutation/CNA bits; ``target_transform="none"`` (default) regresses
    ln IC50 (standardised internally) without the final sigmoid, ``"graphdrp_sigmoid"`` trains on
    ``sigmoid(0.1 * ln IC50)`` with a sigmoid output, as the original, and maps predictions back. The
    flat width is computed from the gene count (the original hard-coded 2,944); the unused
    ``Embedding(26, 128)`` of the original is left out. 726k parameters at 484 genes (spec: 726,305
    with the embedding's 3,328).
    """

    def __init__(
        self,
        genes: Union[int, Sequence[str]],
        drug_dim: int = 32,
        embed_dim: int = 128,
        dropout: float = 0.2,
        head_dropout: float = 0.5,
        target_transform: str = "none",
    ):
        super().__init__()
        n = genes if isinstance(genes, int) else len(genes)
        if target_transform not in ("none", "graphdrp_sigmoid"):
            raise ValueError(f"target_transform must be 'none' or 'graphdrp_sigmoid', got {target_transform!r}")
        if cnn_out_length(n) < 1:
            raise ValueError(f"GraphDRP's CNN needs at least {8 * 13 + 1 - 3} genes, got {n}")
        self.target_transform = target_transform
        convs, norms = [], []
        for i in range(5):
            d_in = NUM_ATOM_FEATURES if i == 0 else drug_dim
            convs.append(GINConv(nn.Sequential(nn.Linear(d_in, drug_dim), nn.ReLU(), nn.Linear(drug_dim, drug_dim))))
            norms.append(nn.BatchNorm1d(drug_dim))
        self.convs, self.norms = nn.ModuleList(convs), nn.ModuleList(norms)
        self.drug_fc = nn.Sequential(nn.Linear(drug_dim, embed_dim), nn.ReLU(), nn.Dropout(dropout))
        self.cnn = nn.Sequential(
            nn.Conv1d(1, 32, 8),
            nn.ReLU(),
            nn.MaxPool1d(3),
            nn.Conv1d(32, 64, 8),
            nn.ReLU(),
            nn.MaxPool1d(3),
            nn.Conv1d(64, 128, 8),
            nn.ReLU(),
            nn.MaxPool1d(3),
        )
        self.cell_fc = nn.Linear(128 * cnn_out_length(n), embed_dim)
        self.head = nn.Sequential(
            nn.Linear(2 * embed_dim, 1024),
            nn.ReLU(),
            nn.Dropout(head_dropout),
            nn.Linear(1024, 128),
            nn.ReLU(),
            nn.Dropout(head_dropout),
            nn.Linear(128, 1),
        )
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))
        self._graphs = SmilesGraphCache()
        self.save_hparams(
            genes=genes if isinstance(genes, int) else list(genes),
            drug_dim=drug_dim,
            embed_dim=embed_dim,
            dropout=dropout,
            head_dropout=head_dropout,
            target_transform=target_transform,
        )

    def set_target_scaler(self, y: Tensor) -> None:
        if self.target_transform == "none":
            super().set_target_scaler(y)

    def encode_drugs(self, drug_graph) -> Tensor:
        g = self._graphs.batch(list(drug_graph.smiles), self.cell_fc.weight.device)
        x = g.x
        for conv, norm in zip(self.convs, self.norms):
            x = norm(torch.relu(conv(x, g.edge_index)))
        return self.drug_fc(global_add_pool(x, g.batch, size=g.num_graphs))

    def forward(
        self, expr: Tensor, drug_graph, drug_index: Tensor, dose: Optional[Tensor] = None, time: Optional[Tensor] = None
    ) -> Tensor:
        d = self.encode_drugs(drug_graph)[drug_index]  # each distinct drug once per batch
        c = self.cell_fc(self.cnn(expr.unsqueeze(1)).flatten(1))
        out = self.head(torch.cat([d, c], dim=1)).squeeze(-1)
        if self.target_transform == "graphdrp_sigmoid":
            p = torch.sigmoid(out).clamp(1e-6, 1 - 1e-6)
            return 10.0 * torch.log(p / (1 - p))  # back to ln IC50 (the loss then sees ln IC50 too)
        return out * self.y_std + self.y_mean


register_deep("graphdrp", train={"lr": 1e-4, "batch_size": 1024})

__all__ = ["GraphDRP", "graphdrp_graph", "SmilesGraphCache", "NUM_ATOM_FEATURES"]
