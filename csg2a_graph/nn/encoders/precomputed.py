"""Drug embeddings computed elsewhere (MolFormer, UniMol, MAT...), one vector per compound.

Users bring the vectors; the encoder looks each molecule of a batch up by its canonical SMILES (the
key every dataset uses), then by its name. It is also how two implementations can be compared on
identical drug inputs. The table is a buffer (``finetune=True``: a parameter), so a checkpoint holds it
and rebuilds without the original file.
"""

from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from csg2a_graph.errors import InputKeyError, InputTypeError

Embeddings = Union[str, os.PathLike, Mapping[str, Sequence[float]]]


def _key(k: str) -> str:
    """Canonical SMILES when ``k`` parses as one (so any SMILES spelling matches), else ``k`` stripped."""
    from csg2a_graph.data.molecules import canonical_smiles

    k = str(k).strip()
    try:
        from rdkit import RDLogger

        RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]
        return canonical_smiles(k)
    except ValueError:
        return k
    finally:
        from rdkit import RDLogger

        RDLogger.EnableLog("rdApp.*")  # type: ignore[attr-defined]


def read_embeddings(source: Embeddings) -> Tuple[List[str], Tensor]:
    """``(keys, [K, E] float32)`` from a mapping ``{SMILES or name: vector}``, a ``.pt`` file (such a
    mapping, or ``{"keys": [...], "embeddings": [K, E]}``), an ``.npz`` (arrays ``keys``, ``embeddings``)
    or a CSV/TSV (first column the key, the others the vector). Keys are canonicalised; ragged vectors,
    non-finite values and one key with two different vectors are refused, naming the key.
    """
    name = "the embeddings mapping"
    if isinstance(source, (str, os.PathLike)):
        path = str(source)
        name = path
        if not os.path.exists(path):
            raise FileNotFoundError(f"precomputed drug embeddings {path} not found")
        if path.endswith(".pt"):
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict) and "keys" in obj and "embeddings" in obj:
                pairs = list(zip(obj["keys"], torch.as_tensor(obj["embeddings"]).tolist()))
            elif isinstance(obj, dict):
                pairs = [(k, torch.as_tensor(v).tolist()) for k, v in obj.items()]
            else:
                raise ValueError(f"{path}: expected a dict key -> vector or {{'keys', 'embeddings'}}")
        elif path.endswith(".npz"):
            z = np.load(path, allow_pickle=False)
            if "keys" not in z or "embeddings" not in z:
                raise ValueError(f"{path}: expected arrays 'keys' and 'embeddings', found {list(z.keys())}")
            pairs = list(zip(z["keys"].tolist(), z["embeddings"].tolist()))
        else:
            import pandas as pd

            sep = "\t" if path.endswith((".tsv", ".txt", ".tsv.gz")) else ","
            df = pd.read_csv(path, sep=sep, index_col=0)
            vals = df.apply(pd.to_numeric, errors="coerce")
            pairs = list(zip(df.index.astype(str), vals.to_numpy(np.float64).tolist()))
    elif isinstance(source, Mapping):
        pairs = [(k, torch.as_tensor(v).reshape(-1).tolist()) for k, v in source.items()]
    else:
        raise InputTypeError(f"embeddings must be a path or a mapping, got {type(source).__name__}")
    if not pairs:
        raise ValueError(f"{name} holds no embedding")
    dims = {len(v) for _, v in pairs}
    if len(dims) != 1:
        raise ValueError(f"{name}: vectors of different lengths {sorted(dims)[:5]}")
    table: Dict[str, List[float]] = {}
    for k, v in pairs:
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name}: the vector of {k!r} has NaN or infinite values")
        kk = _key(k)
        if kk in table and not np.allclose(table[kk], v):
            raise ValueError(f"{name}: {k!r} is given twice (as the same compound) with different vectors")
        table[kk] = list(v)
    keys = list(table)
    return keys, torch.tensor([table[k] for k in keys], dtype=torch.float32)


class PrecomputedEncoder(nn.Module):
    """Look up each molecule's precomputed embedding (by canonical SMILES, then by name).

    Args:
        embeddings: a path or a mapping (``read_embeddings()``).
        finetune: make the table a trainable parameter (default: a fixed buffer).
        keys, dim: rebuild an empty table of this layout (a checkpoint then fills it); used by
            ``ResponseModel.from_checkpoint()``, not by hand.

    A molecule without an embedding raises ``KeyError`` naming the compounds (never a zero vector).
    """

    def __init__(
        self,
        embeddings: Optional[Embeddings] = None,
        finetune: bool = False,
        keys: Optional[Sequence[str]] = None,
        dim: Optional[int] = None,
    ):
        super().__init__()
        if embeddings is not None:
            keys, table = read_embeddings(embeddings)
        elif keys is not None and dim is not None:
            keys, table = list(keys), torch.zeros(len(keys), int(dim))
        else:
            raise ValueError("the precomputed drug encoder needs embeddings= (a file or a mapping)")
        self.keys: List[str] = list(keys)
        self._index = {k: i for i, k in enumerate(self.keys)}
        self.out_channels = int(table.size(1))
        if finetune:
            self.table = nn.Parameter(table)
        else:
            self.register_buffer("table", table)

    def forward(self, graph) -> Tensor:
        smiles = getattr(graph, "smiles", None)
        if smiles is None:
            raise ValueError("the precomputed encoder needs graph.smiles (MoleculeStore.batch sets it)")
        names = getattr(graph, "names", None) or [None] * len(smiles)
        rows, missing = [], []
        for s, n in zip(smiles, names):
            i = self._index.get(s)
            if i is None and n is not None:
                i = self._index.get(str(n).strip())
            if i is None:
                missing.append(n or s)
            rows.append(i)
        if missing:
            raise InputKeyError(
                f"no precomputed embedding for {len(missing)} compound(s): {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''} (keys are canonical SMILES or names; "
                f"{len(self.keys)} given)"
            )
        return self.table[torch.tensor(rows, device=self.table.device)]


__all__ = ["PrecomputedEncoder", "read_embeddings"]
