"""The gene-graph family: each sample is a graph over the gene space — expression as node feature, the
STRING prior as edges — and the gene convolution is chosen by name; a drug GNN sits beside it.

It is a baseline (how far does a standard GNN over the prior get?) and the worked example of plugging
``CSG2AConv`` into a PyG model (``docs/baselines.md``, the CSG2AConv-in-PyG tutorial).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, GINConv

from csg2a_graph.baselines.deep import register_deep
from csg2a_graph.nn.conv import CSG2AConv
from csg2a_graph.nn.encoders import build_drug_encoder
from csg2a_graph.nn.models.base import ResponseModel, register_model
from csg2a_graph.registry import register_runner

GENE_CONVS = ("gcn", "gat", "gin", "csg2a", "csg2a+gcn")


@register_model("gene-graph")
class GeneGraphModel(ResponseModel):
    r"""A GNN over the gene graph of each sample, beside a drug GNN.

    Per sample ``b``: nodes are the ``N`` genes with feature ``x_{b,i}`` = expression, edges the prior.
    Input BatchNorm over the genes, ``layers`` gene convolutions each followed by LayerNorm (ReLU and dropout
    between them), then mean- and max-pooling over the genes,
    concatenated with the drug embedding (``drug_encoder``, default a GIN from scratch), then an MLP.

    ``conv``:

    - ``"gcn"`` / ``"gat"`` / ``"gin"``: PyG's ``GCNConv`` (with the prior's weights), ``GATConv``,
      ``GINConv``, on PyG's batched graph (``[B*N, F]`` nodes, the prior repeated per sample);
    - ``"csg2a"``: ``CSG2AConv`` on dense ``[B, N, F]`` input with the gene-level prior, conditioned
      on the drug: a linear map of the drug embedding gives each gene its condition ``c_{b,i}``, so the
      gene-gene attention is drug-specific;
    - ``"csg2a+gcn"``: a ``CSG2AConv`` first, then ``GCNConv`` layers (mixing the two).
    """

    def __init__(
        self,
        genes: Union[int, Sequence[str]],
        conv: str = "gcn",
        hidden_channels: int = 32,
        layers: int = 2,
        attention_channels: int = 16,
        drug_encoder: str = "gin",
        drug_hidden: int = 128,
        dropout: float = 0.1,
        prior: Optional[Tuple[Tensor, Tensor]] = None,
        num_prior_edges: Optional[int] = None,
    ):
        super().__init__()
        if conv not in GENE_CONVS:
            raise ValueError(f"conv must be one of {GENE_CONVS}, got {conv!r}")
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        n = genes if isinstance(genes, int) else len(genes)
        self.num_genes, self.conv_name, self.dropout = n, conv, dropout
        if prior is not None:
            ei, ew = prior
        else:
            ei, ew = torch.zeros(2, num_prior_edges or 0, dtype=torch.long), torch.zeros(num_prior_edges or 0)
        self.register_buffer("prior_edge_index", ei.long().clone())
        self.register_buffer("prior_edge_weight", ew.float().clone())
        self.drug = build_drug_encoder(drug_encoder, hidden_channels=drug_hidden)
        kinds = [conv] * layers if conv in ("gcn", "gat", "gin", "csg2a") else ["csg2a"] + ["gcn"] * (layers - 1)
        self.kinds = kinds
        self.convs = nn.ModuleList()
        for k, kind in enumerate(kinds):
            f_in = 1 if k == 0 else hidden_channels
            if kind == "gcn":
                self.convs.append(GCNConv(f_in, hidden_channels))
            elif kind == "gat":
                self.convs.append(GATConv(f_in, hidden_channels, heads=1))
            elif kind == "gin":
                self.convs.append(
                    GINConv(
                        nn.Sequential(
                            nn.Linear(f_in, hidden_channels), nn.ReLU(), nn.Linear(hidden_channels, hidden_channels)
                        )
                    )
                )
            else:
                self.convs.append(
                    CSG2AConv(n, attention_channels, in_channels=f_in, out_channels=hidden_channels, cond_channels=1)
                )
        self.cond = nn.Linear(drug_hidden, n) if "csg2a" in kinds else None
        # the same normalisation for every conv: BatchNorm of the input genes (robust z reaches |z| ~ 70),
        # LayerNorm over channels after each conv (the linear attention of CSG2AConv is unbounded)
        self.input_norm = nn.BatchNorm1d(n)
        self.norms = nn.ModuleList([nn.LayerNorm(hidden_channels) for _ in kinds])
        self.head = nn.Sequential(
            nn.Linear(2 * hidden_channels + drug_hidden, 256), nn.ReLU(), nn.Dropout(dropout), nn.Linear(256, 1)
        )
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))
        self._edges: Tuple = (None, None)
        self.save_hparams(
            genes=genes if isinstance(genes, int) else list(genes),
            conv=conv,
            hidden_channels=hidden_channels,
            layers=layers,
            attention_channels=attention_channels,
            drug_encoder=drug_encoder,
            drug_hidden=drug_hidden,
            dropout=dropout,
            num_prior_edges=int(self.prior_edge_index.size(1)),
        )

    def batched_prior(self, B: int) -> Tuple[Tensor, Tensor]:
        """The prior repeated for ``B`` samples (PyG's batched numbering), cached per ``B``."""
        key, val = self._edges
        if key == (B, self.prior_edge_index.device):
            return val
        E = self.prior_edge_index.size(1)
        off = (torch.arange(B, device=self.prior_edge_index.device) * self.num_genes).repeat_interleave(E)
        val = (self.prior_edge_index.repeat(1, B) + off, self.prior_edge_weight.repeat(B))
        self._edges = ((B, self.prior_edge_index.device), val)
        return val

    def forward(
        self, expr: Tensor, drug_graph, drug_index: Tensor, dose: Optional[Tensor] = None, time: Optional[Tensor] = None
    ) -> Tensor:
        B, N = expr.shape
        d = self.drug(drug_graph)[drug_index]  # each distinct drug encoded once per batch
        cond = self.cond(d) if self.cond is not None else None
        h = self.input_norm(expr).unsqueeze(-1)  # [B, N, 1]
        ei = ew = None
        for k, (kind, conv, norm) in enumerate(zip(self.kinds, self.convs, self.norms)):
            if kind == "csg2a":
                h = conv(h, self.prior_edge_index, self.prior_edge_weight, cond=cond)  # dense, gene-level prior
            else:
                if ei is None:
                    ei, ew = self.batched_prior(B)
                flat = h.reshape(B * N, -1)
                if kind == "gcn":
                    flat = conv(flat, ei, ew)
                else:
                    flat = conv(flat, ei)
                h = flat.view(B, N, -1)
            h = norm(h)
            if k < len(self.convs) - 1:
                h = nn.functional.dropout(h.relu(), self.dropout, self.training)
        pooled = torch.cat([h.mean(1), h.amax(1)], dim=1)
        out = self.head(torch.cat([pooled, d], dim=1)).squeeze(-1)
        return out * self.y_std + self.y_mean


_run_gene_graph = register_deep("gene-graph", train={"lr": 1e-3, "batch_size": 128})


def _register_conv(conv: str) -> None:
    """A runner per convolution (``gene-gcn`` ... ``gene-csg2a+gcn``): the gene-graph runner with ``conv`` set."""

    @register_runner(f"gene-{conv}")
    def run(dataset, split, options, run_dir, seed):
        return _run_gene_graph(dataset, split, {"conv": conv, **options}, run_dir, seed)


for _conv in GENE_CONVS:
    _register_conv(_conv)

__all__ = ["GeneGraphModel", "GENE_CONVS"]
