r"""The CSG²A networks: ``CSG2A`` (LINCS pretraining) and ``CSG2AFineTune`` (drug response).

Bang et al., "Multi-scale drug response modelling with condition-specific gene-gene attention"
(paper Section 3, Appendix A.1-A.2). Pretraining predicts the perturbed profile

$$
\hat g = W_{out}\, \mathrm{dropout}(\mathrm{ReLU}(\mathrm{LN}(S\, g_0))), \qquad
S = q q^\top/\sqrt{h} + A_{PPI}, \quad q = g_0 \odot W_{gene} + \mathcal{D} \odot W_{comp}
$$

and fine-tuning puts a learnable scaling layer in front of the (frozen) pretrained network and
predicts ln IC50 from projections of ``[g0', ĝ, D]``. See ``docs/models.md``.
"""

from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from csg2a_graph.errors import InputKeyError, InputTypeError
from csg2a_graph.nn.condition import ChemicalConditionEncoder
from csg2a_graph.nn.conv import CSG2AConv
from csg2a_graph.nn.models.base import ResponseModel, register_model
from csg2a_graph.nn.models.released import _RELEASED_FT_KEYS, _RELEASED_NET_KEYS, _dense_prior, _split_released
from csg2a_graph.typing import Prior, check_choice

logger = logging.getLogger(__name__)


def _encoder_hparams(name: str, kw: Dict, encoder) -> Dict:
    """The drug encoder's arguments as kept in a checkpoint: weights files and embedding tables live in
    the state dict, so the checkpoint rebuilds without them (a precomputed table: its keys and width).
    """
    if name == "precomputed":
        return {
            "keys": list(encoder.keys),
            "dim": int(encoder.out_channels),
            "finetune": bool(kw.get("finetune", False)),
        }
    return {k: v for k, v in kw.items() if k != "weights"}


#: What each named variant sets on ``CSG2A`` (each entry stays a constructor argument of its own;
#: an explicit argument wins over the variant). ``released``: the authors' released code's function
#: (``../shared/baselines/CSG2A_released.md``); ``paper``: the same with the written ``z = S g0``
#: (``reduce="matmul"``); ``improved``: this package's changes (see ``docs/models.md``).
VARIANTS: Dict[str, Dict] = {
    "released": {
        "reduce": "rowsum",
        "cond_block": "linear-bn",
        "embedding_norm": False,
        "norm_bias": True,
        "init": "normal",
        "dose_time_bias": True,
    },
    "paper": {
        "reduce": "matmul",
        "cond_block": "linear-bn",
        "embedding_norm": False,
        "norm_bias": True,
        "init": "normal",
        "dose_time_bias": True,
    },
    "improved": {
        "reduce": "matmul",
        "cond_block": "mlp",
        "embedding_norm": True,
        "norm_bias": False,
        "init": "uniform",
        "dose_time_bias": False,
    },
}
#: What each variant sets on ``CSG2AFineTune``.
FINETUNE_VARIANTS: Dict[str, Dict] = {
    "released": {
        "frozen_mode": "train",
        "bias": True,
        "input_norm": False,
        "standardize_target": False,
        "basal_input": "raw",
        "scale_init": "random",
    },
    "improved": {
        "frozen_mode": "eval",
        "bias": False,
        "input_norm": True,
        "standardize_target": True,
        "basal_input": "scaled",
        "scale_init": "identity",
    },
}
FINETUNE_VARIANTS["paper"] = dict(FINETUNE_VARIANTS["released"])
#: Training settings per variant (``TrainConfig`` fields), over its defaults
#: (Adam lr 1e-4, weight decay 1e-5, half cosine to 1e-5 over ``patience`` epochs then held, batch 128,
#: patience 20). Released pretraining has no weight decay and no schedule.
TRAIN_VARIANTS: Dict[str, Dict[str, Dict]] = {
    "released": {"pretrain": {"weight_decay": 0.0, "schedule": "constant"}, "finetune": {}},
    "paper": {"pretrain": {"weight_decay": 0.0, "schedule": "constant"}, "finetune": {}},
    "improved": {"pretrain": {}, "finetune": {}},
}
DEFAULT_VARIANT = "released"


