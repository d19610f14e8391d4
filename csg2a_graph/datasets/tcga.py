"""TCGA patient drug response (Ding et al. 2016) over a gene space, batch-corrected against GDSC lines."""
from __future__ import annotations

import logging
import os.path as osp
from typing import Callable, Dict, Optional

import numpy as np
import pandas as pd
import torch

from csg2a_graph.data.build import align_expression, build_pairs
from csg2a_graph.data.gene_space import GeneSpace
from csg2a_graph.data.names import match_names, normalize_cell_name, normalize_drug_name
from csg2a_graph.data.normalize import robust_zscore
from csg2a_graph.datasets._base import RawPairDataset
from csg2a_graph.datasets._files import find_one, read_delimited
from csg2a_graph.datasets.gdsc import GDSC_DOSE_UM, GDSC_TIME_H, read_cell_info, read_expression, read_smiles
from csg2a_graph.io.xena import read_xena

logger = logging.getLogger(__name__)

URLS = {
    "ding2016": "https://doi.org/10.1093/bioinformatics/btw344 (supplementary table: drug responses)",
    "xena": "https://xenabrowser.net/datapages/?dataset=TCGA.{cohort}.sampleMap/HiSeqV2&host=https://tcga.xenahubs.net",
}
RESPONDER = {"complete response": 1, "partial response": 1, "stable disease": 0, "clinical progressive disease": 0,
             "progressive disease": 0}
# Ding et al. name -> GDSC name where the two differ beyond case and punctuation
DRUG_SYNONYMS = {"fluorouracil": "5-Fluorouracil", "5fu": "5-Fluorouracil", "gemzar": "Gemcitabine",
                 "taxol": "Paclitaxel", "taxotere": "Docetaxel", "adriamycin": "Doxorubicin",
                 "ifosfamid": "Ifosfamide"}


