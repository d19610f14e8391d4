"""Pair storage shared by every drug-response dataset (``PairDataset``, ``ArrayPairs``). The batch types live in
``data/batch.py``, the loader in ``data/loader.py``, cache keys and file digests in ``data/cache_keys.py``
(all re-exported here).

A processed drug-response dataset is

- ``expr``: per-cell (or per-sample) basal expression ``[num_cells, N]`` over a gene space;
- ``molecules``: one molecular graph per drug (``MoleculeStore``);
- a pair table ``cell, drug, y, dose (µM), time (h)``, one row per response;
- the gene space and the prior graph (``edge_index``, ``edge_weight`` over the genes).

Nothing is stored per pair except the five columns of the pair table.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Dataset

from csg2a_graph.data.batch import PairBatch, PairData, as_pair_index  # noqa: F401 - re-exported
from csg2a_graph.data.cache_keys import (  # noqa: F401 - re-exported
    FULL_HASH_BYTES,
    SAMPLED_HASH_BYTES,
    behaviour_digest,
    callable_tag,
    file_digest,
    file_fingerprint,
    options_tag,
    write_atomic,
)
from csg2a_graph.data.gene_space import GeneSpace
from csg2a_graph.data.loader import PairLoader  # noqa: F401 - re-exported
from csg2a_graph.data.molecules import MoleculeStore, compound_groups
from csg2a_graph.data.splits import canonical_scheme, make_split

logger = logging.getLogger(__name__)

FORMAT_VERSION = 5  # 2: bond_dir, main_fragment; 3: canonical SMILES; 4: true-median robust z, compound groups;
# 5: the expression normalisation (per-gene median / scale) kept for prediction on new expression


class PairDataset(Dataset):
    """Base class of the drug-response datasets (GDSC, NCI-60, LINCS, TCGA).

    Subclasses implement ``raw_file_names``, ``options`` (every argument that
    changes the processed result) and ``build() -> dict`` returning the payload
    of ``make_payload()``. The base class writes and reads the processed file
    (rebuilding it when it is stale, truncated or from another format version),
    serves ``dataset[i]`` as a ``PairData``, splits and loaders.
    """

    name: str = "pairs"
    #: what ``y`` is, and which way is sensitive: ``"higher_is_resistant"`` (ln IC50),
    #: ``"higher_is_sensitive"`` (-log10 GI50, responder = 1) or ``None`` (profiles)
    y_name: str = "response"
    y_direction: Optional[str] = None
    y_unit: Optional[str] = None

    def __init__(
        self,
        root: str,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
        log: bool = True,
    ):
        self._payload: Optional[Dict] = None
        # applied by this class when the processed file is built (apply_pre), part of the cache key; PyG's own
        # bookkeeping of them (pre_transform.pt, pre_filter.pt) is not used: the file name already says
        self._pre = (pre_transform, pre_filter)
        super().__init__(root, transform, None, None, log=log, force_reload=force_reload)
        self.pre_transform, self.pre_filter = pre_transform, pre_filter
        self._load_processed()

    # ------------------------------------------------------------ subclass API
    @property
    def options(self) -> Dict:
        raise NotImplementedError

    def build(self) -> Dict:
        raise NotImplementedError

    def cache_options(self) -> Dict:
        """What identifies the processed file: the dataset's options plus ``pre_transform`` /
        ``pre_filter`` (by a stable tag of the callable).
        """
        opts = dict(self.options)
        pt, pf = getattr(self, "_pre", (None, None))
        if pt is not None or pf is not None:
            opts["pre_transform"], opts["pre_filter"] = callable_tag(pt), callable_tag(pf)
        return opts

    def _cache_stem(self) -> str:
        opts = self.cache_options()
        opts.pop("raw", None)
        return f"{self.name}_{options_tag(opts)}_"

    @property
    def processed_file_names(self) -> List[str]:
        # name_<options except raw files>_<raw files' content fingerprint>.pt
        return [f"{self._cache_stem()}{self.options.get('raw') or 'noraw'}.pt"]

    # ----------------------------------------------------------- processing
    def process(self) -> None:
        payload = self.apply_pre(self.build())
        payload["format"] = FORMAT_VERSION
        payload["options"] = json.dumps(self.cache_options(), sort_keys=True, default=str)
        write_atomic(payload, self.processed_paths[0])
        self._clear_stale()

    def _clear_stale(self) -> None:
        """Remove processed files of this dataset and options built from older raw files."""
        stem, keep = self._cache_stem(), os.path.basename(self.processed_paths[0])
        for f in os.listdir(self.processed_dir):  # listdir, not glob: the root may hold [ ] * ?
            if f.startswith(stem) and f.endswith(".pt") and f != keep:
                try:
                    os.remove(os.path.join(self.processed_dir, f))
                    logger.info("removed %s (built from raw files that have changed since)", f)
                except FileNotFoundError:  # a concurrent build removed it first
                    pass

    def _load_processed(self) -> None:
        path = self.processed_paths[0]
        try:
            payload = torch.load(path, weights_only=True)
            if payload.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {payload.get('format')} != {FORMAT_VERSION}")
            if payload.get("options") != json.dumps(self.cache_options(), sort_keys=True, default=str):
                raise ValueError("options differ from this dataset's")
        except Exception as e:  # truncated, stale or foreign file: rebuild from raw, lose nothing
            warnings.warn(
                f"processed file {path} is unusable ({type(e).__name__}: {e}); rebuilding it from raw", stacklevel=2
            )
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            self.process()
            payload = torch.load(path, weights_only=True)
        self._set_payload(payload)

    def apply_pre(self, payload: Dict) -> Dict:
        """``pre_filter`` and ``pre_transform`` as PyG defines them: each pair's ``PairData`` is
        filtered (dropped pairs counted in ``report["dropped"]["pre_filter"]``) and transformed once, before
        the processed file is written, so both ``dataset[i]`` and the fast loader see the result. The
        storage is tables, so a ``pre_transform`` may change ``x`` (one expression vector per cell: every
        pair of a cell must get the same), ``y``, ``dose`` and ``time``; anything else (the drug graph, the
        prior, new attributes) is refused with a clear error.
        """
        pre_transform, pre_filter = getattr(self, "_pre", (None, None))
        if pre_transform is None and pre_filter is None:
            return payload
        from tqdm.auto import tqdm

        self._set_payload(payload)
        n = self.len()
        pairs = {k: v.clone() for k, v in payload["pairs"].items()}
        expr = payload["expr"].clone()
        keep = torch.ones(n, dtype=torch.bool)
        seen: Dict[int, Tensor] = {}
        fixed = (
            "edge_index",
            "edge_weight",
            "drug_x",
            "drug_edge_index",
            "drug_edge_attr",
            "cell_id",
            "drug_id",
            "pair_id",
        )
        for i in tqdm(range(n), desc="pre_filter / pre_transform", disable=not getattr(self, "log", False)):
            data = self.get(i)
            if pre_filter is not None and not pre_filter(data):
                keep[i] = False
                continue
            if pre_transform is None:
                continue
            before = {k: data[k] for k in fixed if k in data}
            out = pre_transform(data.clone())
            extra = sorted(set(out.keys()) - set(data.keys()))
            changed = [k for k, v in before.items() if k not in out or not torch.equal(out[k], v)]
            if extra or changed:
                raise ValueError(
                    f"pre_transform added {extra} / changed {changed}: pair datasets store expression, "
                    "y, dose and time per pair; use transform= (applied in dataset[i]) for the rest"
                )
            c = int(pairs["cell"][i])
            x = out.x.reshape(-1).to(expr.dtype)
            if c in seen and not torch.equal(seen[c], x):
                raise ValueError(
                    f"pre_transform gave cell {self.cells[c]!r} two different expression vectors (pairs "
                    "of one cell share its expression row); make it depend on the cell only"
                )
            seen[c] = x
            expr[c] = x
            pairs["y"][i] = out.y.reshape(pairs["y"][i].shape)
            pairs["dose"][i], pairs["time"][i] = out.dose.reshape(()), out.time.reshape(())
        payload = dict(payload)
        payload["expr"] = expr
        payload["pairs"] = {k: v[keep] for k, v in pairs.items()}
        report = json.loads(payload["report"])
        report.setdefault("dropped", {})["pre_filter"] = int((~keep).sum())
        report["pre_transform"] = callable_tag(pre_transform)
        payload["report"] = json.dumps(report, default=str)
        logger.info("pre_filter kept %d of %d pairs", int(keep.sum()), n)
        return payload

    def _set_payload(self, payload: Dict) -> None:
        self._payload = payload
        self._expr: Tensor = payload["expr"]
        self._pairs: Dict[str, Tensor] = payload["pairs"]
        self.gene_space = GeneSpace(payload["genes"])
        self.gene_mask: Tensor = payload["gene_mask"]
        self.molecules = MoleculeStore.from_dict(payload["molecules"])
        self.cells: List[str] = payload["cells"]
        self.cell_meta: Dict[str, List] = payload.get("cell_meta", {})
        self.drug_meta: Dict[str, List] = payload.get("drug_meta", {})
        prior = payload.get("prior")
        self.prior_edge_index: Optional[Tensor] = prior["edge_index"] if prior else None
        self.prior_edge_weight: Optional[Tensor] = prior["edge_weight"] if prior else None
        self.report: Dict = json.loads(payload["report"])
        #: the normalisation the expression went through (``{"method", "median", "scale", ...}``), or None
        self.expression_stats: Optional[Dict] = payload.get("expr_stats")

    @staticmethod
    def make_payload(
        *,
        expr: Tensor,
        expr_missing: Optional[Tensor] = None,
        expr_stats: Optional[Dict] = None,
        genes: List[str],
        gene_mask: Tensor,
        cells: List[str],
        molecules: MoleculeStore,
        cell: Tensor,
        drug: Tensor,
        y: Tensor,
        dose: Tensor,
        time: Tensor,
        prior=None,
        cell_meta: Optional[Dict] = None,
        drug_meta: Optional[Dict] = None,
        split_cell: Optional[Tensor] = None,
        report: Dict,
    ) -> Dict:
        """The processed payload. ``split_cell`` (optional, one id per pair) is the biological
        cell line used by the cell-blind/disjoint splits when ``cell`` indexes something else
        (a LINCS plate's basal profile).
        """
        n = y.size(0)  # y: [n] scalar responses or [n, N] profiles (LINCS)
        for k, v in {"cell": cell, "drug": drug, "dose": dose, "time": time}.items():
            if v.numel() != n:
                raise ValueError(f"pair column {k} has {v.numel()} rows, y has {n}")
        if expr.shape != (len(cells), len(genes)):
            raise ValueError(f"expr {tuple(expr.shape)} != ({len(cells)} cells, {len(genes)} genes)")

        def plain(values):  # numpy scalars would make the file unloadable with weights_only=True
            return [v.item() if hasattr(v, "item") else v for v in values]

        drug_meta = dict(drug_meta or {})
        if "compound_group" not in drug_meta:
            group, crep = compound_groups(molecules.names, molecules.smiles)
            drug_meta["compound_group"] = group
            report["compounds"] = crep
            if crep["drugs_merged"]:
                logger.info(
                    "compounds: %d drugs are %d compounds (%d stereo/salt variants grouped for drug-blind splits)",
                    crep["num_drugs"],
                    crep["num_compounds"],
                    crep["drugs_merged"],
                )

        return {
            "expr": expr.float().contiguous(),
            "genes": plain(genes),
            "expr_missing": None if expr_missing is None or not expr_missing.any() else expr_missing.nonzero().T,
            "gene_mask": gene_mask.bool(),
            "expr_stats": expr_stats,
            "cells": plain(cells),
            "cell_meta": {k: plain(v) for k, v in (cell_meta or {}).items()},
            "drug_meta": {k: plain(v) for k, v in drug_meta.items()},
            "molecules": molecules.to_dict(),
            "pairs": {
                "cell": cell.long(),
                "drug": drug.long(),
                "y": y.float(),
                "dose": dose.float(),
                "time": time.float(),
                **({} if split_cell is None else {"split_cell": split_cell.long()}),
            },
            "prior": None if prior is None else {"edge_index": prior[0].long(), "edge_weight": prior[1].float()},
            "report": json.dumps(report, default=str),
        }

    # ------------------------------------------------------------ access
    # ------------------------------------------------------------ subsets (PyG's ds[idx], ds.shuffle())
    def pair_rows(self) -> Optional[Tensor]:
        """The rows of the pair table this dataset is (``ds[idx]`` and ``ds.shuffle()`` are subsets in PyG's
        sense: ``indices()``), or ``None`` for the whole table. Every method of a subset speaks in the subset's
        own positions: ``num_pairs``, ``pairs``, ``get_idx_split``, ``loader``, ``summary``.
        """
        ind = getattr(self, "_indices", None)
        if ind is None:
            return None
        if isinstance(ind, Tensor):
            return ind.long().view(-1)
        if isinstance(ind, range):
            return torch.arange(ind.start, ind.stop, ind.step)
        return torch.as_tensor(list(ind), dtype=torch.long)

    def to_rows(self, index=None) -> Tensor:
        """Positions in this dataset (a subset's own, or a boolean mask over them) -> rows of the pair table."""
        idx = as_pair_index(index, self.num_pairs)
        rows = self.pair_rows()
        return idx if rows is None else rows[idx]

    @property
    def num_pairs(self) -> int:
        rows = self.pair_rows()
        return self.len() if rows is None else int(rows.numel())

    # ------------------------------------------------------------ PyG metadata
    @property
    def y(self) -> Tensor:
        """The targets of this dataset's pairs (``[num_pairs]``, or ``[num_pairs, N]`` profiles for LINCS)."""
        return self.pairs["y"]

    @property
    def genes(self) -> List[str]:
        """The gene names, in node order (``gene_space.genes``)."""
        return list(self.gene_space.genes)

    @property
    def num_node_features(self) -> int:
        """Features per gene node (``x [N, 1]``: one expression value)."""
        return 1

    @property
    def num_edge_features(self) -> int:
        """Features per prior edge: 0 (the prior's edges carry a weight, ``edge_weight``, not features).
        Drug bonds have ``num_bond_features``.
        """
        return 0

    @property
    def atom_feature_sizes(self) -> List[int]:
        """Categories per atom feature column of the drug graphs (size embeddings with these; ``AtomEncoder``)."""
        from csg2a_graph.data.molecules import ATOM_FEATURE_SIZES

        return list(ATOM_FEATURE_SIZES)

    @property
    def bond_feature_sizes(self) -> List[int]:
        from csg2a_graph.data.molecules import BOND_FEATURE_SIZES

        return list(BOND_FEATURE_SIZES)

    @property
    def num_atom_features(self) -> int:
        """Columns of ``drug_x`` / ``drug_graph.x`` (categorical; see ``atom_feature_sizes``)."""
        return len(self.atom_feature_sizes)

    @property
    def num_bond_features(self) -> int:
        """Columns of ``drug_edge_attr`` / ``drug_graph.edge_attr`` (categorical)."""
        return len(self.bond_feature_sizes)

    @property
    def num_classes(self) -> int:
        """PyG's ``num_classes`` without iterating every pair (PyG's default took 26 s on GDSC2 and returned
        184,889): 2 for 0/1 responders (TCGA), 1 for a regression target, ``N`` for profile targets (LINCS).
        """
        y = self._pairs["y"]
        if y.dim() > 1:
            return int(y.size(1))
        if y.numel() and bool(((y == 0) | (y == 1)).all()):
            return 2
        return 1

    @property
    def num_cells(self) -> int:
        return len(self.cells)

    @property
    def num_drugs(self) -> int:
        return len(self.molecules)

    @property
    def num_genes(self) -> int:
        return len(self.gene_space)

    @property
    def drugs(self) -> List[str]:
        return self.molecules.names

    @property
    def expression(self) -> Tensor:
        """``[num_cells, N]`` basal expression."""
        return self._expr

    @property
    def expression_missing(self) -> Tensor:
        """``[num_cells, N]`` bool: ``True`` where a measured gene's value was missing or
        non-finite in the raw matrix and holds the fill value instead.
        """
        out = torch.zeros(self._expr.shape, dtype=torch.bool)
        idx = (self._payload or {}).get("expr_missing")
        if idx is not None:
            out[idx[0], idx[1]] = True
        return out

    @property
    def pairs(self) -> Dict[str, Tensor]:
        """The pair table: ``cell, drug, y, dose, time`` tensors (a subset's rows only, in its order)."""
        rows = self.pair_rows()
        if rows is None:
            return self._pairs
        memo = self.__dict__.get("_subset_pairs")
        if memo is None or memo[0] is not self._indices:
            memo = (self._indices, {k: v[rows] for k, v in self._pairs.items()})
            self.__dict__["_subset_pairs"] = memo
        return memo[1]

    def len(self) -> int:
        """Rows of the whole pair table (PyG indexes a subset through ``indices()``); ``len(ds)`` and
        ``num_pairs`` count a subset's pairs.
        """
        return int(self._pairs["y"].size(0))

    def get(self, idx: int) -> PairData:
        p = self._pairs
        c, d = int(p["cell"][idx]), int(p["drug"][idx])
        mol = self.molecules.get(d)
        data = PairData(
            x=self._expr[c].unsqueeze(-1),
            y=p["y"][idx : idx + 1],
            dose=p["dose"][idx : idx + 1],
            time=p["time"][idx : idx + 1],
            cell_id=torch.tensor([c]),
            drug_id=torch.tensor([d]),
            pair_id=torch.tensor([int(idx)]),
            drug_x=mol.x,
            drug_edge_index=mol.edge_index,
            drug_edge_attr=mol.edge_attr,
        )
        if self.prior_edge_index is not None:
            data.edge_index, data.edge_weight = self.prior_edge_index, self.prior_edge_weight
        return data

    def get_idx_split(
        self, scheme: str = "mixed", fold: int = 0, n_folds: int = 10, seed: int = 0, group_compounds: bool = True
    ) -> Dict[str, Tensor]:
        """Pair indices of ``train``/``val``/``test`` (and ``dropped``) for one fold.

        See ``csg2a_graph.data.splits`` for the schemes (``mixed``,
        ``cell_blind``, ``drug_blind``, ``disjoint``, ``tissue_blind``; LPO/LCO/LDO/LTO aliases).
        With ``group_compounds`` (default) drugs that are one compound (same InChIKey
        connectivity block of the largest fragment: stereo-isomers, salts) are kept on one
        side of drug-blind and disjoint splits (``report["compounds"]`` lists the merges).
        """
        pairs = self.pairs  # a subset splits its own pairs; the indices are positions in it
        cell = pairs.get("split_cell", pairs["cell"])
        group = self.drug_meta.get("compound_group") if group_compounds else None
        tissue = None
        if canonical_scheme(scheme) == "tissue_blind":
            labels = self.cell_meta.get("tcga")
            if not labels or "split_cell" in pairs or not any(labels):
                raise ValueError(
                    f"{self.name}: tissue_blind needs a TCGA label per cell line (cell_meta['tcga']); "
                    "this dataset has none"
                )
            names = sorted(set(labels))
            tissue = torch.tensor([names.index(t) for t in labels])
        return make_split(
            cell,
            pairs["drug"],
            scheme,
            fold,
            n_folds,
            seed,
            drug_group=None if group is None else torch.tensor(group),
            cell_group=tissue,
        )

    def batched_prior(self, batch_size: int):
        """The prior repeated for ``batch_size`` samples as PyG nodes (``([2, B*E], [B*E])``; see
        ``csg2a_graph.data.batched_prior()``), for PyG convs over a batch's ``expr.reshape(-1, 1)``.
        """
        if self.prior_edge_index is None:
            raise ValueError(f"{self.name} has no prior (built with prior=None)")
        from csg2a_graph.data.prior import batched_prior

        return batched_prior(self.prior_edge_index, self.prior_edge_weight, batch_size, self.num_genes)

    def loader(self, index: Optional[Tensor] = None, batch_size: int = 256, **kwargs) -> PairLoader:
        return PairLoader(self, index, batch_size, **kwargs)

    def summary(self) -> Dict:
        """Counts for ``csg2a data info``."""
        rep = self.report
        return {
            "dataset": self.name,
            "y": self.y_name,
            "y_direction": self.y_direction,
            "num_samples": self.num_pairs,
            **({} if self.pair_rows() is None else {"subset_of": self.len()}),
            "num_cells": self.num_cells,
            "num_drugs": self.num_drugs,
            "num_genes": self.num_genes,
            "num_genes_requested": rep.get("genes", {}).get("num_genes_in_space", self.num_genes),
            "num_genes_matched": int(self.gene_mask.sum()),
            "prior_edges": 0 if self.prior_edge_index is None else int(self.prior_edge_index.size(1)),
            "dropped": rep.get("dropped", {}),
            "report": rep,
        }

    def __repr__(self) -> str:
        sub = "" if self.pair_rows() is None else f" of {self.len()}"
        return (
            f"{type(self).__name__}({self.num_pairs}{sub} pairs, {self.num_cells} cells, "
            f"{self.num_drugs} drugs, {self.num_genes} genes)"
        )


class ArrayPairs(PairDataset):
    """A pair dataset held in memory, from arrays: what ``csg2a explain`` / ``predict`` build from a
    user's pair table. Drugs are featurised from ``smiles`` (invalid SMILES raise, naming the drug).

    Args:
        expr: ``[cells, N]`` expression on the model's scale; ``genes``: its ``N`` gene names.
        cells, drugs, smiles: names of the rows of ``expr``, and drug names with their SMILES.
        cell, drug: ``[P]`` row of ``expr`` and drug position of each pair; ``dose``, ``time``: ``[P]``.
        y: ``[P]`` responses (``NaN`` when unknown; default all ``NaN``).
        prior: ``(edge_index, edge_weight)`` or ``None``; ``gene_mask``: measured genes (default all).
    """

    has_download = False
    has_process = False

    def __init__(
        self,
        expr: Tensor,
        genes: Sequence[str],
        cells: Sequence[str],
        drugs: Sequence[str],
        smiles: Sequence[str],
        cell: Tensor,
        drug: Tensor,
        dose: Tensor,
        time: Tensor,
        y: Optional[Tensor] = None,
        prior=None,
        gene_mask: Optional[Tensor] = None,
        name: str = "pairs",
    ):
        self.name = name
        self._payload = None
        Dataset.__init__(self, None, log=False)
        molecules, rep = MoleculeStore.from_smiles(list(drugs), list(smiles))
        if len(molecules) != len(drugs):
            raise ValueError(f"invalid SMILES: {rep.invalid}")
        cell, drug = torch.as_tensor(cell).long(), torch.as_tensor(drug).long()
        y = torch.full((cell.numel(),), float("nan")) if y is None else torch.as_tensor(y).float()
        mask = torch.ones(len(genes), dtype=torch.bool) if gene_mask is None else torch.as_tensor(gene_mask).bool()
        self._set_payload(
            self.make_payload(
                expr=torch.as_tensor(expr).float(),
                genes=list(genes),
                gene_mask=mask,
                cells=list(cells),
                molecules=molecules,
                cell=cell,
                drug=drug,
                y=y,
                dose=torch.as_tensor(dose).float(),
                time=torch.as_tensor(time).float(),
                prior=prior,
                report={"name": name, "in_memory": True},
                drug_meta={"name": list(drugs)},
            )
        )

    @property
    def options(self) -> Dict:
        return {"in_memory": self.name}


__all__ = [
    "PairData",
    "PairBatch",
    "PairLoader",
    "PairDataset",
    "ArrayPairs",
    "file_digest",
    "file_fingerprint",
    "options_tag",
    "write_atomic",
]