def _variant(variant: Optional[str]) -> str:
    v = DEFAULT_VARIANT if variant is None else variant
    check_choice("variant", v, tuple(VARIANTS))
    return v


def training_defaults(variant: Optional[str], stage: str) -> Dict:
    """The ``TrainConfig`` fields ``variant`` sets for ``stage``
    (``"pretrain"`` or ``"finetune"``).
    """
    check_choice("stage", stage, ("pretrain", "finetune"))
    return dict(TRAIN_VARIANTS[_variant(variant)][stage])


def _genes(genes: Union[int, Sequence[str]]) -> List[str]:
    return [f"g{i}" for i in range(genes)] if isinstance(genes, int) else [str(g) for g in genes]


@register_model("csg2a-pretrain")
class CSG2A(ResponseModel):
    r"""The CSG²A pretraining network: chemical condition encoder + ``CSG2AConv`` + head.

    Args:
        genes: the gene space (list of symbols) or its size.
        variant: ``"released"`` (default: the authors' released function), ``"paper"`` (released with
            the written ``z = S g0``) or ``"improved"`` (this package's changes); sets the arguments
            below that are left ``None`` (``VARIANTS``).
        hidden_channels: ``h`` of the attention. (paper: 64)
        score, reduce: of ``CSG2AConv`` (paper: ``"linear"``, ``"matmul"``; the released code
            uses ``reduce="rowsum"``).
        prior: ``(edge_index, edge_weight)`` over the genes (the STRING prior), or ``None``.
        use_prior: ``False`` ignores the prior (the "no prior" ablation).
        attention: ``False`` replaces the attention layer by a plain linear map of ``[g0, D]``
            (the "linear model" ablation).
        drug_encoder, drug_encoder_kwargs, drug_weights: the condition encoder's drug encoder;
            ``drug_weights`` (a path, loaded once, not kept in the hyperparameters) for
            ``pretrained-gcn`` or ``mat``.
        cond_block: the condition block, ``"linear-bn"`` (released) or ``"mlp"`` (see
            ``ChemicalConditionEncoder``); ``cond_hidden``: the MLP's hidden width.
        embedding_norm: standardise drug embeddings before the condition block.
        dose_time_bias: bias of the dose/time ``Linear(1, 2)`` embeddings.
        norm_bias: bias of the LayerNorm after the attention.
        init: ``"normal"`` — ``w_gene``, ``w_cond`` ~ N(0, 1) (released); ``"uniform"`` — unit-variance ``q``
            for unit-variance inputs (``CSG2AConv.reset_parameters()``).
        dropout: dropout of the head and the condition block. (0.1)
        bias: bias terms of the condition block's linear layers (``False``: CSG²A removes them for transfer).
        num_prior_edges: size of the prior buffers when rebuilding from a checkpoint.
        residual: predict the change, ``ĝ = g0 + f(g0, D)``, with the output layer initialised at zero: the
            untrained network copies the basal profile, the strong baseline of LINCS (issue 26.10), and
            training (early-stopped on held-out compounds) can only leave it where validation improves.
            (default: ``False``, the published function)

    ``forward(expr [B, N], drug_graph, drug_index [B], dose [B], time [B]) -> [B, N]``.
    """

    target = "profile"

    cond: ChemicalConditionEncoder
    conv: CSG2AConv
    lin_g: nn.Linear
    lin_d: nn.Linear
    prior_edge_index: Tensor
    prior_edge_weight: Tensor

    def __init__(
        self,
        genes: Union[int, Sequence[str]],
        hidden_channels: int = 64,
        score: str = "linear",
        reduce: Optional[str] = None,
        prior: Prior = None,
        use_prior: bool = True,
        attention: bool = True,
        drug_encoder: str = "gin",
        drug_encoder_kwargs: Optional[Dict] = None,
        drug_weights: Optional[str] = None,
        cond_hidden: int = 512,
        dropout: float = 0.1,
        bias: bool = False,
        embedding_norm: Optional[bool] = None,
        num_prior_edges: Optional[int] = None,
        variant: Optional[str] = None,
        cond_block: Optional[str] = None,
        norm_bias: Optional[bool] = None,
        init: Optional[str] = None,
        dose_time_bias: Optional[bool] = None,
        residual: bool = False,
    ):
        super().__init__()
        variant = _variant(variant)
        preset = VARIANTS[variant]
        reduce = preset["reduce"] if reduce is None else reduce
        cond_block = preset["cond_block"] if cond_block is None else cond_block
        embedding_norm = preset["embedding_norm"] if embedding_norm is None else bool(embedding_norm)
        norm_bias = preset["norm_bias"] if norm_bias is None else bool(norm_bias)
        init = preset["init"] if init is None else init
        dose_time_bias = preset["dose_time_bias"] if dose_time_bias is None else bool(dose_time_bias)
        check_choice("init", init, ("normal", "uniform"))
        self.variant = variant
        genes = _genes(genes)
        N = len(genes)
        kw = dict(drug_encoder_kwargs or {})
        if drug_weights is not None:
            kw["weights"] = drug_weights
        self.num_genes = N
        self.cond = ChemicalConditionEncoder(
            N,
            drug_encoder,
            kw,
            cond_hidden,
            dropout,
            bias,
            embedding_norm,
            block=cond_block,
            dose_time_bias=dose_time_bias,
        )
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
            if init == "normal":
                nn.init.normal_(self.conv.w_gene)
                if self.conv.w_cond is not None:
                    nn.init.normal_(self.conv.w_cond)
        else:
            self.lin_g = nn.Linear(N, N, bias=bias)
            self.lin_d = nn.Linear(N, N, bias=False)
        self.norm = nn.LayerNorm(N, bias=norm_bias)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(N, N, bias=False)
        self.residual = bool(residual)
        if self.residual:
            nn.init.zeros_(self.out.weight)
        hp_extra = {"residual": True} if self.residual else {}  # absent = False: older checkpoints read the same
        self.save_hparams(
            **hp_extra,
            genes=genes,
            hidden_channels=hidden_channels,
            score=score,
            reduce=reduce,
            use_prior=use_prior,
            attention=attention,
            drug_encoder=drug_encoder,
            drug_encoder_kwargs=_encoder_hparams(drug_encoder, kw, self.cond.drug),
            cond_hidden=cond_hidden,
            dropout=dropout,
            bias=bias,
            embedding_norm=embedding_norm,
            num_prior_edges=int(self.prior_edge_index.size(1)),
            variant=variant,
            cond_block=cond_block,
            norm_bias=norm_bias,
            init=init,
            dose_time_bias=dose_time_bias,
        )

    @staticmethod
    def upgrade_hparams(hparams: Dict) -> Dict:
        """Hyperparameters of a checkpoint written before variants existed: those networks were the
        ``improved`` variant (their explicit arguments are kept).
        """
        out = dict(hparams)
        out.setdefault("variant", "improved")
        return out

    @classmethod
    def from_released(
        cls,
        state_dict: Dict[str, Tensor],
        genes: Sequence[str],
        prior,
        drug_encoder: str = "mat",
        drug_encoder_kwargs: Optional[Dict] = None,
        variant: str = "released",
        self_loops: bool = True,
        dropout: float = 0.1,
    ) -> "CSG2A":
        """Our network computing the released ``CSG2A_net`` whose state dict (its key names, see
        ``docs/models.md``) is ``state_dict``.

        Args:
            state_dict: the released pretraining network's state dict (a path to a ``torch.save`` of it
                is read too). The drug encoder's own keys sit under ``CCE.``; they are loaded into
                ``drug_encoder`` (strictly, with or without one leading module name such as ``CCE.mat.``).
            genes: the ``N`` gene symbols, in the order of the state dict's rows.
            prior: the additive term of the scores: a dense ``[N, N]`` matrix (the released ``I + A``,
                taken as it is) or ``(edge_index, edge_weight)`` of the STRING edges (``self_loops``
                adds the identity where the edge list lacks it). ``None``: the state dict's own
                ``[N, N]`` buffer when it has exactly one.
            drug_encoder, drug_encoder_kwargs: our encoder for the drug embedding (width ``E``): ``mat``
                with the state dict's MAT weights, or e.g. ``precomputed`` with embeddings made by the
                released MAT.
            variant: ``"released"`` or ``"paper"`` (the same weights with ``reduce="matmul"``).

        Unknown or missing keys and wrong shapes are refused, naming them.
        """
        if isinstance(state_dict, str):
            state_dict = torch.load(state_dict, map_location="cpu", weights_only=True)
        if variant not in ("released", "paper"):
            raise ValueError(f"released weights run as variant 'released' or 'paper', got {variant!r}")
        sd = dict(state_dict)
        mapped, rest, missing = _split_released(sd, _RELEASED_NET_KEYS)
        if missing:
            raise InputKeyError(f"the state dict lacks released keys {missing}")
        w = sd["w_gex"]
        N, h = w.shape
        genes = _genes(genes)
        if len(genes) != N:
            raise ValueError(f"{len(genes)} genes given for a state dict over {N} genes (w_gex is {tuple(w.shape)})")
        drug_sd = {k[len("CCE.") :]: v for k, v in rest.items() if k.startswith("CCE.")}
        other = {k: v for k, v in rest.items() if not k.startswith("CCE.")}
        if prior is None:
            dense = [k for k, v in other.items() if v.dim() == 2 and tuple(v.shape) == (N, N)]
            if len(dense) != 1:
                raise ValueError(f"prior=None needs exactly one [N, N] buffer in the state dict, found {dense}")
            prior = other.pop(dense[0])
        if other:
            raise InputKeyError(f"unknown keys in the released state dict: {sorted(other)[:10]}")
        ei, ew = _dense_prior(prior, N, self_loops)
        kw = dict(drug_encoder_kwargs or {})
        net = cls(
            genes,
            hidden_channels=h,
            prior=(ei, ew),
            drug_encoder=drug_encoder,
            drug_encoder_kwargs=kw,
            variant=variant,
            dropout=dropout,
            bias=False,
        )
        E = sd["CCE.comp_proj.0.weight"].shape[1] - 4
        if E != net.cond.drug.out_channels:
            raise ValueError(
                f"the state dict's condition block takes {E}-wide drug embeddings (+4 dose/time), "
                f"the {drug_encoder} encoder gives {net.cond.drug.out_channels}"
            )
        mapped["conv.w_gene"] = mapped["conv.w_gene"].unsqueeze(1)
        mapped["conv.w_cond"] = mapped["conv.w_cond"].unsqueeze(1)
        own = net.state_dict()
        for k, v in mapped.items():
            if tuple(own[k].shape) != tuple(v.shape):
                raise ValueError(f"{k}: shape {tuple(v.shape)} in the state dict, {tuple(own[k].shape)} expected")
        drug_own = {k[len("cond.drug.") :] for k in own if k.startswith("cond.drug.")}
        if drug_sd:
            if set(drug_sd) != drug_own:  # one leading module name (e.g. ``mat.``) may sit between
                heads = {k.split(".", 1)[0] for k in drug_sd}
                if len(heads) == 1 and all("." in k for k in drug_sd):
                    drug_sd = {k.split(".", 1)[1]: v for k, v in drug_sd.items()}
            if drug_encoder == "mat":  # MAT's pretraining head is not part of the encoder
                drug_sd = {k: v for k, v in drug_sd.items() if not k.startswith("generator.")}
            if set(drug_sd) != drug_own:
                extra, lack = sorted(set(drug_sd) - drug_own), sorted(drug_own - set(drug_sd))
                raise InputKeyError(
                    f"the state dict's drug-encoder keys do not fit the {drug_encoder} encoder: "
                    f"unexpected {extra[:5]}, missing {lack[:5]}"
                )
            mapped.update({f"cond.drug.{k}": v for k, v in drug_sd.items()})
        else:
            mapped.update({k: v for k, v in own.items() if k.startswith("cond.drug.")})
        mapped.update({k: own[k] for k in ("prior_edge_index", "prior_edge_weight")})
        net.load_state_dict({k: v.to(own[k].dtype) for k, v in mapped.items()}, strict=True)
        return net

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
        y = self.out(self.dropout(torch.relu(self.norm(self.mix(expr, cond)))))
        return expr + y if self.residual else y

    def forward(self, expr: Tensor, drug_graph, drug_index: Tensor, dose: Tensor, time: Tensor) -> Tensor:
        return self.perturb(expr, self.condition(drug_graph, drug_index, dose, time))


