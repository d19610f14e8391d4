"""Finding raw files in ``root/raw`` by name pattern, with errors that say what to place where."""

from __future__ import annotations

import glob
import logging
import os.path as osp
from typing import Iterable, List, Optional

logger = logging.getLogger(__name__)


def find_one(
    raw_dir: str, patterns: Iterable[str], kind: str, required: bool = True, exclude: Iterable[str] = (), hint: str = ""
) -> Optional[str]:
    """The single file of ``raw_dir`` matching one of ``patterns`` (``None`` if optional and absent).

    Several matches raise (the user must say which via the ``*_file=`` argument).
    """
    patterns = list(patterns)
    hits: List[str] = []
    for pat in patterns:
        hits += glob.glob(osp.join(glob.escape(raw_dir), pat))  # the folder name is literal
    hits = sorted(
        set(h for h in hits if not h.endswith((".tmp", ".whl")) and not any(x in osp.basename(h) for x in exclude))
    )
    if len(hits) > 1:
        raise ValueError(
            f"several {kind} files in {raw_dir}: {[osp.basename(h) for h in hits]}; "
            f"name the one to use with {kind}_file=..."
        )
    if not hits:
        if required:
            raise FileNotFoundError(f"no {kind} file in {raw_dir} (looked for {patterns}). {hint}".strip())
        return None
    return hits[0]


from csg2a_graph.io.tables import NA_TOKENS, numeric_matrix, read_delimited  # noqa: E402 - kept importable here

__all__ = ["find_one", "read_delimited", "numeric_matrix", "NA_TOKENS"]
