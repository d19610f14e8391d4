"""Training, checkpoints, metrics and cross-validation."""

from csg2a_graph.checkpoint import dataset_fingerprint, load_checkpoint, load_model, save_checkpoint
from csg2a_graph.train.loop import TrainConfig, Trainer
from csg2a_graph.train.metrics import grouped_pearson, pearson, profile_metrics, r2, regression_metrics, rmse, spearman

__all__ = [
    "Trainer",
    "TrainConfig",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "dataset_fingerprint",
    "rmse",
    "pearson",
    "spearman",
    "r2",
    "grouped_pearson",
    "regression_metrics",
    "profile_metrics",
]
