"""Finding raw files in ``root/raw`` by name pattern, with errors that say what to place where."""
from __future__ import annotations

import glob
import os.path as osp
from typing import Iterable, List, Optional


def find_one(raw_dir: str, patterns: Iterable[str], kind: str, required: bool = True,
             exclude: Iterable[str] = (), hint: str = "") -> Optional[str]:
    """The single file of ``raw_dir`` matching one of ``patterns`` (``None`` if optional and absent).

    Several matches raise (the user must say which via the ``*_file=`` argument).
    """
    patterns = list(patterns)
    hits: List[str] = []
    for pat in patterns:
        hits += glob.glob(osp.join(glob.escape(raw_dir), pat))  # the folder name is literal
    hits = sorted(set(h for h in hits if not h.endswith((".tmp", ".whl"))
                      and not any(x in osp.basename(h) for x in exclude)))
    if len(hits) > 1:
        raise ValueError(f"several {kind} files in {raw_dir}: {[osp.basename(h) for h in hits]}; "
                         f"name the one to use with {kind}_file=...")
    if not hits:
        if required:
            raise FileNotFoundError(f"no {kind} file in {raw_dir} (looked for {patterns}). {hint}".strip())
        return None
    return hits[0]


def read_delimited(path: str, **kwargs):
    """A CSV or TSV (gzip ok) read with pandas' C parser; the delimiter comes from the header line."""
    import gzip

    import pandas as pd

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace") as f:
        head = f.readline()
    sep = "\t" if "\t" in head else ","
    return pd.read_csv(path, sep=sep, encoding="utf-8-sig", **kwargs)
