"""An ordered gene axis with alias resolution, and alignment of expression matrices to it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from csg2a_graph.errors import InputKeyError

logger = logging.getLogger(__name__)

_ID_MAP_ALIAS_COLUMNS = ("entrez_id", "symbol_lincs2020", "symbol_gse92742", "affy_probe_id", "ensembl_id")


def _key(s) -> str:
    s = str(s).strip()
    if s.endswith(".0") and s[:-2].isdigit():  # Entrez ids read as floats
        s = s[:-2]
    return s


@dataclass
class AlignReport:
    """What happened when a matrix was aligned to a ``GeneSpace``.

    Attributes:
        num_genes: size of the gene space asked for.
        matched: genes found under their own symbol.
        alias_matched: ``(column_in_matrix, gene)`` pairs found through an alias
            (old/new HGNC symbol, Entrez id, probe id, Ensembl id).
        missing: genes of the space absent from the matrix.
        unmapped: matrix columns that are not in the space under any name.
        duplicates: matrix columns dropped because an earlier column already
            supplied the same gene.
        missing_policy: ``"drop"`` (missing genes removed from the space) or
            ``"fill"`` (kept, filled with ``fill_value``, ``mask`` False).
    """

    num_genes: int
    matched: List[str] = field(default_factory=list)
    alias_matched: List[Tuple[str, str]] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unmapped: List[str] = field(default_factory=list)
    duplicates: List[str] = field(default_factory=list)
    missing_policy: str = "drop"
    fill_value: Optional[float] = None

    @property
    def num_found(self) -> int:
        return len(self.matched) + len(self.alias_matched)

    def to_dict(self) -> dict:
        return {
            "num_genes_in_space": self.num_genes,
            "num_matched": len(self.matched),
            "num_alias_matched": len(self.alias_matched),
            "num_missing": len(self.missing),
            "num_unmapped_columns": len(self.unmapped),
            "num_duplicate_columns": len(self.duplicates),
            "missing_policy": self.missing_policy,
            "fill_value": self.fill_value,
            "alias_matched": [list(p) for p in self.alias_matched],
            "missing": list(self.missing),
        }

    def __str__(self) -> str:
        what = (
            "dropped from the space" if self.missing_policy == "drop" else f"filled with {self.fill_value} and masked"
        )
        return (
            f"gene space: {self.num_found} of {self.num_genes} genes found "
            f"({len(self.matched)} by symbol, {len(self.alias_matched)} by alias); "
            f"{len(self.missing)} missing ({what}); "
            f"{len(self.unmapped)} matrix columns not in the space; "
            f"{len(self.duplicates)} duplicate columns ignored"
        )


@dataclass
class AlignedExpression:
    """Result of ``GeneSpace.align()``.

    Attributes:
        values: ``[num_samples, N]`` float tensor over ``gene_space``.
        mask: ``[N]`` bool, ``True`` where the gene was measured.
        gene_space: the space of ``values`` (smaller than the one asked for
            when ``missing="drop"``).
        samples: row labels, in order.
        report: the ``AlignReport``.
        missing: ``[num_samples, N]`` bool, ``True`` where a measured gene's value was
            missing or non-finite in the matrix and was filled (set by ``align_expression``).
        stats: the normalisation applied (set by ``align_expression``): ``{"method": "robust_z",
            "median": [N], "scale": [N], "clip": ...}``, NaN for genes not measured or not scalable;
            checkpoints keep it so new expression can be put on the training scale.
    """

    values: Tensor
    mask: Tensor
    gene_space: "GeneSpace"
    samples: List[str]
    report: AlignReport
    missing: Optional[Tensor] = None
    stats: Optional[dict] = None


class GeneSpace:
    r"""An ordered list of gene symbols, with aliases.

    Every expression matrix, prior graph and attention map in csg2a-graph lives
    on a gene space: position ``i`` of a vector is gene ``genes[i]``.

    Args:
        genes: gene symbols in order (unique).
        aliases: extra names → symbol in ``genes`` (old or new HGNC symbols,
            Entrez ids, probe ids). Aliases pointing outside the space are ignored.

    Example:
        >>> gs = GeneSpace.landmark()          # the 978 L1000 landmark genes
        >>> aligned = gs.align(expression_df)  # cells x genes DataFrame
        >>> print(aligned.report)
    """

    def __init__(self, genes: Sequence[str], aliases: Optional[Mapping[str, str]] = None):
        genes = list(genes)
        bad = [
            i
            for i, g in enumerate(genes)
            if g is None
            or (isinstance(g, float) and g != g)
            or not str(g).strip()
            or str(g).strip().lower() in ("nan", "none")
        ]
        if bad:
            raise ValueError(
                f"GeneSpace: {len(bad)} gene names are missing (None, NaN or empty) at positions "
                f"{bad[:10]}; remove them or give the symbols"
            )
        genes = [_key(g) for g in genes]
        if len(genes) == 0:
            raise ValueError("GeneSpace needs at least one gene")
        seen: Dict[str, int] = {}
        dups = []
        for i, g in enumerate(genes):
            if g in seen:
                dups.append(g)
            seen.setdefault(g, i)
        if dups:
            raise ValueError(f"GeneSpace genes must be unique; duplicated: {sorted(set(dups))[:10]}")
        self.genes: List[str] = genes
        self.index: Dict[str, int] = seen
        self.aliases: Dict[str, str] = {}
        if aliases:
            self.add_aliases(aliases)

    # ------------------------------------------------------------------ build
    @classmethod
    def landmark(cls) -> "GeneSpace":
        """The 978 LINCS L1000 landmark genes (current HGNC symbols, the CSG2A order).

        Aliases: LINCS 2020 and GSE92742 symbols, Entrez ids, Affymetrix probe ids
        and Ensembl ids, from the packaged ``landmark_gene_id_map.csv``.
        """
        res = resources.files("csg2a_graph.data") / "resources"
        genes = [g for g in (res / "landmark_genes.txt").read_text().split() if g]
        gs = cls(genes)
        with resources.as_file(res / "landmark_gene_id_map.csv") as p:
            gs.add_alias_table(p)
        return gs

    @classmethod
    def from_file(cls, path: Union[str, Path], alias_table: Optional[Union[str, Path]] = None) -> "GeneSpace":
        """One symbol per line (blank lines and ``#`` comments ignored)."""
        lines = Path(path).read_text().splitlines()
        genes = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
        gs = cls(genes)
        if alias_table is not None:
            gs.add_alias_table(alias_table)
        return gs

    @classmethod
    def from_gene_info(cls, path: Union[str, Path], landmark_only: bool = True) -> "GeneSpace":
        """From a LINCS gene-info table.

        Understands GSE92742/GSE70138 ``gene_info`` (``pr_gene_id, pr_gene_symbol,
        pr_is_lm``) and LINCS 2020 ``geneinfo_beta`` (``gene_id, gene_symbol,
        feature_space``). Entrez ids (and Ensembl ids when present) become aliases.
        """
        df = pd.read_csv(path, sep=None, engine="python", dtype=str)
        cols = set(df.columns)
        if {"pr_gene_id", "pr_gene_symbol"} <= cols:
            sym, eid = "pr_gene_symbol", "pr_gene_id"
            if landmark_only:
                if "pr_is_lm" not in cols:
                    raise ValueError(f"{path}: landmark_only=True needs a 'pr_is_lm' column")
                df = df[df["pr_is_lm"].astype(str).str.strip().isin(["1", "1.0", "True", "true"])]
        elif {"gene_id", "gene_symbol"} <= cols:
            sym, eid = "gene_symbol", "gene_id"
            if landmark_only and "feature_space" in cols:
                df = df[df["feature_space"].str.strip() == "landmark"]
        else:
            raise ValueError(
                f"{path}: not a LINCS gene-info table; expected columns pr_gene_id/pr_gene_symbol "
                f"or gene_id/gene_symbol, found {sorted(cols)[:10]}"
            )
        gs = cls(df[sym].tolist())
        alias = dict(zip(df[eid].map(_key), df[sym].map(_key)))
        if "ensembl_id" in cols:
            alias.update({_key(e): _key(s) for e, s in zip(df["ensembl_id"], df[sym]) if isinstance(e, str)})
        gs.add_aliases(alias)
        return gs

    def add_aliases(self, aliases: Mapping[str, str]) -> "GeneSpace":
        for a, g in aliases.items():
            a, g = _key(a), _key(g)
            if g in self.index and a not in self.index and a and a.lower() != "nan":
                self.aliases.setdefault(a, g)
        return self

    def add_alias_table(self, path: Union[str, Path]) -> "GeneSpace":
        """Add aliases from a table whose first column holds this space's symbols
        (e.g. ``landmark_gene_id_map.csv``) and whose other columns are alias ids.
        """
        df = pd.read_csv(path, dtype=str)
        sym = df.columns[0]
        for col in df.columns[1:]:
            self.add_aliases({a: s for a, s in zip(df[col], df[sym]) if isinstance(a, str)})
        return self

    # ---------------------------------------------------------------- lookup
    def __len__(self) -> int:
        return len(self.genes)

    def __iter__(self) -> Iterator[str]:
        return iter(self.genes)

    def __getitem__(self, i):
        return self.genes[i]

    def __contains__(self, name) -> bool:
        return self.resolve(name) is not None

    def __eq__(self, other) -> bool:
        return isinstance(other, GeneSpace) and self.genes == other.genes

    def __repr__(self) -> str:
        head = ", ".join(self.genes[:3])
        return f"GeneSpace({len(self)} genes: {head}, ...; {len(self.aliases)} aliases)"

    def resolve(self, name) -> Optional[str]:
        """The symbol in this space that ``name`` refers to, or ``None``."""
        k = _key(name)
        if k in self.index:
            return k
        hit = self.aliases.get(k)
        if hit is None and k.startswith("ENS") and "." in k:  # a versioned Ensembl id (ENSG00000141510.18)
            base, _, version = k.partition(".")
            if version.isdigit():
                hit = self.aliases.get(base)
        return hit

    def indices(self, names: Iterable[str], strict: bool = True) -> Tensor:
        """Positions of ``names``; unknown names raise (``strict``) or give ``-1``."""
        out, bad = [], []
        for n in names:
            g = self.resolve(n)
            if g is None:
                bad.append(n)
                out.append(-1)
            else:
                out.append(self.index[g])
        if bad and strict:
            raise InputKeyError(f"{len(bad)} gene(s) not in the gene space: {bad[:10]}")
        return torch.tensor(out, dtype=torch.long)

    def subset(self, genes: Iterable[str]) -> "GeneSpace":
        """A smaller space keeping this order and the aliases that still apply."""
        keep = set(self.resolve(g) for g in genes) - {None}
        gs = GeneSpace([g for g in self.genes if g in keep])
        gs.add_aliases({a: g for a, g in self.aliases.items() if g in keep})
        return gs

    def to_dict(self) -> dict:
        return {"genes": list(self.genes), "aliases": dict(self.aliases)}

    @classmethod
    def from_dict(cls, d: dict) -> "GeneSpace":
        return cls(d["genes"], d.get("aliases"))

    # ----------------------------------------------------------------- align
    def align(
        self,
        matrix: Union[pd.DataFrame, Tuple[np.ndarray, Sequence[str], Sequence[str]]],
        missing: str = "drop",
        fill_value: float = 0.0,
    ) -> AlignedExpression:
        """Align a ``samples x genes`` matrix to this space.

        Args:
            matrix: a DataFrame (index = samples, columns = gene names in any
                alias) or ``(values, samples, gene_names)``.
            missing: ``"drop"`` removes genes the matrix lacks from the returned
                space; ``"fill"`` keeps them, filled with ``fill_value`` and
                ``mask=False``. Nothing is dropped without the report saying so.
            fill_value: value for missing genes when ``missing="fill"``.
        """
        if missing not in ("drop", "fill"):
            raise ValueError(f"missing must be 'drop' or 'fill', got {missing!r}")
        if isinstance(matrix, pd.DataFrame):
            values = matrix.to_numpy(dtype=np.float32, copy=False)
            samples = [str(s) for s in matrix.index]
            cols = list(matrix.columns)
        else:
            raw_values, raw_samples, raw_cols = matrix
            values = np.asarray(raw_values, dtype=np.float32)
            samples = [str(s) for s in raw_samples]
            cols = list(raw_cols)
        if values.shape != (len(samples), len(cols)):
            raise ValueError(f"matrix shape {values.shape} does not match {len(samples)} samples x {len(cols)} genes")

        report = AlignReport(
            num_genes=len(self), missing_policy=missing, fill_value=fill_value if missing == "fill" else None
        )
        src = np.full(len(self), -1, dtype=np.int64)
        for j, c in enumerate(cols):
            c = _key(c)
            g = self.resolve(c)
            if g is None:
                report.unmapped.append(c)
                continue
            i = self.index[g]
            if src[i] >= 0:
                report.duplicates.append(c)
                continue
            src[i] = j
            if g == c:
                report.matched.append(g)
            else:
                report.alias_matched.append((c, g))
        found = src >= 0
        report.missing = [g for g, f in zip(self.genes, found) if not f]
        if not found.any():
            raise ValueError(
                f"none of the {len(cols)} matrix columns is in the gene space "
                f"(first columns: {[str(c) for c in cols[:5]]}); is the matrix transposed?"
            )
        if missing == "drop":
            space = self if found.all() else GeneSpace([g for g, f in zip(self.genes, found) if f])
            if space is not self:
                space.add_aliases({a: g for a, g in self.aliases.items() if g in space.index})
            out = values[:, src[found]]
            mask = torch.ones(len(space), dtype=torch.bool)
        else:
            space = self
            out = np.full((len(samples), len(self)), fill_value, dtype=np.float32)
            out[:, found] = values[:, src[found]]
            mask = torch.from_numpy(found.copy())
        if report.missing:
            logger.info("%s", report)
        return AlignedExpression(torch.from_numpy(np.ascontiguousarray(out)), mask, space, samples, report)


__all__ = ["GeneSpace", "AlignReport", "AlignedExpression"]
