"""Your own screen as a pair dataset: responses, expression and SMILES from plain CSV/TSV files, on the
same gene space, prior, splits and loader as GDSC.
"""

from __future__ import annotations

import logging
import os
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
#: condition columns and the factor to µM / h
DOSE_COLUMNS = {
    "dose": 1.0,
    "dose_um": 1.0,
    "dose_µm": 1.0,
    "concentration": 1.0,
    "concentration_um": 1.0,
    "pert_dose": 1.0,
    "dose_nm": 1e-3,
    "dose_mm": 1e3,
}
TIME_COLUMNS = {"time": 1.0, "time_h": 1.0, "hours": 1.0, "pert_time": 1.0, "time_hours": 1.0, "time_min": 1 / 60}


def _column(df: pd.DataFrame, names, what: str, path: str, required: bool = True) -> Optional[str]:
    cols = {str(c).strip().lower(): c for c in df.columns}
    for n in names:
        if n in cols:
            return cols[n]
    if required:
        raise ValueError(
            f"{path}: no {what} column; name one of {list(names)} (case-insensitive). "
            f"Columns found: {list(df.columns)[:12]}"
        )
    return None


def _check_values(y: pd.Series, col: str, path: str) -> None:
    """Values no model can learn from are refused; values that look like another unit are pointed out."""
    import numpy as np

    v = y[np.isfinite(y.to_numpy(np.float64))]
    if len(v) > 1 and v.nunique() == 1:
        raise ValueError(
            f"{path}: all {len(v)} values of column {col!r} are {v.iloc[0]:g}: there is nothing to learn; "
            "check that this is the response column (--y-column)"
        )
    if len(v) and float(v.abs().max()) > 1e6:
        raise ValueError(
            f"{path}: values of column {col!r} reach {float(v.abs().max()):.3g}: no model trains on "
            "that scale; give the response on a log scale (e.g. ln IC50 in µM) or rescale it"
        )
    low = col.lower()
    if len(v) and ("ln" in low or "log" in low) and float(v.min()) > 0 and float(v.max()) > 50:
        logger.warning(
            "%s: values of column %r run %.3g..%.3g, all positive: they look like raw concentrations "
            "(IC50 in µM?) rather than their logarithm; take the log first, or rename the column",
            path,
            col,
            float(v.min()),
            float(v.max()),
        )


def _add_smiles(smiles: Dict[str, str], where: Dict[str, str], drug: str, smi: str, path: str) -> None:
    """Record ``drug -> smi``; the same drug given another molecule is refused, naming both SMILES (the same
    molecule spelled two ways is fine).
    """
    old = smiles.get(drug)
    if old is None:
        smiles[drug], where[drug] = smi, path
        return
    if old == smi:
        return
    from csg2a_graph.data.molecules import canonical_smiles

    try:
        same = canonical_smiles(old) == canonical_smiles(smi)
    except ValueError:  # an invalid one: not the same molecule
        same = False
    if not same:
        raise ValueError(
            f"drug {drug!r} has two different SMILES: {old!r} ({where[drug]}) and {smi!r} ({path}); "
            "keep one of them (or give the two compounds different names)"
        )


