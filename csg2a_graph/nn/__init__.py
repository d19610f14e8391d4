"""Layers and models: the CSG²A gene-gene attention convolution, the chemical condition encoder,
drug encoders and the CSG²A networks.
"""

from csg2a_graph.nn.condition import ChemicalConditionEncoder
from csg2a_graph.nn.conv import CSG2AConv
from csg2a_graph.nn.encoders.base import AtomEncoder, BondEncoder
from csg2a_graph.nn.models import CSG2A, MODELS, CSG2AFineTune, ResponseModel, build_model, register_model

__all__ = [
    "CSG2AConv",
    "AtomEncoder",
    "BondEncoder",
    "ChemicalConditionEncoder",
    "CSG2A",
    "CSG2AFineTune",
    "ResponseModel",
    "MODELS",
    "build_model",
    "register_model",
]