@register_model("csg2a")
class CSG2AFineTune(ResponseModel):
    r"""CSG²A fine-tuned for drug response: scaling layer -> pretrained ``CSG2A`` -> head (paper A.2).

    The input genes (``genes``, with ``measured`` marking genes the expression really has) must
    be a subset of the pretrained network's gene space: each is placed at its position there,
    genes the input lacks (or that are filled) take ``fill_value`` and bypass the scaling layer.

    Arguments left ``None`` are set by ``variant`` (``FINETUNE_VARIANTS``), which defaults to
    the pretrained network's.

    Args:
        pretrained: the hyperparameters of the pretrained ``CSG2A`` (``model.hparams``);
            use ``from_pretrained()`` to also copy its weights.
        genes: the fine-tuning dataset's genes. ``None``: the pretrained gene space.
        measured: per input gene, whether it was measured (``dataset.gene_mask``).
        variant: ``"released"``, ``"paper"`` or ``"improved"`` (see ``CSG2A``).
        scaling: ``"scalar"`` — ``(g + b) s`` with scalars (the released code); ``"gene"`` —
            ``(g - μ)/σ`` per gene (the paper's text); ``"none"``.
        scale_init: ``"random"`` — ``s = |N(0,1)| + 1e-8``, ``b ~ N(0,1)`` (released); ``"identity"`` —
            ``s = 1``, ``b = 0``.
        freeze: freeze the pretrained parameters (the paper's best setting).
        frozen_mode: ``"train"`` — the frozen part follows the model's mode (released: dropout active,
            the condition BatchNorm normalises with each batch's statistics and re-estimates its running
            statistics on the fine-tuning data, so a pair's ``D`` depends on its batch); ``"eval"`` — the
            frozen part runs in eval mode, the condition of a (drug, dose, time) is a constant and is cached.
        basal_input: what the basal projection sees: ``"raw"`` expression (released) or the
            ``"scaled"`` input of the pretrained network.
        proj_channels: width of each of the three projections (512).
        dropout: dropout of projections and head.
        bias: bias terms in the projections and head (released: with bias).
        input_norm: a BatchNorm without parameters in front of each projection.
        standardize_target: the head predicts standardised ln IC50 (mean/sd of the training targets,
            the loss on that scale); ``False``: raw ln IC50 (released).
        fill_value: value of genes the input lacks (0 = the population median after robust z).

    ``forward(expr [B, n_in], drug_graph, drug_index, dose, time) -> [B]`` (ln IC50).
    """

    target = "response"

    pretrained: CSG2A
    gene_index: Tensor
    measured: Tensor

    def __init__(
        self,
        pretrained: Dict,
        genes: Optional[Sequence[str]] = None,
        measured: Optional[Sequence[bool]] = None,
        scaling: str = "scalar",
        freeze: bool = True,
        frozen_mode: Optional[str] = None,
        proj_channels: int = 512,
        dropout: float = 0.1,
        bias: Optional[bool] = None,
        fill_value: float = 0.0,
        input_norm: Optional[bool] = None,
        variant: Optional[str] = None,
        standardize_target: Optional[bool] = None,
        basal_input: Optional[str] = None,
        scale_init: Optional[str] = None,
    ):
        super().__init__()
        pretrained = dict(pretrained)
        variant = _variant(variant if variant is not None else pretrained.get("variant"))
        preset = FINETUNE_VARIANTS[variant]
        frozen_mode = preset["frozen_mode"] if frozen_mode is None else frozen_mode
        bias = preset["bias"] if bias is None else bool(bias)
        input_norm = preset["input_norm"] if input_norm is None else bool(input_norm)
        standardize_target = preset["standardize_target"] if standardize_target is None else bool(standardize_target)
        basal_input = preset["basal_input"] if basal_input is None else basal_input
        scale_init = preset["scale_init"] if scale_init is None else scale_init
        check_choice("scaling", scaling, ("scalar", "gene", "none"))
        check_choice("frozen_mode", frozen_mode, ("eval", "train"))
        check_choice("basal_input", basal_input, ("raw", "scaled"))
        check_choice("scale_init", scale_init, ("random", "identity"))
        self.variant = variant
        self.pretrained = CSG2A(**pretrained)
        pre_genes = self.pretrained.genes
        genes = list(pre_genes) if genes is None else [str(g) for g in genes]
        pos = {g: i for i, g in enumerate(pre_genes)}
        unknown = [g for g in genes if g not in pos]
        if unknown:
            raise ValueError(
                f"{len(unknown)} input genes are not in the pretrained gene space "
                f"({len(pre_genes)} genes), e.g. {unknown[:5]}; re-build the dataset on the "
                "pretrained model's gene space"
            )
        measured = [True] * len(genes) if measured is None else [bool(m) for m in measured]
        if len(measured) != len(genes):
            raise ValueError(f"measured has {len(measured)} entries for {len(genes)} genes")
        N, n_in = len(pre_genes), len(genes)
        self.register_buffer("gene_index", torch.tensor([pos[g] for g in genes], dtype=torch.long))
        self._same_genes = genes == list(pre_genes)  # the input is the pretrained gene space, in its order
        self.register_buffer("measured", torch.tensor(measured, dtype=torch.bool))
        self.scaling, self.freeze, self.frozen_mode, self.fill_value = scaling, freeze, frozen_mode, fill_value
        self.basal_input, self.standardize_target = basal_input, standardize_target
        if scaling == "scalar":
            if scale_init == "random":  # the released initialisation
                self.shift = nn.Parameter(torch.randn(1))
                self.scale = nn.Parameter(torch.randn(1).abs() + 1e-8)
            else:
                self.shift = nn.Parameter(torch.zeros(1))
                self.scale = nn.Parameter(torch.ones(1))
        elif scaling == "gene":
            self.mu = nn.Parameter(torch.zeros(n_in))
            self.sigma = nn.Parameter(torch.ones(n_in))

        def proj():
            layers = [nn.BatchNorm1d(N, affine=False)] if input_norm else []
            return nn.Sequential(
                *layers,
                nn.Linear(N, proj_channels, bias=bias),
                nn.BatchNorm1d(proj_channels),
                nn.ReLU(),
                nn.Dropout(dropout),
            )

        self.proj_basal, self.proj_perturbed, self.proj_condition = proj(), proj(), proj()
        self.head = nn.Sequential(
            nn.Linear(3 * proj_channels, 512, bias=bias),
            nn.BatchNorm1d(512),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(512, 64, bias=bias),
            nn.BatchNorm1d(64),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(64, 1, bias=bias),
        )
        # standardize_target: the head predicts standardised ln IC50 (without bias terms an offset of ~3
        # would be slow to learn); otherwise the buffers stay 0 / 1
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))
        self.set_freeze(freeze)
        self.save_hparams(
            pretrained=dict(pretrained),
            genes=genes,
            measured=measured,
            scaling=scaling,
            freeze=freeze,
            frozen_mode=frozen_mode,
            proj_channels=proj_channels,
            dropout=dropout,
            bias=bias,
            fill_value=fill_value,
            input_norm=input_norm,
            variant=variant,
            standardize_target=standardize_target,
            basal_input=basal_input,
            scale_init=scale_init,
        )

    @staticmethod
    def upgrade_hparams(hparams: Dict) -> Dict:
        """Hyperparameters of a checkpoint written before variants existed (the ``improved`` variant)."""
        out = dict(hparams)
        if "variant" not in out:
            out["variant"] = "improved"
            out["pretrained"] = CSG2A.upgrade_hparams(out["pretrained"])
        return out

    def set_target_scaler(self, y: Tensor) -> None:
        if self.standardize_target:
            super().set_target_scaler(y)

    @classmethod
    def from_pretrained(cls, pretrained: Union[str, CSG2A], **kwargs) -> "CSG2AFineTune":
        """A fine-tuning model around a pretrained ``CSG2A`` (a model or a checkpoint path)."""
        net = CSG2A.from_checkpoint(pretrained) if isinstance(pretrained, str) else pretrained
        if not isinstance(net, CSG2A):
            raise InputTypeError(f"expected a CSG2A pretraining network, got {type(net).__name__}")
        model = cls(net.hparams, **kwargs)
        model.pretrained.load_state_dict(net.state_dict())
        return model

    @classmethod
    def from_released(
        cls,
        state_dict: Dict[str, Tensor],
        genes: Sequence[str],
        prior,
        drug_encoder: str = "mat",
        drug_encoder_kwargs: Optional[Dict] = None,
        variant: str = "released",
        self_loops: bool = True,
        dropout: float = 0.1,
        freeze: bool = True,
    ) -> "CSG2AFineTune":
        """Our fine-tuning model computing the released ``CSG2A_finetune`` whose state dict is
        ``state_dict`` (the pretrained network's keys under ``CSG2A.``; the others in the table of
        ``docs/models.md``). Arguments as ``CSG2A.from_released()``; the input genes are the network's.
        """
        if isinstance(state_dict, str):
            state_dict = torch.load(state_dict, map_location="cpu", weights_only=True)
        sd = dict(state_dict)
        net_sd = {k[len("CSG2A.") :]: v for k, v in sd.items() if k.startswith("CSG2A.")}
        if not net_sd:
            raise InputKeyError(
                "no 'CSG2A.*' keys: not a released fine-tuning state dict (a pretraining network "
                "loads with CSG2A.from_released)"
            )
        net = CSG2A.from_released(net_sd, genes, prior, drug_encoder, drug_encoder_kwargs, variant, self_loops, dropout)
        mapped, rest, missing = _split_released(
            {k: v for k, v in sd.items() if not k.startswith("CSG2A.")}, _RELEASED_FT_KEYS
        )
        if missing:
            raise InputKeyError(f"the state dict lacks released keys {missing[:10]}")
        if rest:
            raise InputKeyError(f"unknown keys in the released state dict: {sorted(rest)[:10]}")
        proj = int(sd["bgex_proj.0.weight"].shape[0])
        model = cls.from_pretrained(
            net, variant=variant, freeze=freeze, proj_channels=proj, dropout=dropout, scaling="scalar"
        )
        own = model.state_dict()
        for k, v in mapped.items():
            if tuple(own[k].shape) != tuple(v.shape):
                raise ValueError(f"{k}: shape {tuple(v.shape)} in the state dict, {tuple(own[k].shape)} expected")
        full = {k: v for k, v in own.items()}
        full.update({k: v.to(own[k].dtype) for k, v in mapped.items()})
        model.load_state_dict(full, strict=True)
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

    def place(self, g: Tensor) -> Tensor:
        """Input genes ``[B, n_in]`` placed in the pretrained gene space (``[B, N]``); genes the input
        lacks or did not measure take ``fill_value``.
        """
        g = torch.where(self.measured, g, torch.full_like(g, self.fill_value))
        N = self.pretrained.num_genes
        if self._same_genes:  # decided from the gene lists when built: no device->host sync per batch
            return g
        full = g.new_full((g.size(0), N), self.fill_value)
        full[:, self.gene_index] = g
        return full

    def scale_input(self, expr: Tensor) -> Tensor:
        """The scaling layer, then the input placed in the pretrained gene space (``[B, N]``)."""
        if self.scaling == "scalar":
            g = (expr + self.shift) * self.scale
        elif self.scaling == "gene":
            g = (expr - self.mu) / self.sigma
        else:
            g = expr
        return self.place(g)

    def forward(self, expr: Tensor, drug_graph, drug_index: Tensor, dose: Tensor, time: Tensor) -> Tensor:
        if expr.size(1) != self.gene_index.numel():
            raise ValueError(f"expr has {expr.size(1)} genes, the model expects {self.gene_index.numel()}")
        return self.forward_condition(expr, self.pretrained.condition(drug_graph, drug_index, dose, time))

    def forward_condition(self, expr: Tensor, cond: Tensor) -> Tensor:
        """The prediction from basal ``expr [B, n_in]`` and the chemical condition ``cond [B, N]``
        (``CSG2A.condition()``): what attribution to the condition vector differentiates.
        """
        g = self.scale_input(expr)
        perturbed = self.pretrained.perturb(g, cond)
        basal = g if self.basal_input == "scaled" else self.place(expr)
        h = torch.cat([self.proj_basal(basal), self.proj_perturbed(perturbed), self.proj_condition(cond)], -1)
        return self.head(h).squeeze(-1) * self.y_std + self.y_mean


__all__ = ["CSG2A", "CSG2AFineTune"]
