"""The four data-partitioning schemes of the paper (A.4; Partin et al. 2023), k-fold, 80/10/10.

- ``mixed`` (drevalpy ``LPO``): pairs are split at random.
- ``cell_blind`` (``LCO``): cell lines are split; every test pair has a cell unseen in train/val.
- ``drug_blind`` (``LDO``): drugs are split likewise.
- ``tissue_blind`` (drevalpy ``LTO``, beyond the paper): tissues are split, by each cell line's TCGA
  label (``cell_group``); every test pair has a cell of a tissue unseen in train/val. Lines without a
  label form one unit of their own.
- ``disjoint``: cells *and* drugs are split; train pairs have a train cell and a
  train drug, test pairs a test cell and a test drug (both unseen); pairs that
  cross the partitions belong to no set and are counted in ``dropped``.

Fold ``k`` of ``n`` uses group-fold ``k`` as test, fold ``(k+1) % n`` as
validation and the rest as training, so with ``n=10`` the units are 80/10/10.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from csg2a_graph._names import SCHEMES  # one list for the library and the CLI
from csg2a_graph.errors import InputTypeError

ALIASES = {
    "lpo": "mixed",
    "lco": "cell_blind",
    "ldo": "drug_blind",
    "random": "mixed",
    "mixed_set": "mixed",
    "cell-blind": "cell_blind",
    "drug-blind": "drug_blind",
    "disjoint_set": "disjoint",
    "ltdo": "disjoint",
    "lto": "tissue_blind",
    "tissue-blind": "tissue_blind",
}


def canonical_scheme(scheme: str) -> str:
    s = str(scheme).strip().lower()
    s = ALIASES.get(s, s)
    if s not in SCHEMES:
        raise ValueError(
            f"unknown split scheme {scheme!r}; choose one of {SCHEMES} (drevalpy aliases LPO, LCO, LDO accepted)"
        )
    return s


def _fold_of(num_units: int, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """A fold label per unit, balanced, after a seeded shuffle."""
    if num_units < n_folds:
        raise ValueError(f"cannot make {n_folds} folds from {num_units} units")
    perm = rng.permutation(num_units)
    fold = np.empty(num_units, dtype=np.int64)
    fold[perm] = np.arange(num_units) % n_folds
    return fold


def check_int(name: str, value, low: Optional[int] = None, high: Optional[int] = None) -> int:
    """``value`` as a Python int, refusing floats, bools, ``None`` and values outside ``[low, high)``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        if (
            isinstance(value, Tensor)
            and value.numel() == 1
            and not value.is_floating_point()
            and value.dtype != torch.bool
        ):
            value = int(value)
        else:
            raise InputTypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value >= high):
        rng = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'})"
        raise ValueError(f"{name} must be in {rng}, got {value}")
    return value


def make_split(
    cell: Any,
    drug: Any,
    scheme: str = "mixed",
    fold: int = 0,
    n_folds: int = 10,
    seed: int = 0,
    drug_group: Any = None,
    cell_group: Any = None,
) -> Dict[str, Tensor]:
    """Train/val/test pair indices for one fold.

    Args:
        cell, drug: ``[num_pairs]`` integer ids of each pair's cell and drug.
        scheme: one of ``SCHEMES`` or a drevalpy alias.
        fold: which fold, an integer with ``0 <= fold < n_folds``.
        n_folds: number of folds, an integer ``>= 3`` (10 in the paper).
        seed: shuffling seed, a non-negative integer; the same seed gives the same folds.
        drug_group: optional ``[num_drugs]`` group id per drug id: drugs of one group
            (stereo-isomers and salts of one compound, same InChIKey connectivity block)
            always fall on the same side of a drug-blind or disjoint split.
        cell_group: ``[num_cells]`` tissue id per cell id; needed by ``tissue_blind``.

    Returns:
        ``{"train", "val", "test"}`` sorted index tensors, plus ``"dropped"``
        (pairs in no set; non-empty only for ``disjoint``).
    """
    scheme = canonical_scheme(scheme)
    n_folds = check_int("n_folds", n_folds)
    if n_folds < 3:
        raise ValueError("n_folds must be >= 3 (one fold test, one validation, the rest training)")
    fold = check_int("fold", fold, 0, n_folds)
    seed = check_int("seed", seed, 0)
    cell = torch.as_tensor(cell).long().numpy()
    drug = torch.as_tensor(drug).long().numpy()
    if cell.shape != drug.shape:
        raise ValueError("cell and drug must have one entry per pair")
    unit_drug = drug
    if drug_group is not None:
        drug_group = torch.as_tensor(drug_group).long().numpy()
        if drug.size and drug.max() >= drug_group.size:
            raise ValueError(f"drug_group has {drug_group.size} entries but drug ids reach {int(drug.max())}")
        unit_drug = drug_group[drug]
    if scheme == "tissue_blind":
        if cell_group is None:
            raise ValueError("tissue_blind needs a tissue per cell line (cell_group; the dataset's TCGA labels)")
        cell_group = torch.as_tensor(cell_group).long().numpy()
        if cell.size and cell.max() >= cell_group.size:
            raise ValueError(f"cell_group has {cell_group.size} entries but cell ids reach {int(cell.max())}")
    rng = np.random.default_rng(seed)
    val_fold = (fold + 1) % n_folds

    def units(ids: np.ndarray, stream: int) -> np.ndarray:
        uniq, inv = np.unique(ids, return_inverse=True)
        f = _fold_of(len(uniq), n_folds, np.random.default_rng([seed, stream]))
        return f[inv]

    if scheme == "mixed":
        f = _fold_of(len(cell), n_folds, rng)
        parts = {"test": f == fold, "val": f == val_fold}
        parts["train"] = ~(parts["test"] | parts["val"])
    elif scheme == "tissue_blind":
        f = units(cell_group[cell], 3)
        parts = {"test": f == fold, "val": f == val_fold}
        parts["train"] = ~(parts["test"] | parts["val"])
    elif scheme in ("cell_blind", "drug_blind"):
        f = units(cell if scheme == "cell_blind" else unit_drug, 1 if scheme == "cell_blind" else 2)
        parts = {"test": f == fold, "val": f == val_fold}
        parts["train"] = ~(parts["test"] | parts["val"])
    else:
        fc, fd = units(cell, 1), units(unit_drug, 2)

        def role(f):
            return np.where(f == fold, 2, np.where(f == val_fold, 1, 0))

        rc, rd = role(fc), role(fd)
        parts = {"train": (rc == 0) & (rd == 0), "val": (rc == 1) & (rd == 1), "test": (rc == 2) & (rd == 2)}
    out = {k: torch.from_numpy(np.flatnonzero(parts[k])) for k in ("train", "val", "test")}
    used = parts["train"] | parts["val"] | parts["test"]
    return Split(out, dropped=torch.from_numpy(np.flatnonzero(~used)))


