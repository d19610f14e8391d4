"""``csg2a predict``: a fine-tuned checkpoint on a table of (cell, drug) pairs; every input row comes back."""
from __future__ import annotations

import logging
import os
from typing import Dict, Optional

import numpy as np

from csg2a_graph.cli.common import CLIError, Subcommand, say

logger = logging.getLogger(__name__)


def read_expression_file(path: str, genes, normalize: str):
    """``(matrix [cells, len(genes)], cell names, measured mask, message)`` from a cells x genes table."""
    import pandas as pd

    from csg2a_graph.data import GeneSpace

    sep = "\t" if path.endswith((".tsv", ".txt", ".tsv.gz", ".txt.gz")) else ","
    df = pd.read_csv(path, sep=sep, index_col=0)
    df = df.apply(pd.to_numeric, errors="coerce")
    land = GeneSpace.landmark()
    pos = {g: i for i, g in enumerate(genes)}
    out = np.zeros((len(df), len(genes)), dtype=np.float32)
    found = np.zeros(len(genes), dtype=bool)
    for col in df.columns:
        g = str(col)
        g = g if g in pos else land.resolve(g)
        if g in pos and not found[pos[g]]:
            out[:, pos[g]] = df[col].to_numpy(np.float32)
            found[pos[g]] = True
    if not found.any():
        raise CLIError(f"{path}: none of its {df.shape[1]} columns is a gene of the model ({len(genes)} genes)")
    nan = np.isnan(out)
    if normalize == "robust_z":
        import torch

        from csg2a_graph.data.normalize import robust_zscore

        out = robust_zscore(torch.from_numpy(out))[0].numpy()
    out[nan] = 0.0
    msg = (f"expression: {len(df)} cells; {int(found.sum())} of {len(genes)} model genes found "
           f"({len(genes) - int(found.sum())} filled with 0); {int(nan[:, found].sum())} missing values filled")
    return out, [str(c) for c in df.index], found, msg


class PredictSubcommand(Subcommand):
    COMMAND = "predict"
    HELP = "predict responses for (cell, drug) pairs with a fine-tuned checkpoint"

    @classmethod
    def add_args(cls, p):
        p.add_argument("--checkpoint", required=True, help="a fine-tuned model.pt (csg2a finetune / cv / quickstart)")
        p.add_argument("--input", required=True, help="CSV with columns cell and smiles or drug (optional dose, time)")
        p.add_argument("--out", required=True, help="output CSV: the input rows + y_pred + error")
        add_pair_args(p)
        p.add_argument("--batch-size", type=int, default=512)

    @classmethod
    def run(cls, args):
        import torch

        from csg2a_graph.train.checkpoint import load_model

        model = load_model(args.checkpoint)
        if getattr(model, "target", "response") != "response":
            raise CLIError(f"{args.checkpoint} is a {model.model_name} network (predicts profiles); "
                           "predict needs a fine-tuned response model")
        r = resolve_pairs(args, model.hparams["genes"])
        table, errors, ok, n = r["table"], r["errors"], r["ok"], len(r["table"])
        store, spos, smiles = r["store"], r["spos"], r["smiles"]
        pred = np.full(n, np.nan)
        model.eval()
        with torch.no_grad():
            for b in range(0, len(ok), args.batch_size):
                sel = ok[b:b + args.batch_size]
                d = torch.tensor([spos[smiles[i]] for i in sel])
                u, dindex = torch.unique(d, return_inverse=True)
                x = torch.from_numpy(np.ascontiguousarray(r["expr"][r["rows"][sel]])).float()
                out = model(x, store.batch(u), dindex, torch.tensor(r["dose"][sel]).float(),
                            torch.tensor(r["time"][sel]).float())
                pred[sel] = out.numpy()
        table["y_pred"] = pred
        table["error"] = errors
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        table.to_csv(args.out, index=False)
        bad = sum(1 for e in errors if e)
        say(f"{n - bad} of {n} pairs predicted, {bad} with an error (see the 'error' column): {args.out}", args)
        return 0


def add_pair_args(p) -> None:
    """The pair-table options shared by ``predict`` and ``explain``."""
    p.add_argument("--expression", default=None, help="cells x genes CSV/TSV (first column: cell names)")
    p.add_argument("--normalize", default="none", choices=["none", "robust_z"],
                   help="of --expression: none (already on the training scale) or robust z per gene")
    g = p.add_argument_group("or expression and drug names from the training dataset")
    g.add_argument("--dataset", choices=["gdsc", "nci60"], default=None)
    g.add_argument("--root", default=None)
    g.add_argument("--fetch", action="store_true")
    g.add_argument("--name", default="GDSC2")


def resolve_pairs(args, genes, input_path: Optional[str] = None) -> Dict:
    """Read the pair table (``cell`` and ``smiles`` or ``drug``, optional ``dose``, ``time``) and resolve
    every row to an expression row and a featurised drug; a row that cannot be resolved keeps its
    reason in ``errors`` and is left out of ``ok``."""
    import pandas as pd

    from csg2a_graph.data.molecules import MoleculeStore, canonical_smiles
    from csg2a_graph.data.names import normalize_cell_name as normalize_name

    path = input_path or args.input
    if not os.path.exists(path):
        raise CLIError(f"input {path} not found")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "cell" not in table.columns or not ({"smiles", "drug"} & set(table.columns)):
        raise CLIError(f"{path} needs a 'cell' column and a 'smiles' or 'drug' column "
                       f"(has {list(table.columns)})")
    ds = None
    if args.expression:
        expr, cells, found, msg = read_expression_file(args.expression, genes, args.normalize)
        say(msg, args)
    elif args.dataset and args.root:
        from csg2a_graph.cli.data import load_dataset

        ds = load_dataset(args.dataset, args.root, fetch=args.fetch, name=args.name, log=False)
        if ds.gene_space.genes != list(genes):
            raise CLIError(f"the dataset's {ds.num_genes} genes differ from the model's {len(genes)} genes")
        expr, cells, found = ds.expression.numpy(), list(ds.cells), ds.gene_mask.numpy()
    else:
        raise CLIError("give --expression FILE or --dataset and --root for the cells' expression")
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
                errors[i] = (f"unknown drug {d!r}: give its SMILES" if d else "no drug or SMILES")
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
    return {"table": table, "expr": expr, "cells": cells, "measured": np.asarray(found, dtype=bool), "rows": rows,
            "smiles": smiles, "labels": labels, "errors": errors, "dose": dose, "time": time_, "ok": ok,
            "store": store, "spos": spos, "dataset": ds}


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


__all__ = ["PredictSubcommand", "read_expression_file", "resolve_pairs", "add_pair_args"]
