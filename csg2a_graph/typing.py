"""The package's vocabulary: the one prior type alias, the names of the layer's options, one
choice-checking helper, and optional-dependency flags (tried once, at import).
"""

from __future__ import annotations

import importlib.util
from typing import Optional, Tuple, Union

from torch import Tensor

Prior = Union[Tensor, Tuple[Tensor, Optional[Tensor]], None]
"""A prior over the genes: ``(edge_index, edge_weight)``, a torch sparse ``[N, N]`` tensor, or ``None``."""


Edges = Tuple[Tensor, Tensor]
"""A prior resolved to ``(edge_index [2, E], edge_weight [E])``."""

SCORES = ("linear", "softmax", "sigmoid")  # phi of the scores: identity (the paper), row softmax, sigmoid
SUPPORTS = ("dense", "prior")  # attention over all gene pairs, or on prior edges only
REDUCES = ("matmul", "rowsum")  # S x (the paper) or x * rowsum(S) (the released code)
IMPLS = ("factorized", "chunked", "triton", "edgewise", "reference")  # paths of the functional op


def check_choice(name: str, value, choices) -> None:
    """``ValueError`` naming the option, the allowed values and the value given."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


WITH_TRITON = _has("triton")
WITH_TORCH_SCATTER = _has("torch_scatter")

__all__ = [
    "Prior",
    "Edges",
    "SCORES",
    "SUPPORTS",
    "REDUCES",
    "IMPLS",
    "check_choice",
    "WITH_TRITON",
    "WITH_TORCH_SCATTER",
]
