"""TCGA patient drug response (Ding et al. 2016) over a gene space, batch-corrected against GDSC lines."""

from __future__ import annotations

import logging
import os.path as osp
import warnings
from typing import Callable, Dict, Optional

import numpy as np
import pandas as pd
import torch

from csg2a_graph.data.build import align_expression, build_pairs
from csg2a_graph.data.gene_space import GeneSpace
from csg2a_graph.data.names import match_names, normalize_cell_name, normalize_drug_name
from csg2a_graph.data.normalize import robust_stats, robust_zscore
from csg2a_graph.datasets._base import RawPairDataset
from csg2a_graph.datasets._files import find_one, read_delimited
from csg2a_graph.datasets.gdsc import GDSC_DOSE_UM, GDSC_TIME_H, read_cell_info, read_expression, read_smiles
from csg2a_graph.io.xena import read_xena

logger = logging.getLogger(__name__)

URLS = {
    "ding2016": "https://doi.org/10.1093/bioinformatics/btw344 (supplementary table: drug responses)",
    "xena": "https://xenabrowser.net/datapages/?dataset=TCGA.{cohort}.sampleMap/HiSeqV2&host=https://tcga.xenahubs.net",
}
RESPONDER = {
    "complete response": 1,
    "partial response": 1,
    "stable disease": 0,
    "clinical progressive disease": 0,
    "progressive disease": 0,
}
# Ding et al. name -> GDSC name where the two differ beyond case and punctuation
DRUG_SYNONYMS = {
    "fluorouracil": "5-Fluorouracil",
    "5fu": "5-Fluorouracil",
    "gemzar": "Gemcitabine",
    "taxol": "Paclitaxel",
    "taxotere": "Docetaxel",
    "adriamycin": "Doxorubicin",
    "ifosfamid": "Ifosfamide",
    "themozolomide": "Temozolomide",
}  # Ding's spelling
# TCGA cohort -> the label GDSC's Cell_Lines_Details gives its lines (the paper merges colon and rectum: COREAD)
GDSC_TCGA_LABEL = {"COAD": "COAD/READ", "READ": "COAD/READ"}


def read_name_smiles(path: str) -> Dict[str, str]:
    """Drug name -> SMILES from a LINCS ``pert_info`` table (``pert_iname, canonical_smiles``) or the
    Drug Repurposing Hub samples table (``!`` comment lines, ``pert_iname, smiles``); first SMILES wins.
    """
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        skip = 0
        for line in f:
            if not line.startswith("!"):
                break
            skip += 1
    t = read_delimited(path, dtype=str, skiprows=skip)
    name = next((c for c in ("pert_iname", "name", "drug_name") if c in t.columns), None)
    smi = next((c for c in ("canonical_smiles", "smiles", "SMILES") if c in t.columns), None)
    if name is None or smi is None:
        raise ValueError(
            f"{path}: need a name column (pert_iname, name or drug_name) and a SMILES column "
            f"(canonical_smiles or smiles); found {list(t.columns)[:10]}"
        )
    out: Dict[str, str] = {}
    for n, s in zip(t[name], t[smi]):
        if isinstance(n, str) and isinstance(s, str) and s.strip() and s.strip() != "-666":
            out.setdefault(n.strip(), s.strip())
    return out


def read_ding(path: str) -> pd.DataFrame:
    """Ding et al. 2016 table -> ``patient, cancer, drug, response, y`` (responder = CR/PR = 1, SD/PD = 0)."""
    df = read_delimited(path)
    cols = {c.strip().lower(): c for c in df.columns}
    pick = {
        "cancer": ("cancers", "cancer", "cohort"),
        "patient": ("patient.arr", "patient_id", "patient", "bcr_patient_barcode"),
        "drug": ("drug.name", "drug_name", "drug"),
        "response": ("response",),
    }
    out = {}
    for k, options in pick.items():
        c = next((cols[o] for o in options if o in cols), None)
        if c is None:
            raise ValueError(f"{path}: no {k} column (tried {options}); found {list(df.columns)[:10]}")
        out[k] = df[c]
    out = pd.DataFrame(out)
    out["drug"] = out["drug"].astype(str).str.strip()
    out["patient"] = out["patient"].astype(str).str.strip().str[:12]
    out["y"] = out["response"].astype(str).str.strip().str.lower().map(RESPONDER)
    return out


