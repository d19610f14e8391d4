"""DeepCoVDR (Huang et al., Bioinformatics 2023), its GDSC stage: a chemprop D-MPNN feeding a graph
transformer and a drug/cell cross-attention transformer. Written from ``docs/baselines.md`` (DeepCoVDR).
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import to_dense_batch

from csg2a_graph.baselines.deep import register_deep
from csg2a_graph.baselines.graphdrp import SmilesGraphCache
from csg2a_graph.data.featurize import one_hot
from csg2a_graph.nn.models.base import ResponseModel, register_model

ATOM_FDIM, BOND_FDIM = 133, 14


def _oh(value, choices) -> List[float]:
    return one_hot(value, choices, "extra")  # chemprop v1: one extra "unknown" slot


class BondGraph(Data):
    """A molecule with directed bonds; ``rev`` (each bond's reverse) is shifted like ``edge_index`` rows
    when graphs are batched.
    """

    def __inc__(self, key, value, *args, **kwargs):
        if key == "rev":
            return self.edge_index.size(1)
        return super().__inc__(key, value, *args, **kwargs)


def chemprop_graph(smiles: str) -> Data:
    """Chemprop v1 features: atoms 133 (atomic number 1..100, degree 0..5, formal charge, chiral tag, total Hs
    0..4, hybridisation, aromatic, mass/100), directed bonds 14 (none, single, double, triple, aromatic,
    conjugated, ring, stereo 0..5); ``rev`` maps each directed bond to its reverse.
    """
    from rdkit import Chem

    from csg2a_graph.data.molecules import parse_smiles

    mol = parse_smiles(smiles)
    if mol is None:
        raise ValueError(f"invalid SMILES: {smiles!r}")
    hyb = [
        Chem.rdchem.HybridizationType.SP,
        Chem.rdchem.HybridizationType.SP2,
        Chem.rdchem.HybridizationType.SP3,
        Chem.rdchem.HybridizationType.SP3D,
        Chem.rdchem.HybridizationType.SP3D2,
    ]
    x = []
    for a in mol.GetAtoms():
        x.append(
            _oh(a.GetAtomicNum() - 1, list(range(100)))
            + _oh(a.GetTotalDegree(), list(range(6)))
            + _oh(a.GetFormalCharge(), [-1, -2, 1, 2, 0])
            + _oh(int(a.GetChiralTag()), [0, 1, 2, 3])
            + _oh(a.GetTotalNumHs(), list(range(5)))
            + _oh(a.GetHybridization(), hyb)
            + [float(a.GetIsAromatic()), a.GetMass() * 0.01]
        )
    src, dst, ea = [], [], []
    bt = Chem.rdchem.BondType
    for b in mol.GetBonds():
        f = [
            0.0,
            float(b.GetBondType() == bt.SINGLE),
            float(b.GetBondType() == bt.DOUBLE),
            float(b.GetBondType() == bt.TRIPLE),
            float(b.GetBondType() == bt.AROMATIC),
            float(b.GetIsConjugated()),
            float(b.IsInRing()),
        ] + _oh(int(b.GetStereo()), list(range(6)))
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        src += [i, j]
        dst += [j, i]
        ea += [f, f]
    E = len(src)
    rev = torch.arange(E).view(-1, 2).flip(1).reshape(-1) if E else torch.zeros(0, dtype=torch.long)
    return BondGraph(
        x=torch.tensor(x, dtype=torch.float32),
        edge_index=torch.tensor([src, dst], dtype=torch.long).view(2, -1),
        edge_attr=torch.tensor(ea, dtype=torch.float32).view(-1, BOND_FDIM),
        rev=rev,
    )


class DMPNN(nn.Module):
    """chemprop's bond message passing (depth 3: two updates), atom states without pooling."""

    def __init__(self, hidden: int = 300, depth: int = 3):
        super().__init__()
        self.W_i = nn.Linear(ATOM_FDIM + BOND_FDIM, hidden, bias=False)
        self.W_h = nn.Linear(hidden, hidden, bias=False)
        self.W_o = nn.Linear(ATOM_FDIM + hidden, hidden)
        self.depth = depth

    def forward(self, g) -> Tensor:
        src, dst = g.edge_index
        inp = self.W_i(torch.cat([g.x[src], g.edge_attr], 1))
        m = torch.relu(inp)
        n = g.x.size(0)
        for _ in range(self.depth - 1):
            a = torch.zeros(n, m.size(1), device=m.device, dtype=m.dtype).index_add_(0, dst, m)  # into each atom
            m = torch.relu(inp + self.W_h(a[src] - m[g.rev]))
        a = torch.zeros(n, m.size(1), device=m.device, dtype=m.dtype).index_add_(0, dst, m)
        return torch.relu(self.W_o(torch.cat([g.x, a], 1)))


class BertLayer(nn.Module):
    """Post-LN BERT layer (8 heads of 16, attention dropout 0.1, FFN 512, ReLU); with ``cross=True`` two
    streams as DeepCoVDR: ctx0 = softmax(Q_C K_D) V_D updates the drug stream, ctx1 = softmax(Q_D K_C) V_C the
    cell stream, output Dense / LayerNorm / FFN shared by both streams.
    """

    def __init__(self, d: int = 128, heads: int = 8, ffn: int = 512, dropout: float = 0.1, cross: bool = False):
        super().__init__()
        self.h, self.dk, self.cross = heads, d // heads, cross
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        if cross:
            self.q2, self.k2, self.v2 = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.dense, self.ln1 = nn.Linear(d, d), nn.LayerNorm(d, eps=1e-12)
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.ReLU(), nn.Linear(ffn, d))
        self.ln2, self.drop, self.attn_drop = nn.LayerNorm(d, eps=1e-12), nn.Dropout(dropout), nn.Dropout(dropout)

    def _heads(self, t: Tensor) -> Tensor:
        B, L, _ = t.shape
        return t.view(B, L, self.h, self.dk).transpose(1, 2)

    def _attend(self, q, k, v, mask) -> Tensor:
        s = self._heads(q) @ self._heads(k).transpose(-1, -2) / math.sqrt(self.dk) + mask
        a = self.attn_drop(torch.softmax(s, -1)) @ self._heads(v)
        return a.transpose(1, 2).reshape(q.shape)

    def _out(self, ctx, res):
        h = self.ln1(self.drop(self.dense(ctx)) + res)
        return self.ln2(self.drop(self.ffn(h)) + h)

    def forward(self, x: Tensor, mask: Tensor, c: Optional[Tensor] = None):
        if not self.cross:
            return self._out(self._attend(self.q(x), self.k(x), self.v(x), mask), x)
        ctx0 = self._attend(self.q2(c), self.k(x), self.v(x), mask)  # cell queries over drug values
        ctx1 = self._attend(self.q(x), self.k2(c), self.v2(c), mask)  # drug queries over cell values
        return self._out(ctx0, x), self._out(ctx1, c)


