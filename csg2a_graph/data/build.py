"""The join every response dataset makes: responses x expression x SMILES -> pair storage.

GDSC, NCI-60 and TCGA differ in how they read their files; from a long table
``(cell, drug, y)``, a drug -> SMILES map and a samples x genes expression
matrix onwards they share this code, so every dataset reports its joins and
drops the same way.
"""

from __future__ import annotations

import logging
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import torch

from csg2a_graph.data.gene_space import AlignedExpression, GeneSpace
from csg2a_graph.data.molecules import MoleculeStore
from csg2a_graph.data.names import match_names, normalize_cell_name, normalize_drug_name
from csg2a_graph.data.normalize import clip_report, robust_stats, robust_zscore

logger = logging.getLogger(__name__)

Expression = Tuple[np.ndarray, Sequence[str], Sequence[str]]  # values [samples, genes], samples, genes


def merge_duplicate_samples(
    expression: Expression, normalize: Callable[[str], str], how: str, report: Dict
) -> Expression:
    """One row per sample: rows whose names agree after ``normalize`` are merged by ``how``
    (``"mean"``: NaN-aware mean; ``"first"``: the first row; ``"error"``: refuse), counted in
    ``report["duplicate_expression_rows"]``.
    """
    if how not in ("mean", "first", "error"):
        raise ValueError(f"duplicate_samples must be 'mean', 'first' or 'error', got {how!r}")
    values, samples, genes = expression
    keys = [normalize(s) for s in samples]
    groups: Dict[str, list] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    dup = {k: v for k, v in groups.items() if len(v) > 1}
    report["duplicate_expression_rows"] = {
        "rows_merged": sum(len(v) - 1 for v in dup.values()),
        "how": how,
        "samples": sorted(samples[v[0]] for v in dup.values())[:50],
    }
    if not dup:
        return expression
    names = ", ".join(sorted(samples[v[0]] for v in dup.values())[:5])
    if how == "error":
        raise ValueError(
            f"expression has {len(dup)} samples with several rows ({names}); pass duplicate_samples='mean' or 'first'"
        )
    logger.warning("expression: %d samples have several rows (%s); merged by %s", len(dup), names, how)
    keep = [v[0] for v in groups.values()]
    out = np.asarray(values, dtype=np.float64)[keep].copy()
    if how == "mean":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for r, v in enumerate(groups.values()):
                if len(v) > 1:
                    out[r] = np.nanmean(np.asarray(values, dtype=np.float64)[v], axis=0)
    return out, [samples[i] for i in keep], genes


