"""Layers: the CSG²A gene-gene attention convolution."""
from csg2a_graph.nn.conv import CSG2AConv

__all__ = ["CSG2AConv"]
