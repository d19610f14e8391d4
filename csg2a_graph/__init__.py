"""csg2a-graph: drug-response datasets and condition-specific gene-gene attention for PyG."""
__version__ = "0.1.0"

from csg2a_graph import typing  # noqa: F401

__all__ = ["__version__"]
