"""NCI-60 GI50 drug response (DTP / CellMiner) as a PyG dataset."""

from __future__ import annotations

import logging
import os.path as osp
from typing import Callable, Dict, Optional

import pandas as pd

from csg2a_graph.data.build import align_expression, build_pairs
from csg2a_graph.data.gene_space import GeneSpace
from csg2a_graph.data.names import normalize_cell_name
from csg2a_graph.datasets._base import RawPairDataset
from csg2a_graph.datasets._files import find_one, numeric_matrix, read_delimited
from csg2a_graph.datasets.gdsc import replicate_options

logger = logging.getLogger(__name__)

URLS = {
    "gi50": "https://wiki.nci.nih.gov/download/attachments/147193864/GI50.zip",
    "cellminer": "https://discover.nci.nih.gov/cellminer/loadDownload.do",
}
NCI60_TIME_H = 48.0  # the NCI-60 sulforhodamine B assay: 48 h exposure
NCI60_DOSE_UM = 10.0  # a fixed condition, as for GDSC (GI50 itself is the response)


def nci60_cell_key(name: str) -> str:
    """``"LC:NCI-H23"``, ``"LC:NCI_H23"`` and ``"NCI-H23"`` -> ``"NCIH23"`` (panel prefix and punctuation dropped)."""
    name = str(name)
    head, sep, tail = name.partition(":")
    if sep and 2 <= len(head) <= 3 and head.isalpha() and head.isupper():  # panel: BR, CNS, CO, LC, LE, ...
        name = tail
    return normalize_cell_name(name)


