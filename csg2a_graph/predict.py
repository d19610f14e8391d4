"""Prediction for (cell, drug) pairs as library code: read a user's pair and expression tables onto a model's gene
space, resolve every row (or say why not), and predict (``predict_pairs()``). ``csg2a predict`` and ``csg2a
explain`` parse their arguments and call these.
"""

from __future__ import annotations

import logging
import os
from typing import Dict, Optional

import numpy as np

from csg2a_graph.errors import InputError

logger = logging.getLogger(__name__)


def read_table(path: str, what: str, **kw):
    """A user's CSV/TSV table (``csg2a_graph.io.tables.read_delimited()``: the delimiter from the header line,
    UTF-8 with or without a BOM, CRLF line ends; anything else refused in one line naming the file).
    """
    from csg2a_graph.io.tables import read_delimited

    return read_delimited(path, what, **kw)


def scale_shift(z: np.ndarray, found: np.ndarray, min_rows: int = 5):
    """How far expression put on the training scale is from the training data: ``(median over genes of
    |median z|, median over genes of MAD(z) * 1.4826)``; on the training data ``(0, 1)`` by construction.
    ``None`` when there are too few rows to tell.
    """
    import warnings

    if z.shape[0] < min_rows:
        return None
    cols = z[:, found]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(cols, axis=0)
        mad = np.nanmedian(np.abs(cols - med), axis=0) * 1.4826
    ok = np.isfinite(med) & np.isfinite(mad)
    if not ok.any():
        return None
    return float(np.median(np.abs(med[ok]))), float(np.median(mad[ok]))


def read_expression_file(
    path: str, genes, normalize: str, stats: Optional[Dict] = None, measured: Optional[np.ndarray] = None
):
    """A cells x genes table on the model's gene space.

    ``normalize``: ``"train"`` applies ``stats`` (the training data's per-gene median and scale, kept
    in the checkpoint), ``"none"`` takes the values as they are, ``"robust_z"`` z-scores over the
    file's own rows (each cell then depends on the others). Duplicate cell names are refused; a
    cell with an infinite value gets a row error naming the genes. Genes absent from the file and
    missing values are set to 0 (the training median on the z scale), counted per row.

    Returns:
        ``(matrix [cells, len(genes)], cell names, found mask, message, row_errors {row: text},
        filled [cells] count of measured model genes filled per row)``.
    """
    import pandas as pd

    from csg2a_graph.data import GeneSpace
    from csg2a_graph.data.names import normalize_cell_name

    if not os.path.exists(path):
        raise InputError(f"--expression {path} not found")
    df = read_table(path, "expression file", index_col=0)
    names = [str(c).strip() for c in df.index]
    seen: Dict[str, str] = {}
    dups = []
    for c in names:
        k = normalize_cell_name(c)
        if k in seen:
            dups.append(c if seen[k] == c else f"{seen[k]} / {c}")
        seen.setdefault(k, c)
    if dups:
        raise InputError(
            f"{path} names {len(dups)} cell(s) more than once ({', '.join(sorted(set(dups))[:5])}): "
            "keep one row per cell (or average them) so that no row is chosen silently"
        )
    df = df.apply(pd.to_numeric, errors="coerce")
    land = GeneSpace.landmark()
    pos = {g: i for i, g in enumerate(genes)}
    out = np.full((len(df), len(genes)), np.nan, dtype=np.float64)
    found = np.zeros(len(genes), dtype=bool)
    given: Dict[str, str] = {}
    twice = []
    cols = set(map(str, df.columns))
    for col in df.columns:
        g = str(col)
        base, dot, n = g.rpartition(".")
        if dot and n.isdigit() and base in cols:  # pandas renames a repeated header "TP53" to "TP53.1"
            twice.append(f"{base} / {base}")
            continue
        g = g if g in pos else land.resolve(g)
        if g in pos:
            if found[pos[g]]:
                twice.append(f"{given[g]} / {col}")
                continue
            out[:, pos[g]] = df[col].to_numpy(np.float64)
            found[pos[g]] = True
            given[g] = str(col)
    if twice:
        raise InputError(
            f"{path} gives {len(twice)} gene(s) more than once ({', '.join(sorted(set(twice))[:5])}): keep "
            "one column per gene so that no column is chosen silently"
        )
    if not found.any():
        raise InputError(f"{path}: none of its {df.shape[1]} columns is a gene of the model ({len(genes)} genes)")
    row_errors: Dict[int, str] = {}
    inf = np.isinf(out)
    for i in np.flatnonzero(inf.any(1)):
        bad = [genes[j] for j in np.flatnonzero(inf[i])]
        row_errors[int(i)] = (
            f"expression of {names[i]} in {os.path.basename(path)} is infinite for "
            f"{len(bad)} gene(s): {', '.join(bad[:5])}"
        )
    out[inf] = np.nan
    nan = np.isnan(out)
    if normalize == "train":
        if stats is None:
            raise InputError(
                "the checkpoint keeps no expression normalisation (trained on a dataset without one, or "
                "by an older version): say --normalize none if the file is on the training scale, "
                "or robust_z"
            )
        med = np.asarray(stats["median"], dtype=np.float64)
        scale = np.asarray(stats["scale"], dtype=np.float64)
        ok = np.isfinite(med) & np.isfinite(scale) & (scale > 0)
        out = np.where(ok, (out - np.where(ok, med, 0.0)) / np.where(ok, scale, 1.0), np.nan)
        if stats.get("clip") is not None:
            out = np.clip(out, -stats["clip"], stats["clip"])
    elif normalize == "robust_z":
        import torch

        from csg2a_graph.data.normalize import robust_zscore

        out = robust_zscore(torch.from_numpy(out), dim=0)[0].double().numpy()
    elif normalize != "none":
        raise InputError(f"unknown normalisation {normalize!r}")
    shift = None
    if normalize == "train":
        shift = scale_shift(out, found)
        if shift is not None and (shift[0] > 1.0 or not 1 / 3 <= shift[1] <= 3):
            logger.warning(
                "%s does not look like the training expression on the training scale: the typical gene's "
                "median lies %.1f training MADs from the training median and its spread is %.2fx the "
                "training spread (the training data give 0 and 1x); another platform, unit or "
                "normalisation? Predictions may be off",
                path,
                shift[0],
                shift[1],
            )
    relevant = found.copy() if measured is None else np.asarray(measured, dtype=bool)
    filled = (np.isnan(out) & relevant[None, :]).sum(1)
    out = np.nan_to_num(out, nan=0.0).astype(np.float32)
    n_missing_genes = int((relevant & ~found).sum())
    msg = (
        f"expression: {len(df)} cells from {path} ({normalize} normalisation); {int(found.sum())} of "
        f"{len(genes)} model genes found"
    )
    if n_missing_genes:
        msg += (
            f"; {n_missing_genes} of the {int(relevant.sum())} genes the model was trained on are not in the "
            "file and are set to 0 (the training median)"
        )
    if nan[:, found].any():
        msg += f"; {int(nan[:, found].sum())} missing values set to 0"
    if len(set(filled.tolist())) > 1:
        msg += f" (per cell: {int(filled.min())}-{int(filled.max())} genes filled, column genes_filled)"
    return out, names, found, msg, row_errors, filled


