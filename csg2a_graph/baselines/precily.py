"""Precily (Chawla et al., Nature Communications 2022): an MLP over pathway activity scores (GSVA of the
cell's expression) and drug descriptors. Written from ``docs/baselines.md`` (Precily).
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from csg2a_graph.baselines.deep import register_deep
from csg2a_graph.errors import InputKeyError
from csg2a_graph.nn.models.base import ResponseModel, register_model


class GSVA(nn.Module):
    r"""GSVA enrichment scores (Hänzelmann et al. 2013) of gene sets, with the per-gene CDF fitted on a
    reference cohort and stored, so that any new sample (a test cell line, a TCGA patient) is scored against
    the same reference:

    1. per gene, a Gaussian-kernel CDF over the reference samples (bandwidth sd/4):
       $\hat F_j(x) = \frac1S \sum_k \Phi((x - x_{kj}) / h_j)$;
    2. per sample, genes ranked by $\hat F$ (descending), weights $r_j = |p/2 - \mathrm{rank}_j|$;
    3. per set, a Kolmogorov–Smirnov-like walk (in-set steps $\propto r_j^\tau$, out-of-set steps
       $1/(p - |G|)$), score = max + min of the walk (``mx.diff = TRUE``).

    Sample ranks are computed on ``p`` = the genes of the reference (the measured genes).
    """

    def __init__(self, reference: Tensor, sets: List[List[int]], tau: float = 1.0):
        super().__init__()
        ref = reference.double()
        sd = ref.std(0).clamp_min(1e-8)
        self.register_buffer("reference", reference.float())
        self.register_buffer("bandwidth", (sd / 4).float())
        p = reference.size(1)
        member = torch.zeros(len(sets), p)
        for i, s in enumerate(sets):
            member[i, s] = 1
        self.register_buffer("member", member)
        self.tau = tau

    @torch.no_grad()
    def forward(self, x: Tensor, chunk: int = 64) -> Tensor:
        out = []
        for b in range(0, x.size(0), chunk):
            xb = x[b : b + chunk].float()
            z = (xb.unsqueeze(1) - self.reference.unsqueeze(0)) / self.bandwidth  # [b, S, p]
            cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2))).mean(1)  # [b, p]
            out.append(self._walk(cdf))
        return torch.cat(out)

    def _walk(self, stat: Tensor) -> Tensor:
        p = stat.size(1)
        order = stat.argsort(dim=1, descending=True)  # rank 1 = highest
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(1, p + 1, device=stat.device).expand_as(order))
        r = (p / 2 - rank.float()).abs() ** self.tau  # [b, p]
        r_sorted = r.gather(1, order)
        m = self.member[:, order].permute(1, 0, 2)  # [b, sets, p] membership in sorted order
        hit = m * r_sorted.unsqueeze(1)
        hit = hit / hit.sum(-1, keepdim=True).clamp_min(1e-12)
        miss = (1 - m) / (p - self.member.sum(1)).clamp_min(1).view(1, -1, 1)
        walk = (hit - miss).cumsum(-1)
        return walk.amax(-1).clamp_min(0) + walk.amin(-1).clamp_max(0)


def drug_descriptors(smiles: Sequence[str], dim: int = 100, seed: int = 0) -> Tensor:
    """The stand-in for SMILESVec (not obtainable offline): the first ``dim`` principal components of the
    drugs' Morgan fingerprints (r = 2, 2,048 bits), fitted on the given drugs, scaled to unit variance.
    """
    import numpy as np
    from sklearn.decomposition import PCA

    from csg2a_graph.data.molecules import morgan_fingerprints

    fp = morgan_fingerprints(list(smiles)).numpy()
    k = min(dim, len(smiles), fp.shape[1])
    z = PCA(n_components=k, random_state=seed).fit_transform(fp)
    z = z / z.std(0).clip(1e-8)
    out = np.zeros((len(smiles), dim), dtype=np.float32)
    out[:, :k] = z
    return torch.from_numpy(out)


@register_model("precily")
class Precily(ResponseModel):
    r"""Precily: `Chawla et al., "Gene expression based inference of cancer drug sensitivity",
    Nature Communications 13, 5680 (2022) <https://doi.org/10.1038/s41467-022-33291-z>`_.

    Input per pair: ``[GSVA scores of the MSigDB c2.cp v6.1 pathways ‖ 100 drug descriptors]`` ->
    Linear(in -> in) -> ReLU -> 512 -> 140 -> 200 -> 1 (ReLU, dropout 0.1; drevalpy's reading of the
    released models).

    Choices (stated): pathways keep the sets with at least ``min_size`` (5) genes of the gene space (the
    original scored all ~17k genes); ``GSVA`` is fitted on the dataset's cell lines (unsupervised,
    transductive, as Precily scored all CCLE lines at once) and stored with the model, so new samples are
    scored against it; SMILESVec is replaced by ``drug_descriptors()``; one network, not the 5-member
    ensemble; targets standardised internally.
    """

    def __init__(
        self,
        genes: Union[int, Sequence[str]],
        pathways: Dict[str, List[int]],
        num_reference: int,
        drug_smiles: Sequence[str],
        hidden: Sequence[int] = (512, 140, 200),
        dropout: float = 0.1,
        drug_dim: int = 100,
    ):
        super().__init__()
        n = genes if isinstance(genes, int) else len(genes)
        names = list(pathways)
        self.gsva = GSVA(torch.zeros(num_reference, n), [pathways[k] for k in names])
        self.register_buffer("descriptors", drug_descriptors(drug_smiles, drug_dim))
        self.smiles_index = {s: i for i, s in enumerate(drug_smiles)}
        d_in = len(names) + drug_dim
        layers: List[nn.Module] = [nn.Linear(d_in, d_in), nn.ReLU()]
        prev = d_in
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.ReLU(), nn.Dropout(dropout)]
            prev = h
        self.mlp = nn.Sequential(*layers, nn.Linear(prev, 1))
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))
        self._scores: Dict[bytes, Tensor] = {}
        self.save_hparams(
            genes=genes if isinstance(genes, int) else list(genes),
            pathways=dict(pathways),
            num_reference=num_reference,
            drug_smiles=list(drug_smiles),
            hidden=list(hidden),
            dropout=dropout,
            drug_dim=drug_dim,
        )

    @classmethod
    def from_dataset(cls, dataset, pathways_file: str, min_size: int = 5, **kw) -> "Precily":
        """Gene sets from a GMT (symbols resolved through the gene space's aliases), GSVA fitted on the
        dataset's cell lines over the measured genes.
        """
        from csg2a_graph.data.genesets import read_gmt

        space = dataset.gene_space
        measured = dataset.gene_mask
        sets = {}
        for name, genes in read_gmt(pathways_file).items():
            idx = sorted({space.index[g] for g in (space.resolve(x) for x in genes) if g is not None})
            idx = [i for i in idx if measured[i]]
            if len(idx) >= min_size:
                sets[name] = idx
        if not sets:
            raise ValueError(f"{pathways_file}: no gene set has {min_size} measured genes of the gene space")
        model = cls(space.genes, sets, dataset.num_cells, dataset.molecules.smiles, **kw)
        model.gsva.reference.copy_(dataset.expression)
        ref = dataset.expression.double()
        model.gsva.bandwidth.copy_((ref.std(0).clamp_min(1e-8) / 4).float())
        return model

    def pathway_scores(self, expr: Tensor) -> Tensor:
        """GSVA scores of each row, computed once per distinct expression row (cached)."""
        keys = [row.tobytes() for row in expr.detach().cpu().numpy()]
        new = [i for i, k in enumerate(keys) if k not in self._scores]
        if new:
            scores = self.gsva(expr[new].detach())
            for i, s in zip(new, scores):
                self._scores[keys[i]] = s.cpu()
        return torch.stack([self._scores[k] for k in keys]).to(expr.device)

    def forward(
        self, expr: Tensor, drug_graph, drug_index: Tensor, dose: Optional[Tensor] = None, time: Optional[Tensor] = None
    ) -> Tensor:
        idx = torch.tensor([self.smiles_index.get(s, -1) for s in drug_graph.smiles], device=expr.device)
        if (idx < 0).any():
            raise InputKeyError(
                "a drug unknown to this Precily model (its descriptors are fitted on the training dataset's drugs)"
            )
        d = self.descriptors[idx][drug_index]
        x = torch.cat([self.pathway_scores(expr), d], dim=1)
        return self.mlp(x).squeeze(-1) * self.y_std + self.y_mean

    def clear_cache(self) -> None:
        self._scores = {}


register_deep("precily", train={"lr": 1e-3, "batch_size": 128})

__all__ = ["Precily", "GSVA", "drug_descriptors"]