def align_expression(
    expression: Expression,
    gene_space: GeneSpace,
    missing_genes: str,
    fill_value: float,
    normalize: Optional[str],
    report: Dict,
    *,
    duplicate_samples: str = "mean",
    sample_normalize: Callable[[str], str] = normalize_cell_name,
    clip: Optional[float] = None,
) -> AlignedExpression:
    """Align to the gene space, robust-z per gene over samples (paper A.3.2), NaN -> fill; all reported.

    Rules (counted in ``report``):

    - rows naming one sample twice (after ``sample_normalize``) are merged by ``duplicate_samples``;
    - a value that is NaN, infinite, or beyond float32's range (``1e308``) is *missing*: left out
      of the median and MAD, then set to ``fill_value`` (0 = the gene's median after robust z)
      and marked in ``AlignedExpression.missing`` (never stored as ``±3.4e38``);
    - ``clip``: optionally clip ``|z|``; the largest ``|z|`` is reported either way.
    """
    values, samples, genes = merge_duplicate_samples(expression, sample_normalize, duplicate_samples, report)
    v64 = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        v32 = v64.astype(np.float32)
    nan = np.isnan(v64)
    bad = ~np.isfinite(v32) & ~nan  # infinite, or finite in float64 but overflowing float32
    report["expression_missing_values"] = {"nan": int(nan.sum()), "infinite_or_overflow": int(bad.sum())}
    if bad.any():
        logger.warning("expression: %d infinite or float32-overflowing values treated as missing", int(bad.sum()))
        v32 = v32.copy()
        v32[bad] = np.nan
    aligned = gene_space.align((v32, samples, genes), missing=missing_genes, fill_value=fill_value)
    report["genes"] = aligned.report.to_dict()
    logger.info("%s", aligned.report)
    measured = torch.isnan(aligned.values) & aligned.mask  # missing cells of measured genes
    if normalize == "robust_z":
        med, mad = robust_stats(aligned.values[:, aligned.mask], dim=0)
        z, degenerate = robust_zscore(aligned.values[:, aligned.mask], dim=0, stats=(med, mad))
        n = aligned.values.size(1)
        median, scale = (
            torch.full((n,), float("nan"), dtype=torch.float64),
            torch.full((n,), float("nan"), dtype=torch.float64),
        )
        median[aligned.mask] = med.reshape(-1)
        scale[aligned.mask] = torch.where(
            degenerate.reshape(-1), torch.full_like(mad.reshape(-1), float("nan")), mad.reshape(-1)
        )
        aligned.stats = {
            "method": "robust_z",
            "median": median,
            "scale": scale,
            "clip": clip,
            "fill_value": float(fill_value),
        }
        z, report["expression_z"] = clip_report(z, clip)
        aligned.values = aligned.values.clone()
        aligned.values[:, aligned.mask] = z
        report["genes_with_zero_mad"] = int(degenerate.sum())
    elif normalize is not None:
        raise ValueError(f"normalize must be 'robust_z' or None, got {normalize!r}")
    elif clip is not None:
        raise ValueError("clip applies to robust z-scores; it needs normalize='robust_z'")
    if torch.isnan(aligned.values).any():
        report["expression_nan_set_to_fill"] = int(torch.isnan(aligned.values).sum())
        aligned.values = torch.nan_to_num(aligned.values, nan=fill_value)
    aligned.missing = measured
    return aligned


