"""csg2a-graph: drug-response datasets and condition-specific gene-gene attention for PyG."""

__version__ = "0.2.0"

__all__ = ["__version__"]


def __getattr__(name):  # ``csg2a_graph.typing`` on first use: importing the package (the CLI) stays free of torch
    if name == "typing":
        import importlib

        return importlib.import_module("csg2a_graph.typing")
    raise AttributeError(f"module 'csg2a_graph' has no attribute {name!r}")
