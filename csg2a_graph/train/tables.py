"""The one place results and metrics rows are written: a CSV that gains a row as soon as it exists
(a stopped run loses nothing) and never mixes another run's columns.
"""

from __future__ import annotations

import csv
import os
from typing import Dict, List, Optional, Sequence


def append_row(path: str, row: Dict, columns: Optional[Sequence[str]] = None) -> None:
    """Append ``row`` (``columns``: its fields and their order; default the row's keys) to the CSV at
    ``path``; the header goes with the first row. A file whose header is other columns is refused.
    """
    columns = list(columns or row)
    if os.path.exists(path) and os.path.getsize(path):
        with open(path, newline="") as f:
            header = next(csv.reader(f), None)
        if header != columns:
            raise ValueError(
                f"{path} has the columns {header}, not {columns}: another run's table; write into another folder"
            )
        new = False
    else:
        new = True
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        if new:
            w.writeheader()
        w.writerow({k: row.get(k) for k in columns})


def write_rows(path: str, rows: List[Dict]) -> None:
    """(Re)write the CSV at ``path`` with exactly ``rows`` (atomically); no rows: the file is removed."""
    if not rows:
        if os.path.exists(path):
            os.remove(path)
        return
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


__all__ = ["append_row", "write_rows"]
