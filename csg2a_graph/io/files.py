"""File utilities every layer may use (no torch, no heavy import): content hashes, atomic writes, checked
downloads.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional, Union


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


def user_cache_dir() -> str:
    """Where downloads are kept: ``$CSG2A_CACHE``, else ``$XDG_CACHE_HOME/csg2a_graph`` (``~/.cache/csg2a_graph``)."""
    return os.environ.get("CSG2A_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "csg2a_graph"
    )


def download(url: str, dst: Union[str, Path], expected_sha256: Optional[str] = None, timeout: float = 30) -> str:
    """Fetch ``url`` to ``dst`` through ``dst.part`` (a stop or a failure leaves no partial ``dst``); with
    ``expected_sha256`` a file whose hash differs is removed and refused (``ValueError``). Returns the sha256 of what
    was written. Network errors propagate (``OSError``/``URLError``): the caller says what to do without network.
    """
    import urllib.request

    dst = str(dst)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    tmp = dst + ".part"
    try:
        h = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:  # noqa: S310 - https URLs
            for block in iter(lambda: r.read(1 << 20), b""):
                f.write(block)
                h.update(block)
        got = h.hexdigest()
        if expected_sha256 is not None and got != expected_sha256:
            raise ValueError(
                f"{url}: the downloaded file fails the sha256 check ({got[:12]}..., expected {expected_sha256[:12]}...)"
            )
        os.replace(tmp, dst)
        return got
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


__all__ = ["sha256", "atomic_write_text", "download", "user_cache_dir"]
