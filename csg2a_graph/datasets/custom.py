"""Your own screen as a pair dataset: responses, expression and SMILES from plain CSV/TSV files, on the
same gene space, prior, splits and loader as GDSC."""
from __future__ import annotations

import logging
import os.path as osp
from typing import Callable, Dict, Optional, Union

import pandas as pd

from csg2a_graph.data.build import align_expression, build_pairs
from csg2a_graph.data.gene_space import GeneSpace
from csg2a_graph.datasets._base import RawPairDataset
from csg2a_graph.datasets._files import find_one, read_delimited
from csg2a_graph.datasets.gdsc import genes_tag, read_expression

logger = logging.getLogger(__name__)

CELL_COLUMNS = ("cell", "cell_line", "cell_line_name", "cell_name", "sample", "model_id")
DRUG_COLUMNS = ("drug", "drug_name", "compound", "compound_name", "drug_id", "pert_iname", "pubchem_id")
SMILES_COLUMNS = ("smiles", "canonical_smiles", "isomeric_smiles")
VALUE_COLUMNS = ("y", "response", "value", "ln_ic50", "ln_ic50_curvecurator", "ic50", "auc", "gi50", "z_score")


def _column(df: pd.DataFrame, names, what: str, path: str, required: bool = True) -> Optional[str]:
    cols = {str(c).strip().lower(): c for c in df.columns}
    for n in names:
        if n in cols:
            return cols[n]
    if required:
        raise ValueError(f"{path}: no {what} column; name one of {list(names)} (case-insensitive). "
                         f"Columns found: {list(df.columns)[:12]}")
    return None


