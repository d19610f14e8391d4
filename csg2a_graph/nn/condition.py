r"""The chemical condition encoder (CCE) of CSG²A (paper A.1).

$$
\mathcal{D}_{S,d,t} = f\big([\mathrm{enc}(S),\; \mathrm{Lin}_{dose}(d/100),\; \mathrm{Lin}_{time}(t/72)]\big) \in \mathbb{R}^{N}
$$

with ``f`` the released block ``Dropout(ReLU(BatchNorm1d(Linear)))`` (``block="linear-bn"``: ``D >= 0``,
normalised per gene over the batch in training mode) or a two-layer MLP (``block="mlp"``, signed ``D``).
``enc`` is a drug encoder by name (``csg2a_graph.nn.encoders``). Each distinct drug of a
batch is encoded once (the loader's drug batch + ``drug_index``), never once per pair.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from csg2a_graph.nn.encoders import build_drug_encoder

logger = logging.getLogger(__name__)

DOSE_SCALE_UM = 100.0
TIME_SCALE_H = 72.0


CONDITION_BLOCKS = ("linear-bn", "mlp")


class ChemicalConditionEncoder(nn.Module):
    """Drug encoder + dose/time embeddings -> one value per gene.

    Args:
        num_genes: ``N``.
        drug_encoder: a name of ``csg2a_graph.nn.encoders.DRUG_ENCODERS``.
        drug_encoder_kwargs: its arguments (``weights=PATH`` for ``pretrained-gcn`` / ``mat``).
        hidden_channels: width of the MLP's hidden layer (``block="mlp"``).
        dropout: dropout of the block.
        bias: bias terms in the block's linear layers (the released block has none).
        block: ``"linear-bn"`` — ``Linear(E+4 -> N, no bias) -> BatchNorm1d(N) -> ReLU -> Dropout`` (the
            released code; its keys ``comp_proj.0`` / ``comp_proj.1`` are ``mlp`` ``[0]`` / ``[1]``);
            ``"mlp"`` — ``Linear -> ReLU -> Dropout -> Linear``.
        dose_time_bias: bias of the ``Linear(1, 2)`` dose and time embeddings (released: ``True``).
        embedding_norm: standardise each drug embedding (a LayerNorm without parameters)
            before the MLP. Mean-pooled atom states of a pretrained encoder are small and
            differ little between drugs (the pretrained GCN's pooled states: mean |x| 0.075);
            normalised, the drug identity reaches ``D`` at unit scale.

    When ``cache_outputs`` is set and the module is in eval mode (a frozen encoder), the
    output is cached per (SMILES, dose, time): a batch whose conditions are all cached costs a
    dictionary lookup and no encoder call.
    """

    drug: Any  # a drug encoder module (``out_channels``: its width)

    def __init__(
        self,
        num_genes: int,
        drug_encoder: str = "gin",
        drug_encoder_kwargs: Optional[Dict] = None,
        hidden_channels: int = 512,
        dropout: float = 0.1,
        bias: bool = False,
        embedding_norm: bool = True,
        block: str = "mlp",
        dose_time_bias: bool = False,
    ):
        super().__init__()
        if block not in CONDITION_BLOCKS:
            raise ValueError(f"block must be one of {CONDITION_BLOCKS}, got {block!r}")
        self.block = block
        self.drug_encoder_name = drug_encoder
        self.drug = build_drug_encoder(drug_encoder, **(drug_encoder_kwargs or {}))
        self.embedding_norm = (
            nn.LayerNorm(self.drug.out_channels, elementwise_affine=False) if embedding_norm else nn.Identity()
        )
        self.w_dose = nn.Linear(1, 2, bias=dose_time_bias)
        self.w_time = nn.Linear(1, 2, bias=dose_time_bias)
        width = self.drug.out_channels + 4
        if block == "linear-bn":
            self.mlp = nn.Sequential(
                nn.Linear(width, num_genes, bias=bias), nn.BatchNorm1d(num_genes), nn.ReLU(), nn.Dropout(dropout)
            )
        else:
            self.mlp = nn.Sequential(
                nn.Linear(width, hidden_channels, bias=bias),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden_channels, num_genes, bias=bias),
            )
        self.cache_outputs = False
        self._cache: Dict[Tuple[str, float, float], Tensor] = {}

    def clear_cache(self) -> None:
        self._cache.clear()

    def train(self, mode: bool = True):
        if mode and any(p.requires_grad for p in self.parameters()):
            self._cache.clear()  # trainable parameters may change from here on; frozen ones keep the cache
        return super().train(mode)

    def encode(self, drug_graph, drug_index: Tensor, dose: Tensor, time: Tensor) -> Tensor:
        emb = self.embedding_norm(self.drug(drug_graph))[drug_index]  # [B, E], one pass per distinct drug
        d = self.w_dose((dose / DOSE_SCALE_UM).view(-1, 1).to(emb.dtype))
        t = self.w_time((time / TIME_SCALE_H).view(-1, 1).to(emb.dtype))
        return self.mlp(torch.cat([emb, d, t], -1))

    def forward(self, drug_graph, drug_index: Tensor, dose: Tensor, time: Tensor) -> Tensor:
        """``D [B, N]`` for pairs whose drugs are ``drug_graph[drug_index]``."""
        smiles = getattr(drug_graph, "smiles", None)
        if not (self.cache_outputs and not self.training and smiles is not None):
            return self.encode(drug_graph, drug_index, dose, time)
        keys = list(zip((smiles[i] for i in drug_index.tolist()), dose.tolist(), time.tolist()))
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        if missing:
            sel = torch.tensor(missing, device=drug_index.device)
            with torch.no_grad():
                out = self.encode(drug_graph, drug_index[sel], dose[sel], time[sel])
            for i, row in zip(missing, out):
                self._cache[keys[i]] = row
        return torch.stack([self._cache[k] for k in keys])


__all__ = ["ChemicalConditionEncoder", "CONDITION_BLOCKS", "DOSE_SCALE_UM", "TIME_SCALE_H"]
