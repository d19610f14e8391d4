"""Attention maps and mechanisms of action (paper 4.3, C.3, Fig. 3/6, Tables 4-5).

* ``moa_correlation()``: per-drug mean attention maps correlate more within a mechanism group
  than across groups? (the paper: 0.338 within vs 0.169 across). Groups are Drug Repurposing Hub
  MoA strings of the GDSC drugs (``gdsc_drug_moa_rephub.csv``; a drug with several MoAs belongs
  to each; two drugs are "within" when they share one) or GDSC's target pathway.
* ``attention_enrichment()``: genes of a drug's top-k attended pairs against WikiPathways.
* ``deg_enrichment()``: predicted perturbed expression of a drug's low- vs high-IC50 pairs
  -> differential genes -> enrichment of the over-expressed and the suppressed sets.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Set

import numpy as np
import torch

from csg2a_graph.analysis.common import drug_names
from csg2a_graph.analysis.enrich import enrich


def moa_groups(dataset, moa_file: str, column: str = "rephub_moa") -> Dict[int, Set[str]]:
    """``drug id -> set of MoA labels`` for the dataset's drugs found in ``moa_file`` (matched by
    normalised name; ``column`` ``rephub_moa`` or ``gdsc_target_pathway``; ``|`` separates several).
    """
    import pandas as pd

    from csg2a_graph.data.names import normalize_drug_name

    df = pd.read_csv(moa_file)
    for c in ("drug_name", column):
        if c not in df.columns:
            raise ValueError(f"{moa_file}: no column {c!r} (columns: {list(df.columns)})")
    labels: Dict[str, Set[str]] = {}
    for name, moa in zip(df["drug_name"], df[column]):
        if isinstance(moa, str) and moa.strip() and moa.strip().lower() not in ("other", "unclassified"):
            labels.setdefault(normalize_drug_name(name), set()).update(m.strip() for m in moa.split("|") if m.strip())
    out = {}
    for i, n in enumerate(drug_names(dataset)):
        s = labels.get(normalize_drug_name(n))
        if s:
            out[i] = s
    return out


def moa_correlation(
    maps: Dict[int, torch.Tensor], groups: Dict[int, Set[str]], names: Sequence[str], center: bool = True
):
    """Correlations of drug maps for pairs of drugs sharing an MoA (within) vs sharing none (across).

    Only drugs whose MoA group has at least two drugs with a map enter. Returns ``(stats dict, pair
    table)``; the test is one-sided Mann-Whitney U (within > across), with Welch's t beside it.
    """
    import pandas as pd
    from scipy.stats import mannwhitneyu, ttest_ind

    from csg2a_graph.explain.attention import map_correlations

    count: Dict[str, int] = {}
    for d in maps:
        for g in groups.get(d, ()):
            count[g] = count.get(g, 0) + 1
    keep = {d: {g for g in groups.get(d, ()) if count[g] >= 2} for d in maps}
    keep = {d: s for d, s in keep.items() if s}
    if len(keep) < 3:
        raise ValueError(f"only {len(keep)} drugs with a map share an MoA group with another: nothing to compare")
    ids, C = map_correlations({d: maps[d] for d in keep}, center=center)
    rows = []
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            da, db = ids[a], ids[b]
            shared = keep[da] & keep[db]
            rows.append(
                {
                    "drug_a": names[da],
                    "drug_b": names[db],
                    "r": float(C[a, b]),
                    "same_moa": bool(shared),
                    "shared_moa": "|".join(sorted(shared)),
                }
            )
    df = pd.DataFrame(rows)
    w, x = df.r[df.same_moa], df.r[~df.same_moa]
    u = mannwhitneyu(w, x, alternative="greater")
    t = ttest_ind(w, x, alternative="greater", equal_var=False)
    stats = {
        "drugs": len(ids),
        "groups": len({g for s in keep.values() for g in s}),
        "within_pairs": int(len(w)),
        "across_pairs": int(len(x)),
        "mean_r_within": float(w.mean()),
        "mean_r_across": float(x.mean()),
        "median_difference": float(w.median() - x.median()),
        "mannwhitney_p_one_sided": float(u.pvalue),
        "welch_p_one_sided": float(t.pvalue),
        "centered_maps": center,
        "paper": {"mean_r_within": 0.338, "mean_r_across": 0.169, "median_difference": 0.102},
    }
    return stats, df


def case_correlations(
    maps: Dict[int, torch.Tensor],
    dataset,
    drugs: Sequence[str] = ("Fulvestrant", "Tamoxifen", "5-Fluorouracil"),
    center_on: Optional[Dict[int, torch.Tensor]] = None,
):
    """Correlation matrix of the named drugs' maps (the paper's Fig. 3 case), raw and centred on the
    mean map of ``center_on`` (default: all ``maps``).
    """
    import pandas as pd

    from csg2a_graph.analysis.common import find_drug

    ids = [find_drug(dataset, d) for d in drugs]
    present = [(n, i) for n, i in zip(drugs, ids) if i is not None and i in maps]
    if len(present) < 2:
        return None
    ref = center_on if center_on is not None else maps
    N = next(iter(maps.values())).size(0)
    off = ~torch.eye(N, dtype=torch.bool)
    mean = torch.stack([m[off].double() for m in ref.values()]).mean(0)
    out = {}
    for label, sub in (("raw", 0.0), ("centred", mean)):
        X = torch.stack([maps[i][off].double() - sub for _, i in present])
        X = X - X.mean(1, keepdim=True)
        X = X / X.norm(dim=1, keepdim=True)
        out[label] = pd.DataFrame((X @ X.T).numpy(), index=[n for n, _ in present], columns=[n for n, _ in present])
    return out


def attention_enrichment(
    attention: torch.Tensor, genes: Sequence[str], gene_sets, k: int = 1000, background: Optional[Sequence[str]] = None
):
    """Genes of the ``k`` pairs of largest ``|S_ij|`` (paper A.6) -> over-representation (background:
    the map's genes). Returns ``(enrichment table, gene list)``.
    """
    from csg2a_graph.explain.attention import top_gene_pairs

    top = top_gene_pairs(attention, genes, k)
    gl = sorted(set(top.gene_i) | set(top.gene_j))
    return enrich(gl, gene_sets, background=list(background) if background is not None else list(genes)), gl


def deg_enrichment(
    perturbed: torch.Tensor,
    y: torch.Tensor,
    genes: Sequence[str],
    gene_sets,
    alpha: float = 0.05,
    max_genes: int = 100,
    background: Optional[Sequence[str]] = None,
):
    """Predicted perturbed profiles ``[P, n]`` of one drug's pairs, split at the median ln IC50 into
    low (sensitive) and high groups: Welch's t per gene, BH; genes higher in the low-IC50 group
    (``adj p < alpha``, at most ``max_genes`` by t) are *over-expressed*, lower are *suppressed*;
    each set is tested for enrichment against ``background`` (default ``genes``). Returns a dict of tables.
    """
    import pandas as pd
    from scipy.stats import ttest_ind

    from csg2a_graph.analysis.enrich import benjamini_hochberg

    X, y = perturbed.double().numpy(), y.double().numpy()
    low = y < np.median(y)
    t, p = ttest_ind(X[low], X[~low], axis=0, equal_var=False)
    t, p = np.nan_to_num(t), np.nan_to_num(p, nan=1.0)
    adj = benjamini_hochberg(p)
    deg = pd.DataFrame({"gene": list(genes), "t": t, "p": p, "adj_p": adj}).sort_values("t", ascending=False)
    up = deg[(deg.adj_p < alpha) & (deg.t > 0)].head(max_genes).gene.tolist()
    down = deg[(deg.adj_p < alpha) & (deg.t < 0)].sort_values("t").head(max_genes).gene.tolist()
    return {
        "deg": deg.reset_index(drop=True),
        "n_low": int(low.sum()),
        "n_high": int((~low).sum()),
        "over_expressed": enrich(up, gene_sets, background=list(background or genes)) if up else None,
        "suppressed": enrich(down, gene_sets, background=list(background or genes)) if down else None,
        "up_genes": up,
        "down_genes": down,
    }


def plot_moa(stats, pairs, case, maps_for_case: Dict[str, torch.Tensor], path: str) -> None:
    from csg2a_graph.analysis.common import pyplot

    plt = pyplot()
    n_case = len(maps_for_case)
    fig, ax = plt.subplots(1, n_case + 2, figsize=(3.4 * (n_case + 2), 3.4))
    if n_case:
        first = next(iter(maps_for_case.values()))
        var = torch.stack(list(maps_for_case.values())).var(0).sum(0)
        top = var.topk(min(60, first.size(0))).indices.sort().values
        off = ~torch.eye(top.numel(), dtype=torch.bool)
        vmax = max(float(m[top][:, top][off].abs().quantile(0.99)) for m in maps_for_case.values())
        for j, (name, m) in enumerate(maps_for_case.items()):
            sub = m[top][:, top].clone()
            sub[~off] = 0.0  # the diagonal |q_i|^2 dwarfs the pairs; shown blank
            ax[j].imshow(sub.numpy(), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax[j].set_title(f"{name}: mean map, 60 most variable genes\n(diagonal blanked)", fontsize=8)
            ax[j].axis("off")
    if case is not None:
        c = case["centred"]
        ax[n_case].imshow(c.to_numpy(), cmap="viridis", vmin=-1, vmax=1)
        ax[n_case].set_xticks(range(len(c)))
        ax[n_case].set_xticklabels(c.columns, rotation=45, fontsize=7)
        ax[n_case].set_yticks(range(len(c)))
        ax[n_case].set_yticklabels(c.index, fontsize=7)
        for a in range(len(c)):
            for b in range(len(c)):
                ax[n_case].text(b, a, f"{c.iloc[a, b]:.2f}", ha="center", va="center", fontsize=7, color="w")
        ax[n_case].set_title("r of centred maps", fontsize=8)
    else:
        ax[n_case].axis("off")
    last = ax[n_case + 1]
    last.boxplot([pairs.r[pairs.same_moa], pairs.r[~pairs.same_moa]], showfliers=False)
    last.set_xticks([1, 2])
    last.set_xticklabels(
        [f"same MoA\n(n={stats['within_pairs']})", f"different\n(n={stats['across_pairs']})"], fontsize=7
    )
    last.set_ylabel("r between drug maps")
    last.set_title(
        f"within {stats['mean_r_within']:.3f} vs across {stats['mean_r_across']:.3f}\n"
        f"one-sided MWU p={stats['mannwhitney_p_one_sided']:.2g}",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["moa_groups", "moa_correlation", "case_correlations", "attention_enrichment", "deg_enrichment", "plot_moa"]
