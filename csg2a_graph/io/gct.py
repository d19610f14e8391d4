"""Readers for the Connectivity Map formats: GCT 1.2 / 1.3 (text) and GCTX (HDF5).

cmapPy is unmaintained and breaks on pandas 2; these readers depend on numpy,
pandas and h5py only. Both return a ``GCT``: ``data`` is ``[rows, cols]``
(genes x profiles, as CMap stores it), ``row_meta`` / ``col_meta`` are
DataFrames indexed by row / column id, with CMap's missing-value marker
``-666`` turned into NaN.

GCTX files hold the matrix as ``0/DATA/0/matrix`` with shape ``[cols, rows]``
(one HDF5 row per profile) and the metadata as 1-D datasets under
``0/META/ROW`` and ``0/META/COL``. ``read_gctx()`` reads only the selected
profiles, in chunks, so a subset of the 1.3M-profile GSE92742 matrix never
loads the whole file.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import pandas as pd

from csg2a_graph.errors import InputIndexError, InputKeyError, InputTypeError

MISSING = ("-666", "-666.0", "-666.000000")
PathLike = Union[str, Path]


@dataclass
class GCT:
    """``data [n_rows, n_cols]`` with ``row_meta`` (index = rid) and ``col_meta`` (index = cid)."""

    data: np.ndarray
    row_meta: pd.DataFrame
    col_meta: pd.DataFrame

    @property
    def rids(self):
        return list(self.row_meta.index)

    @property
    def cids(self):
        return list(self.col_meta.index)

    def to_frame(self) -> pd.DataFrame:
        """``rows x cols`` DataFrame of the values."""
        return pd.DataFrame(self.data, index=self.row_meta.index, columns=self.col_meta.index)

    def __repr__(self) -> str:
        return (
            f"GCT({self.data.shape[0]} rows x {self.data.shape[1]} cols; row meta {list(self.row_meta.columns)[:4]}, "
            f"col meta {list(self.col_meta.columns)[:4]}...)"
        )


def _clean_meta(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for c in df.columns:  # CMap's missing marker -666, as text or number
        col = df[c]
        miss = col.isin(MISSING) if col.dtype == object else (col == -666)
        if miss.any():
            df[c] = col.where(~miss, np.nan)
    for c in df.columns:  # numbers stored as text become numbers
        conv = pd.to_numeric(df[c], errors="coerce")
        if conv.notna().sum() == df[c].notna().sum() and df[c].notna().any():
            df[c] = conv
    return df


def read_gct(path: PathLike, rid: Optional[Iterable[str]] = None, cid: Optional[Iterable[str]] = None) -> GCT:
    """Read a GCT 1.2 or 1.3 text file (plain or ``.gct.gz``), optionally keeping only the rows ``rid`` /
    columns ``cid``.
    """
    path = Path(path)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        version = f.readline().strip()
        dim_fields = f.readline().rstrip("\n").split("\t")
        header = f.readline().rstrip("\n").split("\t")
    if version not in ("#1.2", "#1.3"):
        raise ValueError(f"{path}: not a GCT file (first line {version!r}; expected #1.2 or #1.3)")
    try:
        dims = [int(d) for d in dim_fields if d.strip()]
    except ValueError:
        raise ValueError(f"{path}: bad GCT dimension line {dim_fields!r}") from None
    if version == "#1.2":
        n_rows, n_cols = dims[:2]
        n_rmeta, n_cmeta = 1, 0  # "Name", "Description"
    else:
        if len(dims) != 4:
            raise ValueError(f"{path}: GCT 1.3 needs 4 numbers on line 2, got {dims}")
        n_rows, n_cols, n_rmeta, n_cmeta = dims
    if len(header) != 1 + n_rmeta + n_cols:
        raise ValueError(
            f"{path}: header has {len(header)} fields, expected {1 + n_rmeta + n_cols} "
            f"(1 id + {n_rmeta} row-meta + {n_cols} columns)"
        )
    try:
        raw = pd.read_csv(path, sep="\t", skiprows=2, header=0, dtype=str, keep_default_na=False, na_values=[])
    except UnicodeDecodeError:  # older CMap files store "µ" as Latin-1 (0xB5)
        raw = pd.read_csv(
            path, sep="\t", skiprows=2, header=0, dtype=str, keep_default_na=False, na_values=[], encoding="latin-1"
        )
    except pd.errors.ParserError as e:
        raise ValueError(f"{path}: cannot be parsed as GCT ({e})") from None
    if raw.shape[0] != n_cmeta + n_rows:
        raise ValueError(
            f"{path}: {raw.shape[0]} lines after the header, expected {n_cmeta} col-meta + {n_rows} rows "
            "(truncated file?)"
        )
    cids = header[1 + n_rmeta :]
    col_meta = raw.iloc[:n_cmeta, 1 + n_rmeta :].T
    col_meta.columns = raw.iloc[:n_cmeta, 0].tolist()
    col_meta.index = pd.Index(cids, name="cid")
    body = raw.iloc[n_cmeta:]
    row_meta = body.iloc[:, 1 : 1 + n_rmeta].copy()
    row_meta.columns = header[1 : 1 + n_rmeta]
    row_meta.index = pd.Index(body.iloc[:, 0].tolist(), name="rid")
    from csg2a_graph.io.tables import numeric_matrix

    data = numeric_matrix(body.iloc[:, 1 + n_rmeta :], str(path))
    g = GCT(data, _clean_meta(row_meta), _clean_meta(col_meta.copy()))
    return subset(g, rid, cid)


def subset(g: GCT, rid: Optional[Iterable[str]] = None, cid: Optional[Iterable[str]] = None) -> GCT:
    ri = _positions(g.rids, rid, "row")
    ci = _positions(g.cids, cid, "column")
    return GCT(g.data[np.ix_(ri, ci)], g.row_meta.iloc[ri], g.col_meta.iloc[ci])


def _positions(ids: Sequence[str], wanted: Optional[Iterable[str]], what: str) -> np.ndarray:
    if wanted is None:
        return np.arange(len(ids))
    pos = {k: i for i, k in enumerate(ids)}
    wanted = list(wanted)
    missing = [w for w in wanted if w not in pos]
    if missing:
        raise InputKeyError(f"{len(missing)} {what} id(s) not in the file: {missing[:5]}")
    return np.array([pos[w] for w in wanted], dtype=np.int64)


def _text(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:  # older CMap files store "µ" as Latin-1 (0xB5)
        return b.decode("latin-1")


def _decode(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind in ("S", "O"):
        return np.array([_text(a) if isinstance(a, bytes) else a for a in arr], dtype=object)
    return arr


def read_gctx_meta(path: PathLike, which: str = "COL") -> pd.DataFrame:
    """Only the row (``"ROW"``) or column (``"COL"``) metadata of a GCTX file."""
    with _open_h5(path) as f:
        if f"0/META/{which}/id" not in f:
            raise ValueError(
                f"{path}: not a GCTX file (no 0/META/{which}/id: the {which.lower()} metadata group "
                "with the ids is missing)"
            )
        grp = f[f"0/META/{which}"]
        ids = _decode(grp["id"][()])
        meta = {k: _decode(grp[k][()]) for k in grp if k != "id"}
    bad = {k: len(v) for k, v in meta.items() if len(v) != len(ids)}
    if bad:
        raise ValueError(f"{path}: 0/META/{which} has {len(ids)} ids but fields of other lengths: {bad}")
    df = pd.DataFrame(meta, index=pd.Index([str(i).strip() for i in ids], name="rid" if which == "ROW" else "cid"))
    return _clean_meta(df)


def _open_h5(path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not an HDF5 file, so not a GCTX ({e})") from None


def _check_index(idx, n: int, what: str, path) -> np.ndarray:
    a = np.asarray(idx)
    if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
        raise InputTypeError(f"{what} must be a 1-D sequence of integer positions, got {a.dtype} of shape {a.shape}")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= n):
        raise InputIndexError(f"{what} must lie in [0, {n}) for {path}; got min {int(a.min())}, max {int(a.max())}")
    return a


def read_gctx(
    path: PathLike,
    rid: Optional[Iterable[str]] = None,
    cid: Optional[Iterable[str]] = None,
    ridx: Optional[Sequence[int]] = None,
    cidx: Optional[Sequence[int]] = None,
    chunk_size: int = 4096,
    progress: Optional[bool] = None,
) -> GCT:
    """Read a GCTX file, or just the selected rows / columns of it.

    Args:
        rid, cid: row / column ids to keep (file order is not required; output follows the request).
        ridx, cidx: the same by position.
        chunk_size: profiles (columns) read per HDF5 request.
        progress: show a tqdm bar (default: when more than 50 chunks are read).
    """
    path = Path(path)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    with _open_h5(path) as f:
        if "0/DATA/0/matrix" not in f:
            raise ValueError(f"{path}: not a GCTX file (no 0/DATA/0/matrix)")
        mat = f["0/DATA/0/matrix"]
        n_cols, n_rows = mat.shape
    row_meta = read_gctx_meta(path, "ROW")
    col_meta = read_gctx_meta(path, "COL")
    if len(row_meta) != n_rows or len(col_meta) != n_cols:
        raise ValueError(
            f"{path}: matrix is {n_cols} x {n_rows} (cols x rows) but metadata has "
            f"{len(col_meta)} cols and {len(row_meta)} rows"
        )
    ri = _positions(list(row_meta.index), rid, "row") if ridx is None else _check_index(ridx, n_rows, "ridx", path)
    ci = _positions(list(col_meta.index), cid, "column") if cidx is None else _check_index(cidx, n_cols, "cidx", path)
    # h5py wants increasing indices: read sorted, put back in the requested order
    order = np.argsort(ci, kind="stable")
    ci_sorted = ci[order]
    out = np.empty((len(ri), len(ci)), dtype=np.float32)
    chunks = range(0, len(ci_sorted), chunk_size)
    show = progress if progress is not None else len(chunks) > 50
    if show:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=f"reading {path.name}", unit="chunk")
    full_rows = len(ri) == n_rows and np.array_equal(ri, np.arange(n_rows))
    with _open_h5(path) as f:
        mat = f["0/DATA/0/matrix"]
        for s in chunks:
            idx = ci_sorted[s : s + chunk_size]
            uniq, inv = np.unique(idx, return_inverse=True)
            if len(uniq) == uniq[-1] - uniq[0] + 1:  # contiguous: one slice
                block = mat[uniq[0] : uniq[-1] + 1, :]
            else:
                block = mat[uniq, :]
            block = block[inv]
            if not full_rows:
                block = block[:, ri]
            out[:, order[s : s + chunk_size]] = block.T
    return GCT(out, row_meta.iloc[ri], col_meta.iloc[ci])


def read_any(path: PathLike, **kwargs) -> GCT:
    """GCT or GCTX by extension."""
    p = str(path)
    if p.endswith(".gctx"):
        return read_gctx(path, **kwargs)
    if p.endswith((".gct", ".gct.gz")):
        return read_gct(path, **kwargs)
    raise ValueError(f"{path}: expected a .gct, .gct.gz or .gctx file")


__all__ = ["GCT", "read_gct", "read_gctx", "read_gctx_meta", "read_any", "subset"]