def read_ding(path: str) -> pd.DataFrame:
    """Ding et al. 2016 table -> ``patient, cancer, drug, response, y`` (responder = CR/PR = 1, SD/PD = 0)."""
    df = read_delimited(path)
    cols = {c.strip().lower(): c for c in df.columns}
    pick = {"cancer": ("cancers", "cancer", "cohort"), "patient": ("patient.arr", "patient_id", "patient", "bcr_patient_barcode"),
            "drug": ("drug.name", "drug_name", "drug"), "response": ("response",)}
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
    :data:`DRUG_SYNONYMS`), SMILES come from the GDSC table first and an
    optional extra name -> SMILES table (e.g. LINCS ``pert_info``) second.

    Expression (UCSC Xena layout, genes x sample barcodes, log2) is reduced to
    one primary-tumour profile per patient, aligned to the gene space, and
    (``combat=True``) batch-corrected **per cancer type** against the GDSC cell
    lines with that TCGA label using ComBat (``inmoose``'s ``pycombat_norm``),
    then robust-z-scored per gene within each cancer type (paper A.5). Cancer
    types without at least ``min_batch`` patients and lines are left
    uncorrected and reported.

    Raw files (``root/raw``): ``*drug_response*`` (Ding table),
    ``*tcga*expression*`` / ``*xena*`` (tumour matrix), ``*smiles*`` (GDSC
    ``DRUG_NAME, SMILES``), optional ``*pertinfo*`` / ``*pert_info*`` (extra
    SMILES by name), for ComBat ``gdsc*expression*`` (cell lines x genes) and
    ``*Cell_Lines_Details*`` (TCGA label per line), optional STRING prior.

    **STATS (the staged Ding table and 717-patient landmark matrix):** 1,081 pairs,
    508 patients, 43 drugs, 978 genes (``datasets/tcga.md``).
    """

    name = "tcga"

    def __init__(self, root: str, gene_space: Optional[GeneSpace] = None, missing_genes: str = "drop",
                 fill_value: float = 0.0, combat: bool = True, min_batch: int = 2, prior="auto",
                 min_score: int = 900, self_loops: bool = True, duplicates: str = "mean",
                 transform: Optional[Callable] = None, force_reload: bool = False, log: bool = True):
        self.requested_space = gene_space if gene_space is not None else GeneSpace.landmark()
        self.missing_genes, self.fill_value, self.combat, self.min_batch = missing_genes, fill_value, combat, min_batch
        self.prior_arg, self.min_score, self.self_loops, self.duplicates = prior, min_score, self_loops, duplicates
        self._root = root
        super().__init__(root, transform, None, force_reload=force_reload, log=log)

    def _resolve_data(self) -> Dict[str, Optional[str]]:
        raw, hint = self.raw_dir, "See datasets/tcga.md for the files and where they come from."
        out = {"response": find_one(raw, ["*drug_response*"], "response", True, hint=hint),
               "expression": find_one(raw, ["*tcga*expression*", "*xena*", "*HiSeqV2*"], "expression", True,
                                      hint=hint),
               "smiles": find_one(raw, ["*smiles*"], "smiles", True, hint=hint),
               "extra_smiles": find_one(raw, ["*pertinfo*", "*pert_info*"], "extra_smiles", False)}
        if self.combat:
            out["reference"] = find_one(raw, ["gdsc*expression*", "*cell_line*expression*"], "reference", True,
                                        hint="ComBat needs GDSC cell-line expression (combat=False to skip).")
            out["cell_info"] = find_one(raw, ["*Cell_Lines_Details*"], "cell_info", True,
                                        hint="ComBat needs the GDSC cell annotation with TCGA labels.")
        return out

    @property
    def options(self) -> Dict:
        return {"genes": self.requested_space.genes, "missing_genes": self.missing_genes,
                "fill_value": self.fill_value, "combat": self.combat, "min_batch": self.min_batch,
                "duplicates": self.duplicates, **self.common_options()}

    # -------------------------------------------------------------- drugs
    def _drug_smiles(self, drugs, paths, report):
        gdsc = read_smiles(paths["smiles"])
        gnorm = {normalize_drug_name(k): k for k in gdsc}
        extra = {}
        if paths.get("extra_smiles"):
            t = read_delimited(paths["extra_smiles"], dtype=str)
            name = next((c for c in ("pert_iname", "name", "drug_name") if c in t.columns), None)
            smi = next((c for c in ("canonical_smiles", "smiles", "SMILES") if c in t.columns), None)
            if name and smi:
                for n, s in zip(t[name], t[smi]):
                    if isinstance(n, str) and isinstance(s, str) and s.strip() and s.strip() != "-666":
                        extra.setdefault(normalize_drug_name(n), s.strip())
        smiles, mapping, source = {}, {}, {}
        for d in drugs:
            name = DRUG_SYNONYMS.get(normalize_drug_name(d), d)
            key = normalize_drug_name(name)
            gname = gnorm.get(key)
            if gname is not None:
                smiles[d], mapping[d], source[d] = gdsc[gname], gname, "gdsc"
            elif key in extra:
                smiles[d], mapping[d], source[d] = extra[key], name, "extra"
        report["drug_mapping"] = {d: {"gdsc_name": mapping[d], "smiles_from": source[d]} for d in sorted(mapping)}
        report["drugs_without_smiles"] = sorted(set(drugs) - set(smiles))
        return smiles

    # -------------------------------------------------------------- ComBat
    def _combat(self, aligned, cancer_of: Dict[str, str], paths, report):
        try:
            from inmoose.pycombat import pycombat_norm
        except ImportError as e:
            raise ImportError("TCGA batch correction needs inmoose: pip install 'csg2a-graph[tcga]' "
                              "(or TCGA(..., combat=False))") from e
        values, lines, genes = read_expression(paths["reference"])
        info = read_cell_info(paths["cell_info"])
        cmap, crep = match_names(lines, info["name"], normalize_cell_name, "GDSC lines (expression -> annotation)",
                                 prefixes=("NCI",))
        report["combat_reference_join"] = crep.to_dict()
        label = info.drop_duplicates("name").set_index("name")["tcga"]
        line_type = {l: str(label.get(cmap[l], "")) for l in lines if l in cmap}
        ref = self.requested_space.align((values, lines, genes), missing="fill", fill_value=np.nan)
        space = aligned.gene_space
        cols = torch.tensor([self.requested_space.index[g] for g in space.genes])
        ref_x = ref.values[:, cols].numpy()  # reference lines on the patients' genes (NaN where unmeasured)
        X = aligned.values.numpy().copy()
        done, skipped = {}, {}
        patients = aligned.samples
        for cancer in sorted(set(cancer_of.values())):
            pi = [i for i, p in enumerate(patients) if cancer_of.get(p) == cancer]
            li = [i for i, l in enumerate(lines) if line_type.get(l) == cancer]
            if len(pi) < self.min_batch or len(li) < self.min_batch:
                skipped[cancer] = {"patients": len(pi), "lines": len(li)}
                continue
            P, L = X[pi], ref_x[li]
            ok = (np.isfinite(P).all(0) & np.isfinite(L).all(0) & (P.std(0) > 0) & (L.std(0) > 0))
            both = np.concatenate([P[:, ok], L[:, ok]]).T  # genes x samples
            batch = [0] * len(pi) + [1] * len(li)
            fixed = np.asarray(pycombat_norm(pd.DataFrame(both), batch))
            X[np.ix_(pi, np.flatnonzero(ok))] = fixed[:, :len(pi)].T
            done[cancer] = {"patients": len(pi), "lines": len(li), "genes_corrected": int(ok.sum())}
        report["combat"] = {"corrected": done, "not_corrected": skipped,
                            "reference_genes_measured": int(np.isfinite(ref_x).all(0).sum())}
        aligned.values = torch.from_numpy(X)
        return aligned

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
        aligned = align_expression((values, patients, genes), self.requested_space, self.missing_genes,
                                   np.nan, None, report)
        cancer_of = dict(zip(resp["patient"], resp["cancer"].astype(str)))
        if self.combat:
            aligned = self._combat(aligned, cancer_of, paths, report)
        # robust z per gene within each cancer type (paper A.5); NaN (unmeasured) -> fill_value
        X = aligned.values.clone()
        for cancer in sorted(set(cancer_of.get(p, "") for p in aligned.samples)):
            rows = torch.tensor([i for i, p in enumerate(aligned.samples) if cancer_of.get(p, "") == cancer])
            if rows.numel():
                X[rows] = robust_zscore(X[rows], dim=0)[0]
        n_nan = int(torch.isnan(X).sum())
        report["expression_nan_set_to_fill"] = n_nan
        aligned.values = torch.nan_to_num(X, nan=self.fill_value)

        smiles = self._drug_smiles(sorted(resp["drug"].unique()), paths, report)
        # a patient given one drug twice (two treatment lines): same label -> one pair; responder in one
        # course and not in the other -> no label can be given: dropped and counted, never averaged to 0.5
        lab = resp.dropna(subset=["y"]).groupby(["patient", "drug"])["y"].agg(["min", "max"])
        conflict = set(lab.index[lab["min"] != lab["max"]])
        is_conflict = pd.Series([(p, d) in conflict for p, d in zip(resp["patient"], resp["drug"])], index=resp.index)
        report["conflicting_repeat_responses"] = sorted(f"{p}/{d}" for p, d in conflict)
        resp_ok = resp[~is_conflict]
        table = pd.DataFrame({"cell": resp_ok["patient"], "drug": resp_ok["drug"], "y": resp_ok["y"],
                              "tcga": resp_ok["cancer"]})
        parts = build_pairs(table, smiles, aligned, dose=GDSC_DOSE_UM, time=GDSC_TIME_H, report=report,
                            duplicates=self.duplicates, cell_prefixes=(), cell_normalize=lambda s: str(s)[:12],
                            drug_normalize=normalize_drug_name, what_cells="patients")
        report["dropped"]["unlabelled_response"] = int(unlabelled.sum())  # counted inside nan_response too
        report["dropped"]["conflicting_repeat_response_rows"] = int(is_conflict.sum())
        names = report.get("drug_mapping", {})
        parts["drug_meta"] = {"name": parts["drug_meta"]["name"],
                              "gdsc_name": [names.get(d, {}).get("gdsc_name", d) for d in parts["molecules"].names]}
        prior = self.build_prior(aligned.gene_space, paths, report)
        return self.make_payload(**parts, prior=prior, report=report)

    def responders_per_drug(self) -> pd.DataFrame:
        """Patients with expression and a response, per drug: responders, non-responders."""
        p = self.pairs
        df = pd.DataFrame({"drug": [self.drugs[i] for i in p["drug"].tolist()], "y": p["y"].tolist()})
        out = df.groupby("drug")["y"].agg(responders="sum", patients="count")
        out["non_responders"] = out["patients"] - out["responders"]
        return out.astype(int).sort_values("patients", ascending=False)


__all__ = ["TCGA", "read_ding", "RESPONDER", "DRUG_SYNONYMS", "URLS"]