def read_gi50(path: str) -> pd.DataFrame:
    """DTP GI50 table: ``NSC, CELL, NLOGGI50`` (+ ``PANEL``, ``DRUGNAME``), one row per measurement."""
    df = read_delimited(path)
    df.columns = [str(c).strip().upper() for c in df.columns]
    missing = [c for c in ("NSC", "CELL", "NLOGGI50") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: GI50 table lacks columns {missing}; found {list(df.columns)[:10]}")
    return df


def read_nsc_smiles(path: str):
    """NSC -> SMILES (and name) from CellMiner ``public_drug_info`` / ``drug_1075`` tables."""
    df = read_delimited(path)
    cols = {c.lower(): c for c in df.columns}
    if "nsc" not in cols or "smiles" not in cols:
        raise ValueError(f"{path}: need NSC and SMILES columns, found {list(df.columns)[:10]}")
    nsc = pd.to_numeric(df[cols["nsc"]], errors="coerce")
    ok = nsc.notna()
    smiles = {str(int(n)): (s if isinstance(s, str) else "") for n, s in zip(nsc[ok], df.loc[ok, cols["smiles"]])}
    names = {}
    if "name" in cols:
        names = {str(int(n)): str(s) for n, s in zip(nsc[ok], df.loc[ok, cols["name"]]) if isinstance(s, str) and s}
    return smiles, names


def read_cellminer_expression(path: str):
    """CellMiner-style samples x genes matrix; a ``cellminer_name`` column, when present, names the rows."""
    df = read_delimited(path, "a CellMiner samples x genes expression table")
    label = "cellminer_name" if "cellminer_name" in df.columns else df.columns[0]
    samples = df[label].astype(str).tolist()
    genes = [c for c in df.columns if c not in (df.columns[0], "cellminer_name")]
    values = numeric_matrix(df[genes], path)
    return values, samples, genes


class NCI60(RawPairDataset):
    r"""NCI-60 GI50 responses over a gene space, with the STRING prior.

    ``y = NLOGGI50 = -log10(GI50 [M])`` as in the DTP tables: **higher = more
    sensitive**, the opposite of GDSC's ln IC50 (``y_direction``); each pair carries
    ``dose = 10`` µM and ``time = 48`` h.

    Raw files (``root/raw``, found by pattern or given explicitly):

    - ``*GI50*``: the DTP GI50 table (``NSC, CELL, NLOGGI50``; e.g. ``AOD_IOA_GI50.csv``);
    - ``*drug_info*`` / ``*drug_1075*``: NSC -> SMILES (CellMiner ``public_drug_info``);
    - ``*gcrma*`` / ``*expression*``: CellMiner expression, samples x genes (e.g. U133A GCRMA log2);
    - optional STRING edge list / ``protein.links``.

    Cell names are matched after dropping the CellMiner panel prefix
    (``"LC:"``) and punctuation: ``"LC:NCI-H23"``, ``"NCI-H23"`` and ``"NCI_H23"`` meet;
    every unmatched name is reported.

    ``max_replicate_spread``, ``duplicate_samples`` and ``clip`` work as in
    ``GDSC`` (spread in -log10 units); robust z of this
    expression reaches ``|z|`` in the hundreds (IL1B), reported in ``report["expression_z"]``.

    **STATS (the staged DTP / CellMiner files, landmark space):** 10,167 pairs,
    59 lines, 181 drugs, 978 genes (``datasets/nci60.md``).
    """

    name = "nci60"
    y_name = "-log10 GI50 [M]"
    y_unit = "-log10(M)"
    y_direction = "higher_is_sensitive"

    def __init__(
        self,
        root: str,
        gene_space: Optional[GeneSpace] = None,
        missing_genes: str = "drop",
        fill_value: float = 0.0,
        normalize: Optional[str] = "robust_z",
        prior="auto",
        min_score: int = 900,
        self_loops: bool = True,
        duplicates: str = "mean",
        max_replicate_spread: Optional[float] = None,
        duplicate_samples: str = "mean",
        clip: Optional[float] = None,
        dose_um: float = NCI60_DOSE_UM,
        time_h: float = NCI60_TIME_H,
        gi50_file: Optional[str] = None,
        smiles_file: Optional[str] = None,
        expression_file: Optional[str] = None,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
        log: bool = True,
    ):
        self.requested_space = gene_space if gene_space is not None else GeneSpace.landmark()
        self.missing_genes, self.fill_value, self.normalize = missing_genes, fill_value, normalize
        self.prior_arg, self.min_score, self.self_loops, self.duplicates = prior, min_score, self_loops, duplicates
        self.max_replicate_spread, self.duplicate_samples, self.clip = max_replicate_spread, duplicate_samples, clip
        self.dose_um, self.time_h = dose_um, time_h
        self.files = {"gi50": gi50_file, "smiles": smiles_file, "expression": expression_file}
        self._root = root
        super().__init__(root, transform, pre_transform, pre_filter, force_reload=force_reload, log=log)

    _PATTERNS = {
        "gi50": ["*GI50*"],
        "smiles": ["*drug_info*", "*drug_1075*", "*nsc*smiles*"],
        "expression": ["*gcrma*landmark*", "*expression*"],
    }

    def _resolve_data(self) -> Dict[str, Optional[str]]:
        hint = "Place the DTP/CellMiner files there (see the data card datasets/nci60.md in the repository or sdist) or pass the *_file= arguments."
        return {
            k: self.files[k] or find_one(self.raw_dir, self._PATTERNS[k], k, True, hint=hint)
            for k in ("gi50", "smiles", "expression")
        }

    @property
    def options(self) -> Dict:
        return {
            "genes": self.requested_space.genes,
            "missing_genes": self.missing_genes,
            "fill_value": self.fill_value,
            "normalize": self.normalize,
            "duplicates": self.duplicates,
            "max_replicate_spread": self.max_replicate_spread,
            "duplicate_samples": self.duplicate_samples,
            "clip": self.clip,
            "dose": self.dose_um,
            "time": self.time_h,
            **self.common_options(),
        }

    def build(self) -> Dict:
        paths = self._resolve()
        report: Dict = {"name": "NCI60", "files": {k: osp.basename(v) for k, v in paths.items() if v}}
        gi50 = read_gi50(paths["gi50"])
        smiles, names = read_nsc_smiles(paths["smiles"])
        if "DRUGNAME" in gi50.columns:
            names.update({str(int(n)): str(d) for n, d in zip(gi50["NSC"], gi50["DRUGNAME"]) if isinstance(d, str)})
        aligned = align_expression(
            read_cellminer_expression(paths["expression"]),
            self.requested_space,
            self.missing_genes,
            self.fill_value,
            self.normalize,
            report,
            duplicate_samples=self.duplicate_samples,
            sample_normalize=nci60_cell_key,
            clip=self.clip,
        )
        table = pd.DataFrame(
            {
                "cell": gi50["CELL"],
                "drug": pd.to_numeric(gi50["NSC"], errors="coerce").map(lambda v: str(int(v)) if pd.notna(v) else None),
                "y": gi50["NLOGGI50"],
            }
        )
        if "PANEL" in gi50.columns:
            table["tcga"] = gi50["PANEL"]  # NCI-60 panel (tissue) in the cell annotation slot
        parts = build_pairs(
            table,
            smiles,
            aligned,
            dose=self.dose_um,
            time=self.time_h,
            report=report,
            duplicates=self.duplicates,
            cell_prefixes=(),
            cell_suffixes=("/ATCC",),
            **replicate_options(self),
            cell_normalize=nci60_cell_key,
            drug_normalize=lambda s: str(s).strip(),
            drug_names=names,
            what_cells="NCI-60 lines",
        )
        prior = self.build_prior(aligned.gene_space, paths, report)
        return self.make_payload(**parts, prior=prior, report=report)


__all__ = ["NCI60", "read_gi50", "read_nsc_smiles", "read_cellminer_expression", "nci60_cell_key", "URLS"]