class TCGA(RawPairDataset):
    r"""TCGA patients' responses to drugs (Ding et al. 2016) with tumour expression.

    ``y = 1`` for responders (complete / partial response), ``0`` for
    non-responders (stable / clinical progressive disease). Drug names are
    mapped to GDSC names (case and punctuation ignored, plus
    ``DRUG_SYNONYMS``), SMILES come from the GDSC table first and an
    optional extra name -> SMILES table (e.g. LINCS ``pert_info``) second.

    Expression (UCSC Xena layout, genes x sample barcodes, log2) is reduced to
    one primary-tumour profile per patient and aligned to the gene space. With
    ``combat=True`` (paper A.5: batch-correct per cancer type at log2 level, *then*
    robust z "to be used as input at the same level"):

    1. ComBat (``inmoose``'s ``pycombat_norm``) per cancer type, patients against the
       GDSC lines with that TCGA label as the *reference batch* (lines unchanged,
       patients moved onto them); TCGA COAD and READ meet GDSC's ``COAD/READ`` lines.
       Types with fewer than ``min_batch`` patients or lines are pooled and corrected
       together against all lines (counted in ``report["combat"]``).
    2. Robust z per gene with the **reference lines'** median and MAD, i.e. the
       transform the GDSC dataset applies to its lines, so patients reach the
       models' input space. (A z over the patients themselves would remove ComBat's
       per-gene shift and scale again: that was the behaviour before, and ComBat on or
       off changed the inputs by 2.6e-7.) Genes the reference lacks get a z over all
       patients.

    With ``combat=False``: robust z per gene over all patients (true median).

    ``y`` is 1 for a responder: **higher = more sensitive** (``y_direction``).

    Raw files (``root/raw``): ``*drug_response*`` (Ding table),
    ``*tcga*expression*`` / ``*xena*`` (tumour matrix), ``*smiles*`` (GDSC
    ``DRUG_NAME, SMILES``), optional ``*pertinfo*`` / ``*pert_info*`` and
    ``*repurposing_samples*`` (Drug Repurposing Hub; extra SMILES by name, e.g. carboplatin), for ComBat ``gdsc*expression*`` (cell lines x genes) and
    ``*Cell_Lines_Details*`` (TCGA label per line), optional STRING prior.

    **STATS (the staged Ding table and 717-patient landmark matrix, with the Repurposing Hub
    table for SMILES):** 1,222 pairs, 522 patients, 50 drugs, 978 genes (``datasets/tcga.md``).
    """

    name = "tcga"
    y_name = "responder (CR/PR = 1, SD/PD = 0)"
    y_direction = "higher_is_sensitive"

    def __init__(
        self,
        root: str,
        gene_space: Optional[GeneSpace] = None,
        missing_genes: str = "drop",
        fill_value: float = 0.0,
        combat: bool = True,
        min_batch: int = 3,
        prior="auto",
        min_score: int = 900,
        self_loops: bool = True,
        duplicates: str = "mean",
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
        log: bool = True,
    ):
        self.requested_space = gene_space if gene_space is not None else GeneSpace.landmark()
        self.missing_genes, self.fill_value, self.combat, self.min_batch = missing_genes, fill_value, combat, min_batch
        self.prior_arg, self.min_score, self.self_loops, self.duplicates = prior, min_score, self_loops, duplicates
        self._root = root
        super().__init__(root, transform, pre_transform, pre_filter, force_reload=force_reload, log=log)

    def _resolve_data(self) -> Dict[str, Optional[str]]:
        raw, hint = (
            self.raw_dir,
            "See the data card datasets/tcga.md (repository or sdist) for the files and where they come from.",
        )
        out = {
            "response": find_one(raw, ["*drug_response*"], "response", True, hint=hint),
            "expression": find_one(raw, ["*tcga*expression*", "*xena*", "*HiSeqV2*"], "expression", True, hint=hint),
            "smiles": find_one(raw, ["*smiles*"], "smiles", True, hint=hint),
            "extra_smiles": find_one(raw, ["*pertinfo*", "*pert_info*"], "extra_smiles", False),
            "repurposing": find_one(raw, ["*repurposing_samples*"], "repurposing", False),
        }
        if self.combat:
            out["reference"] = find_one(
                raw,
                ["gdsc*expression*", "*cell_line*expression*"],
                "reference",
                True,
                hint="ComBat needs GDSC cell-line expression (combat=False to skip).",
            )
            out["cell_info"] = find_one(
                raw,
                ["*Cell_Lines_Details*"],
                "cell_info",
                True,
                hint="ComBat needs the GDSC cell annotation with TCGA labels.",
            )
        return out

    @property
    def options(self) -> Dict:
        return {
            "genes": self.requested_space.genes,
            "missing_genes": self.missing_genes,
            "fill_value": self.fill_value,
            "combat": self.combat,
            "min_batch": self.min_batch,
            "duplicates": self.duplicates,
            **self.common_options(),
        }

    # -------------------------------------------------------------- drugs
    def _drug_smiles(self, drugs, paths, report):
        gdsc = read_smiles(paths["smiles"])
        gnorm = {normalize_drug_name(k): k for k in gdsc}
        extra: Dict[str, str] = {}
        extra_from: Dict[str, str] = {}
        for kind in ("extra_smiles", "repurposing"):  # LINCS pert_info first, then the Repurposing Hub
            if not paths.get(kind):
                continue
            t = read_name_smiles(paths[kind])
            for n, smi in t.items():
                if normalize_drug_name(n) not in extra:
                    extra[normalize_drug_name(n)] = smi
                    extra_from[normalize_drug_name(n)] = kind
        smiles, mapping, source = {}, {}, {}
        for d in drugs:
            name = DRUG_SYNONYMS.get(normalize_drug_name(d), d)
            key = normalize_drug_name(name)
            gname = gnorm.get(key)
            if gname is not None:
                smiles[d], mapping[d], source[d] = gdsc[gname], gname, "gdsc"
            elif key in extra:
                smiles[d], mapping[d], source[d] = extra[key], name, extra_from[key]
        report["drug_mapping"] = {d: {"gdsc_name": mapping[d], "smiles_from": source[d]} for d in sorted(mapping)}
        report["drugs_without_smiles"] = sorted(set(drugs) - set(smiles))
        return smiles

    # -------------------------------------------------------------- ComBat
    def _reference(self, aligned, paths, report):
        """GDSC reference lines on the patients' genes (NaN where unmeasured) and their TCGA labels."""
        values, lines, genes = read_expression(paths["reference"])
        info = read_cell_info(paths["cell_info"])
        cmap, crep = match_names(
            lines, info["name"], normalize_cell_name, "GDSC lines (expression -> annotation)", prefixes=("NCI",)
        )
        report["combat_reference_join"] = crep.to_dict()
        label = info.drop_duplicates("name").set_index("name")["tcga"]
        line_type = [str(label.get(cmap[l], "")) if l in cmap else "" for l in lines]
        ref = self.requested_space.align((values, lines, genes), missing="fill", fill_value=np.nan)
        cols = torch.tensor([self.requested_space.index[g] for g in aligned.gene_space.genes])
        return ref.values[:, cols].numpy().astype(np.float64), line_type

    def _combat(
        self, X: np.ndarray, patients, cancer_of: Dict[str, str], ref_x: np.ndarray, line_type, report
    ) -> np.ndarray:
        """ComBat per cancer type at log2 level with the GDSC lines as the reference batch (their
        values are left as they are; the patients are moved onto them). Colorectal COAD and READ
        patients meet GDSC's ``COAD/READ`` lines. Types with fewer than ``min_batch`` patients or
        lines are pooled and corrected together against all lines; fewer than 2 pooled patients
        stay uncorrected. Everything is counted in ``report["combat"]``.
        """
        try:
            from inmoose.pycombat import pycombat_norm
        except ImportError as e:
            raise ImportError(
                "TCGA batch correction needs inmoose: pip install 'csg2a-graph[tcga]' "
                "(or TCGA(..., combat=False); CLI: --no-combat)"
            ) from e
        X = X.copy()
        group_of = {i: GDSC_TCGA_LABEL.get(cancer_of.get(p, ""), cancer_of.get(p, "")) for i, p in enumerate(patients)}
        groups: Dict[str, list] = {}
        for i, g in group_of.items():
            groups.setdefault(g, []).append(i)

        uncorrectable = {"genes_set_missing": 0}

        def correct(pi, li):
            P, L = X[pi], ref_x[li]
            nan_p = np.isnan(P)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                P = np.where(nan_p, np.nanmedian(P, axis=0, keepdims=True), P)  # a missing value: the batch median
                ok = np.isfinite(P).all(0) & np.isfinite(L).all(0) & (np.nanstd(P, 0) > 0) & (np.nanstd(L, 0) > 0)
            both = np.concatenate([P[:, ok], L[:, ok]]).T  # genes x samples
            fixed = np.asarray(pycombat_norm(pd.DataFrame(both), [0] * len(pi) + [1] * len(li), ref_batch=1)).T
            fixed = np.where(nan_p[:, ok], np.nan, fixed[: len(pi)])  # missing stays missing
            X[np.ix_(pi, np.flatnonzero(ok))] = fixed
            # measured in the patients, but not correctable (constant, or the reference lacks it): on
            # another scale than the lines, so missing (-> fill value after z), never left uncorrected
            bad = ~ok & np.isfinite(ref_x).any(0) & ~nan_p.all(0)
            X[np.ix_(pi, np.flatnonzero(bad))] = np.nan
            uncorrectable["genes_set_missing"] += int(bad.sum()) * len(pi)
            return int(ok.sum())

        done, pooled = {}, {}
        for g in sorted(groups):
            if not g:  # patients without a response row: no pairs, not corrected
                continue
            pi = groups[g]
            li = [i for i, t in enumerate(line_type) if t == g]
            if len(pi) < self.min_batch or len(li) < self.min_batch:
                pooled[g] = {"patients": len(pi), "lines": len(li)}
                continue
            done[g] = {"patients": len(pi), "lines": len(li), "genes_corrected": correct(pi, li)}
        rest = [i for g in pooled for i in groups[g]]
        pooled_rep = {"types": pooled, "patients": len(rest), "lines": len(line_type), "genes_corrected": 0}
        if len(rest) >= 2:
            pooled_rep["genes_corrected"] = correct(rest, list(range(len(line_type))))
        report["combat"] = {
            "corrected": done,
            "pooled": pooled_rep,
            "min_batch": self.min_batch,
            "uncorrectable_values_set_missing": uncorrectable["genes_set_missing"],
            "not_corrected_patients": len(rest) if len(rest) < 2 else 0,
            "patients_without_response_not_corrected": len(groups.get("", [])),
            "reference_genes_measured": int(np.isfinite(ref_x).all(0).sum()),
        }
        return X

    # -------------------------------------------------------------- build
    def build(self) -> Dict:
        paths = self._resolve()
        report: Dict = {"name": "TCGA (Ding et al. 2016)", "files": {k: osp.basename(v) for k, v in paths.items() if v}}
        resp = read_ding(paths["response"])
        report["response_rows"] = int(len(resp))
        unlabelled = resp["y"].isna()
        report["response_values"] = resp["response"].value_counts().to_dict()
        values, patients, genes, brep = read_xena(paths["expression"])
        report["samples"] = brep.to_dict()
        aligned = align_expression(
            (values, patients, genes),
            self.requested_space,
            self.missing_genes,
            np.nan,
            None,
            report,
            sample_normalize=lambda s: str(s)[:12],
        )
        cancer_of = dict(zip(resp["patient"], resp["cancer"].astype(str)))
        X = aligned.values.numpy().astype(np.float64)
        own_z = robust_zscore(torch.from_numpy(X), dim=0)[0]  # over all patients (pooled)
        if self.combat:
            ref_x, line_type = self._reference(aligned, paths, report)
            X = self._combat(X, aligned.samples, cancer_of, ref_x, line_type, report)
            # robust z with the *reference lines'* median and MAD: the transform GDSC applies to its
            # lines, so corrected patients land in the models' input space (a z over the patients
            # themselves would undo ComBat's per-gene shift and scale)
            med, mad = robust_stats(torch.from_numpy(ref_x), dim=0)
            z, degenerate = robust_zscore(torch.from_numpy(X), dim=0, stats=(med, mad))
            no_ref = degenerate & ~torch.isnan(torch.from_numpy(X)).all(0)
            z[:, no_ref] = own_z[:, no_ref]  # genes the reference lacks: z over the patients
            report["z_reference"] = {
                "statistics": "GDSC reference lines",
                "lines": len(line_type),
                "genes_without_reference_z_over_patients": int(no_ref.sum()),
            }
        else:
            z = own_z
            report["z_reference"] = {"statistics": "all patients (no batch correction)"}
        n_nan = int(torch.isnan(z).sum())
        report["expression_nan_set_to_fill"] = n_nan
        aligned.values = torch.nan_to_num(z, nan=self.fill_value)

        smiles = self._drug_smiles(sorted(resp["drug"].unique()), paths, report)
        # a patient given one drug twice (two treatment lines): same label -> one pair; responder in one
        # course and not in the other -> no label can be given: dropped and counted, never averaged to 0.5
        lab = resp.dropna(subset=["y"]).groupby(["patient", "drug"])["y"].agg(["min", "max"])
        conflict = set(lab.index[lab["min"] != lab["max"]])
        is_conflict = pd.Series([(p, d) in conflict for p, d in zip(resp["patient"], resp["drug"])], index=resp.index)
        report["conflicting_repeat_responses"] = sorted(f"{p}/{d}" for p, d in conflict)
        resp_ok = resp[~is_conflict]
        table = pd.DataFrame(
            {"cell": resp_ok["patient"], "drug": resp_ok["drug"], "y": resp_ok["y"], "tcga": resp_ok["cancer"]}
        )
        parts = build_pairs(
            table,
            smiles,
            aligned,
            dose=GDSC_DOSE_UM,
            time=GDSC_TIME_H,
            report=report,
            duplicates=self.duplicates,
            cell_prefixes=(),
            cell_normalize=lambda s: str(s)[:12],
            drug_normalize=normalize_drug_name,
            what_cells="patients",
        )
        # each dropped row counted once: unlabelled responses (not CR/PR/SD/PD) are NaN labels, so they were
        # counted by build_pairs as nan_response_or_name; name them, and take them out of that count
        n_unlab = int((unlabelled & ~is_conflict).sum())
        report["dropped"]["nan_response_or_name"] -= n_unlab
        report["dropped"]["unlabelled_response"] = n_unlab
        report["dropped"]["conflicting_repeat_response_rows"] = int(is_conflict.sum())
        names = report.get("drug_mapping", {})
        parts["drug_meta"] = {
            "name": parts["drug_meta"]["name"],
            "gdsc_name": [names.get(d, {}).get("gdsc_name", d) for d in parts["molecules"].names],
        }
        prior = self.build_prior(aligned.gene_space, paths, report)
        return self.make_payload(**parts, prior=prior, report=report)

    def responders_per_drug(self) -> pd.DataFrame:
        """Patients with expression and a response, per drug: responders, non-responders."""
        p = self.pairs
        df = pd.DataFrame({"drug": [self.drugs[i] for i in p["drug"].tolist()], "y": p["y"].tolist()})
        out = df.groupby("drug")["y"].agg(responders="sum", patients="count")
        out["non_responders"] = out["patients"] - out["responders"]
        return out.astype(int).sort_values("patients", ascending=False)


__all__ = ["TCGA", "read_ding", "read_name_smiles", "GDSC_TCGA_LABEL", "RESPONDER", "DRUG_SYNONYMS", "URLS"]