def describe_target(target: Dict) -> str:
    """``"ln IC50 [ln(µM)], higher = more resistant, as in GDSC2"``."""
    name = target.get("name") or "the training response"
    unit = f" [{target['unit']}]" if target.get("unit") else ""
    d = {"higher_is_resistant": ", higher = more resistant", "higher_is_sensitive": ", higher = more sensitive"}
    where = f", as in {target['dataset']}" if target.get("dataset") else ""
    return f"{name}{unit}{d.get(target.get('direction'), '')}{where}"


def resolve_pairs(
    pairs,
    genes,
    *,
    expression: Optional[str] = None,
    normalize: str = "train",
    dataset=None,
    info: Optional[Dict] = None,
) -> Dict:
    """Read the pair table (``cell`` and ``smiles`` or ``drug``, optional ``dose``, ``time``) and resolve
    every row to an expression row and a featurised drug; a row that cannot be resolved keeps its
    reason in ``errors`` and is left out of ``ok``. ``info``: the checkpoint's ``checkpoint_info``
    (target, normalisation, measured genes), used to put expression on the training scale and to
    warn when the expression source differs from the training data.

    Args:
        pairs: a pair table (path to a CSV/TSV, or a ``pandas.DataFrame`` of text columns).
        genes: the model's genes (``model.hparams["genes"]``).
        expression: a cells x genes table for the cells (``normalize``: ``"train"``, ``"none"`` or ``"robust_z"``,
            see ``read_expression_file()``); or
        dataset: a loaded response dataset whose expression and drug names are used instead.
        normalize: see ``expression``.
        info: the checkpoint's ``checkpoint_info``.

    Returns:
        a dict: ``table`` (the input rows), ``expr``, ``rows`` (expression row per pair, -1 unknown), ``smiles``,
        ``errors`` (one text per row, empty when resolved), ``ok`` (resolved rows), ``dose``, ``time``, ``store``
        and ``spos`` (featurised drugs), ``filled``, ``target``, ``messages`` (what was read, to show).
    """
    import pandas as pd

    from csg2a_graph.data.molecules import MoleculeStore, canonical_smiles
    from csg2a_graph.data.names import normalize_cell_name as normalize_name

    if isinstance(pairs, pd.DataFrame):
        path, table = "the pair table", pairs.astype(str).copy()
    else:
        path = str(pairs)
        if not os.path.exists(path):
            raise InputError(f"input {path} not found")
        table = read_table(path, "pair table", dtype=str, keep_default_na=False)
    messages = []
    table.columns = [str(c).strip() for c in table.columns]
    if "cell" not in table.columns or not ({"smiles", "drug"} & set(table.columns)):
        raise InputError(f"{path} needs a 'cell' column and a 'smiles' or 'drug' column (has {list(table.columns)})")
    info = info or {}
    target = dict(info.get("target") or {})
    measured = info.get("measured_genes")
    measured = None if measured is None else np.asarray(measured, dtype=bool)
    ds = None
    row_errors: Dict[int, str] = {}
    if expression:
        if normalize == "none" and info.get("normalization"):
            logger.warning(
                "--normalize none: %s is taken to be on the training scale already (robust z per gene); "
                "the default --normalize train applies the training data's median and MAD",
                expression,
            )
        elif normalize == "robust_z":
            logger.warning(
                "--normalize robust_z: z-scores over the rows of %s, so each cell's prediction depends on "
                "the other cells in the file; --normalize train uses the training data's median and MAD",
                expression,
            )
        expr, cells, found, msg, row_errors, filled = read_expression_file(
            expression, genes, normalize, info.get("normalization"), measured
        )
        messages.append(msg)
        if measured is not None and (measured & ~found).any():
            logger.warning(
                "%d of the %d genes the model was trained on are missing from %s; they are set to the "
                "training median (0), which changes predictions",
                int((measured & ~found).sum()),
                int(measured.sum()),
                expression,
            )
    elif dataset is not None:
        ds = dataset
        if ds.gene_space.genes != list(genes):
            raise InputError(f"the dataset's {ds.num_genes} genes differ from the model's {len(genes)} genes")
        expr, cells, found = ds.expression.numpy(), list(ds.cells), ds.gene_mask.numpy()
        filled = np.zeros(len(cells), dtype=int)
        if measured is not None:
            filled = filled + int((measured & ~found).sum())
        trained_on = target.get("dataset")
        if trained_on and trained_on != ds.name:
            logger.warning(
                "the model was trained on %s: its predictions are %s, not %s's %s",
                trained_on,
                describe_target(target),
                ds.name,
                getattr(ds, "y_name", "response"),
            )
    else:
        raise InputError(
            "give --expression FILE or --dataset and --root for the cells' expression (expression= or dataset=)"
        )
    cell_pos = {}
    for i, c in enumerate(cells):
        cell_pos.setdefault(c, i)
        cell_pos.setdefault(normalize_name(c), i)
    name_smiles = {}
    if ds is not None:  # drugs by name (from the dataset) when there is no SMILES
        names = ds.drug_meta.get("name") or ds.drugs
        for key, nm, smi in zip(ds.drugs, names, ds.molecules.smiles):
            name_smiles.setdefault(str(key).lower(), smi)
            name_smiles.setdefault(str(nm).lower(), smi)
    n = len(table)
    errors = [""] * n
    smiles = [None] * n
    labels = [""] * n
    rows = np.full(n, -1)
    for i, r in enumerate(table.itertuples(index=False)):
        rd = r._asdict()
        c = str(rd["cell"]).strip()
        rows[i] = cell_pos.get(c, cell_pos.get(normalize_name(c), -1))
        if rows[i] < 0:
            errors[i] = f"unknown cell line {c!r}"
            continue
        if int(rows[i]) in row_errors:
            errors[i] = row_errors[int(rows[i])]
            continue
        s = str(rd.get("smiles", "") or "").strip()
        d = str(rd.get("drug", "") or "").strip()
        labels[i] = d or s
        if s:
            try:
                smiles[i] = canonical_smiles(s)
            except ValueError:
                errors[i] = f"invalid SMILES {s!r}"
        else:
            smiles[i] = name_smiles.get(d.lower())
            if smiles[i] is None:
                errors[i] = f"unknown drug {d!r}: give its SMILES" if d else "no drug or SMILES"
    dose = _column(table, "dose", 10.0, errors)
    time_ = _column(table, "time", 72.0, errors)
    ok = [i for i in range(n) if not errors[i]]
    uniq = sorted({smiles[i] for i in ok})
    store, rep = MoleculeStore.from_smiles(uniq, uniq)  # graphs of canonical SMILES, as in the datasets
    spos = {s: k for k, s in enumerate(store.names)}
    for i in ok:
        if smiles[i] not in spos:
            errors[i] = f"SMILES {smiles[i]!r} could not be featurised"
    ok = [i for i in ok if not errors[i]]
    return {
        "table": table,
        "expr": expr,
        "cells": cells,
        "measured": np.asarray(found, dtype=bool),
        "rows": rows,
        "smiles": smiles,
        "labels": labels,
        "errors": errors,
        "dose": dose,
        "time": time_,
        "ok": ok,
        "store": store,
        "spos": spos,
        "dataset": ds,
        "filled": np.asarray(filled),
        "target": target,
        "messages": messages,
    }


