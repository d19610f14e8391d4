"""Drug encoders by name. Each maps a PyG ``Batch`` of molecules from the store to ``[num_molecules, out_channels]``.

========================  ==========================================================================
name                      encoder
========================  ==========================================================================
``pretrained-gcn``        Hu et al. (ICLR 2020) 5-layer GCN, ChEMBL-supervised + context prediction
``gin``                   GINE layers from scratch over the store's atom/bond features
``morgan``                Morgan fingerprint MLP
``mat``                   Molecule Attention Transformer architecture (random init or ``weights=PATH``)
``precomputed``           your own vectors per compound (``embeddings=`` file or mapping; by SMILES or name)
========================  ==========================================================================
"""

from __future__ import annotations

from typing import Callable, Dict

from torch import nn

from csg2a_graph.nn.encoders.base import pool_atoms
from csg2a_graph.nn.encoders.gin import GINEncoder
from csg2a_graph.nn.encoders.mat import MATEncoder
from csg2a_graph.nn.encoders.morgan import MorganEncoder
from csg2a_graph.nn.encoders.precomputed import PrecomputedEncoder, read_embeddings
from csg2a_graph.nn.encoders.pretrained_gcn import PretrainedGCN, find_weights, pretrain_gnns_features

DRUG_ENCODERS: Dict[str, Callable[..., nn.Module]] = {
    "pretrained-gcn": PretrainedGCN,
    "gin": GINEncoder,
    "morgan": MorganEncoder,
    "mat": MATEncoder,
    "precomputed": PrecomputedEncoder,
}


def build_drug_encoder(name: str, **kwargs) -> nn.Module:
    """The drug encoder ``name`` (see the table above) built with ``kwargs``."""
    if name not in DRUG_ENCODERS:
        raise ValueError(f"unknown drug encoder {name!r}; choose one of {sorted(DRUG_ENCODERS)}")
    return DRUG_ENCODERS[name](**kwargs)


__all__ = [
    "DRUG_ENCODERS",
    "build_drug_encoder",
    "PretrainedGCN",
    "GINEncoder",
    "MorganEncoder",
    "MATEncoder",
    "PrecomputedEncoder",
    "read_embeddings",
    "find_weights",
    "pretrain_gnns_features",
    "pool_atoms",
]
