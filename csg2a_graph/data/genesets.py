"""Gene sets (GMT) and drug targets: the resources of the pathway baselines and the enrichment analyses."""

from __future__ import annotations

import re
from typing import Dict, Iterable, List, Sequence

from csg2a_graph.data.names import normalize_drug_name


def read_gmt(path: str, min_size: int = 1) -> Dict[str, List[str]]:
    """``name -> genes`` from a GMT file (name, description, genes, tab-separated); duplicate genes in a set
    are kept once, sets smaller than ``min_size`` are left out. Raises naming the file on a malformed line.
    """
    out: Dict[str, List[str]] = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n\r").split("\t")
            if len(parts) < 3:
                raise ValueError(
                    f"{path}: line {i} has {len(parts)} tab-separated fields; a GMT line is "
                    "name, description, gene, gene, ..."
                )
            genes = list(dict.fromkeys(g.strip() for g in parts[2:] if g.strip()))
            if len(genes) >= min_size:
                out[parts[0]] = genes
    if not out:
        raise ValueError(f"{path}: no gene set (is it a GMT file?)")
    return out


# GDSC target names that are families or complexes -> HGNC genes (the spec's examples and the common rest)
TARGET_FAMILIES = {
    "PDGFR": ["PDGFRA", "PDGFRB"],
    "VEGFR": ["KDR", "FLT1", "FLT4"],
    "VEGFR1": ["FLT1"],
    "VEGFR2": ["KDR"],
    "VEGFR3": ["FLT4"],
    "ABL": ["ABL1"],
    "RAF": ["ARAF", "BRAF", "RAF1"],
    "CRAF": ["RAF1"],
    "MEK1": ["MAP2K1"],
    "MEK2": ["MAP2K2"],
    "ERK1": ["MAPK3"],
    "ERK2": ["MAPK1"],
    "ERK5": ["MAPK7"],
    "JNK1": ["MAPK8"],
    "JNK2": ["MAPK9"],
    "JNK3": ["MAPK10"],
    "P38": ["MAPK14"],
    "MTORC1": ["MTOR"],
    "MTORC2": ["MTOR"],
    "IR": ["INSR"],
    "HSP90": ["HSP90AA1", "HSP90AB1"],
    "PKC": ["PRKCA", "PRKCB", "PRKCG"],
    "PI3K (CLASS 1)": ["PIK3CA", "PIK3CB", "PIK3CD", "PIK3CG"],
    "PI3KALPHA": ["PIK3CA"],
    "PI3KBETA": ["PIK3CB"],
    "PI3KDELTA": ["PIK3CD"],
    "PI3KGAMMA": ["PIK3CG"],
    "PDK1 (PDPK1)": ["PDPK1"],
    "BCL-XL": ["BCL2L1"],
    "BCL-W": ["BCL2L2"],
    "IKK": ["IKBKB", "CHUK"],
    "IKK2": ["IKBKB"],
    "IKK1": ["CHUK"],
    "TIE2": ["TEK"],
    "FARNESYL-TRANSFERASE (FNTA)": ["FNTA"],
    "PROTEASOME": ["PSMB5"],
    "TOP1": ["TOP1"],
    "TOP2": ["TOP2A"],
    "DNMT1": ["DNMT1"],
    "CK2": ["CSNK2A1"],
    "AMPK": ["PRKAA1", "PRKAA2"],
    "RSK": ["RPS6KA1"],
    "HER2": ["ERBB2"],
    "GSK3": ["GSK3A", "GSK3B"],
    "AKT": ["AKT1", "AKT2", "AKT3"],
    "CDK4/6": ["CDK4", "CDK6"],
}


def parse_targets(text: str, known: Iterable[str]) -> List[str]:
    """GDSC ``Target`` text (``"PDGFR, KIT, VEGFR"``) -> HGNC genes: symbols in ``known`` as they are, families
    through ``TARGET_FAMILIES``; mechanisms without a gene ("Microtubule stabiliser") give nothing.
    """
    known = set(known)
    out: List[str] = []
    for t in re.split(r"[,;]", str(text)):
        t = t.strip()
        if not t:
            continue
        u = t.upper()
        genes = TARGET_FAMILIES.get(u) or ([u] if u in known else [])
        if not genes:
            m = re.search(r"\(([A-Z0-9]+)\)", u)  # "PDK1 (PDPK1)"
            genes = [m.group(1)] if m and m.group(1) in known else []
        out += [g for g in genes if g not in out]
    return out


def drug_targets(table, drug_names: Sequence[str], known: Iterable[str]) -> Dict[str, List[str]]:
    """Target genes per drug name, from a GDSC ``Screened_Compounds`` table (``Drug Name``, ``Synonyms``,
    ``Target``) or the GDSC drug list (``Name``, ``Synonyms``, ``Targets``), matching names and synonyms after ``normalize_drug_name()``; drugs not found get ``[]``.
    """
    import pandas as pd

    df = table if isinstance(table, pd.DataFrame) else pd.read_csv(table, encoding="utf-8-sig")
    cols = {c.strip().lower(): c for c in df.columns}
    name = cols.get("drug name") or cols.get("drug_name") or cols.get("name")
    target = cols.get("target") or cols.get("targets")
    if name is None or target is None:
        raise ValueError(f"{table}: needs 'Drug Name' and 'Target' columns; found {list(df.columns)[:8]}")
    syn = cols.get("synonyms")
    index: Dict[str, List[str]] = {}
    known = set(known)
    for _, r in df.iterrows():
        genes = parse_targets(r[target], known)
        keys = [r[name]] + (str(r[syn]).split(",") if syn and isinstance(r[syn], str) else [])
        for k in keys:
            k = normalize_drug_name(k)
            if k and (k not in index or (genes and not index[k])):  # a row with targets wins
                index[k] = genes
    return {d: list(index.get(normalize_drug_name(d), [])) for d in drug_names}


__all__ = ["read_gmt", "parse_targets", "drug_targets", "TARGET_FAMILIES"]
