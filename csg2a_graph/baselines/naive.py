"""Naive baselines: the honesty check every drug-response table needs (as in drevalpy).

ln IC50 varies mostly between drugs, so in the mixed scheme a drug-mean predictor already has a
high global PCC; the per-drug PCC (averaged over drugs) and per-cell PCC are the figures such a
predictor cannot game. Every runner fits on the training part of the fold only.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor

from csg2a_graph.registry import register_runner


def _group_mean(ids: Tensor, y: Tensor, n: int, fallback: float) -> Tensor:
    s = torch.zeros(n, dtype=torch.float64).index_add_(0, ids, y.double())
    c = torch.zeros(n, dtype=torch.float64).index_add_(0, ids, torch.ones_like(y, dtype=torch.float64))
    return torch.where(c > 0, s / c.clamp_min(1), torch.tensor(fallback, dtype=torch.float64))


@register_runner("global-mean")
def run_global_mean(dataset, split, options: Dict, run_dir: str, seed: int) -> Tensor:
    """The training mean for every pair."""
    y = dataset.pairs["y"][split["train"]]
    return torch.full((split["test"].numel(),), float(y.mean()))


@register_runner("drug-mean")
def run_drug_mean(dataset, split, options: Dict, run_dir: str, seed: int) -> Tensor:
    """Each drug's mean training response (the global mean for drugs unseen in training)."""
    p, tr, te = dataset.pairs, split["train"], split["test"]
    mean = _group_mean(p["drug"][tr], p["y"][tr], dataset.num_drugs, float(p["y"][tr].mean()))
    return mean[p["drug"][te]].float()


@register_runner("cell-mean")
def run_cell_mean(dataset, split, options: Dict, run_dir: str, seed: int) -> Tensor:
    """Each cell line's mean training response (the global mean for unseen cells)."""
    p, tr, te = dataset.pairs, split["train"], split["test"]
    mean = _group_mean(p["cell"][tr], p["y"][tr], dataset.num_cells, float(p["y"][tr].mean()))
    return mean[p["cell"][te]].float()


@register_runner("additive")
def run_additive(dataset, split, options: Dict, run_dir: str, seed: int) -> Tensor:
    """Overall mean + cell effect + drug effect, fitted by backfitting (alternating group means of the
    residual, ``options["iterations"]``, default 20); an unseen cell or drug contributes 0.
    """
    p, tr, te = dataset.pairs, split["train"], split["test"]
    y = p["y"][tr].double()
    c, d = p["cell"][tr], p["drug"][tr]
    mu = float(y.mean())
    ce = torch.zeros(dataset.num_cells, dtype=torch.float64)
    de = torch.zeros(dataset.num_drugs, dtype=torch.float64)
    for _ in range(int(options.get("iterations", 20))):
        de = _group_mean(d, (y - mu - ce[c]), dataset.num_drugs, 0.0)
        ce = _group_mean(c, (y - mu - de[d]), dataset.num_cells, 0.0)
    return (mu + ce[p["cell"][te]] + de[p["drug"][te]]).float()


@register_runner("tissue-mean")
def run_tissue_mean(dataset, split, options: Dict, run_dir: str, seed: int) -> Tensor:
    """Mean training response per (tissue, drug), tissue = the cell line's TCGA label; falls back to the
    drug mean, then the global mean, where a tissue or drug has no training pairs.
    """
    p, tr, te = dataset.pairs, split["train"], split["test"]
    labels = dataset.cell_meta.get("tcga") or [""] * dataset.num_cells
    names = sorted(set(labels))
    tissue = torch.tensor([names.index(t) for t in labels])
    key = tissue[p["cell"]] * dataset.num_drugs + p["drug"]
    n = len(names) * dataset.num_drugs
    y = p["y"][tr]
    s = torch.zeros(n, dtype=torch.float64).index_add_(0, key[tr], y.double())
    cnt = torch.zeros(n).index_add_(0, key[tr], torch.ones(tr.numel()))
    drug = run_drug_mean(dataset, split, options, run_dir, seed).double()
    kt = key[te]
    known = (cnt[kt] > 0) & (torch.tensor([labels[i] != "" for i in p["cell"][te].tolist()]))
    out = torch.where(known, s[kt] / cnt[kt].clamp_min(1), drug)
    return out.float()


NAIVE = ("global-mean", "drug-mean", "cell-mean", "additive", "tissue-mean")

__all__ = ["NAIVE", "run_global_mean", "run_drug_mean", "run_cell_mean", "run_additive", "run_tissue_mean"]
