r"""The CSG²A networks: :class:`CSG2A` (LINCS pretraining) and :class:`CSG2AFineTune` (drug response).

Bang et al., "Multi-scale drug response modelling with condition-specific gene-gene attention"
(paper Section 3, Appendix A.1-A.2). Pretraining predicts the perturbed profile

.. math::
    \hat g = W_{out}\, \mathrm{dropout}(\mathrm{ReLU}(\mathrm{LN}(S\, g_0))), \qquad
    S = q q^\top/\sqrt{h} + A_{PPI}, \quad q = g_0 \odot W_{gene} + \mathcal{D} \odot W_{comp}

and fine-tuning puts a learnable scaling layer in front of the (frozen) pretrained network and
predicts ln IC50 from projections of ``[g0', ĝ, D]``. See ``docs/models.md``.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from csg2a_graph.nn.condition import ChemicalConditionEncoder
from csg2a_graph.nn.conv import CSG2AConv
from csg2a_graph.nn.models.base import ResponseModel, register_model
from csg2a_graph.typing import Prior, check_choice

logger = logging.getLogger(__name__)

def _encoder_hparams(name: str, kw: Dict, encoder) -> Dict:
    """The drug encoder's arguments as kept in a checkpoint: weights files and embedding tables live in
    the state dict, so the checkpoint rebuilds without them (a precomputed table: its keys and width)."""
    if name == "precomputed":
        return {"keys": list(encoder.keys), "dim": int(encoder.out_channels),
                "finetune": bool(kw.get("finetune", False))}
    return {k: v for k, v in kw.items() if k != "weights"}


def _genes(genes: Union[int, Sequence[str]]) -> List[str]:
    return [f"g{i}" for i in range(genes)] if isinstance(genes, int) else [str(g) for g in genes]


@register_model("csg2a-pretrain")
class CSG2A(ResponseModel):
    r"""The CSG²A pretraining network: chemical condition encoder + :class:`CSG2AConv` + head.

    Args:
        genes: the gene space (list of symbols) or its size.
        hidden_channels: ``h`` of the attention. (paper: 64)
        score, reduce: of :class:`CSG2AConv` (paper: ``"linear"``, ``"matmul"``; the released code
            uses ``reduce="rowsum"``).
        prior: ``(edge_index, edge_weight)`` over the genes (the STRING prior), or ``None``.
        use_prior: ``False`` ignores the prior (the "no prior" ablation).
        attention: ``False`` replaces the attention layer by a plain linear map of ``[g0, D]``
            (the "linear model" ablation).
        drug_encoder, drug_encoder_kwargs, drug_weights: the condition encoder's drug encoder;
            ``drug_weights`` (a path, loaded once, not kept in the hyperparameters) for
            ``pretrained-gcn`` or ``mat``.
        cond_hidden: hidden width of the condition MLP.
        embedding_norm: standardise drug embeddings before the condition MLP (see
            :class:`~csg2a_graph.nn.ChemicalConditionEncoder`).
        dropout: dropout of the head and the condition MLP. (0.1)
        bias: bias terms anywhere (``False``: CSG²A removes them for transfer).
        num_prior_edges: size of the prior buffers when rebuilding from a checkpoint.

    ``forward(expr [B, N], drug_graph, drug_index [B], dose [B], time [B]) -> [B, N]``.
    """

    target = "profile"

    cond: ChemicalConditionEncoder
    conv: CSG2AConv
    lin_g: nn.Linear
    lin_d: nn.Linear
    prior_edge_index: Tensor
    prior_edge_weight: Tensor

    def __init__(self, genes: Union[int, Sequence[str]], hidden_channels: int = 64, score: str = "linear",
                 reduce: str = "matmul", prior: Prior = None, use_prior: bool = True, attention: bool = True,
                 drug_encoder: str = "gin", drug_encoder_kwargs: Optional[Dict] = None,
                 drug_weights: Optional[str] = None, cond_hidden: int = 512, dropout: float = 0.1,
                 bias: bool = False, embedding_norm: bool = True, num_prior_edges: Optional[int] = None):
        super().__init__()
        genes = _genes(genes)
        N = len(genes)
        kw = dict(drug_encoder_kwargs or {})
        if drug_weights is not None:
            kw["weights"] = drug_weights
        self.num_genes = N
        self.cond = ChemicalConditionEncoder(N, drug_encoder, kw, cond_hidden, dropout, bias, embedding_norm)
        if prior is not None:
            ei, ew = prior
            ew = torch.ones(ei.size(1)) if ew is None else ew
        else:
            ei, ew = torch.zeros(2, num_prior_edges or 0, dtype=torch.long), torch.zeros(num_prior_edges or 0)
        self.register_buffer("prior_edge_index", ei.long().clone())
        self.register_buffer("prior_edge_weight", ew.float().clone())
        self.use_prior, self.attention = use_prior, attention
        if attention:
            self.conv = CSG2AConv(N, hidden_channels, score=score, reduce=reduce, bias=bias)
        else:
            self.lin_g = nn.Linear(N, N, bias=bias)
            self.lin_d = nn.Linear(N, N, bias=False)
        self.norm = nn.LayerNorm(N, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(N, N, bias=False)
        self.save_hparams(genes=genes, hidden_channels=hidden_channels, score=score, reduce=reduce,
                          use_prior=use_prior, attention=attention, drug_encoder=drug_encoder,
                          drug_encoder_kwargs=_encoder_hparams(drug_encoder, kw, self.cond.drug),
                          cond_hidden=cond_hidden, dropout=dropout, bias=bias, embedding_norm=embedding_norm,
                          num_prior_edges=int(self.prior_edge_index.size(1)))

    @property
    def genes(self) -> List[str]:
        return self.hparams["genes"]

    def condition(self, drug_graph, drug_index: Tensor, dose: Tensor, time: Tensor) -> Tensor:
        """``D [B, N]``: the chemical condition of each pair."""
        return self.cond(drug_graph, drug_index, dose, time)

    def mix(self, expr: Tensor, cond: Tensor, return_attention_weights: bool = False):
        """The first layer: ``S g0`` with the condition-specific attention (``[B, N]``)."""
        if not self.attention:
            return self.lin_g(expr) + self.lin_d(cond)
        has_prior = self.use_prior and self.prior_edge_index.numel() > 0
        ei = self.prior_edge_index if has_prior else None
        ew = self.prior_edge_weight if has_prior else None
        out = self.conv(expr.unsqueeze(-1), ei, ew, cond=cond, return_attention_weights=return_attention_weights)
        if return_attention_weights:
            return out[0].squeeze(-1), out[1]
        return out.squeeze(-1)

    def perturb(self, expr: Tensor, cond: Tensor) -> Tensor:
        """Predicted perturbed profile ``ĝ [B, N]`` from basal ``expr`` and condition ``cond``."""
        return self.out(self.dropout(torch.relu(self.norm(self.mix(expr, cond)))))

    def forward(self, expr: Tensor, drug_graph, drug_index: Tensor, dose: Tensor, time: Tensor) -> Tensor:
        return self.perturb(expr, self.condition(drug_graph, drug_index, dose, time))


@register_model("csg2a")
class CSG2AFineTune(ResponseModel):
    r"""CSG²A fine-tuned for drug response: scaling layer -> pretrained :class:`CSG2A` -> head (paper A.2).

    The input genes (``genes``, with ``measured`` marking genes the expression really has) must
    be a subset of the pretrained network's gene space: each is placed at its position there,
    genes the input lacks (or that are filled) take ``fill_value`` and bypass the scaling layer.

    Args:
        pretrained: the hyperparameters of the pretrained :class:`CSG2A` (``model.hparams``);
            use :meth:`from_pretrained` to also copy its weights.
        genes: the fine-tuning dataset's genes. ``None``: the pretrained gene space.
        measured: per input gene, whether it was measured (``dataset.gene_mask``).
        scaling: ``"scalar"`` — ``(g + b) s`` with scalars (the released code); ``"gene"`` —
            ``(g - μ)/σ`` per gene (the paper's text); ``"none"``.
        freeze: freeze the pretrained parameters (the paper's best setting).
        frozen_mode: ``"eval"`` — the frozen part runs in eval mode (no dropout; BatchNorm uses its
            running statistics and never updates them), so the condition of a (drug, dose, time)
            is a constant and is cached; ``"train"`` — the frozen part follows the model's mode
            (the released code: dropout active in frozen layers, BatchNorm statistics updated).
        proj_channels: width of each of the three projections (512).
        dropout: dropout of projections and head.
        bias: bias terms in the projections and head (removed, as in the paper).
        fill_value: value of genes the input lacks (0 = the population median after robust z).

    ``forward(expr [B, n_in], drug_graph, drug_index, dose, time) -> [B]`` (ln IC50).
    """

    target = "response"

    pretrained: CSG2A
    gene_index: Tensor
    measured: Tensor

    def __init__(self, pretrained: Dict, genes: Optional[Sequence[str]] = None,
                 measured: Optional[Sequence[bool]] = None, scaling: str = "scalar", freeze: bool = True,
                 frozen_mode: str = "eval", proj_channels: int = 512, dropout: float = 0.1, bias: bool = False,
                 fill_value: float = 0.0, input_norm: bool = True):
        super().__init__()
        check_choice("scaling", scaling, ("scalar", "gene", "none"))
        check_choice("frozen_mode", frozen_mode, ("eval", "train"))
        self.pretrained = CSG2A(**pretrained)
        pre_genes = self.pretrained.genes
        genes = list(pre_genes) if genes is None else [str(g) for g in genes]
        pos = {g: i for i, g in enumerate(pre_genes)}
        unknown = [g for g in genes if g not in pos]
        if unknown:
            raise ValueError(f"{len(unknown)} input genes are not in the pretrained gene space "
                             f"({len(pre_genes)} genes), e.g. {unknown[:5]}; re-build the dataset on the "
                             "pretrained model's gene space")
        measured = [True] * len(genes) if measured is None else [bool(m) for m in measured]
        if len(measured) != len(genes):
            raise ValueError(f"measured has {len(measured)} entries for {len(genes)} genes")
        N, n_in = len(pre_genes), len(genes)
        self.register_buffer("gene_index", torch.tensor([pos[g] for g in genes], dtype=torch.long))
        self.register_buffer("measured", torch.tensor(measured, dtype=torch.bool))
        self.scaling, self.freeze, self.frozen_mode, self.fill_value = scaling, freeze, frozen_mode, fill_value
        if scaling == "scalar":
            self.shift = nn.Parameter(torch.zeros(1))
            self.scale = nn.Parameter(torch.ones(1))
        elif scaling == "gene":
            self.mu = nn.Parameter(torch.zeros(n_in))
            self.sigma = nn.Parameter(torch.ones(n_in))

        def proj():
            layers = [nn.BatchNorm1d(N, affine=False)] if input_norm else []
            return nn.Sequential(*layers, nn.Linear(N, proj_channels, bias=bias), nn.BatchNorm1d(proj_channels),
                                 nn.ReLU(), nn.Dropout(dropout))

        self.proj_basal, self.proj_perturbed, self.proj_condition = proj(), proj(), proj()
        self.head = nn.Sequential(
            nn.Linear(3 * proj_channels, 512, bias=bias), nn.BatchNorm1d(512), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(512, 64, bias=bias), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(64, 1, bias=bias))
        # the head predicts standardised ln IC50 (no bias terms: an offset of ~3 would be slow to learn)
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))
        self.set_freeze(freeze)
        self.save_hparams(pretrained=dict(pretrained), genes=genes, measured=measured, scaling=scaling,
                          freeze=freeze, frozen_mode=frozen_mode, proj_channels=proj_channels, dropout=dropout,
                          bias=bias, fill_value=fill_value, input_norm=input_norm)

    @classmethod
    def from_pretrained(cls, pretrained: Union[str, CSG2A], **kwargs) -> "CSG2AFineTune":
        """A fine-tuning model around a pretrained :class:`CSG2A` (a model or a checkpoint path)."""
        net = CSG2A.from_checkpoint(pretrained) if isinstance(pretrained, str) else pretrained
        if not isinstance(net, CSG2A):
            raise TypeError(f"expected a CSG2A pretraining network, got {type(net).__name__}")
        model = cls(net.hparams, **kwargs)
        model.pretrained.load_state_dict(net.state_dict())
        return model

    def set_freeze(self, freeze: bool) -> None:
        self.freeze = freeze
        for p in self.pretrained.parameters():
            p.requires_grad_(not freeze)
        self.pretrained.cond.cache_outputs = freeze and self.frozen_mode == "eval"
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze and self.frozen_mode == "eval":
            self.pretrained.eval()
        return self

    def scale_input(self, expr: Tensor) -> Tensor:
        """The scaling layer, then the input placed in the pretrained gene space (``[B, N]``)."""
        if self.scaling == "scalar":
            g = (expr + self.shift) * self.scale
        elif self.scaling == "gene":
            g = (expr - self.mu) / self.sigma
        else:
            g = expr
        g = torch.where(self.measured, g, torch.full_like(g, self.fill_value))
        N = self.pretrained.num_genes
        if g.size(1) == N and bool((self.gene_index == torch.arange(N, device=g.device)).all()):
            return g
        full = g.new_full((g.size(0), N), self.fill_value)
        full[:, self.gene_index] = g
        return full

    def forward(self, expr: Tensor, drug_graph, drug_index: Tensor, dose: Tensor, time: Tensor) -> Tensor:
        if expr.size(1) != self.gene_index.numel():
            raise ValueError(f"expr has {expr.size(1)} genes, the model expects {self.gene_index.numel()}")
        return self.forward_condition(expr, self.pretrained.condition(drug_graph, drug_index, dose, time))

    def forward_condition(self, expr: Tensor, cond: Tensor) -> Tensor:
        """The prediction from basal ``expr [B, n_in]`` and the chemical condition ``cond [B, N]``
        (:meth:`CSG2A.condition`): what attribution to the condition vector differentiates."""
        g = self.scale_input(expr)
        perturbed = self.pretrained.perturb(g, cond)
        h = torch.cat([self.proj_basal(g), self.proj_perturbed(perturbed), self.proj_condition(cond)], -1)
        return self.head(h).squeeze(-1) * self.y_std + self.y_mean


__all__ = ["CSG2A", "CSG2AFineTune"]
