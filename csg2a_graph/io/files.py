"""File utilities every layer may use (no torch, no heavy import): content hashes, atomic writes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Union


def sha256(path: Union[str, Path]) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: Union[str, Path], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a stop mid-write never leaves half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


__all__ = ["sha256", "atomic_write_text"]