def build_pairs(
    responses: pd.DataFrame,
    smiles: Mapping[str, str],
    aligned: AlignedExpression,
    *,
    dose: float,
    time: float,
    report: Dict,
    duplicates: str = "mean",
    conflict_threshold: float = 1.0,
    drop_conflicting: bool = False,
    cell_info: Optional[pd.DataFrame] = None,
    cell_prefixes: Tuple[str, ...] = ("NCI",),
    cell_suffixes: Tuple[str, ...] = (),
    cell_normalize: Callable[[str], str] = normalize_cell_name,
    drug_normalize: Callable[[str], str] = normalize_drug_name,
    drug_names: Optional[Mapping[str, str]] = None,
    what_cells: str = "cell lines",
) -> Dict:
    """Join ``responses`` (columns ``cell, drug, y``; optional ``cosmic_id``, ``tcga``) with the
    expression rows and the SMILES map, and return ``PairDataset.make_payload()`` arguments
    (everything except the prior). Drops are counted in ``report["dropped"]``.

    With ``dose`` / ``time`` columns in ``responses`` (µM, h) each row keeps its own condition (the
    ``dose`` / ``time`` arguments are then the value for rows where the column is empty) and a pair is a
    (cell, drug, dose, time); without them every row gets ``dose`` / ``time``.
    A pair measured more than once is merged by ``duplicates`` (``"mean"`` or
    ``"first"``); pairs whose replicates differ by more than ``conflict_threshold`` are counted
    in ``report["replicates"]`` and, with ``drop_conflicting``, dropped. Targets that are not
    finite in float32 (``inf``, ``1e308``) are dropped (``dropped["nonfinite_response"]``).
    """
    if duplicates not in ("mean", "first"):
        raise ValueError(f"duplicates must be 'mean' or 'first', got {duplicates!r}")
    missing = [c for c in ("cell", "drug", "y") if c not in responses.columns]
    if missing:
        raise ValueError(f"responses need columns cell, drug, y; missing {missing}")
    dropped: Dict[str, int] = report.setdefault("dropped", {})
    resp = responses.copy()
    report["rows_read"] = int(len(resp))
    resp["y"] = pd.to_numeric(resp["y"], errors="coerce")
    bad = resp["y"].isna() | resp["cell"].isna() | resp["drug"].isna()
    dropped["nan_response_or_name"] = int(bad.sum())
    resp = resp[~bad]
    with np.errstate(over="ignore"):  # inf, -inf, and values beyond float32 (1e308) cannot be a target
        finite = np.isfinite(resp["y"].to_numpy(np.float64).astype(np.float32))
    dropped["nonfinite_response"] = int((~finite).sum())
    if not finite.all():
        logger.warning("responses: %d infinite or float32-overflowing values dropped", int((~finite).sum()))
    resp = resp[finite]
    resp["cell"] = resp["cell"].astype(str)
    resp["drug"] = resp["drug"].astype(str)
    for col, cond in (("dose", dose), ("time", time)):
        if col in resp.columns:
            v = pd.to_numeric(resp[col], errors="coerce")
            bad = int((resp[col].notna() & v.isna()).sum())
            if bad:
                raise ValueError(
                    f"responses: {bad} values of the {col} column are not numbers (e.g. "
                    f"{resp.loc[resp[col].notna() & v.isna(), col].iloc[0]!r})"
                )
            if (v < 0).any():
                raise ValueError(f"responses: the {col} column has negative values (e.g. {float(v[v < 0].iloc[0])})")
            report.setdefault(f"{col}_filled", int(v.isna().sum()))
            resp[col] = v.fillna(float(cond)).astype(float)
        else:
            resp[col] = float(cond)

    # --- cells -> expression rows
    cmap, crep = match_names(
        resp["cell"].unique(),
        aligned.samples,
        cell_normalize,
        f"{what_cells} (responses -> expression)",
        prefixes=cell_prefixes,
        suffixes=cell_suffixes,
    )
    report["cell_join"] = crep.to_dict()
    logger.info("%s", crep)
    has = resp["cell"].map(cmap).notna()
    dropped["cell_without_expression"] = int((~has).sum())
    resp = resp[has]

    # --- drugs -> SMILES -> graphs
    dmap, drep = match_names(resp["drug"].unique(), list(smiles), drug_normalize, "drugs (responses -> SMILES)")
    report["drug_join"] = drep.to_dict()
    logger.info("%s", drep)
    has = resp["drug"].map(dmap).notna()
    dropped["drug_without_smiles"] = int((~has).sum())
    resp = resp[has]
    drug_keys = sorted(resp["drug"].unique())
    molecules, mrep = MoleculeStore.from_smiles(drug_keys, [smiles[dmap[d]] for d in drug_keys])
    report["molecules"] = mrep.to_dict()
    ok = resp["drug"].isin(set(molecules.names))
    dropped["invalid_smiles"] = int((~ok).sum())
    resp = resp[ok]
    if len(resp) == 0:
        raise ValueError(f"no pairs left after the joins: {dropped}")

    # --- cells kept (match_names maps at most one response name to an expression row)
    cell_names = sorted(resp["cell"].unique())
    row = {c: i for i, c in enumerate(aligned.samples)}
    rows = torch.tensor([row[cmap[c]] for c in cell_names])
    expr = aligned.values[rows]
    expr_missing = aligned.missing[rows] if aligned.missing is not None else None
    cid = {c: i for i, c in enumerate(cell_names)}
    did = {d: i for i, d in enumerate(molecules.names)}

    # --- duplicate (cell, drug) measurements
    pairs = pd.DataFrame(
        {
            "cell": resp["cell"].map(cid).to_numpy(),
            "drug": resp["drug"].map(did).to_numpy(),
            "dose": resp["dose"].to_numpy(np.float64),
            "time": resp["time"].to_numpy(np.float64),
            "y": resp["y"].to_numpy(np.float64),
        }
    )
    key = ["cell", "drug", "dose", "time"]
    n_before = len(pairs)
    stats = pairs.groupby(key, sort=True)["y"].agg(["count", "min", "max"])
    spread = (stats["max"] - stats["min"])[stats["count"] > 1]
    conflicting = spread[spread > conflict_threshold]
    report["replicates"] = {
        "pairs_with_replicates": int(len(spread)),
        "conflict_threshold": conflict_threshold,
        "conflicting_pairs": int(len(conflicting)),
        "max_spread": round(float(spread.max()), 3) if len(spread) else 0.0,
        "policy": "drop conflicting" if drop_conflicting else duplicates,
    }
    if drop_conflicting and len(conflicting):
        bad = pd.MultiIndex.from_frame(pairs[key]).isin(conflicting.index)
        dropped["conflicting_replicates"] = int(bad.sum())
        pairs = pairs[~bad]
    elif len(conflicting):
        logger.info(
            "responses: %d pairs have replicate screens differing by more than %g (kept, %s)",
            len(conflicting),
            conflict_threshold,
            duplicates,
        )
    n_rep_rows = len(pairs)
    pairs = pairs.groupby(key, sort=True, as_index=False)["y"].agg(duplicates)
    report["duplicate_pairs_merged"] = {"rows_merged": int(n_rep_rows - len(pairs)), "how": duplicates}
    if len(pairs) == 0:
        raise ValueError(f"no pairs left after dropping conflicting replicates ({n_before} rows)")

    # --- per-cell annotations
    meta = {
        "name": cell_names,
        "expression_row": [cmap[c] for c in cell_names],
        "cosmic_id": [-1] * len(cell_names),
        "tcga": [""] * len(cell_names),
    }
    for col, default, cast in (("cosmic_id", -1, lambda v: int(float(v))), ("tcga", "", lambda v: str(v).strip())):
        if col in resp.columns:
            first = resp.groupby("cell")[col].first()
            meta[col] = [cast(first[c]) if pd.notna(first[c]) else default for c in cell_names]
    if cell_info is not None:
        imap, irep = match_names(
            cell_names,
            cell_info["name"],
            cell_normalize,
            f"{what_cells} (responses -> annotation)",
            prefixes=cell_prefixes,
        )
        report["cell_info_join"] = irep.to_dict()
        info = cell_info.drop_duplicates("name").set_index("name")
        for i, c in enumerate(cell_names):
            if c not in imap:
                continue
            r = info.loc[imap[c]]
            if meta["cosmic_id"][i] < 0 and pd.notna(r["cosmic_id"]):
                meta["cosmic_id"][i] = int(float(r["cosmic_id"]))
            if not meta["tcga"][i] and isinstance(r["tcga"], str):
                meta["tcga"][i] = r["tcga"].strip()
    report["cells_with_tcga_label"] = int(sum(bool(t) for t in meta["tcga"]))
    return dict(
        expr=expr,
        expr_missing=expr_missing,
        expr_stats=aligned.stats,
        genes=aligned.gene_space.genes,
        gene_mask=aligned.mask,
        cells=cell_names,
        molecules=molecules,
        cell=torch.tensor(pairs["cell"].to_numpy()),
        drug=torch.tensor(pairs["drug"].to_numpy()),
        y=torch.tensor(pairs["y"].to_numpy()),
        dose=torch.tensor(pairs["dose"].to_numpy(np.float64)),
        time=torch.tensor(pairs["time"].to_numpy(np.float64)),
        cell_meta=meta,
        drug_meta={"name": [(drug_names or {}).get(d, d) for d in molecules.names]},
    )


__all__ = ["align_expression", "build_pairs", "Expression"]
