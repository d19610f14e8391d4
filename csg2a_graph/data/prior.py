"""STRING protein-interaction prior: parse official files, restrict to a gene space."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from csg2a_graph.data.gene_space import GeneSpace
from csg2a_graph.errors import InputError, InputTypeError
from csg2a_graph.io.files import sha256

logger = logging.getLogger(__name__)
PathLike = Union[str, Path]


def check_min_score(min_score: Any) -> Any:
    """STRING combined scores run from 0 to 1000 (150 low, 400 medium, 700 high, 900 highest confidence)."""
    import numbers

    if isinstance(min_score, bool) or not isinstance(min_score, numbers.Real) or min_score != min_score:
        raise InputTypeError(f"min_score must be a number in [0, 1000], got {min_score!r}")
    if not 0 <= float(min_score) <= 1000:
        raise ValueError(f"min_score must be in [0, 1000] (STRING combined scores; 0.9 is 900), got {min_score}")
    return min_score


def read_string_links(
    links: PathLike, min_score: int = 900, info: Optional[PathLike] = None, aliases: Optional[PathLike] = None
) -> Tuple[pd.DataFrame, Dict[str, List[str]]]:
    """Read ``9606.protein.links[.detailed].v12.0.txt[.gz]``.

    Returns ``(edges, names)``: ``edges`` has columns ``protein1, protein2, score``
    (``combined_score`` >= ``min_score``; STRING scores are 0..1000) and
    ``names[ENSP]`` lists the names a protein can be matched by: its
    ``preferred_name`` from ``protein.info`` first, then its aliases.
    """
    min_score = check_min_score(min_score)
    df = pd.read_csv(links, sep=r"\s+", engine="c", dtype={"protein1": str, "protein2": str})
    need = {"protein1", "protein2", "combined_score"}
    if not need <= set(df.columns):
        raise ValueError(
            f"{links}: not a STRING protein.links file; need columns {sorted(need)}, found {list(df.columns)[:10]}"
        )
    df = df.loc[df["combined_score"] >= min_score, ["protein1", "protein2", "combined_score"]]
    df = df.rename(columns={"combined_score": "score"})
    ids = set(df["protein1"]).union(df["protein2"])
    names: Dict[str, List[str]] = {i: [] for i in ids}
    if info is not None:
        inf = pd.read_csv(info, sep="\t", dtype=str)
        inf.columns = [c.lstrip("#") for c in inf.columns]
        if not {"string_protein_id", "preferred_name"} <= set(inf.columns):
            raise ValueError(f"{info}: not a STRING protein.info file (need string_protein_id, preferred_name)")
        for i, n in zip(inf["string_protein_id"], inf["preferred_name"]):
            if i in names:
                names[i].append(n)
    if aliases is not None:
        for chunk in pd.read_csv(aliases, sep="\t", dtype=str, chunksize=1_000_000):
            chunk.columns = [c.lstrip("#") for c in chunk.columns]
            chunk = chunk[chunk["string_protein_id"].isin(ids)]
            for i, a in zip(chunk["string_protein_id"], chunk["alias"]):
                names[i].append(a)
    if info is None and aliases is None:
        raise ValueError(
            "STRING links use ENSP ids: pass the protein.info (or protein.aliases) file to map them to gene symbols"
        )
    return df.reset_index(drop=True), names


def read_edge_list(path: PathLike) -> pd.DataFrame:
    """A plain symbol edge list (``source,target[,score]``; CSG2A's ``STRING_edges.csv``)."""
    with open(path) as f:
        head = f.readline()
    sep = "\t" if "\t" in head else ("," if "," in head else r"\s+")
    df = pd.read_csv(path, sep=sep, dtype=str)
    if df.shape[1] < 2:
        raise ValueError(f"{path}: an edge list needs two columns (source, target)")
    cols = list(df.columns)
    out = pd.DataFrame({"protein1": df[cols[0]].str.strip(), "protein2": df[cols[1]].str.strip()})
    out["score"] = pd.to_numeric(df[cols[2]]) if len(cols) > 2 else 1000.0
    return out


@dataclass
class PriorReport:
    num_genes: int = 0
    edges_read: int = 0
    edges_kept: int = 0  # undirected, between two genes of the space, no self loops
    edges_outside_space: int = 0
    duplicate_edges: int = 0
    self_loops_in_source: int = 0
    genes_touched: int = 0
    isolated_genes: int = 0
    num_components: int = 0
    largest_component: int = 0
    min_score: Optional[float] = None
    self_loops: bool = True
    #: where the edges came from (a file path, ``"shipped landmark prior"``, a STRING dataset) and its sha256
    source: Optional[str] = None
    sha256: Optional[str] = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def __str__(self) -> str:
        return (
            f"prior: {self.edges_kept} undirected edges of {self.edges_read} read kept "
            f"({self.edges_outside_space} outside the gene space, {self.duplicate_edges} duplicates); "
            f"{self.genes_touched}/{self.num_genes} genes touched, {self.isolated_genes} isolated; "
            f"{self.num_components} components (largest {self.largest_component})"
        )


def build_prior(
    edges: pd.DataFrame,
    gene_space: GeneSpace,
    names: Optional[Dict[str, List[str]]] = None,
    self_loops: bool = True,
    normalize_score: bool = True,
) -> Tuple[Tensor, Tensor, PriorReport]:
    """Restrict an edge table to ``gene_space`` and make it symmetric.

    Args:
        edges: columns ``protein1, protein2, score`` (symbols, or ENSP ids with ``names``).
        names: ENSP id -> candidate names, tried in order against the gene space.
        self_loops: add ``(i, i)`` with weight 1 for every gene (the paper's ``I + A``).
        normalize_score: weights are ``score / 1000`` (STRING scale) instead of raw.

    Returns:
        ``edge_index [2, E]`` (both directions, sorted by target then source),
        ``edge_weight [E]`` and a ``PriorReport``.
    """
    import networkx as nx

    rep = PriorReport(num_genes=len(gene_space), edges_read=len(edges), self_loops=self_loops)
    cache: Dict[str, int] = {}

    def idx(p: str) -> int:
        if p in cache:
            return cache[p]
        i = -1
        for cand in names.get(p, []) if names is not None else [p]:
            g = gene_space.resolve(cand)
            if g is not None:
                i = gene_space.index[g]
                break
        cache[p] = i
        return i

    src = np.fromiter((idx(p) for p in edges["protein1"]), dtype=np.int64, count=len(edges))
    dst = np.fromiter((idx(p) for p in edges["protein2"]), dtype=np.int64, count=len(edges))
    w = edges["score"].to_numpy(dtype=np.float32)
    if normalize_score:
        w = w / 1000.0
    inside = (src >= 0) & (dst >= 0)
    rep.edges_outside_space = int((~inside).sum())
    src, dst, w = src[inside], dst[inside], w[inside]
    loops = src == dst
    rep.self_loops_in_source = int(loops.sum())
    src, dst, w = src[~loops], dst[~loops], w[~loops]
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    und = pd.DataFrame({"lo": lo, "hi": hi, "w": w}).groupby(["lo", "hi"], sort=True)["w"].max()
    rep.duplicate_edges = int(len(lo) - len(und))
    rep.edges_kept = int(len(und))
    lo = und.index.get_level_values(0).to_numpy()
    hi = und.index.get_level_values(1).to_numpy()
    w = und.to_numpy().astype(np.float32)

    g = nx.Graph()
    g.add_nodes_from(range(len(gene_space)))
    g.add_edges_from(zip(lo.tolist(), hi.tolist()))
    touched = np.zeros(len(gene_space), dtype=bool)
    touched[lo] = True
    touched[hi] = True
    rep.genes_touched = int(touched.sum())
    rep.isolated_genes = len(gene_space) - rep.genes_touched
    comps = [len(c) for c in nx.connected_components(g)]
    rep.num_components = len(comps)
    rep.largest_component = max(comps) if comps else 0

    s = np.concatenate([lo, hi])
    d = np.concatenate([hi, lo])
    ww = np.concatenate([w, w])
    if self_loops:
        ar = np.arange(len(gene_space))
        s, d, ww = np.concatenate([s, ar]), np.concatenate([d, ar]), np.concatenate([ww, np.ones(len(ar), np.float32)])
    order = np.lexsort((s, d))
    edge_index = torch.from_numpy(np.stack([s[order], d[order]])).long()
    edge_weight = torch.from_numpy(ww[order].astype(np.float32))
    return edge_index, edge_weight, rep


def batched_prior(
    edge_index: Tensor, edge_weight: Optional[Tensor], batch_size: int, num_genes: int
) -> Tuple[Tensor, Optional[Tensor]]:
    """A gene-level prior ``[2, E]`` over ``num_genes`` genes repeated for ``batch_size`` samples whose genes are
    consecutive PyG nodes (sample ``b``'s gene ``i`` is node ``b * num_genes + i``): ``([2, B*E], [B*E])``. What a
    model needs to run PyG convs (``GCNConv``, ``GATConv``, flat ``CSG2AConv``) beside the dense layer.
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must be [2, E], got {tuple(edge_index.shape)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if edge_weight is not None and edge_weight.numel() != edge_index.size(1):
        raise ValueError(f"edge_weight has {edge_weight.numel()} entries for {edge_index.size(1)} edges")
    E = edge_index.size(1)
    off = (torch.arange(batch_size, device=edge_index.device) * num_genes).repeat_interleave(E)
    ei = edge_index.repeat(1, batch_size) + off
    return ei, None if edge_weight is None else edge_weight.repeat(batch_size)


class EmptyPriorError(InputError):
    """A prior that joins no two genes of the gene space (a wrong file, or a gene space it does not cover)."""


def resolve_prior(
    prior,
    space: GeneSpace,
    prior_file: Optional[PathLike] = None,
    prior_info: Optional[PathLike] = None,
    min_score: int = 900,
    self_loops: bool = True,
    report: Optional[dict] = None,
    source: Optional[str] = None,
):
    """The prior of a dataset over its gene space, from whatever the user gave.

    ``prior``: a STRING dataset (anything with ``restrict(space)``), or ``None``;
    otherwise ``prior_file`` (an edge list or a ``9606.protein.links`` file with
    ``prior_info``) is read. Returns ``(edge_index, edge_weight)`` or ``None``;
    the coverage report (with ``source`` and the file's ``sha256``) goes to ``report["prior"]``.

    A prior that keeps no edge between two genes of ``space`` is refused (``EmptyPriorError``, naming the
    source and a few of its gene names): training on it would silently be training without a prior.
    """
    if prior is not None and hasattr(prior, "restrict"):
        ei, ew, rep = prior.restrict(space)
        rep.source = f"STRING dataset {getattr(prior, 'root', '')}".strip()
        if hasattr(prior, "fingerprint"):
            rep.sha256 = str(prior.fingerprint())
        first = None
    elif prior_file:
        if not Path(prior_file).is_file():
            raise FileNotFoundError(f"prior file {prior_file} not found")
        if Path(prior_file).name.startswith("9606.protein.links"):
            edges, names = read_string_links(prior_file, min_score, info=prior_info)
            edges["score"] = 1000.0  # the paper's binary prior
            ei, ew, rep = build_prior(edges, space, names, self_loops=self_loops)
            rep.min_score = min_score
        else:
            try:
                edges = read_edge_list(prior_file)
            except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
                raise ValueError(
                    f"prior file {prior_file} is not an edge list (source,target[,score]) nor a "
                    f"STRING 9606.protein.links file: {e}"
                ) from e
            ei, ew, rep = build_prior(edges, space, self_loops=self_loops)
        first = None if rep.edges_kept else (edges["protein1"].head(3).tolist() if len(edges) else [])
        rep.source, rep.sha256 = source or str(prior_file), sha256(prior_file)
    else:
        if report is not None:
            report["prior"] = None
        return None
    if rep.edges_kept == 0:
        raise EmptyPriorError(
            f"the prior from {rep.source} joins no two genes of the gene space ({rep.edges_read} edges read, "
            f"{rep.edges_outside_space} name a gene outside the {len(space)} genes"
            + (f", e.g. {first}" if first else "")
            + "): training on it would be training without a prior. "
            "Give a STRING edge list (source,target[,score]) over gene symbols or a 9606.protein.links file "
            "with its protein.info, or prior=None (--no-prior) to train without one"
        )
    logger.info("%s (from %s)", rep, rep.source)
    if report is not None:
        report["prior"] = rep.to_dict()
    return ei, ew


__all__ = [
    "read_string_links",
    "read_edge_list",
    "build_prior",
    "resolve_prior",
    "PriorReport",
    "EmptyPriorError",
    "batched_prior",
]
