"""Response models by name (``MODELS``); every model keeps its hyperparameters so a checkpoint rebuilds it."""

from csg2a_graph.nn.models.base import MODELS, ResponseModel, build_model, register_model
from csg2a_graph.nn.models.csg2a import CSG2A, CSG2AFineTune

__all__ = ["MODELS", "ResponseModel", "build_model", "register_model", "CSG2A", "CSG2AFineTune"]
