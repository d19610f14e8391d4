"""Deep baselines on the package's trainer: one runner per registered model name.

A deep baseline is a ``ResponseModel`` (``forward(expr, drug_graph,
drug_index, dose, time) -> [B]``) registered with ``register_model()``. ``register_deep()`` makes
it a ``cross_validate()`` runner too: the model is built with ``build_model(name, genes=dataset genes,
prior=dataset prior when the model takes one, **model options)`` and trained by ``Trainer`` on the
fold (best validation MSE kept, early stopping, checkpoints that resume). Runner options: the model's
constructor arguments plus ``train`` (a dict of ``TrainConfig`` fields; each
model's defaults follow its paper, see ``DEFAULT_TRAIN``).
"""

from __future__ import annotations

import inspect
import os
from typing import Dict

import torch
from torch import Tensor

from csg2a_graph.registry import register_runner

#: each model's original training settings where the spec gives them (lr, batch size); epochs and
#: patience are the package's (the specs' originals range from 3 to 300 epochs)
DEFAULT_TRAIN: Dict[str, Dict] = {}


def build_for(name: str, dataset, options: Dict):
    """``build_model(name, ...)`` with the dataset's genes (and prior, when the model takes one)."""
    from csg2a_graph.nn.models import MODELS, build_model

    cls = MODELS[name]
    if hasattr(cls, "from_dataset"):  # models whose inputs come from extra files (pathways, targets)
        return cls.from_dataset(dataset, **options)
    params = inspect.signature(cls.__init__).parameters
    kw = dict(options)
    if "genes" in params:
        kw.setdefault("genes", dataset.gene_space.genes)
    if "prior" in params and dataset.prior_edge_index is not None:
        kw.setdefault("prior", (dataset.prior_edge_index, dataset.prior_edge_weight))
    if "measured" in params:
        kw.setdefault("measured", dataset.gene_mask.tolist())
    return build_model(name, **kw)


def register_deep(name: str, train: Dict = None):
    """Register the runner of model ``name`` (call after ``@register_model(name)``)."""
    DEFAULT_TRAIN[name] = dict(train or {})

    @register_runner(name)
    def run(dataset, split, options: Dict, run_dir: str, seed: int) -> Tensor:
        from csg2a_graph.train.loop import TrainConfig, Trainer
        from csg2a_graph.train.runners import resumable

        opts = dict(options)
        cfg = TrainConfig.from_dict(
            {**DEFAULT_TRAIN[name], **opts.pop("train", {}), "seed": seed}
        )  # the run's seed wins
        torch.manual_seed(seed)
        model = build_for(name, dataset, opts)
        trainer = Trainer(model, cfg, out_dir=run_dir)
        resume = os.path.exists(os.path.join(run_dir, "checkpoint.pt")) and resumable(run_dir, split, cfg)
        trainer.fit(dataset, split, resume=resume)
        return trainer.predict(dataset, split["test"])

    run.__doc__ = f"Train the ``{name}`` model on the fold (see its class docstring)."
    return run


__all__ = ["register_deep", "build_for", "DEFAULT_TRAIN"]
