"""The transfer recipe as functions: pretrain on LINCS, fine-tune on GDSC / NCI-60.

Both return the path of a checkpoint that ``ResponseModel.from_checkpoint()`` rebuilds.
"""

from __future__ import annotations

import logging
import os
from typing import Dict, Optional

import torch

from csg2a_graph.train.loop import TrainConfig, Trainer

logger = logging.getLogger(__name__)

PRETRAIN_KEYS = (
    "hidden_channels",
    "score",
    "reduce",
    "use_prior",
    "attention",
    "drug_encoder",
    "drug_encoder_kwargs",
    "drug_weights",
    "cond_hidden",
    "dropout",
    "bias",
    "embedding_norm",
    "variant",
    "cond_block",
    "norm_bias",
    "init",
    "dose_time_bias",
    "residual",
)
FINETUNE_KEYS = (
    "scaling",
    "freeze",
    "frozen_mode",
    "proj_channels",
    "dropout",
    "fill_value",
    "input_norm",
    "standardize_target",
    "basal_input",
    "scale_init",
)


def pretrain(
    dataset,
    out_dir: str,
    model_options: Optional[Dict] = None,
    train: Optional[TrainConfig] = None,
    split: Optional[Dict] = None,
    resume: bool = False,
) -> str:
    """Train a ``CSG2A`` to predict perturbed profiles; returns ``out_dir/model.pt``.

    ``train=None``: the variant's pretraining settings (released: Adam without weight decay, constant lr).

    ``split`` defaults to the ``mixed`` scheme's fold 0 (80/10/10) of ``dataset``.
    """
    from csg2a_graph.nn.models import CSG2A

    opts = dict(model_options or {})
    bad = set(opts) - set(PRETRAIN_KEYS)
    if bad:
        raise ValueError(f"unknown pretraining options {sorted(bad)}; known: {PRETRAIN_KEYS}")
    if dataset.pairs["y"].dim() != 2:
        raise ValueError(f"{dataset!r} has scalar responses; pretraining needs perturbed profiles (LINCS)")
    if train is None:
        from csg2a_graph.nn.models.csg2a import training_defaults

        train = TrainConfig(**training_defaults(opts.get("variant"), "pretrain"))
    torch.manual_seed(train.seed)
    prior = (dataset.prior_edge_index, dataset.prior_edge_weight) if dataset.prior_edge_index is not None else None
    if prior is None:
        logger.warning("the pretraining dataset has no prior: the network trains without the STRING prior")
    model = CSG2A(dataset.gene_space.genes, prior=prior, **opts)
    split = split or dataset.get_idx_split("mixed", fold=0, n_folds=10, seed=train.seed)
    Trainer(model, train, out_dir=out_dir).fit(dataset, split, resume=resume)
    return os.path.join(out_dir, "model.pt")


def finetune_model(dataset, pretrained: Optional[str] = None, model_options: Optional[Dict] = None, seed: int = 0):
    """The ``CSG2AFineTune`` that ``finetune()`` trains (initialised with ``seed``): around the ``pretrained`` network,
    or a random one (trained unfrozen) without it.
    """
    from csg2a_graph.nn.models import CSG2A, CSG2AFineTune

    opts = dict(model_options or {})
    ft = {k: opts.pop(k) for k in FINETUNE_KEYS if k in opts}
    if "variant" in opts:  # the fine-tuning part's variant; a network built here takes it too
        ft["variant"] = opts["variant"] if not pretrained else opts.pop("variant")
    torch.manual_seed(seed)
    if pretrained:
        if opts:
            raise ValueError(f"options {sorted(opts)} belong to the pretraining network, fixed by {pretrained}")
        return CSG2AFineTune.from_pretrained(
            pretrained, genes=dataset.gene_space.genes, measured=dataset.gene_mask.tolist(), **ft
        )
    logger.warning("no pretrained network: fine-tuning a randomly initialised CSG2A, unfrozen")
    prior = (dataset.prior_edge_index, dataset.prior_edge_weight) if dataset.prior_edge_index is not None else None
    bad = set(opts) - set(PRETRAIN_KEYS)
    if bad:
        raise ValueError(f"unknown model options {sorted(bad)}")
    ft["freeze"] = False
    return CSG2AFineTune.from_pretrained(
        CSG2A(dataset.gene_space.genes, prior=prior, **opts),
        genes=dataset.gene_space.genes,
        measured=dataset.gene_mask.tolist(),
        **ft,
    )


def finetune(
    dataset,
    out_dir: str,
    pretrained: Optional[str] = None,
    split: Optional[Dict] = None,
    model_options: Optional[Dict] = None,
    train: Optional[TrainConfig] = None,
    resume: bool = False,
):
    """Fine-tune ``CSG2AFineTune`` on a response dataset; returns ``(trainer, split)``.

    Without ``pretrained`` the network starts from random weights and is trained unfrozen
    (freezing a random network would be pointless); the log says so.
    """
    train = train or TrainConfig()
    split = split or dataset.get_idx_split("mixed", fold=0, n_folds=10, seed=train.seed)
    model = finetune_model(dataset, pretrained, model_options, train.seed)
    trainer = Trainer(model, train, out_dir=out_dir)
    trainer.fit(dataset, split, resume=resume)
    return trainer, split


__all__ = ["pretrain", "finetune", "finetune_model", "PRETRAIN_KEYS", "FINETUNE_KEYS"]