class Split(dict):
    """``{"train", "val", "test"}`` pair indices of one fold — a ``dict``, so ``for k, v in split.items()`` sees the
    three parts only. ``split["valid"]`` reads ``"val"`` (OGB's name); the pairs in no part (the disjoint scheme's
    off-diagonal blocks) are ``split.dropped``, also readable as ``split["dropped"]``.
    """

    def __init__(self, parts: Dict[str, Tensor], dropped: Optional[Tensor] = None):
        super().__init__(parts)
        self.dropped = torch.empty(0, dtype=torch.long) if dropped is None else dropped

    def __missing__(self, key):
        if key == "valid":
            return self["val"]
        if key == "dropped":
            return self.dropped
        raise KeyError(key)

    def get(self, key, default=None):
        return self[key] if key in ("valid", "dropped") or key in self.keys() else default

    def __reduce__(self):  # pickles (torch.save) as a plain dict with the dropped pairs: loadable with weights_only
        return dict, ({**self, "dropped": self.dropped},)

    def __copy__(self) -> "Split":
        return Split(dict(self), self.dropped)

    def __deepcopy__(self, memo) -> "Split":
        return Split({k: v.clone() for k, v in self.items()}, self.dropped.clone())


def save_splits_json(splits: Sequence[Dict[str, Tensor]], path: Union[str, Path]) -> None:
    """Chemprop's format: ``[{"train": [...], "val": [...], "test": [...]}, ...]``."""
    data = [{k: torch.as_tensor(s[k]).tolist() for k in ("train", "val", "test")} for s in splits]
    Path(path).write_text(json.dumps(data))


def load_splits_json(path: Union[str, Path], num_pairs: Optional[int] = None) -> List[Dict[str, Tensor]]:
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict):
        data = [data]
    out = []
    for i, s in enumerate(data):
        if not {"train", "val", "test"} <= set(s):
            raise ValueError(f"{path}: split {i} lacks train/val/test keys")
        d = {k: torch.tensor(s[k], dtype=torch.long) for k in ("train", "val", "test")}
        if num_pairs is not None:
            for k, v in d.items():
                if v.numel() and (int(v.min()) < 0 or int(v.max()) >= num_pairs):
                    raise ValueError(
                        f"{path}: split {i} {k} has indices outside [0, {num_pairs}); "
                        "was it made for another dataset build?"
                    )
        out.append(d)
    return out


def write_improve_splits(splits: Sequence[Dict[str, Tensor]], directory: Union[str, Path]) -> List[Path]:
    """IMPROVE-style ``split_<i>_{train,val,test}.txt`` (one pair index per line)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, s in enumerate(splits):
        for k in ("train", "val", "test"):
            p = directory / f"split_{i}_{k}.txt"
            p.write_text("\n".join(str(v) for v in torch.as_tensor(s[k]).tolist()) + "\n")
            paths.append(p)
    return paths


__all__ = [
    "SCHEMES",
    "canonical_scheme",
    "check_int",
    "make_split",
    "save_splits_json",
    "load_splits_json",
    "write_improve_splits",
]
