"""Tensor aliases and optional-dependency flags (tried once, at import)."""
from __future__ import annotations

import importlib.util
import os
from typing import Optional, Tuple, Union

from torch import Tensor

Adj = Union[Tensor, Tuple[Tensor, Optional[Tensor]], None]
"""A prior: ``(edge_index, edge_weight)``, a torch sparse ``[N, N]`` tensor, or ``None``."""


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


WITH_TRITON = _has("triton")
WITH_TORCH_SCATTER = _has("torch_scatter")
WITH_CAPTUM = _has("captum")
WITH_RDKIT = _has("rdkit")
TRITON_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"

__all__ = ["Adj", "WITH_TRITON", "WITH_TORCH_SCATTER", "WITH_CAPTUM", "WITH_RDKIT", "TRITON_INTERPRET"]
