"""DRPreter (Shin et al., Int. J. Mol. Sci. 2022): per-pathway gene graphs (GAT), pathway tokens and a drug
token mixed by a transformer. Written from ``docs/baselines.md`` (DRPreter).
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GATConv, GINConv, global_max_pool

from csg2a_graph.baselines.deep import register_deep
from csg2a_graph.baselines.graphdrp import SmilesGraphCache
from csg2a_graph.data.featurize import DGL_ATOM_SYMBOLS, bond_edge_index, implicit_valence, one_hot
from csg2a_graph.nn.models.base import ResponseModel, register_model

DGL_SYMBOLS = list(DGL_ATOM_SYMBOLS)  # DGL-LifeSci's canonical atom featuriser; no unknown slot: all-zero


def dgllife_graph(smiles: str) -> Data:
    """DGL-LifeSci's 77-d canonical atom features (written with RDKit, no DGL): element (43, no unknown
    slot), degree 0..10, implicit valence 0..6, formal charge, radical electrons, hybridisation
    SP..SP3D2, aromatic, total Hs 0..4, in ring, CIP R/S; bonds in both directions.
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

    def oh(v, choices):
        return one_hot(v, choices, "none")

    feats = []
    for a in mol.GetAtoms():
        implicit = implicit_valence(a)
        cip = a.GetProp("_CIPCode") if a.HasProp("_CIPCode") else ""
        feats.append(
            oh(a.GetSymbol(), DGL_SYMBOLS)
            + oh(a.GetDegree(), range(11))
            + oh(implicit, range(7))
            + [float(a.GetFormalCharge()), float(a.GetNumRadicalElectrons())]
            + oh(a.GetHybridization(), hyb)
            + [float(a.GetIsAromatic())]
            + oh(a.GetTotalNumHs(), range(5))
            + [float(a.IsInRing())]
            + oh(cip, ["R", "S"])
        )
    ei = bond_edge_index(mol)
    return Data(x=torch.tensor(feats, dtype=torch.float32), edge_index=ei)


class PathwayTransformerLayer(nn.Module):
    """DRPreter's encoder layer: 8 heads of d_k = d_v = 64 (Q/K/V 256 -> 512, no bias), output 512 -> 256 (no
    bias), post-LN, FFN 256 -> 256 -> 256 with ReLU, no dropout; ``key_mask`` True = ignore that key.
    """

    def __init__(self, d_model: int = 256, heads: int = 8, d_k: int = 64):
        super().__init__()
        self.heads, self.d_k = heads, d_k
        self.q = nn.Linear(d_model, heads * d_k, bias=False)
        self.k = nn.Linear(d_model, heads * d_k, bias=False)
        self.v = nn.Linear(d_model, heads * d_k, bias=False)
        self.o = nn.Linear(heads * d_k, d_model, bias=False)
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Linear(d_model, d_model))

    def forward(self, x: Tensor, key_mask: Optional[Tensor] = None) -> Tensor:
        B, T, _ = x.shape

        def split(t):
            return t.view(B, T, self.heads, self.d_k).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        s = q @ k.transpose(-1, -2) / math.sqrt(self.d_k)
        if key_mask is not None:
            s = s.masked_fill(key_mask[:, None, None, :], -1e9)
        a = torch.softmax(s, -1) @ v
        h = self.ln1(x + self.o(a.transpose(1, 2).reshape(B, T, -1)))
        return self.ln2(h + self.ffn(h))


