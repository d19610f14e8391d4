"""The CSG²A runner of ``csg2a_graph.train.cross_validate()`` (``--models csg2a``); the other runners
live with their models in ``csg2a_graph.baselines`` (see ``csg2a_graph.registry``).
"""

from __future__ import annotations

import os
from typing import Dict

import torch
from torch import Tensor

from csg2a_graph.registry import register_runner


@register_runner("csg2a")
def run_csg2a(dataset, split, options: Dict, run_dir: str, seed: int) -> Tensor:
    """CSG²A fine-tuning. Options: ``pretrained`` (checkpoint path; ``None`` = no pretraining,
    a freshly initialised network, trained unfrozen), ``freeze``, ``frozen_mode``, ``scaling``, the
    pretraining network's options when not pretrained (``hidden_channels``, ``drug_encoder``,
    ``drug_weights``, ``use_prior``, ``attention``, ``reduce``, ``score``), and ``train`` (a dict of
    ``TrainConfig`` fields).
    """
    from csg2a_graph.train.loop import TrainConfig
    from csg2a_graph.train.pipeline import finetune

    opts = dict(options)
    train_cfg = TrainConfig.from_dict({**opts.pop("train", {}), "seed": seed})  # the run's seed wins (--seeds)
    pretrained = opts.pop("pretrained", None)
    resume = os.path.exists(os.path.join(run_dir, "checkpoint.pt")) and resumable(run_dir, split, train_cfg)
    trainer, _ = finetune(dataset, run_dir, pretrained, split, opts, train_cfg, resume=resume)
    return trainer.predict(dataset, split["test"])


def resumable(run_dir: str, split, config=None) -> bool:
    """Whether ``run_dir/checkpoint.pt`` is a readable checkpoint of a run on this split's training pairs (and,
    given a ``TrainConfig``, with the same training settings: a tuning trial's folder continued with other values
    starts over instead of mixing two runs).
    """
    from csg2a_graph.train.loop import resume_conflicts

    try:
        st = torch.load(os.path.join(run_dir, "checkpoint.pt"), weights_only=True)
        if config is not None and resume_conflicts(st.get("config"), config):
            return False
        return torch.equal(st["split"]["train"], split["train"])
    except Exception:  # noqa: BLE001 - broken or foreign checkpoint: start over
        return False


__all__ = ["run_csg2a", "resumable"]
