"""UCSC Xena expression matrices (genes x TCGA sample barcodes) and barcode handling."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np
import pandas as pd

_BARCODE = re.compile(r"^TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}")
# sample-type codes of TCGA barcodes, in order of preference for a patient's tumour profile
PRIMARY_FIRST = ("01", "03", "09", "02", "05", "06", "07")


def is_barcode(s) -> bool:
    return bool(_BARCODE.match(str(s)))


def patient_of(barcode: str) -> str:
    """``TCGA-OR-A5JM-01A-11R-A29S-07`` -> ``TCGA-OR-A5JM``."""
    return str(barcode)[:12]


def sample_type(barcode: str) -> str:
    """``"01"`` (primary tumour), ``"06"`` (metastatic), ``"11"`` (solid normal) ...; ``""`` for patient-level ids."""
    b = str(barcode)
    return b[13:15] if len(b) >= 15 else ""


@dataclass
class BarcodeReport:
    samples_read: int = 0
    patients: int = 0
    chosen_sample_types: Dict[str, int] = field(default_factory=dict)
    other_samples_dropped: int = 0
    normal_only_patients: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def read_xena(path: str) -> Tuple[np.ndarray, List[str], List[str], BarcodeReport]:
    """Read a Xena matrix and reduce it to one tumour profile per patient.

    Accepts the Xena layout (first column gene ids, one column per sample
    barcode) and its transpose (one row per sample). Full sample barcodes are
    trimmed to patients (``TCGA-XX-XXXX``); when a patient has several samples
    the primary tumour (``01``) is preferred, then other tumour types in
    ``PRIMARY_FIRST``; normal tissue (``10``-``14``) is never used. The
    choice is counted in the returned report.

    Returns:
        ``(values [patients, genes] float32, patients, genes, report)``.
    """
    from csg2a_graph.io.tables import numeric_matrix, read_delimited

    df = read_delimited(path, "a Xena expression matrix (genes x TCGA sample barcodes, or its transpose)", index_col=0)
    cols_are_samples = sum(is_barcode(c) for c in df.columns) > len(df.columns) / 2
    rows_are_samples = sum(is_barcode(i) for i in df.index) > len(df.index) / 2
    if cols_are_samples:
        df = df.T
    elif not rows_are_samples:
        raise ValueError(f"{path}: neither the columns nor the rows look like TCGA barcodes (TCGA-XX-XXXX)")
    df = pd.DataFrame(numeric_matrix(df, path), index=df.index, columns=df.columns)
    rep = BarcodeReport(samples_read=len(df))
    chosen: Dict[str, Tuple[int, str]] = {}
    normal_only = set()
    for b in df.index:
        p, t = patient_of(b), sample_type(b)
        if t and t.isdigit() and 10 <= int(t) <= 14:
            normal_only.add(p)
            continue
        rank = PRIMARY_FIRST.index(t) if t in PRIMARY_FIRST else (len(PRIMARY_FIRST) if t else -1)
        if p not in chosen or rank < chosen[p][0]:
            chosen[p] = (rank, b)
    rep.normal_only_patients = sorted(normal_only - set(chosen))
    keep = [chosen[p][1] for p in sorted(chosen)]
    for _, b in chosen.values():
        t = sample_type(b) or "patient-level"
        rep.chosen_sample_types[t] = rep.chosen_sample_types.get(t, 0) + 1
    rep.patients = len(keep)
    rep.other_samples_dropped = rep.samples_read - len(keep)
    out = df.loc[keep]
    return out.to_numpy(np.float32), [patient_of(b) for b in keep], [str(g) for g in df.columns], rep


__all__ = ["read_xena", "patient_of", "sample_type", "is_barcode", "BarcodeReport", "PRIMARY_FIRST"]
