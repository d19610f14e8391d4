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
from csg2a_graph.data.normalize import robust_zscore

logger = logging.getLogger(__name__)

Expression = Tuple[np.ndarray, Sequence[str], Sequence[str]]  # values [samples, genes], samples, genes


def align_expression(expression: Expression, gene_space: GeneSpace, missing_genes: str, fill_value: float,
                     normalize: Optional[str], report: Dict) -> AlignedExpression:
    """Align to the gene space, robust-z per gene over samples (paper A.3.2), NaN -> fill; all reported."""
    values, samples, genes = expression
    if not np.isfinite(values).all():
        report["expression_nonfinite_values"] = int((~np.isfinite(values)).sum())
    aligned = gene_space.align((values, samples, genes), missing=missing_genes, fill_value=fill_value)
    report["genes"] = aligned.report.to_dict()
    logger.info("%s", aligned.report)
    if normalize == "robust_z":
        z, degenerate = robust_zscore(aligned.values[:, aligned.mask], dim=0)
        aligned.values = aligned.values.clone()
        aligned.values[:, aligned.mask] = z
        report["genes_with_zero_mad"] = int(degenerate.sum())
    elif normalize is not None:
        raise ValueError(f"normalize must be 'robust_z' or None, got {normalize!r}")
    if torch.isnan(aligned.values).any():
        report["expression_nan_set_to_fill"] = int(torch.isnan(aligned.values).sum())
        aligned.values = torch.nan_to_num(aligned.values, nan=fill_value)
    return aligned


def build_pairs(responses: pd.DataFrame, smiles: Mapping[str, str], aligned: AlignedExpression, *,
                dose: float, time: float, report: Dict, duplicates: str = "mean",
                cell_info: Optional[pd.DataFrame] = None, cell_prefixes: Tuple[str, ...] = ("NCI",),
                cell_suffixes: Tuple[str, ...] = (),
                cell_normalize: Callable[[str], str] = normalize_cell_name,
                drug_normalize: Callable[[str], str] = normalize_drug_name,
                drug_names: Optional[Mapping[str, str]] = None, what_cells: str = "cell lines") -> Dict:
    """Join ``responses`` (columns ``cell, drug, y``; optional ``cosmic_id``, ``tcga``) with the
    expression rows and the SMILES map, and return :meth:`PairDataset.make_payload` arguments
    (everything except the prior). Drops are counted in ``report["dropped"]``.
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
    resp["cell"] = resp["cell"].astype(str)
    resp["drug"] = resp["drug"].astype(str)

    # --- cells -> expression rows
    cmap, crep = match_names(resp["cell"].unique(), aligned.samples, cell_normalize,
                             f"{what_cells} (responses -> expression)", prefixes=cell_prefixes,
                             suffixes=cell_suffixes)
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
    expr = aligned.values[torch.tensor([row[cmap[c]] for c in cell_names])]
    cid = {c: i for i, c in enumerate(cell_names)}
    did = {d: i for i, d in enumerate(molecules.names)}

    # --- duplicate (cell, drug) measurements
    pairs = pd.DataFrame({"cell": resp["cell"].map(cid).to_numpy(), "drug": resp["drug"].map(did).to_numpy(),
                          "y": resp["y"].to_numpy(np.float64)})
    n_before = len(pairs)
    pairs = pairs.groupby(["cell", "drug"], sort=True, as_index=False)["y"].agg(duplicates)
    report["duplicate_pairs_merged"] = {"rows_merged": int(n_before - len(pairs)), "how": duplicates}

    # --- per-cell annotations
    meta = {"name": cell_names, "expression_row": [cmap[c] for c in cell_names],
            "cosmic_id": [-1] * len(cell_names), "tcga": [""] * len(cell_names)}
    for col, default, cast in (("cosmic_id", -1, lambda v: int(float(v))), ("tcga", "", lambda v: str(v).strip())):
        if col in resp.columns:
            first = resp.groupby("cell")[col].first()
            meta[col] = [cast(first[c]) if pd.notna(first[c]) else default for c in cell_names]
    if cell_info is not None:
        imap, irep = match_names(cell_names, cell_info["name"], cell_normalize,
                                 f"{what_cells} (responses -> annotation)", prefixes=cell_prefixes)
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
    n = len(pairs)
    return dict(expr=expr, genes=aligned.gene_space.genes, gene_mask=aligned.mask, cells=cell_names,
                molecules=molecules, cell=torch.tensor(pairs["cell"].to_numpy()),
                drug=torch.tensor(pairs["drug"].to_numpy()), y=torch.tensor(pairs["y"].to_numpy()),
                dose=torch.full((n,), float(dose)), time=torch.full((n,), float(time)), cell_meta=meta,
                drug_meta={"name": [(drug_names or {}).get(d, d) for d in molecules.names]})


__all__ = ["align_expression", "build_pairs", "Expression"]