@register_model("deepcovdr")
class DeepCoVDR(ResponseModel):
    r"""DeepCoVDR, GDSC stage: `Huang et al., "DeepCoVDR: deep transfer learning with graph transformer and
    cross-attention for predicting COVID-19 drug response", Bioinformatics 39 (ISMB 2023)
    <https://github.com/Hhhzj-7/DeepCoVDR>`_.

    A shared D-MPNN (chemprop, hidden 300, depth 3) gives atom states; each of two transformers adds its own
    degree embedding and the shared projection (300 -> 300 -> 128): an 8-layer graph transformer (read-out:
    atom 0) and an 8-layer two-stream cross-attention transformer against the cell embedding broadcast over
    the atoms (expression MLP G -> 1024 -> 512 -> 256 -> 128). Fusion ``[(drug_x + drug_graph)/2 ‖
    (cell_x + cell)/2]`` -> 256 -> 1.

    Choices: the cross-attention wiring is reproduced as released (the cell stream never sees the drug;
    ``docs/baselines.md`` (DeepCoVDR)); molecules are padded to the batch's largest, not to 300 atoms (the
    masked result is the same); the D-MPNN runs once per distinct drug; the unused registered modules
    (ESPF embeddings, ``cell_linear``) are left out, so parameters are the ~6.3 M *used* ones at 978 genes;
    input expression is the package's per-gene robust z (the original z-scored each sample); targets
    standardised internally.
    """

    def __init__(
        self,
        genes: Union[int, Sequence[str]],
        hidden: int = 300,
        d: int = 128,
        layers: int = 8,
        dropout: float = 0.1,
        max_degree: int = 300,
    ):
        super().__init__()
        n = genes if isinstance(genes, int) else len(genes)
        self.mpnn = DMPNN(hidden)
        self.deg_a, self.deg_b = nn.Embedding(max_degree, hidden), nn.Embedding(max_degree, hidden)
        self.proj = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, d))
        self.graph_tf = nn.ModuleList([BertLayer(d, dropout=dropout) for _ in range(layers)])
        self.cross_tf = nn.ModuleList([BertLayer(d, dropout=dropout, cross=True) for _ in range(layers)])
        self.cell = nn.Sequential(
            nn.Linear(n, 1024),
            nn.ReLU(),
            nn.Linear(1024, 512),
            nn.ReLU(),
            nn.Linear(512, 256),
            nn.ReLU(),
            nn.Linear(256, d),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(2 * d, 256), nn.Dropout(dropout), nn.ReLU(), nn.Linear(256, 1))
        self.max_degree = max_degree
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))
        self._graphs = SmilesGraphCache(chemprop_graph)
        self.save_hparams(
            genes=genes if isinstance(genes, int) else list(genes),
            hidden=hidden,
            d=d,
            layers=layers,
            dropout=dropout,
            max_degree=max_degree,
        )

    def forward(
        self, expr: Tensor, drug_graph, drug_index: Tensor, dose: Optional[Tensor] = None, time: Optional[Tensor] = None
    ) -> Tensor:
        g = self._graphs.batch(list(drug_graph.smiles), expr.device)
        states = self.mpnn(g)  # once per distinct drug
        deg = (
            torch.zeros(g.num_nodes, dtype=torch.long, device=expr.device)
            .index_add_(0, g.edge_index[1], torch.ones_like(g.edge_index[1]))
            .clamp_max(self.max_degree - 1)
        )
        dense, mask = to_dense_batch(states, g.batch, batch_size=g.num_graphs)
        dense_deg, _ = to_dense_batch(deg, g.batch, batch_size=g.num_graphs)
        add_mask = (1.0 - mask.float())[:, None, None, :] * -10000.0
        a = self.proj(dense + self.deg_a(dense_deg))
        for layer in self.graph_tf:
            a = layer(a, add_mask)
        v_nol = a[:, 0][drug_index]
        b = self.proj(dense + self.deg_b(dense_deg))[drug_index]  # the cross stream is per pair
        m = add_mask[drug_index]
        v_p = self.cell(expr)
        c = v_p.unsqueeze(1).expand(-1, b.size(1), -1)
        for layer in self.cross_tf:
            b, c = layer(b, m, c)
        v_d = (b[:, 0] + v_nol) / 2
        v_c = (c[:, 0] + v_p) / 2
        return self.head(torch.cat([v_d, v_c], 1)).squeeze(-1) * self.y_std + self.y_mean


register_deep("deepcovdr", train={"lr": 1e-4, "batch_size": 32})

__all__ = ["DeepCoVDR", "DMPNN", "BertLayer", "chemprop_graph"]
