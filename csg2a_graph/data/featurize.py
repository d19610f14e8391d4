"""RDKit atom featurisation pieces the drug encoders and baselines share: one-hot encodings (three conventions
for a value outside the choices, as the published models differ), the implicit valence of atoms parsed without the
valence check, and a molecule's bonds as an undirected ``edge_index``. Each model keeps its own feature list (the
paper it reproduces fixes it); these are the parts they had copied.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import Tensor

#: the 43 element symbols of DGL-LifeSci's atom featuriser (DRPreter); GraphDRP's are these plus "Unknown"
DGL_ATOM_SYMBOLS = [
    "C",
    "N",
    "O",
    "S",
    "F",
    "Si",
    "P",
    "Cl",
    "Br",
    "Mg",
    "Na",
    "Ca",
    "Fe",
    "As",
    "Al",
    "I",
    "B",
    "V",
    "K",
    "Tl",
    "Yb",
    "Sb",
    "Sn",
    "Ag",
    "Pd",
    "Co",
    "Se",
    "Ti",
    "Zn",
    "H",
    "Li",
    "Ge",
    "Cu",
    "Au",
    "Ni",
    "Cd",
    "In",
    "Mn",
    "Zr",
    "Cr",
    "Pt",
    "Hg",
    "Pb",
]  # no unknown slot: all-zero


def one_hot(value, choices: Sequence, unknown: str = "last") -> List[float]:
    """One-hot of ``value`` over ``choices``. A value outside them: ``"last"`` — counts as the last choice
    (GraphDRP, MAT); ``"extra"`` — sets one extra trailing slot (chemprop v1, DeepCoVDR); ``"none"`` — all zeros
    (DGL-LifeSci, DRPreter).
    """
    choices = list(choices)
    if unknown == "extra":
        out = [0.0] * (len(choices) + 1)
        out[choices.index(value) if value in choices else -1] = 1.0
        return out
    if unknown == "last":
        value = value if value in choices else choices[-1]
    elif unknown != "none":
        raise ValueError(f"unknown must be 'last', 'extra' or 'none', got {unknown!r}")
    return [float(value == c) for c in choices]


def implicit_valence(atom) -> int:
    """``atom.GetImplicitValence()``, or 0 for molecules parsed without the valence check (Pt complexes)."""
    try:
        return atom.GetImplicitValence()
    except Exception:  # noqa: BLE001 - RDKit raises when the valence was never computed
        return 0


def bond_edge_index(mol) -> Tensor:
    """``[2, 2 * bonds]``: every bond in both directions (``[2, 0]`` for a single atom)."""
    src = [b.GetBeginAtomIdx() for b in mol.GetBonds()]
    dst = [b.GetEndAtomIdx() for b in mol.GetBonds()]
    if not src:
        return torch.zeros(2, 0, dtype=torch.long)
    return torch.tensor([src + dst, dst + src], dtype=torch.long)


__all__ = ["DGL_ATOM_SYMBOLS", "one_hot", "implicit_valence", "bond_edge_index"]
