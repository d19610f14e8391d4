"""PathDNN (Deng et al., J. Chem. Inf. Model. 2020): a pathway-masked first layer over the cell's pathway
genes and the drug's target genes. Written from ``docs/baselines.md`` (PathDNN); the inputs are an adaptation
(the original feature file and gene lists are not recoverable): KEGG gene sets (MSigDB c2.cp.kegg) over
the gene space, and binary GDSC drug targets.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from csg2a_graph.baselines.deep import register_deep
from csg2a_graph.nn.models.base import ResponseModel, register_model


class MaskedLinear(nn.Linear):
    """``y = x (W ⊙ M)^T + b`` with a fixed binary mask ``M [out, in]`` (masked weights get no gradient)."""

    def __init__(self, mask: Tensor):
        super().__init__(mask.size(1), mask.size(0))
        self.register_buffer("mask", mask.float())

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


@register_model("pathdnn")
class PathDNN(ResponseModel):
    r"""PathDNN: `Deng et al., "Pathway-Guided Deep Neural Network toward Interpretable and Predictive
    Modeling of Drug Sensitivity", J. Chem. Inf. Model. 60(10) 2020 <https://doi.org/10.1021/acs.jcim.0c00331>`_.

    Input per pair: ``[expression of the pathway genes ‖ binary target indicators of the drug]``; layer 1 is a
    ``MaskedLinear`` to one node per pathway (a gene or target feeds the pathways it belongs to), then
    ``P -> 256 -> 256 -> 1`` with dropout 0.2 before each ReLU.

    Args:
        genes: the gene space (expression columns).
        pathways: ``name -> genes`` (e.g. ``csg2a_graph.data.genesets.read_gmt()`` of the KEGG GMT); pathways
            without a member in either block are left out.
        drug_targets: ``SMILES -> target genes`` for the dataset's drugs (a drug absent here, or with no target in
            a pathway, has an all-zero drug block: the limitation the CSG²A paper names).
    Choices: the released loss broadcasts ``[B, 1]`` against ``[B]`` (everything trained toward the batch mean);
    we use the intended per-pair MSE. Targets standardised internally.
    """

    def __init__(
        self,
        genes: Union[int, Sequence[str]],
        pathways: Dict[str, List[str]],
        drug_targets: Dict[str, List[str]],
        hidden: int = 256,
        dropout: float = 0.2,
    ):
        super().__init__()
        genes = [str(g) for g in (range(genes) if isinstance(genes, int) else genes)]
        members = {g for v in pathways.values() for g in v}
        cell_genes = [g for g in genes if g in members]
        targets = sorted({t for v in drug_targets.values() for t in v if t in members})
        names = [p for p, v in pathways.items() if set(v) & (set(cell_genes) | set(targets))]
        if not names:
            raise ValueError("no pathway has a member among the genes or the drug targets")
        col = {g: i for i, g in enumerate(cell_genes)}
        tcol = {t: len(cell_genes) + i for i, t in enumerate(targets)}
        mask = torch.zeros(len(names), len(cell_genes) + len(targets))
        for i, p in enumerate(names):
            for g in pathways[p]:
                if g in col:
                    mask[i, col[g]] = 1
                if g in tcol:
                    mask[i, tcol[g]] = 1
        self.register_buffer("gene_index", torch.tensor([genes.index(g) for g in cell_genes], dtype=torch.long))
        self.targets_of = {s: [tcol[t] - len(cell_genes) for t in v if t in tcol] for s, v in drug_targets.items()}
        self.num_targets = len(targets)
        self.pathway_names = names
        self.layer1 = MaskedLinear(mask)
        self.mlp = nn.Sequential(
            nn.ReLU(),
            nn.Linear(len(names), hidden),
            nn.Dropout(dropout),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.Dropout(dropout),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))
        self.save_hparams(
            genes=genes,
            pathways={p: list(pathways[p]) for p in names},
            drug_targets={s: list(v) for s, v in drug_targets.items()},
            hidden=hidden,
            dropout=dropout,
        )

    @classmethod
    def from_dataset(cls, dataset, pathways_file: str, targets_file: str, min_size: int = 1, **kw) -> "PathDNN":
        """Build from a GMT file and a GDSC drug table (``Name``/``Drug Name``, ``Synonyms``, ``Target(s)``)."""
        from csg2a_graph.data.genesets import drug_targets, read_gmt

        pathways = read_gmt(pathways_file, min_size=min_size)
        members = {g for v in pathways.values() for g in v}
        names = dataset.drug_meta.get("name", dataset.drugs)
        by_name = drug_targets(targets_file, names, members)
        targets = {s: by_name[n] for s, n in zip(dataset.molecules.smiles, names)}
        return cls(dataset.gene_space.genes, pathways, targets, **kw)

    def drug_block(self, smiles: Sequence[str], device) -> Tensor:
        out = torch.zeros(len(smiles), self.num_targets, device=device)
        for i, s in enumerate(smiles):
            idx = self.targets_of.get(s, [])
            if idx:
                out[i, idx] = 1.0
        return out

    def forward(
        self, expr: Tensor, drug_graph, drug_index: Tensor, dose: Optional[Tensor] = None, time: Optional[Tensor] = None
    ) -> Tensor:
        d = self.drug_block(list(drug_graph.smiles), expr.device)[drug_index]
        x = torch.cat([expr[:, self.gene_index], d], dim=1)
        return self.mlp(self.layer1(x)).squeeze(-1) * self.y_std + self.y_mean


register_deep("pathdnn", train={"lr": 1e-4, "batch_size": 512, "weight_decay": 1e-4})

__all__ = ["PathDNN", "MaskedLinear"]
