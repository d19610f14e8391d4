"""LINCS L1000 chemical perturbations (the CSG²A pretraining data) as a PyG dataset."""

from __future__ import annotations

import glob
import logging
import os.path as osp
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pandas as pd
import torch

from csg2a_graph.data.build import align_expression
from csg2a_graph.data.gene_space import GeneSpace
from csg2a_graph.data.molecules import MoleculeStore
from csg2a_graph.data.normalize import modz, robust_zscore
from csg2a_graph.data.units import parse_dose_um, parse_time_h
from csg2a_graph.datasets._base import RawPairDataset
from csg2a_graph.datasets._files import find_one, read_delimited
from csg2a_graph.io.gct import GCT, read_any

logger = logging.getLogger(__name__)

URLS = {  # GEO GSE92742 (Phase I); checksums in datasets/lincs.md once a machine with the network fetches them
    "level3": "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE92nnn/GSE92742/suppl/GSE92742_Broad_LINCS_Level3_INF_mlr12k_n1319138x12328.gctx.gz",
    "level5": "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE92nnn/GSE92742/suppl/GSE92742_Broad_LINCS_Level5_COMPZ.MODZ_n473647x12328.gctx.gz",
    "inst_info": "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE92nnn/GSE92742/suppl/GSE92742_Broad_LINCS_inst_info.txt.gz",
    "sig_info": "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE92nnn/GSE92742/suppl/GSE92742_Broad_LINCS_sig_info.txt.gz",
    "pert_info": "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE92nnn/GSE92742/suppl/GSE92742_Broad_LINCS_pert_info.txt.gz",
    "gene_info": "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE92nnn/GSE92742/suppl/GSE92742_Broad_LINCS_gene_info.txt.gz",
}


def brd_key(pert_id) -> str:
    """Compound key: the first 13 characters of a Broad id (``BRD-K76908866-001-01-8`` -> ``BRD-K76908866``)."""
    s = str(pert_id).strip()
    return s[:13] if s.startswith("BRD-") else s


