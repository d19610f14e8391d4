"""Checkpoints live in ``csg2a_graph.checkpoint`` (used by the models and the trainer alike); this
module keeps the old import path.
"""

from csg2a_graph.checkpoint import (
    CHECKPOINT_FORMAT,
    data_card,
    dataset_fingerprint,
    load_checkpoint,
    load_model,
    package_version,
    save_checkpoint,
)

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "dataset_fingerprint",
    "data_card",
    "package_version",
    "CHECKPOINT_FORMAT",
]
