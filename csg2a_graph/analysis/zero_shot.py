"""Zero-shot (paper C.2, Fig. 5): does the LINCS-pretrained network move sensitive lines further?

With the pretraining network only (no fine-tuning), each GDSC pair's perturbed profile is predicted
at the pair's dose and time (10 µM, 72 h) and its Euclidean distance from the basal profile taken
over the genes the dataset measured. Pairs are *sensitive* when their ln IC50 is below their cell
line's mean. Reported: a one-sided t-test (sensitive further than resistant; Welch's beside
Student's), and per cell line the Pearson correlation of distance with ln IC50 (the paper: 756 of
803 lines, 94.1 %, negative).
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import torch


@torch.no_grad()
def perturbation_distance(
    model, dataset, index=None, batch_size: int = 512, fill_value: float = 0.0, progress: bool = True
) -> torch.Tensor:
    """``||ĝ - g0||`` per pair over the dataset's measured genes, with the pretraining network ``model``.

    The dataset's genes are placed into the network's gene space (absent genes take ``fill_value``,
    the population median after robust z, as in fine-tuning).
    """
    from csg2a_graph.data.pairs import as_pair_index
    from csg2a_graph.nn.models.csg2a import CSG2A

    if not isinstance(model, CSG2A):
        raise ValueError(f"zero-shot needs the LINCS-pretrained CSG2A network, got {type(model).__name__}")
    pos_of = {g: i for i, g in enumerate(model.genes)}
    genes = list(dataset.gene_space.genes)
    missing = [g for g in genes if g not in pos_of]
    if missing:
        raise ValueError(f"{len(missing)} dataset genes are not in the network's gene space, e.g. {missing[:5]}")
    pos = torch.tensor([pos_of[g] for g in genes])
    measured = dataset.gene_mask.bool()
    device = next(model.parameters()).device
    model = model.eval()
    index = as_pair_index(index, dataset.num_pairs)
    loader = dataset.loader(index, batch_size=batch_size)
    it = loader
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(loader, total=len(loader), desc="perturbed profiles", unit="batch")
    out = []
    for b in it:
        b = b.to(device)
        g = b.expr.new_full((b.expr.size(0), model.num_genes), fill_value)
        g[:, pos.to(device)] = b.expr.float()
        pert = model(g, b.drug_graph, b.drug_index, b.dose, b.time)
        sel = pos[measured].to(device)
        out.append((pert[:, sel] - g[:, sel]).norm(dim=1).cpu())
    return torch.cat(out)


def zero_shot_stats(dataset, index, distance: torch.Tensor, min_pairs: int = 5) -> Dict:
    """Group test and per-line correlations; returns a dict and the per-line table (``"per_cell"``)."""
    import pandas as pd
    from scipy.stats import pearsonr, ttest_ind

    from csg2a_graph.data.pairs import as_pair_index

    index = as_pair_index(index, dataset.num_pairs)
    p = dataset.pairs
    df = pd.DataFrame(
        {"cell": p["cell"][index].numpy(), "y": p["y"][index].numpy(), "distance": distance.numpy().astype(np.float64)}
    )
    df["sensitive"] = df.y < df.groupby("cell").y.transform("mean")
    s, r = df.distance[df.sensitive], df.distance[~df.sensitive]
    t = ttest_ind(s, r, alternative="greater")
    w = ttest_ind(s, r, alternative="greater", equal_var=False)
    rows = []
    for c, g in df.groupby("cell"):
        if len(g) >= min_pairs and g.y.std() > 0 and g.distance.std() > 0:
            rows.append({"cell": dataset.cells[c], "n_pairs": len(g), "pcc": float(pearsonr(g.distance, g.y)[0])})
    per_cell = pd.DataFrame(rows)
    neg = int((per_cell.pcc < 0).sum()) if len(per_cell) else 0
    return {
        "n_pairs": len(df),
        "n_sensitive": int(df.sensitive.sum()),
        "n_resistant": int((~df.sensitive).sum()),
        "mean_distance_sensitive": float(s.mean()),
        "mean_distance_resistant": float(r.mean()),
        "t": float(t.statistic),
        "p_one_sided": float(t.pvalue),
        "p_welch_one_sided": float(w.pvalue),
        "cell_lines": len(per_cell),
        "cell_lines_negative": neg,
        "fraction_negative": neg / len(per_cell) if len(per_cell) else float("nan"),
        "median_pcc": float(per_cell.pcc.median()) if len(per_cell) else float("nan"),
        "pooled_pcc": float(pearsonr(df.distance, df.y)[0]),
        "paper": {"cell_lines": 803, "cell_lines_negative": 756, "fraction_negative": 0.941, "p_one_sided": 5.1e-97},
        "per_cell": per_cell,
        "pairs": df,
    }


def plot_zero_shot(stats: Dict, path: str) -> None:
    from csg2a_graph.analysis.common import pyplot

    plt = pyplot()
    df, pc = stats["pairs"], stats["per_cell"]
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.6))
    ax[0].boxplot([df.distance[df.sensitive], df.distance[~df.sensitive]], showfliers=False)
    ax[0].set_xticks([1, 2])
    ax[0].set_xticklabels(["sensitive", "resistant"])
    ax[0].set_ylabel("||perturbed - basal||")
    ax[0].set_title(f"one-sided t-test p = {stats['p_one_sided']:.2g}", fontsize=9)
    ax[1].hist(pc.pcc, bins=40, color="C0")
    ax[1].axvline(0, color="k", lw=0.8)
    ax[1].set_xlabel("per-line PCC(distance, ln IC50)")
    ax[1].set_title(
        f"{stats['cell_lines_negative']} of {stats['cell_lines']} lines negative "
        f"({100 * stats['fraction_negative']:.1f}%; paper 94.1%)",
        fontsize=9,
    )
    sub = df.sample(min(len(df), 5000), random_state=0)
    ax[2].scatter(sub.distance, sub.y, s=2, alpha=0.3)
    ax[2].set_xlabel("||perturbed - basal||")
    ax[2].set_ylabel("ln IC50")
    ax[2].set_title(f"pooled PCC {stats['pooled_pcc']:.3f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["perturbation_distance", "zero_shot_stats", "plot_zero_shot"]
