"""Over-representation analysis: a gene list against gene sets (hypergeometric test, BH correction).

Enrichr's test, run offline on a GMT file. The *background* matters: a gene list drawn from the
model's genes (L1000 landmark genes, or the 484 of them GDSC measures) can only contain those
genes, so the universe is the model's gene space and every set is cut to it — without that,
sets rich in landmark genes look enriched merely because the list comes from the landmark panel.
``gseapy.enrich`` with ``background=`` gives the same p-values (tested).
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np


def benjamini_hochberg(p: Sequence[float]) -> np.ndarray:
    """BH-adjusted p-values (the step-up false discovery rate), in the input order."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(adj)
    out[order] = np.minimum(adj, 1.0)
    return out


def enrich(
    genes: Iterable[str],
    gene_sets: Union[str, Dict[str, List[str]]],
    background: Optional[Iterable[str]] = None,
    min_size: int = 3,
    min_overlap: int = 1,
):
    """Hypergeometric over-representation of ``genes`` in each of ``gene_sets`` (a dict or a GMT path).

    Args:
        genes: the query list (duplicates and genes outside the background are dropped).
        gene_sets: ``name -> genes`` or a GMT file.
        background: the universe (default: the union of all sets). Sets are intersected with it.
        min_size: leave out sets with fewer background genes; ``min_overlap``: report sets with at
            least this many query genes. The BH correction runs over the sets with at least one
            query gene (Enrichr's and gseapy's convention).

    Returns:
        DataFrame ``term, overlap ("k/n"), k, set_size, query_size, universe, p, adj_p, odds_ratio, genes``
        sorted by ``p``; ``p = P(X >= k)`` for ``X ~ Hypergeom(universe, set_size, query_size)``.
    """
    import pandas as pd
    from scipy.stats import hypergeom

    if isinstance(gene_sets, str):
        from csg2a_graph.data.genesets import read_gmt

        gene_sets = read_gmt(gene_sets)
    universe = set(background) if background is not None else {g for v in gene_sets.values() for g in v}
    if not universe:
        raise ValueError("empty background")
    query = set(genes) & universe
    dropped = len(set(genes)) - len(query)
    rows = []
    M, N = len(universe), len(query)
    for term, members in gene_sets.items():
        s = set(members) & universe
        if len(s) < min_size:
            continue
        hit = sorted(query & s)
        k = len(hit)
        p = float(hypergeom.sf(k - 1, M, len(s), N)) if k > 0 else 1.0
        denom = (len(s) - k) * (N - k)
        odds = (k * (M - len(s) - N + k)) / denom if denom > 0 else float("inf")
        rows.append(
            {
                "term": term,
                "overlap": f"{k}/{len(s)}",
                "k": k,
                "set_size": len(s),
                "query_size": N,
                "universe": M,
                "p": p,
                "odds_ratio": odds,
                "genes": ";".join(hit),
            }
        )
    df = pd.DataFrame(
        rows, columns=["term", "overlap", "k", "set_size", "query_size", "universe", "p", "odds_ratio", "genes"]
    )
    # BH over the sets the query touches (k >= 1), as Enrichr and gseapy do
    hit = (df.k >= 1).to_numpy()
    adj = np.ones(len(df))
    adj[hit] = benjamini_hochberg(df["p"].to_numpy()[hit])
    df.insert(7, "adj_p", adj)
    df = df[df.k >= max(1, min_overlap)].sort_values(["p", "term"]).reset_index(drop=True)
    df.attrs["query_genes_outside_background"] = dropped
    return df


def pathway_id(term: str) -> str:
    """The WikiPathways id at the end of an Enrichr term (``"Apoptosis WP254"`` -> ``"WP254"``), else ``""``."""
    last = term.rsplit(" ", 1)[-1]
    return last if last.startswith("WP") and last[2:].isdigit() else ""


__all__ = ["enrich", "benjamini_hochberg", "pathway_id"]