def _column(table, name: str, default: float, errors) -> np.ndarray:
    if name not in table.columns:
        return np.full(len(table), default)
    out = np.full(len(table), default)
    for i, v in enumerate(table[name]):
        if str(v).strip() == "":
            continue
        try:
            out[i] = float(v)
            if not np.isfinite(out[i]) or out[i] < 0:
                raise ValueError
        except ValueError:
            errors[i] = errors[i] or f"bad {name} {v!r}"
    return out


def predict_pairs(
    model,
    pairs,
    *,
    expression: Optional[str] = None,
    dataset=None,
    normalize: str = "train",
    batch_size: int = 512,
):
    """Responses of a fine-tuned model for a table of (cell, drug) pairs; every input row comes back.

    Args:
        model: a fine-tuned response model, or the path of its ``model.pt``.
        pairs: the pair table (path or ``pandas.DataFrame``): a ``cell`` column and ``smiles`` or ``drug``
            (names resolve through ``dataset``), optional ``dose`` (µM) and ``time`` (h).
        expression: a cells x genes table of the cells (see ``resolve_pairs()``).
        dataset: a loaded response dataset for the cells' expression and the drugs' names instead.
        normalize: how ``expression`` is put on the training scale (``"train"``, ``"none"``, ``"robust_z"``).
        batch_size: pairs per forward pass.

    Returns:
        ``(table, info)``: the input rows plus ``y_pred`` (NaN where a row failed), ``y_name``, ``y_unit``,
        ``y_direction``, ``genes_filled`` and ``error`` (why a row has no prediction); ``info`` holds what was
        read (``messages``) and the ``target`` the predictions are on. The model's train/eval mode is restored.

    Example:
        >>> table, info = predict_pairs("runs/ft/model.pt", "pairs.csv", expression="expr.csv")
    """
    import torch

    if isinstance(model, (str, os.PathLike)):
        from csg2a_graph.checkpoint import load_model

        path = str(model)
        if not os.path.exists(path):
            raise InputError(f"checkpoint {path} not found")
        model = load_model(path)
        name = path
    else:
        name = type(model).__name__
    if getattr(model, "target", "response") != "response":
        raise InputError(
            f"{name} is a {getattr(model, 'model_name', type(model).__name__)} network (predicts profiles); "
            "predict needs a fine-tuned response model"
        )
    r = resolve_pairs(
        pairs,
        model.hparams["genes"],
        expression=expression,
        normalize=normalize,
        dataset=dataset,
        info=getattr(model, "checkpoint_info", {}),
    )
    table, errors, ok, n = r["table"], r["errors"], r["ok"], len(r["table"])
    store, spos, smiles = r["store"], r["spos"], r["smiles"]
    pred = np.full(n, np.nan)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for b in range(0, len(ok), batch_size):
                sel = ok[b : b + batch_size]
                d = torch.tensor([spos[smiles[i]] for i in sel])
                u, dindex = torch.unique(d, return_inverse=True)
                x = torch.from_numpy(np.ascontiguousarray(r["expr"][r["rows"][sel]])).float()
                out = model(
                    x,
                    store.batch(u),
                    dindex,
                    torch.tensor(r["dose"][sel]).float(),
                    torch.tensor(r["time"][sel]).float(),
                )
                pred[sel] = out.numpy()
    finally:
        model.train(was_training)
    target = r["target"]
    table["y_pred"] = pred
    table["y_name"] = target.get("name") or "response"
    table["y_unit"] = target.get("unit") or ""
    table["y_direction"] = target.get("direction") or ""
    table["genes_filled"] = [int(r["filled"][row]) if row >= 0 else "" for row in r["rows"]]
    table["error"] = errors
    return table, {"messages": r["messages"], "target": target}


__all__ = [
    "predict_pairs",
    "resolve_pairs",
    "read_expression_file",
    "read_table",
    "scale_shift",
    "describe_target",
]
