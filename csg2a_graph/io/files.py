"""File utilities every layer may use (no torch, no heavy import): content hashes."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Union


def sha256(path: Union[str, Path]) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


__all__ = ["sha256"]
