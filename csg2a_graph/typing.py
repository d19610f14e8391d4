"""The package's vocabulary: the one prior type alias, the names of the layer's options, one
choice-checking helper, and optional-dependency flags (tried once, at import).
"""

from __future__ import annotations

import importlib.util
from typing import Any, Dict, List, Mapping, Optional, Protocol, Tuple, Union, runtime_checkable

from torch import Tensor

Prior = Union[Tensor, Tuple[Tensor, Optional[Tensor]], None]
"""A prior over the genes: ``(edge_index, edge_weight)``, a torch sparse ``[N, N]`` tensor, or ``None``."""


Edges = Tuple[Tensor, Tensor]
"""A prior resolved to ``(edge_index [2, E], edge_weight [E])``."""

SCORES = ("linear", "softmax", "sigmoid")  # phi of the scores: identity (the paper), row softmax, sigmoid
SUPPORTS = ("dense", "prior")  # attention over all gene pairs, or on prior edges only
REDUCES = ("matmul", "rowsum")  # S x (the paper) or x * rowsum(S) (the released code)
IMPLS = ("factorized", "chunked", "triton", "edgewise", "reference")  # paths of the functional op


@runtime_checkable
class PairDatasetLike(Protocol):
    """What the trainer, ``cross_validate`` and ``explain_genes`` read of a dataset: any ``PairDataset`` (GDSC,
    NCI-60, ``ResponseTable``, ``ArrayPairs``...) or an object of your own with these members.
    """

    @property
    def pairs(self) -> Dict[str, Tensor]: ...  # "cell", "drug", "y", "dose", "time": [P] each

    @property
    def num_pairs(self) -> int: ...

    @property
    def cells(self) -> List[str]: ...

    @property
    def drugs(self) -> List[str]: ...

    @property
    def expression(self) -> Tensor: ...  # [cells, N]

    def get_idx_split(self, scheme: str = "mixed", fold: int = 0, n_folds: int = 10, seed: int = 0) -> Any: ...

    def loader(
        self, index: Optional[Tensor] = None, batch_size: int = 128, shuffle: bool = False, **kw: Any
    ) -> Any: ...


class Runner(Protocol):
    """A model runner of ``cross_validate`` (``register_runner``): trains on ``split["train"]`` (early stopping on
    ``split["val"]``) with ``options`` in ``run_dir`` and returns the predictions for ``split["test"]``, ``[T]``.
    """

    def __call__(
        self, dataset: PairDatasetLike, split: Mapping[str, Tensor], options: Dict[str, Any], run_dir: str, seed: int
    ) -> Tensor: ...


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
    "PairDatasetLike",
    "Runner",
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