@register_model("drpreter")
class DRPreter(ResponseModel):
    r"""DRPreter: `Shin et al., "DRPreter: Interpretable Anticancer Drug Response Prediction Using
    Knowledge-Guided Graph Neural Networks and Transformer", Int. J. Mol. Sci. 23(22) 2022
    <https://doi.org/10.3390/ijms232213919>`_.

    - cell: the genes of 34 KEGG pathways, **duplicated per pathway** (a gene in k pathways is k nodes),
      expression as node feature, STRING >= 990 edges within each pathway; 3 x GATConv(8) + ReLU; each
      pathway's node states zero-padded to ``max_gene`` slots and mapped by one shared MLP
      (8·max_gene -> 1024 -> 256) to a pathway token;
    - drug: 3 x GINConv(128) + ReLU + BatchNorm, concatenated (jumping knowledge), max-pooled, -> 256
      (77-d DGL-LifeSci atom features, ``dgllife_graph()``);
    - a transformer layer over the 34 pathway tokens + the drug token; cell = sum of pathway tokens,
      drug = drug embedding + its token; head 512 -> 512 -> 512 -> 1 with ELU.

    Choices (``docs/baselines.md`` (DRPreter)): edges get each pathway's node offset (the released code left
    them local, so all edges fell into the first pathways; ``legacy_edge_indexing=True`` reproduces that);
    no key mask by default (the released mask hides any token whose first feature is 0, which ReLU makes
    common; ``mask_zero_first_feature=True`` reproduces it); empty pathways get all-zero tokens; targets
    standardised internally. Nodes are the measured genes of the gene space in the pathways.
    """

    def __init__(
        self,
        genes: Union[int, Sequence[str]],
        pathways: List[List[int]],
        edges: List[List[int]],
        cell_hidden: int = 8,
        drug_hidden: int = 128,
        dim: int = 256,
        dropout: float = 0.1,
        legacy_edge_indexing: bool = False,
        mask_zero_first_feature: bool = False,
    ):
        super().__init__()
        n_pw = len(pathways)
        node_gene, node_pw, node_slot = [], [], []
        for p, genes_p in enumerate(pathways):
            for s, g in enumerate(genes_p):
                node_gene.append(g)
                node_pw.append(p)
                node_slot.append(s)
        if not node_gene:
            raise ValueError("no pathway gene is in the gene space")
        self.max_gene = max(len(g) for g in pathways)
        self.num_pathways, self.num_nodes = n_pw, len(node_gene)
        self.register_buffer("node_gene", torch.tensor(node_gene, dtype=torch.long))
        self.register_buffer("node_pos", torch.tensor([p * self.max_gene + s for p, s in zip(node_pw, node_slot)]))
        offsets = [0]
        for genes_p in pathways:
            offsets.append(offsets[-1] + len(genes_p))
        ei = []
        for p, a, b in edges:  # (pathway, local index a, local index b), both directions
            off = 0 if legacy_edge_indexing else offsets[p]
            ei += [[off + a, off + b], [off + b, off + a]]
        self.register_buffer("cell_edge_index", torch.tensor(ei, dtype=torch.long).T.reshape(2, -1))
        self.gats = nn.ModuleList([GATConv(1 if i == 0 else cell_hidden, cell_hidden) for i in range(3)])
        self.cell_emb = nn.Sequential(
            nn.Linear(cell_hidden * self.max_gene, 1024),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(1024, dim),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.gins = nn.ModuleList(
            [
                GINConv(
                    nn.Sequential(
                        nn.Linear(77 if i == 0 else drug_hidden, drug_hidden),
                        nn.ReLU(),
                        nn.Linear(drug_hidden, drug_hidden),
                    )
                )
                for i in range(3)
            ]
        )
        self.bns = nn.ModuleList([nn.BatchNorm1d(drug_hidden) for _ in range(3)])
        self.drug_emb = nn.Sequential(nn.Linear(3 * drug_hidden, dim), nn.ReLU(), nn.Dropout(dropout))
        self.transformer = PathwayTransformerLayer(dim)
        self.head = nn.Sequential(
            nn.Linear(2 * dim, 512),
            nn.ELU(),
            nn.Dropout(dropout),
            nn.Linear(512, 512),
            nn.ELU(),
            nn.Dropout(dropout),
            nn.Linear(512, 1),
        )
        self.mask_zero_first_feature = mask_zero_first_feature
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))
        self._graphs = SmilesGraphCache(dgllife_graph)
        self._edges: Tuple = (None, None)
        self.save_hparams(
            genes=genes if isinstance(genes, int) else list(genes),
            pathways=pathways,
            edges=edges,
            cell_hidden=cell_hidden,
            drug_hidden=drug_hidden,
            dim=dim,
            dropout=dropout,
            legacy_edge_indexing=legacy_edge_indexing,
            mask_zero_first_feature=mask_zero_first_feature,
        )

    @classmethod
    def from_dataset(cls, dataset, pathways_file: str, edges_file: str, **kw) -> "DRPreter":
        """34 pathways from DRPreter's pathway table (``order, kegg_id, ..., genes_in_original_order``) and the
        STRING >= 990 intra-pathway edges (``kegg_id, gene_a, gene_b``), restricted to measured genes.
        """
        import pandas as pd

        space, measured = dataset.gene_space, dataset.gene_mask
        pw = pd.read_csv(pathways_file, sep="\t").sort_values("order")
        pathways, ids = [], []
        for kegg, genes in zip(pw["kegg_id"], pw["genes_in_original_order"]):
            idx = []
            for g in str(genes).split(","):
                r = space.resolve(g.strip())
                if r is not None and measured[space.index[r]] and space.index[r] not in idx:
                    idx.append(space.index[r])
            pathways.append(idx)
            ids.append(kegg)
        e = pd.read_csv(edges_file, sep="\t")
        edges = []
        for kegg, a, b in zip(e["kegg_id"], e["gene_a"], e["gene_b"]):
            if kegg not in ids:
                continue
            p = ids.index(kegg)
            ra, rb = space.resolve(str(a)), space.resolve(str(b))
            if ra is None or rb is None:
                continue
            ia, ib = space.index[ra], space.index[rb]
            if ia in pathways[p] and ib in pathways[p]:
                edges.append([p, pathways[p].index(ia), pathways[p].index(ib)])
        return cls(space.genes, pathways, edges, **kw)

    def _batched_edges(self, B: int) -> Tensor:
        key, val = self._edges
        if key == (B, self.cell_edge_index.device):
            return val
        E = self.cell_edge_index.size(1)
        off = (torch.arange(B, device=self.cell_edge_index.device) * self.num_nodes).repeat_interleave(E)
        val = self.cell_edge_index.repeat(1, B) + off
        self._edges = ((B, self.cell_edge_index.device), val)
        return val

    def encode_drugs(self, drug_graph) -> Tensor:
        g = self._graphs.batch(list(drug_graph.smiles), self.head[0].weight.device)
        x, hs = g.x, []
        for conv, bn in zip(self.gins, self.bns):
            x = bn(torch.relu(conv(x, g.edge_index)))
            hs.append(x)
        return self.drug_emb(global_max_pool(torch.cat(hs, 1), g.batch, size=g.num_graphs))

    def forward(
        self, expr: Tensor, drug_graph, drug_index: Tensor, dose: Optional[Tensor] = None, time: Optional[Tensor] = None
    ) -> Tensor:
        B = expr.size(0)
        h = expr[:, self.node_gene].reshape(B * self.num_nodes, 1)
        ei = self._batched_edges(B)
        for gat in self.gats:
            h = torch.relu(gat(h, ei))
        h = h.view(B, self.num_nodes, -1)
        slots = h.new_zeros(B, self.num_pathways * self.max_gene, h.size(-1))
        slots[:, self.node_pos] = h
        tokens = self.cell_emb(slots.view(B, self.num_pathways, -1))  # [B, P, dim]
        d = self.encode_drugs(drug_graph)[drug_index]  # each distinct drug once per batch
        x = torch.cat([tokens, d.unsqueeze(1)], dim=1)
        mask = (x[..., 0] == 0) if self.mask_zero_first_feature else None
        out = self.transformer(x, mask)
        cell = out[:, :-1].sum(1)
        drug = d + out[:, -1]
        return self.head(torch.cat([drug, cell], dim=1)).squeeze(-1) * self.y_std + self.y_mean


register_deep("drpreter", train={"lr": 1e-4, "batch_size": 128})

__all__ = ["DRPreter", "dgllife_graph", "PathwayTransformerLayer"]