def read_compound_smiles(path: str, by_name: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """``pert_id -> SMILES`` from a ``pert_info`` table (``pert_id``, ``canonical_smiles``) or a
    headerless two-column ``BRD-id,SMILES`` list (DeepCE's ``drugs_smiles.csv``).

    ``by_name``, when given, is filled with ``pert_iname -> SMILES`` (pert_info tables only).
    """
    df = read_delimited(path, dtype=str, header=None)
    first = str(df.iloc[0, 0])
    if first.startswith("BRD-"):
        pairs = zip(df.iloc[:, 0], df.iloc[:, 1])
    else:
        df.columns = df.iloc[0]
        df = df.iloc[1:]
        cols = {str(c).lower(): c for c in df.columns}
        smi = next((cols[c] for c in ("canonical_smiles", "smiles") if c in cols), None)
        if "pert_id" not in cols or smi is None:
            raise ValueError(f"{path}: need pert_id and canonical_smiles columns, found {list(df.columns)[:10]}")
        pairs = zip(df[cols["pert_id"]], df[smi])
        if by_name is not None and "pert_iname" in cols:
            for n, s in zip(df[cols["pert_iname"]], df[smi]):
                if isinstance(n, str) and isinstance(s, str) and s.strip() and s.strip() not in ("-666", "restricted"):
                    by_name.setdefault(n.strip().lower(), s.strip())
    out: Dict[str, str] = {}
    for k, s in pairs:
        if isinstance(s, str) and s.strip() and s.strip() not in ("-666", "restricted"):
            out.setdefault(brd_key(k), s.strip())
    return out


#: floor of the reference's scaled MAD (log2 units): GAPDH, an L1000 invariant gene, has MAD 0.0002
#: over the 165 cell lines and would otherwise be multiplied by ~5000
MIN_REFERENCE_MAD = 0.1


def read_scale_reference(path: str, genes: List[str]):
    """``(median, scaled MAD)`` per gene of ``genes`` from a stats table (``gene, median, mad``) or a
    cell-line x gene table of basal profiles (statistics computed over its rows); NaN for genes the
    reference lacks. The MAD is floored at ``MIN_REFERENCE_MAD``.
    """
    from csg2a_graph.data.normalize import robust_stats

    df = read_delimited(path)
    cols = {str(c).lower(): c for c in df.columns}
    if {"gene", "median", "mad"} <= set(cols):
        t = df.set_index(cols["gene"])
        med = pd.to_numeric(t[cols["median"]], errors="coerce")
        mad = pd.to_numeric(t[cols["mad"]], errors="coerce")
    else:
        t = df.set_index(df.columns[0]).apply(pd.to_numeric, errors="coerce")
        m, d = robust_stats(torch.tensor(t.to_numpy(), dtype=torch.float64), dim=0)
        med, mad = pd.Series(m[0].numpy(), index=t.columns), pd.Series(d[0].numpy(), index=t.columns)
    med = med[~med.index.duplicated()].reindex(genes)
    mad = mad[~mad.index.duplicated()].reindex(genes)
    return (
        torch.tensor(med.to_numpy(), dtype=torch.float64),
        torch.tensor(mad.to_numpy(), dtype=torch.float64).clamp_min(MIN_REFERENCE_MAD),
    )


def _first(meta: pd.DataFrame, *cols):
    for c in cols:
        if c in meta.columns:
            return meta[c]
    return pd.Series([np.nan] * len(meta), index=meta.index)


class LINCSL1000(RawPairDataset):
    r"""LINCS L1000 compound perturbations: (basal profile, compound, dose, time) -> perturbed profile.

    ``level=3``: every compound-treated well (``pert_type == "trt_cp"``) is paired
    with the basal profile of its own plate: the mean (``basal="mean"``) or MODZ
    (``basal="modz"``) of that plate's DMSO wells (``ctl_vehicle``), the paper's
    ``gex_DMSO -> gex_comp`` setup. ``level=5``: each signature is paired with
    its cell line's row of a per-cell basal table.

    What ``y`` is (``target``, also the dataset attribute ``target``):

    - level 3, ``target="perturbed"``: the treated well's profile, with the plate's DMSO basal on
      the same scale: the paper's ``gex_DMSO -> gex_comp``. ``scale="robust_z"`` (default): both on a
      robust-z scale per gene, ``(x - median) / (1.4826 MAD)`` with the median and MAD of a reference
      population of cell lines (``scale_reference``; default: the 165 LINCS cell lines' basal DMSO
      profiles, shipped as ``csg2a_graph/assets/lincs_basal_robust_stats.csv``, MAD floored at 0.1), so
      that 0 is the median cell line as in the GDSC / NCI-60 datasets' robust z and fine-tuning inputs
      land where pretraining saw data; genes the files lack take ``fill_value`` (0 = that median).
      ``scale="log2"``: the files' log2 values.
    - level 3 with TranSiGen pairs (``pairs_files`` or ``*x1*basal*`` / ``*x2*perturbed*`` /
      ``*example_meta*`` in ``raw``): 100 further real basal/perturbed pairs (43 cell lines,
      14 compounds, 10 µM, 24 h), each with its own basal, added to the plate's, on the same scale.
    - level 5, ``target="signature"``: the MODZ signature, a *z-score of change* against the
      plate population (median 0), not a perturbed profile; the basal table (absolute log2,
      median ~8.4) is put on a z scale too, robust z per gene over the basal table's cells, so
      the pair is ``basal z -> signature z``. A level-5 perturbed profile cannot be rebuilt on
      the basal's scale without the plate statistics, so ``target="perturbed"`` is refused there.

    ``y`` is ``[num_pairs, N]``; ``expression`` holds the basal profiles (one per plate,
    or per cell line at level 5); ``dose`` (µM) and ``time`` (h) are stored in raw units;
    the model scales them (d/100, t/72).

    Raw files (``root/raw``):

    - one or more ``*.gct`` (1.2/1.3) / ``*.gctx`` files (all are used);
    - optional ``*inst_info*`` / ``*sig_info*``: instance metadata (GSE92742 columns);
    - compound SMILES: the file's own ``canonical_smiles`` column, ``*pert*info*``
      (``pert_id, canonical_smiles``) and/or ``*smiles*`` (``BRD-id,SMILES``);
    - optional ``*gene_info*``: row id -> symbol, when rows carry only ids;
    - level 5: ``*basal*`` (cell_id x genes);
    - optional STRING edge list / ``protein.links``.

    Rows are mapped through ``pr_gene_symbol`` when the file has it, else through
    the gene space's aliases (probe ids, Entrez ids) and the gene-info table;
    unmapped rows, plates without DMSO, other perturbation types, compounds
    without SMILES and unparsed doses are counted in ``report["dropped"]``.

    **STATS (the staged real files):** level 3, one LJP005 A375 plate: 322 pairs,
    54 compounds, 1 cell line; level 5, 272 signatures + 165 basal profiles:
    207 pairs, 32 cell lines, 3 compounds (``datasets/lincs.md``).
    """

    name = "lincs"

    def __init__(
        self,
        root: str,
        level: int = 3,
        gene_space: Optional[GeneSpace] = None,
        missing_genes: str = "drop",
        fill_value: float = 0.0,
        normalize: Optional[str] = None,
        basal: str = "mean",
        prior="auto",
        min_score: int = 900,
        self_loops: bool = True,
        expression_files: Optional[List[str]] = None,
        inst_info_file: Optional[str] = None,
        pert_info_file: Optional[str] = None,
        smiles_file: Optional[str] = None,
        gene_info_file: Optional[str] = None,
        basal_file: Optional[str] = None,
        target: Optional[str] = None,
        scale: str = "robust_z",
        scale_reference: Optional[str] = None,
        pairs_files: Optional[List[str]] = None,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
        log: bool = True,
    ):
        if scale not in ("robust_z", "log2"):
            raise ValueError(f"scale must be 'robust_z' or 'log2', got {scale!r}")
        if scale == "robust_z" and normalize is not None and level == 3:
            raise ValueError(
                f"normalize={normalize!r} and scale='robust_z' both rescale the profiles: pass "
                "scale='log2' with normalize, or leave normalize=None"
            )
        if pairs_files is not None and (level != 3 or len(pairs_files) != 3):
            raise ValueError("pairs_files = [basal CSV, perturbed CSV, meta CSV] (level 3 only)")
        self.scale = scale if level == 3 else "robust_z"
        self.scale_reference = scale_reference
        if level not in (3, 5):
            raise ValueError(f"level must be 3 or 5, got {level!r}")
        target = target or ("perturbed" if level == 3 else "signature")
        if (level, target) not in ((3, "perturbed"), (5, "signature")):
            raise ValueError(
                f"level {level} supports target={'perturbed' if level == 3 else 'signature'!r}, got "
                f"{target!r}: level-5 MODZ signatures are z-scores of change, and a perturbed profile "
                "cannot be rebuilt on the basal's scale without the plate statistics"
            )
        self.target = target
        if basal not in ("mean", "modz"):
            raise ValueError(f"basal must be 'mean' or 'modz', got {basal!r}")
        self.level, self.basal = level, basal
        #: what ``y`` is: a profile per pair, no sensitive direction (``y_direction = None``)
        self.y_name = (
            "perturbed expression profile (level 3, on its DMSO basal's scale)"
            if level == 3
            else "MODZ signature (level 5, z-score of change)"
        )
        self.y_unit, self.y_direction = None, None
        self.requested_space = gene_space if gene_space is not None else GeneSpace.landmark()
        self.missing_genes, self.fill_value, self.normalize = missing_genes, fill_value, normalize
        self.prior_arg, self.min_score, self.self_loops = prior, min_score, self_loops
        self.files = {
            "expression": expression_files,
            "inst_info": inst_info_file,
            "pert_info": pert_info_file,
            "smiles": smiles_file,
            "gene_info": gene_info_file,
            "basal": basal_file,
            "pairs": pairs_files,
        }
        self._root = root
        super().__init__(root, transform, pre_transform, pre_filter, force_reload=force_reload, log=log)

    def _resolve_data(self) -> Dict:
        raw = self.raw_dir
        exprs = self.files["expression"] or sorted(
            glob.glob(osp.join(glob.escape(raw), "*.gct")) + glob.glob(osp.join(glob.escape(raw), "*.gctx"))
        )
        if not exprs:
            raise FileNotFoundError(
                f"no .gct/.gctx file in {raw}: place LINCS L1000 level-{self.level} files there "
                f"(GEO GSE92742, see the data card datasets/lincs.md in the repository or sdist) or pass expression_files=[...]"
            )
        out: Dict[str, Any] = {"expression": list(exprs)}
        for k, pats in (
            ("inst_info", ["*inst_info*", "*sig_info*"]),
            ("pert_info", ["*pert*info*"]),
            ("smiles", ["*smiles*"]),
            ("gene_info", ["*gene_info*", "*geneinfo*"]),
        ):
            out[k] = self.files[k] or find_one(raw, pats, k, False)
        if self.level == 3:
            if self.scale == "robust_z":
                if self.scale_reference is None:
                    from csg2a_graph import assets

                    out["scale_reference"] = assets.asset("lincs_basal_robust_stats.csv")
                else:
                    if not osp.exists(self.scale_reference):
                        raise FileNotFoundError(f"scale_reference {self.scale_reference} not found")
                    out["scale_reference"] = self.scale_reference
            pairs = self.files["pairs"]
            if pairs is None:
                found = [
                    find_one(raw, pats, k, False)
                    for k, pats in (
                        ("pairs_basal", ["*x1*basal*"]),
                        ("pairs_perturbed", ["*x2*perturbed*"]),
                        ("pairs_meta", ["*example_meta*", "*pairs_meta*"]),
                    )
                ]
                if any(found) and not all(found):
                    raise FileNotFoundError(
                        f"{raw}: basal/perturbed pairs need three files (*x1*basal*, "
                        f"*x2*perturbed*, *example_meta*), found {[osp.basename(f) for f in found if f]}"
                    )
                pairs = [str(f) for f in found] if all(found) else None
            out["pairs"] = list(pairs) if pairs else []
        if self.level == 5:
            out["basal"] = self.files["basal"] or find_one(
                raw,
                ["*basal*"],
                "basal",
                True,
                hint="Level 5 signatures need a per-cell basal table (cell_id x genes).",
            )
        return out

    @property
    def options(self) -> Dict:
        return {
            "level": self.level,
            "basal": self.basal,
            "target": self.target,
            "scale": self.scale,
            "genes": self.requested_space.genes,
            "missing_genes": self.missing_genes,
            "fill_value": self.fill_value,
            "normalize": self.normalize,
            **self.common_options(),
        }

    # ---------------------------------------------------------------- reading
    def _read_profiles(self, paths: Dict, report: Dict) -> GCT:
        gcts = [read_any(p) for p in paths["expression"]]
        space = self.requested_space
        for p, one in zip(paths["expression"], gcts):  # a stray unrelated .gct is named, not merged
            if not any(space.resolve(str(r)) for r in one.rids) and not (
                "pr_gene_symbol" in one.row_meta.columns
                and any(space.resolve(str(v)) for v in one.row_meta["pr_gene_symbol"])
            ):
                raise ValueError(
                    f"{p}: none of its {len(one.rids)} row ids (e.g. {list(one.rids)[:3]}) is a gene of "
                    "the gene space, by id or pr_gene_symbol: not a LINCS L1000 expression file? "
                    "Remove it from raw/ or pass expression_files=[...]"
                )
        g = gcts[0]
        for p, other in zip(paths["expression"][1:], gcts[1:]):  # stack columns over the first file's rows
            if not set(other.rids) & set(g.rids):
                raise ValueError(
                    f"{p}: shares no row id with {paths['expression'][0]}; LINCS files read together "
                    "must use the same row ids (pass expression_files=[...] to choose)"
                )
            if set(other.rids) != set(g.rids):
                common = [r for r in g.rids if r in set(other.rids)]
                report.setdefault("rows_not_in_every_file", 0)
                report["rows_not_in_every_file"] += len(set(g.rids) ^ set(other.rids))
                g = GCT(g.data[[g.rids.index(r) for r in common]], g.row_meta.loc[common], g.col_meta)
            pos = {r: i for i, r in enumerate(other.rids)}
            data = np.concatenate([g.data, other.data[[pos[r] for r in g.rids]]], axis=1)
            g = GCT(data, g.row_meta, pd.concat([g.col_meta, other.col_meta]))
        if g.col_meta.index.duplicated().any():
            n = int(g.col_meta.index.duplicated().sum())
            raise ValueError(f"{n} profile ids appear in more than one expression file")
        report["profiles_read"] = int(g.data.shape[1])
        report["rows_read"] = int(g.data.shape[0])
        return g

    def _row_names(self, g: GCT, paths: Dict, report: Dict) -> List[str]:
        """A name per row that the gene space can resolve: symbol, then id, then gene-info."""
        space = self.requested_space
        extra: Dict[str, str] = {}
        if paths.get("gene_info"):
            gi = read_delimited(paths["gene_info"], dtype=str)
            idc = next((c for c in ("pr_gene_id", "gene_id", "id") if c in gi.columns), None)
            sym = next((c for c in ("pr_gene_symbol", "gene_symbol") if c in gi.columns), None)
            if idc and sym:
                extra = dict(zip(gi[idc].astype(str), gi[sym].astype(str)))
        rm = g.row_meta
        symbols = rm["pr_gene_symbol"].tolist() if "pr_gene_symbol" in rm.columns else [None] * len(rm)
        gene_ids = rm["pr_gene_id"].tolist() if "pr_gene_id" in rm.columns else [None] * len(rm)
        names, how = [], {"symbol": 0, "row_id": 0, "gene_info": 0, "unmapped": 0}
        for rid, sym, gid in zip(g.rids, symbols, gene_ids):
            cands = [("symbol", sym), ("row_id", rid), ("gene_info", extra.get(str(rid))), ("row_id", gid)]
            for kind, c in cands:
                if c is not None and not (isinstance(c, float) and np.isnan(c)) and space.resolve(str(c)):
                    names.append(str(c))
                    how[kind] += 1
                    break
            else:
                names.append(str(rid))
                how["unmapped"] += 1
        report["row_mapping"] = how
        return names

    def _smiles(self, g: GCT, paths: Dict, report: Dict) -> Dict[str, str]:
        """pert_id -> SMILES; a pert_id without one takes the SMILES of the same ``pert_iname``
        under another Broad id (e.g. BRD-U88459701 and BRD-A82307304 are both atorvastatin).
        """
        smiles: Dict[str, str] = {}
        by_name: Dict[str, str] = {}
        meta = g.col_meta
        if "canonical_smiles" in meta.columns:
            for k, s in zip(meta.get("pert_id", pd.Series(index=meta.index, dtype=str)), meta["canonical_smiles"]):
                if isinstance(s, str) and s.strip():
                    smiles.setdefault(brd_key(k), s.strip())
        for k in ("smiles", "pert_info"):
            if paths.get(k):
                for key, s in read_compound_smiles(paths[k], by_name).items():
                    smiles.setdefault(key, s)
        report["compounds_with_smiles_in_tables"] = len(smiles)
        via_name = []
        if "pert_iname" in meta.columns and "pert_id" in meta.columns:
            for k, n in zip(meta["pert_id"].map(brd_key), meta["pert_iname"]):
                if k not in smiles and isinstance(n, str) and n.strip().lower() in by_name:
                    smiles[k] = by_name[n.strip().lower()]
                    via_name.append(k)
        report["smiles_via_pert_iname"] = sorted(set(via_name))
        return smiles

    def _meta(self, g: GCT, paths: Dict) -> pd.DataFrame:
        meta = g.col_meta.copy()
        if paths.get("inst_info"):
            info = read_delimited(paths["inst_info"], dtype=str)
            key = next((c for c in ("inst_id", "sig_id", "id") if c in info.columns), info.columns[0])
            info = info.drop_duplicates(key).set_index(key)
            for c in info.columns:
                if c not in meta.columns:
                    meta[c] = info[c].reindex(meta.index)
                else:
                    meta[c] = meta[c].where(meta[c].notna(), info[c].reindex(meta.index))
        return meta

    def _to_scale(self, X: torch.Tensor, mask: torch.Tensor, paths: Dict, report: Dict, genes: List[str]):
        """Measured genes of ``X`` (log2) on the reference's robust-z scale; filled genes keep ``fill_value``."""
        med, mad = read_scale_reference(paths["scale_reference"], genes)
        have = mask & ~torch.isnan(med)
        Z = X.clone()
        Z[:, have] = ((X[:, have].double() - med[have]) / mad[have]).float()
        Z[:, mask & ~have] = self.fill_value
        report["scale"] = {
            "scale": "robust z per gene: (x - median) / (1.4826 MAD) of the reference",
            "reference": osp.basename(paths["scale_reference"]),
            "min_mad": MIN_REFERENCE_MAD,
            "genes_scaled": int(have.sum()),
            "genes_without_reference": int((mask & ~have).sum()),
        }
        return Z

    def _read_pairs(self, paths: Dict, aligned, report: Dict) -> Dict:
        """Basal/perturbed pairs given as three tables (TranSiGen's layout): basal and perturbed profiles
        indexed by ``pair_id``, meta with ``pair_id, cell_id, canonical_smiles, dose_um, time_h``.
        """
        fb, fp, fm = paths["pairs"]
        meta = read_delimited(fm, dtype=str)
        need = {"pair_id", "cell_id", "canonical_smiles", "dose_um", "time_h"}
        if not need <= set(meta.columns):
            raise ValueError(f"{fm}: pair meta needs columns {sorted(need)}, found {list(meta.columns)}")
        if meta["pair_id"].duplicated().any():
            raise ValueError(
                f"{fm}: pair ids appear twice: {meta['pair_id'][meta['pair_id'].duplicated()].tolist()[:5]}"
            )
        out: Dict[str, Any] = {}
        space = aligned.gene_space
        for key, f in (("basal", fb), ("perturbed", fp)):
            df = read_delimited(f, index_col=0).apply(pd.to_numeric, errors="coerce")
            df.index = df.index.astype(str)
            lack = sorted(set(meta["pair_id"]) - set(df.index))
            if lack:
                raise ValueError(f"{f}: no profile for pairs {lack[:5]} of {fm}")
            al = space.align(df.loc[meta["pair_id"]], missing="fill", fill_value=self.fill_value)
            vals = al.values
            if self.scale == "robust_z":
                vals = self._to_scale(torch.nan_to_num(vals, nan=float("nan")), al.mask, paths, {}, space.genes)
            out[key] = torch.nan_to_num(vals, nan=self.fill_value)
            report[f"pairs_{key}_genes"] = al.report.to_dict()
        out["cell"] = meta["cell_id"].astype(str).tolist()
        out["pair"] = [f"pair:{p}" for p in meta["pair_id"]]
        out["smiles"] = meta["canonical_smiles"].astype(str).str.strip().tolist()
        out["dose"] = pd.to_numeric(meta["dose_um"], errors="coerce").to_numpy(dtype=float)
        out["time"] = pd.to_numeric(meta["time_h"], errors="coerce").to_numpy(dtype=float)
        return out

    # ---------------------------------------------------------------- build
    def build(self) -> Dict:
        paths = self._resolve()
        report: Dict = {
            "name": f"LINCS L1000 level {self.level}",
            "files": [osp.basename(p) for p in paths["expression"]],
        }
        dropped: Dict[str, int] = {}
        g = self._read_profiles(paths, report)
        names = self._row_names(g, paths, report)
        aligned = align_expression(
            (g.data.T, g.cids, names), self.requested_space, self.missing_genes, self.fill_value, self.normalize, report
        )
        meta = self._meta(g, paths)
        smiles = self._smiles(g, paths, report)
        X = aligned.values  # [profiles, N]
        if self.level == 3 and self.scale == "robust_z":
            X = self._to_scale(X, aligned.mask, paths, report, aligned.gene_space.genes)
        pert_type = _first(meta, "pert_type").astype(str)
        trt = (pert_type == "trt_cp").to_numpy()
        ctl = (pert_type == "ctl_vehicle").to_numpy()
        report["profiles_by_type"] = pert_type.value_counts().to_dict()
        dropped["other_pert_type"] = int((~trt & ~ctl).sum()) if self.level == 3 else int((~trt).sum())

        dose, time = self._conditions(meta)
        cell_id = _first(meta, "cell_id").astype(str).to_numpy()
        drug_key = _first(meta, "pert_id").map(brd_key).to_numpy()

        if self.level == 3:
            basal_x, unit, unit_cell, unit_names, has_basal = self._plate_basal(
                X, meta, ctl, trt, cell_id, report, dropped
            )
        else:
            basal_x, unit, unit_cell, unit_names, has_basal = self._signature_basal(
                paths, aligned, X, trt, cell_id, report, dropped
            )

        if self.level == 3 and paths.get("pairs"):
            ext = self._read_pairs(paths, aligned, report)
            n0, nb = X.size(0), basal_x.size(0)
            n_new = len(ext["cell"])
            X = torch.cat([X, ext["perturbed"]])
            basal_x = torch.cat([basal_x, ext["basal"]])
            trt = np.concatenate([trt, np.ones(n_new, bool)])
            has_basal = np.concatenate([has_basal, np.ones(n_new, bool)])
            unit = np.concatenate([unit, nb + np.arange(n_new)])
            unit_cell = list(unit_cell) + ext["cell"]
            unit_names = list(unit_names) + ext["pair"]
            cell_id = np.concatenate([cell_id.astype(object), np.array(ext["cell"], dtype=object)])
            keys = [f"SMILES:{x}" for x in ext["smiles"]]
            smiles.update(dict(zip(keys, ext["smiles"])))
            drug_key = np.concatenate([np.asarray(drug_key, dtype=object), np.array(keys, dtype=object)])
            dose, time = np.concatenate([dose, ext["dose"]]), np.concatenate([time, ext["time"]])
            meta = pd.concat([meta, pd.DataFrame({"pert_iname": [""] * n_new}, index=ext["pair"])])
            report["pairs_added"] = {
                "pairs": n_new,
                "cell_lines": len(set(ext["cell"])),
                "compounds": len(set(ext["smiles"])),
                "first_row": n0,
            }
        keep = trt & has_basal
        has_smiles = np.array([k in smiles for k in drug_key])
        dropped["drug_without_smiles"] = int((keep & ~has_smiles).sum())
        keep &= has_smiles
        ok_dt = ~(np.isnan(dose) | np.isnan(time))
        dropped["unparsed_dose_or_time"] = int((keep & ~ok_dt).sum())
        keep &= ok_dt
        # one drug per molecule: Broad ids of the same compound (same canonical SMILES) are merged,
        # so a drug-blind split cannot see a compound in training under another id
        from csg2a_graph.data.molecules import canonical_smiles

        canon: Dict[str, Optional[str]] = {}
        for k in sorted(set(drug_key[keep])):
            try:
                canon[k] = canonical_smiles(smiles[k])
            except ValueError:
                canon[k] = None
        bad = np.array([canon.get(k) is None for k in drug_key])
        dropped["invalid_smiles"] = int((keep & bad).sum())
        keep &= ~bad
        iname = _first(meta, "pert_iname").astype(str).to_numpy()
        groups: Dict[str, List[str]] = {}
        for k, c in canon.items():
            if c is not None:
                groups.setdefault(c, []).append(k)
        mol_keys = sorted(groups)
        molecules, mrep = MoleculeStore.from_smiles(mol_keys, mol_keys)
        report["molecules"] = mrep.to_dict()
        report["broad_ids_merged"] = {g[0]: g[1:] for g in groups.values() if len(g) > 1}
        names_of = {c: iname[np.flatnonzero(drug_key == groups[c][0])[0]] or c for c in mol_keys}
        drug_key = np.array([canon.get(k) or "" for k in drug_key], dtype=object)
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            raise ValueError(f"no LINCS pairs left: {dropped}")
        did = {k: i for i, k in enumerate(molecules.names)}
        lines = sorted(set(unit_cell))
        line_of = {c: i for i, c in enumerate(lines)}
        report["dropped"] = dropped
        report["treated_profiles_paired"] = int(idx.size)
        report["cell_lines"] = len(lines)
        prior = self.build_prior(aligned.gene_space, paths, report)
        return self.make_payload(
            expr=basal_x,
            genes=aligned.gene_space.genes,
            gene_mask=aligned.mask,
            cells=list(unit_names),
            molecules=molecules,
            cell=torch.tensor(unit[idx]),
            drug=torch.tensor([did[k] for k in drug_key[idx]]),
            y=X[torch.from_numpy(idx)],
            dose=torch.tensor(dose[idx], dtype=torch.float32),
            time=torch.tensor(time[idx], dtype=torch.float32),
            prior=prior,
            cell_meta={"cell_id": list(unit_cell)},
            drug_meta={"name": [names_of[k] for k in molecules.names]},
            split_cell=torch.tensor([line_of[unit_cell[u]] for u in unit[idx]]),
            report=report,
        )

    def _conditions(self, meta):
        """Dose (µM) and time (h) of every profile: the given value and unit, else the ``pert_i*`` text."""
        dose_given = np.array(
            [parse_dose_um(v, u) for v, u in zip(_first(meta, "pert_dose"), _first(meta, "pert_dose_unit"))],
            dtype=float,
        )
        idose = [parse_dose_um(v) for v in _first(meta, "pert_idose")]
        dose = np.where(np.isnan(dose_given), idose, dose_given)
        time_given = np.array(
            [parse_time_h(v, u) for v, u in zip(_first(meta, "pert_time"), _first(meta, "pert_time_unit"))], dtype=float
        )
        itime = [parse_time_h(v) for v in _first(meta, "pert_itime")]
        return dose, np.where(np.isnan(time_given), itime, time_given)

    def _plate_basal(self, X, meta, ctl, trt, cell_id, report, dropped):
        """Level 3: each plate's DMSO wells (mean or MODZ) are the basal profile of its treated wells."""
        plate = _first(meta, "det_plate", "rna_plate")
        plate = np.array(
            [p if isinstance(p, str) and p else str(cid).split(":")[0] for p, cid in zip(plate, meta.index)]
        )
        basal_units = sorted(set(plate[ctl]))
        unit_of = {p: i for i, p in enumerate(basal_units)}
        basal_rows = []
        for p in basal_units:
            wells = X[torch.from_numpy(np.flatnonzero(ctl & (plate == p)))]
            basal_rows.append(wells.mean(0) if self.basal == "mean" else modz(wells))
        report["dmso_wells"] = int(ctl.sum())
        report["plates"] = len(set(plate))
        report["plates_with_dmso"] = len(basal_units)
        has_basal = np.array([p in unit_of for p in plate])
        dropped["plate_without_dmso"] = int((trt & ~has_basal).sum())
        unit = np.array([unit_of.get(p, -1) for p in plate])
        unit_cell = [cell_id[np.flatnonzero(plate == p)[0]] for p in basal_units]
        unit_names = basal_units
        basal_x = torch.stack(basal_rows) if basal_rows else X[:0]
        return basal_x, unit, unit_cell, unit_names, has_basal

    def _signature_basal(self, paths, aligned, X, trt, cell_id, report, dropped):
        """Level 5: a basal table per cell line, robust-z scaled like the signatures it pairs with."""
        b = read_delimited(paths["basal"], index_col=0)
        b_al = aligned.gene_space.align(
            b.apply(pd.to_numeric, errors="coerce"), missing="fill", fill_value=self.fill_value
        )
        report["basal_genes"] = b_al.report.to_dict()
        rows = {str(c): i for i, c in enumerate(b_al.samples)}
        needed = sorted(set(cell_id[trt]) & set(rows))
        unit_of = {c: i for i, c in enumerate(needed)}
        has_basal = np.array([c in unit_of for c in cell_id])
        dropped["cell_without_basal"] = int((trt & ~has_basal).sum())
        unit = np.array([unit_of.get(c, -1) for c in cell_id])
        unit_cell, unit_names = needed, needed
        # signatures are z-scores of change: put the basal on a z scale too (robust z per gene over
        # all cells of the basal table), so neither side of a pair is absolute log2 expression
        bz, degenerate = robust_zscore(b_al.values[:, b_al.mask], dim=0)
        b_al.values = b_al.values.clone()
        b_al.values[:, b_al.mask] = bz
        b_al.values = torch.nan_to_num(b_al.values, nan=self.fill_value)
        report["basal_scale"] = {
            "basal": "robust z per gene over the basal table's cells",
            "target": "MODZ signature (z-score of change)",
            "cells": len(b_al.samples),
            "genes_with_zero_mad": int(degenerate.sum()),
        }
        basal_x = b_al.values[torch.tensor([rows[c] for c in needed], dtype=torch.long)] if needed else X[:0]
        report["basal_cells"] = len(needed)
        return basal_x, unit, unit_cell, unit_names, has_basal

    def summary(self) -> Dict:
        s = super().summary()
        s["num_cells"] = self.report.get("cell_lines", s["num_cells"])
        s["num_basal_profiles"] = self.num_cells
        return s


__all__ = ["LINCSL1000", "read_compound_smiles", "brd_key", "URLS"]