class ResponseTable(RawPairDataset):
    """Drug responses of your own screen, from three plain tables in ``root/raw`` (or given paths):

    - responses (``*response*``): one row per measurement, with a cell column (``cell``,
      ``cell_line``, ``cell_line_name``...), a drug column (``drug``, ``drug_name``...) and/or a
      ``smiles`` column, and a value column (``y``, ``response``, ``ln_ic50``, ``auc``...); optional
      ``dose`` (µM; also ``dose_um``, ``concentration``; ``dose_nm`` in nM) and ``time`` (h; also ``time_h``,
      ``hours``; ``time_min`` in minutes) columns give each row its own condition, so two doses of one
      (cell, drug) are two pairs;
    - expression (``*expression*``): cells x genes, first column the cell names; genes as HGNC
      symbols, Entrez or Ensembl ids (mapped to the landmark genes through their aliases);
    - SMILES (``*smiles*``, needed only without a ``smiles`` column): ``drug, smiles``.

    Expression is robust-z-scored per gene (as GDSC), the prior is found as for every dataset
    (``prior="auto"``: a STRING file in ``raw/``; a path; ``None``), and ``get_idx_split`` /
    ``loader`` / the CLI (``--dataset custom --root DIR``) work as for GDSC.

    Bad input is refused with a clear error or counted, never used silently: no expression column
    that is a gene of the space (error, naming a few columns), a cell named twice in the expression
    (error unless ``duplicate_samples="mean"``), a (cell, drug, dose, time) measured twice (error unless
    ``duplicates="mean"`` or ``"first"``), one drug given two different molecules (error naming both
    SMILES), malformed SMILES and cells/drugs without expression/SMILES
    (dropped and counted in ``report["dropped"]``), non-finite values (dropped and counted).

    Args:
        y_column: the value column, when the table has more than one of the known names (else refused).
        y_name, y_unit, y_direction: what the value is (``"higher_is_resistant"`` or
            ``"higher_is_sensitive"``); checkpoints and ``csg2a predict`` repeat it.
        dose, time: the condition of every measurement (µM, h) when the table has no ``dose`` /
            ``time`` column.
    """

    name = "custom"

    def __init__(
        self,
        root: str,
        responses_file: Optional[str] = None,
        expression_file: Optional[str] = None,
        smiles_file: Optional[str] = None,
        *,
        y_column: Optional[str] = None,
        y_name: str = "response",
        y_unit: Optional[str] = None,
        y_direction: Optional[str] = None,
        dose: float = 10.0,
        time: float = 72.0,
        gene_space: Optional[GeneSpace] = None,
        missing_genes: str = "drop",
        fill_value: float = 0.0,
        normalize: Optional[str] = "robust_z",
        prior: Union[None, str, object] = "auto",
        min_score: int = 900,
        self_loops: bool = True,
        duplicates: str = "error",
        duplicate_samples: str = "error",
        clip: Optional[float] = None,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
        log: bool = True,
    ):
        if y_direction not in (None, "higher_is_resistant", "higher_is_sensitive"):
            raise ValueError(
                f"y_direction must be 'higher_is_resistant', 'higher_is_sensitive' or None, got {y_direction!r}"
            )
        if duplicates not in ("error", "mean", "first"):
            raise ValueError(f"duplicates must be 'error', 'mean' or 'first', got {duplicates!r}")
        if duplicate_samples not in ("error", "mean", "first"):
            raise ValueError(f"duplicate_samples must be 'error', 'mean' or 'first', got {duplicate_samples!r}")
        if normalize not in (None, "robust_z"):
            raise ValueError(f"normalize must be 'robust_z' or None, got {normalize!r}")
        self.y_column, self.y_name, self.y_unit, self.y_direction = y_column, y_name, y_unit, y_direction
        self.dose, self.time = float(dose), float(time)
        self.requested_space = gene_space if gene_space is not None else GeneSpace.landmark()
        self.missing_genes, self.fill_value, self.normalize = missing_genes, fill_value, normalize
        self.prior_arg, self.min_score, self.self_loops = prior, min_score, self_loops
        self.duplicates, self.duplicate_samples, self.clip = duplicates, duplicate_samples, clip
        self.files = {"responses": responses_file, "expression": expression_file, "smiles": smiles_file}
        self._root = root
        super().__init__(root, transform, pre_transform, pre_filter, force_reload=force_reload, log=log)

    def _value_column(self, resp: pd.DataFrame, path: str) -> str:
        cols = {str(c).strip().lower(): c for c in resp.columns}
        if self.y_column is not None:
            if self.y_column.strip().lower() not in cols:
                raise ValueError(
                    f"{path}: no column {self.y_column!r} (y_column, --y-column); columns found: "
                    f"{list(resp.columns)[:12]}"
                )
            return cols[self.y_column.strip().lower()]
        present = [cols[n] for n in VALUE_COLUMNS if n in cols]
        if len(present) > 1:
            raise ValueError(
                f"{path}: {len(present)} value columns ({', '.join(map(str, present))}): say which is "
                f"the response with y_column= (--y-column {present[0]})"
            )
        return _column(resp, VALUE_COLUMNS, "value", path)  # type: ignore[return-value]

    def _resolve_data(self) -> Dict[str, Optional[str]]:
        raw = self.raw_dir
        hint = "Place your tables in ROOT/raw (see ResponseTable's docstring) or pass the *_file= arguments."
        dreval = osp.join(self._root, osp.basename(osp.normpath(self._root)) + ".csv")
        if osp.isfile(dreval) and not (
            osp.isdir(raw) and os.listdir(raw)
        ):  # the folder write_drevalpy / drevalpy writes: tables in ROOT
            raw = self._root
            out = {
                "responses": self.files["responses"] or dreval,
                "expression": self.files["expression"]
                or find_one(raw, ["gene_expression*"], "expression", True, hint=hint),
                "smiles": self.files["smiles"] or find_one(raw, ["drug_smiles*"], "smiles", False),
            }
            return out
        out = {
            "responses": self.files["responses"] or find_one(raw, ["*response*"], "responses", True, hint=hint),
            "expression": self.files["expression"] or find_one(raw, ["*expression*"], "expression", True, hint=hint),
            "smiles": self.files["smiles"] or find_one(raw, ["*smiles*"], "smiles", False),
        }
        for k in ("responses", "expression", "smiles"):
            path = out[k]
            if path and not osp.exists(path):
                raise FileNotFoundError(f"{k} file {path} not found")
        return out

    @property
    def options(self) -> Dict:
        return {
            "genes": genes_tag(self.requested_space.genes),
            "missing_genes": self.missing_genes,
            "fill_value": self.fill_value,
            "normalize": self.normalize,
            "duplicates": self.duplicates,
            "duplicate_samples": self.duplicate_samples,
            "clip": self.clip,
            "dose": self.dose,
            "time": self.time,
            "y": [self.y_name, self.y_unit, self.y_direction],
            **({"y_column": self.y_column} if self.y_column else {}),
            **self.common_options(),
        }

    def build(self) -> Dict:
        paths = self._resolve()
        report: Dict = {"name": self.name, "files": {k: v for k, v in paths.items() if v}}
        rpath = paths["responses"]
        resp = read_delimited(rpath, "a responses table (cell, drug and/or smiles, value)", dtype=str)
        cell_c = _column(resp, CELL_COLUMNS, "cell", rpath)
        st = read_delimited(paths["smiles"], "a drug, smiles table", dtype=str) if paths.get("smiles") else None
        # the drug column both tables have (drevalpy's pubchem_id beside drug_name), else the first known name
        both = [
            n
            for n in DRUG_COLUMNS
            if st is not None
            and n in {str(c).strip().lower() for c in resp.columns}
            and n in {str(c).strip().lower() for c in st.columns}
        ]
        drug_c = _column(resp, both or DRUG_COLUMNS, "drug", rpath, required=False)
        smi_c = _column(resp, SMILES_COLUMNS, "SMILES", rpath, required=False)
        val_c = self._value_column(resp, rpath)
        if drug_c is None and smi_c is None:
            raise ValueError(f"{rpath}: needs a drug column ({list(DRUG_COLUMNS)}) or a smiles column")
        key = resp[drug_c] if drug_c is not None else resp[smi_c]
        table = pd.DataFrame(
            {
                "cell": resp[cell_c].astype(str).str.strip(),
                "drug": key.astype(str).str.strip(),
                "y": pd.to_numeric(resp[val_c], errors="coerce"),
            }
        )
        for what, names in (("dose", DOSE_COLUMNS), ("time", TIME_COLUMNS)):
            col = _column(resp, list(names), what, rpath, required=False)
            if col is None:
                continue
            v = pd.to_numeric(resp[col], errors="coerce")
            bad = resp[col].notna() & resp[col].astype(str).str.strip().ne("") & v.isna()
            if bad.any():
                raise ValueError(
                    f"{rpath}: {int(bad.sum())} values of the {what} column {col!r} are not numbers "
                    f"(e.g. {resp.loc[bad, col].iloc[0]!r}); give {what} in "
                    f"{'µM' if what == 'dose' else 'hours'} as numbers"
                )
            table[what] = v * names[str(col).strip().lower()]
            report[f"{what}_column"] = str(col)
        bad_values = int(resp[val_c].notna().sum() - table["y"].notna().sum())
        if bad_values:
            logger.warning("%s: %d values of column %r are not numbers: dropped", rpath, bad_values, val_c)
        report["values_not_numbers"] = bad_values
        report["y_column"] = str(val_c)
        _check_values(table["y"], str(val_c), rpath)
        # SMILES: from the responses' own column, else from the SMILES table
        smiles: Dict[str, str] = {}
        where: Dict[str, str] = {}
        if smi_c is not None:
            for k, s in zip(table["drug"], resp[smi_c]):
                if isinstance(s, str) and s.strip():
                    _add_smiles(smiles, where, k, s.strip(), rpath)
        if st is not None:
            dc = _column(st, both or DRUG_COLUMNS, "drug", paths["smiles"])
            sc = _column(st, SMILES_COLUMNS, "SMILES", paths["smiles"])
            for k, s in zip(st[dc].astype(str).str.strip(), st[sc]):
                if isinstance(s, str) and s.strip():
                    _add_smiles(smiles, where, k, s.strip(), paths["smiles"])
        if not smiles:
            raise ValueError(f"no SMILES for any drug: give a smiles column in {rpath} or a SMILES table in raw/")
        if self.duplicates == "error":
            ok = table.dropna(subset=["y"])
            key = [c for c in ("cell", "drug", "dose", "time") if c in ok.columns]
            dup = ok[ok.duplicated(key, keep=False)]
            if len(dup):
                first = dup.iloc[0]
                cond = "".join(f" at {k} {first[k]:g}" for k in ("dose", "time") if k in key)
                raise ValueError(
                    f"{rpath}: {dup[key].drop_duplicates().shape[0]} ({', '.join(key)}) "
                    f"measurements are given more than once (e.g. {first.cell} / {first.drug}{cond}); "
                    "merge them with duplicates='mean' or 'first' (--duplicates mean|first), "
                    + ("" if "dose" in key else "or give a dose / time column if they are other conditions, ")
                    + "or remove the repeats from the table"
                )
        values, ecells, egenes = read_expression(paths["expression"])
        known = [g for g in egenes if self.requested_space.resolve(str(g)) is not None]
        if not known:
            raise ValueError(
                f"{paths['expression']}: none of its {len(egenes)} columns (e.g. {egenes[:3]}) is a "
                "gene of the gene space (landmark symbols, Entrez or Ensembl ids)"
            )
        report["expression_columns_not_genes"] = len(egenes) - len(known)
        if len(known) < max(10, len(self.requested_space) // 10):
            logger.warning(
                "%s: only %d of its columns are genes of the %d-gene space (e.g. %s): the model will see "
                "%d genes; check the gene ids (HGNC symbols, Entrez or Ensembl ids)",
                paths["expression"],
                len(known),
                len(self.requested_space),
                known[:3],
                len(known),
            )
        if self.duplicate_samples == "error":
            from csg2a_graph.data.names import normalize_cell_name

            keys = pd.Series([normalize_cell_name(c) for c in ecells])
            if keys.duplicated().any():
                d = [c for c, k in zip(ecells, keys.duplicated(keep=False)) if k]
                raise ValueError(
                    f"{paths['expression']}: {len(d)} rows name a cell that another row names too "
                    f"(e.g. {d[:4]}); pass duplicate_samples='mean' or 'first' (--duplicate-samples)"
                )
        aligned = align_expression(
            (values, ecells, egenes),
            self.requested_space,
            self.missing_genes,
            self.fill_value,
            self.normalize,
            report,
            duplicate_samples="mean" if self.duplicate_samples == "error" else self.duplicate_samples,
            clip=self.clip,
        )
        parts = build_pairs(
            table,
            smiles,
            aligned,
            dose=self.dose,
            time=self.time,
            report=report,
            duplicates="mean" if self.duplicates == "error" else self.duplicates,
            cell_prefixes=(),
            what_cells="cell lines",
        )
        if not len(parts["y"]):
            raise ValueError(
                f"no (cell, drug) pair of {rpath} has both expression and a valid SMILES: {report.get('dropped')}"
            )
        prior = self.build_prior(aligned.gene_space, paths, report)
        return self.make_payload(**parts, prior=prior, report=report)


__all__ = ["ResponseTable"]
