"""A Morgan-fingerprint MLP drug encoder; fingerprints are computed once per SMILES and cached."""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor, nn

from csg2a_graph.data.molecules import morgan_fingerprints


class MorganEncoder(nn.Module):
    """ECFP-like bits (``radius``, ``n_bits``) -> MLP. Reads ``graph.smiles`` (one per molecule)."""

    def __init__(self, hidden_channels: int = 256, radius: int = 2, n_bits: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.out_channels, self.radius, self.n_bits = hidden_channels, radius, n_bits
        self.mlp = nn.Sequential(
            nn.Linear(n_bits, hidden_channels),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_channels, hidden_channels),
        )
        self._fp: Dict[str, Tensor] = {}

    def fingerprints(self, smiles) -> Tensor:
        missing = [s for s in smiles if s not in self._fp]
        if missing:
            for s, fp in zip(missing, morgan_fingerprints(missing, self.radius, self.n_bits)):
                self._fp[s] = fp
        return torch.stack([self._fp[s] for s in smiles])

    def forward(self, graph) -> Tensor:
        smiles = getattr(graph, "smiles", None)
        if smiles is None:
            raise ValueError("the Morgan encoder needs graph.smiles (MoleculeStore.batch sets it)")
        fp = self.fingerprints(list(smiles)).to(next(self.mlp.parameters()).device)
        return self.mlp(fp)


__all__ = ["MorganEncoder"]