class ResponseTable(RawPairDataset):
    """Drug responses of your own screen, from three plain tables in ``root/raw`` (or given paths):

    - responses (``*response*``): one row per measurement, with a cell column (``cell``,
      ``cell_line``, ``cell_line_name``...), a drug column (``drug``, ``drug_name``...) and/or a
      ``smiles`` column, and a value column (``y``, ``response``, ``ln_ic50``, ``auc``...);
    - expression (``*expression*``): cells x genes, first column the cell names; genes as HGNC
      symbols, Entrez or Ensembl ids (mapped to the landmark genes through their aliases);
    - SMILES (``*smiles*``, needed only without a ``smiles`` column): ``drug, smiles``.

    Expression is robust-z-scored per gene (as GDSC), the prior is found as for every dataset
    (``prior="auto"``: a STRING file in ``raw/``; a path; ``None``), and ``get_idx_split`` /
    ``loader`` / the CLI (``--dataset custom --root DIR``) work as for GDSC.

    Bad input is refused with a clear error or counted, never used silently: no expression column
    that is a gene of the space (error, naming a few columns), a cell named twice in the expression
    (error unless ``duplicate_samples="mean"``), a (cell, drug) measured twice (error unless
    ``duplicates="mean"`` or ``"first"``), malformed SMILES and cells/drugs without expression/SMILES
    (dropped and counted in ``report["dropped"]``), non-finite values (dropped and counted).

    Args:
        y_name, y_unit, y_direction: what the value is (``"higher_is_resistant"`` or
            ``"higher_is_sensitive"``); checkpoints and ``csg2a predict`` repeat it.
        dose, time: the condition of every measurement (µM, h) when the table has no ``dose`` /
            ``time`` column.
    """

    name = "custom"

    def __init__(self, root: str, responses_file: Optional[str] = None, expression_file: Optional[str] = None,
                 smiles_file: Optional[str] = None, *, y_name: str = "response", y_unit: Optional[str] = None,
                 y_direction: Optional[str] = None, dose: float = 10.0, time: float = 72.0,
                 gene_space: Optional[GeneSpace] = None, missing_genes: str = "drop", fill_value: float = 0.0,
                 normalize: Optional[str] = "robust_z", prior: Union[None, str, object] = "auto",
                 min_score: int = 900, self_loops: bool = True, duplicates: str = "error",
                 duplicate_samples: str = "error", clip: Optional[float] = None,
                 transform: Optional[Callable] = None, pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None, force_reload: bool = False, log: bool = True):
        if y_direction not in (None, "higher_is_resistant", "higher_is_sensitive"):
            raise ValueError(f"y_direction must be 'higher_is_resistant', 'higher_is_sensitive' or None, "
                             f"got {y_direction!r}")
        if duplicates not in ("error", "mean", "first"):
            raise ValueError(f"duplicates must be 'error', 'mean' or 'first', got {duplicates!r}")
        if duplicate_samples not in ("error", "mean", "first"):
            raise ValueError(f"duplicate_samples must be 'error', 'mean' or 'first', got {duplicate_samples!r}")
        if normalize not in (None, "robust_z"):
            raise ValueError(f"normalize must be 'robust_z' or None, got {normalize!r}")
        self.y_name, self.y_unit, self.y_direction = y_name, y_unit, y_direction
        self.dose, self.time = float(dose), float(time)
        self.requested_space = gene_space if gene_space is not None else GeneSpace.landmark()
        self.missing_genes, self.fill_value, self.normalize = missing_genes, fill_value, normalize
        self.prior_arg, self.min_score, self.self_loops = prior, min_score, self_loops
        self.duplicates, self.duplicate_samples, self.clip = duplicates, duplicate_samples, clip
        self.files = {"responses": responses_file, "expression": expression_file, "smiles": smiles_file}
        self._root = root
        super().__init__(root, transform, pre_transform, pre_filter, force_reload=force_reload, log=log)

    def _resolve_data(self) -> Dict[str, Optional[str]]:
        raw = self.raw_dir
        hint = "Place your tables in ROOT/raw (see ResponseTable's docstring) or pass the *_file= arguments."
        out = {"responses": self.files["responses"] or find_one(raw, ["*response*"], "responses", True, hint=hint),
               "expression": self.files["expression"] or find_one(raw, ["*expression*"], "expression", True,
                                                                    hint=hint),
               "smiles": self.files["smiles"] or find_one(raw, ["*smiles*"], "smiles", False)}
        for k in ("responses", "expression", "smiles"):
            path = out[k]
            if path and not osp.exists(path):
                raise FileNotFoundError(f"{k} file {path} not found")
        return out

    @property
    def options(self) -> Dict:
        return {"genes": genes_tag(self.requested_space.genes), "missing_genes": self.missing_genes,
                "fill_value": self.fill_value, "normalize": self.normalize, "duplicates": self.duplicates,
                "duplicate_samples": self.duplicate_samples, "clip": self.clip, "dose": self.dose,
                "time": self.time, "y": [self.y_name, self.y_unit, self.y_direction], **self.common_options()}

    def build(self) -> Dict:
        paths = self._resolve()
        report: Dict = {"name": self.name, "files": {k: v for k, v in paths.items() if v}}
        rpath = paths["responses"]
        resp = read_delimited(rpath, "a responses table (cell, drug and/or smiles, value)", dtype=str)
        cell_c = _column(resp, CELL_COLUMNS, "cell", rpath)
        drug_c = _column(resp, DRUG_COLUMNS, "drug", rpath, required=False)
        smi_c = _column(resp, SMILES_COLUMNS, "SMILES", rpath, required=False)
        val_c = _column(resp, VALUE_COLUMNS, "value", rpath)
        if drug_c is None and smi_c is None:
            raise ValueError(f"{rpath}: needs a drug column ({list(DRUG_COLUMNS)}) or a smiles column")
        key = resp[drug_c] if drug_c is not None else resp[smi_c]
        table = pd.DataFrame({"cell": resp[cell_c].astype(str).str.strip(), "drug": key.astype(str).str.strip(),
                              "y": pd.to_numeric(resp[val_c], errors="coerce")})
        bad_values = int(resp[val_c].notna().sum() - table["y"].notna().sum())
        if bad_values:
            logger.warning("%s: %d values of column %r are not numbers: dropped", rpath, bad_values, val_c)
        report["values_not_numbers"] = bad_values
        # SMILES: from the responses' own column, else from the SMILES table
        smiles: Dict[str, str] = {}
        if smi_c is not None:
            for k, s in zip(table["drug"], resp[smi_c]):
                if isinstance(s, str) and s.strip():
                    smiles.setdefault(k, s.strip())
        if paths.get("smiles"):
            st = read_delimited(paths["smiles"], "a drug, smiles table", dtype=str)
            dc = _column(st, DRUG_COLUMNS, "drug", paths["smiles"])
            sc = _column(st, SMILES_COLUMNS, "SMILES", paths["smiles"])
            for k, s in zip(st[dc].astype(str).str.strip(), st[sc]):
                if isinstance(s, str) and s.strip():
                    smiles.setdefault(k, s.strip())
        if not smiles:
            raise ValueError(f"no SMILES for any drug: give a smiles column in {rpath} or a SMILES table in raw/")
        if self.duplicates == "error":
            ok = table.dropna(subset=["y"])
            dup = ok[ok.duplicated(["cell", "drug"], keep=False)]
            if len(dup):
                first = dup.iloc[0]
                raise ValueError(f"{rpath}: {dup[['cell', 'drug']].drop_duplicates().shape[0]} (cell, drug) pairs are "
                                 f"measured more than once (e.g. {first.cell} / {first.drug}); pass "
                                 "duplicates='mean' or 'first' to merge them")
        values, ecells, egenes = read_expression(paths["expression"])
        known = [g for g in egenes if self.requested_space.resolve(str(g)) is not None]
        if not known:
            raise ValueError(f"{paths['expression']}: none of its {len(egenes)} columns (e.g. {egenes[:3]}) is a "
                             "gene of the gene space (landmark symbols, Entrez or Ensembl ids)")
        report["expression_columns_not_genes"] = len(egenes) - len(known)
        if self.duplicate_samples == "error":
            from csg2a_graph.data.names import normalize_cell_name

            keys = pd.Series([normalize_cell_name(c) for c in ecells])
            if keys.duplicated().any():
                d = [c for c, k in zip(ecells, keys.duplicated(keep=False)) if k]
                raise ValueError(f"{paths['expression']}: {len(d)} rows name a cell that another row names too "
                                 f"(e.g. {d[:4]}); pass duplicate_samples='mean' or 'first'")
        aligned = align_expression((values, ecells, egenes), self.requested_space, self.missing_genes,
                                   self.fill_value, self.normalize, report,
                                   duplicate_samples="mean" if self.duplicate_samples == "error"
                                   else self.duplicate_samples, clip=self.clip)
        parts = build_pairs(table, smiles, aligned, dose=self.dose, time=self.time, report=report,
                            duplicates="mean" if self.duplicates == "error" else self.duplicates, cell_prefixes=(),
                            what_cells="cell lines")
        if not len(parts["y"]):
            raise ValueError(f"no (cell, drug) pair of {rpath} has both expression and a valid SMILES: "
                             f"{report.get('dropped')}")
        prior = self.build_prior(aligned.gene_space, paths, report)
        return self.make_payload(**parts, prior=prior, report=report)


__all__ = ["ResponseTable"]
