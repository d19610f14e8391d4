"""Reading delimited tables with errors that name the file (used by every reader and dataset)."""

from __future__ import annotations

import logging
import os

from csg2a_graph.errors import InputError

logger = logging.getLogger(__name__)


def read_delimited(path: str, what: str = "a CSV or TSV table", **kwargs):
    """A CSV or TSV (gzip ok) read with pandas' C parser; the delimiter (tab, comma, or semicolon as spreadsheets
    in many locales write) comes from the header line.

    Every failure names the file and what was expected: an empty file, bytes that are not
    UTF-8 text, a file pandas cannot parse, a table without rows.
    """
    import gzip

    import pandas as pd

    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace") as f:
            head = f.readline()
        sep = "\t" if "\t" in head else (";" if head.count(";") > head.count(",") else ",")
        df = pd.read_csv(path, sep=sep, encoding="utf-8-sig", **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty; expected {what}") from None
    except UnicodeDecodeError as e:
        raise InputError(
            f"{path}: not UTF-8 text (byte {e.object[e.start : e.start + 1]!r} at offset {e.start}); expected {what}; "
            f"save it as UTF-8, e.g. iconv -f latin1 -t utf-8 {os.path.basename(str(path))}"
        ) from None
    except (pd.errors.ParserError, gzip.BadGzipFile, EOFError) as e:
        raise InputError(f"{path}: cannot be parsed as {what} ({type(e).__name__}: {e})") from None
    if df.shape[0] == 0:
        raise InputError(f"{path}: has a header but no rows; expected {what}")
    return df


NA_TOKENS = {"", "na", "nan", "n/a", "null", "none", "-"}  # read as missing, not counted as text


def numeric_matrix(df, path: str, what: str = "expression values"):
    """``df`` as float32, with every cell that is not a finite number counted in a warning that
    names the file: text (``abc``) becomes NaN, values beyond float32 (``1e400``, ``1e308``)
    become ``±inf`` (never ``3.4e38``); ``align_expression`` treats both as missing.
    """
    import numpy as np
    import pandas as pd

    num = df.apply(pd.to_numeric, errors="coerce")
    text = 0

    def as_float(v):
        try:
            return float(v)  # pandas refuses "1e400"; Python reads it as inf
        except (TypeError, ValueError):
            return None

    v64 = num.to_numpy(np.float64)
    for j in np.flatnonzero([pd.api.types.is_object_dtype(dt) for dt in df.dtypes]):  # only text columns can hold text
        col = df.iloc[:, j].to_numpy()
        for i in np.flatnonzero(np.isnan(v64[:, j]) & pd.notna(col)):  # positions: labels may repeat
            v = col[i]
            if isinstance(v, str) and v.strip().lower() in NA_TOKENS:
                continue
            f = as_float(v)
            if f is None:
                text += 1
            else:
                v64[i, j] = f
    with np.errstate(over="ignore"):
        v = v64.astype(np.float32)
    over = int((~np.isfinite(v) & ~np.isnan(v64)).sum())
    if text or over:
        logger.warning(
            "%s: %d %s are not numbers (read as NaN) and %d are infinite or beyond float32 (read as "
            "±inf); the datasets treat both as missing and count them",
            path,
            text,
            what,
            over,
        )
    return v
