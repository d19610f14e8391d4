"""The ``csg2a`` command."""

from csg2a_graph.cli.main import main

__all__ = ["main"]
