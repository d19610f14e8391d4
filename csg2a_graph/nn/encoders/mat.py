r"""The Molecule Attention Transformer (MAT) of Maziarka et al. (2020), as the released CSG²A uses it.

`Maziarka et al., "Molecule Attention Transformer" (2020) <https://arxiv.org/abs/2002.08264>`_.
Written from the paper and the facts of ``../shared/baselines/CSG2A_released.md`` (no code copied).

**Featurisation** (per SMILES, cached): RDKit molecule with hydrogens added, a 3-D conformer
(``EmbedMolecule``, up to 5,000 attempts, fixed seed) optimised with UFF, hydrogens removed. *Fallback*:
when embedding or UFF fails, RDKit 2-D coordinates (``Compute2DCoords``), so distances are planar for
that molecule (counted in ``MATEncoder.fallbacks``). Per heavy atom 27 features: atomic number
one-hot over B, C, N, O, F, P, S, Cl, Br, I, other (11); number of neighbours 0-5 (6); total H 0-4 (5);
formal charge -1/0/+1 one-hot (3); in ring; aromatic — then a **dummy node** first with its own feature
(28 inputs). Adjacency: bonds plus self-loops, the dummy node unconnected. Distances: Euclidean between
atoms of the conformer, ``1e6`` to and from the dummy node.

**Network**: ``src_embed.lut`` Linear(28, d) → ``num_layers`` pre-norm blocks
``x + Attn(LN(x))``, ``x + FFN(LN(x))`` → final LN (MAT's LayerNorm: ``a (x - mean) / (std + 1e-6) + b``
with the *unbiased* standard deviation). Each head mixes three maps over the atoms:

$$
P = \lambda_a\,\mathrm{softmax}(QK^\top/\sqrt{d_k}) + \lambda_d\, e^{-D} + \lambda_g\, A / (A\mathbf{1} + 10^{-6})
$$

(``λ = 0.33, 0.33, 0.34``; padded atoms get ``-1e12`` scores and infinite distance). ``FFN`` is
``N_dense = 1`` Linear(d, d) with leaky ReLU (slope 0.1). The drug embedding is the mean of the final
states over **all atoms including the dummy node** (released CSG²A's pooling).

State-dict keys are MAT's (``src_embed.lut``, ``encoder.layers.{i}.self_attn.linears.{0..3}``,
``encoder.layers.{i}.feed_forward.linears.0``, ``encoder.layers.{i}.sublayer.{0,1}.norm.{a_2,b_2}``,
``encoder.norm``), so MAT's pretrained checkpoint loads with ``MATEncoder.load_mat_state_dict()``
(its ``generator.*`` head, which predicted the pretraining targets, is left out; everything else is
strict). Those weights are a separate download these machines cannot reach: ``weights=PATH`` loads
them when you have them; otherwise the encoder starts from Xavier-uniform weights.
"""

from __future__ import annotations

import logging
import math
from typing import Dict, List, Optional, Tuple, cast

import numpy as np
import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

ATOMIC_NUMBERS = (5, 6, 7, 8, 9, 15, 16, 17, 35, 53)  # B C N O F P S Cl Br I; anything else: "other"
NUM_ATOM_FEATURES = 28  # 27 per atom + the dummy-node flag
DUMMY_DISTANCE = 1e6
CONFORMER_SEED = 0xC5A


def _one_hot(value, choices) -> List[float]:
    """One-hot over ``choices``; a value not among them counts as the last choice."""
    from csg2a_graph.data.featurize import one_hot

    return one_hot(value, choices, "last")


def atom_features(atom) -> List[float]:
    """MAT's 27 features of an RDKit atom (see the module docstring)."""
    return (
        _one_hot(atom.GetAtomicNum(), ATOMIC_NUMBERS + (999,))
        + _one_hot(len(atom.GetNeighbors()), (0, 1, 2, 3, 4, 5))
        + _one_hot(atom.GetTotalNumHs(), (0, 1, 2, 3, 4))
        + _one_hot(atom.GetFormalCharge(), (-1, 0, 1))
        + [float(atom.IsInRing()), float(atom.GetIsAromatic())]
    )


def featurize(smiles: str, seed: int = CONFORMER_SEED) -> Tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """``(features [n+1, 28], adjacency [n+1, n+1], distances [n+1, n+1], used_3d)`` with the dummy node first."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem

    from csg2a_graph.data.molecules import parse_smiles

    mol = parse_smiles(smiles)  # metal complexes (cisplatin) parse without the valence check, as in the store
    if mol is None:
        raise ValueError(f"MAT cannot featurise SMILES {smiles!r}: RDKit does not parse it")
    used_3d = True
    RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]
    try:
        mh = Chem.AddHs(mol)
        if AllChem.EmbedMolecule(mh, maxAttempts=5000, randomSeed=seed) != 0:  # type: ignore[attr-defined]
            raise ValueError("no conformer")
        AllChem.UFFOptimizeMolecule(mh)  # type: ignore[attr-defined]
        mol = Chem.RemoveHs(mh)
    except Exception:  # noqa: BLE001 - embedding or UFF failed: planar coordinates, as MAT does
        used_3d = False
        mol = parse_smiles(smiles)
        AllChem.Compute2DCoords(mol)  # type: ignore[attr-defined]
    finally:
        RDLogger.EnableLog("rdApp.*")  # type: ignore[attr-defined]
    n = mol.GetNumAtoms()
    x = np.zeros((n + 1, NUM_ATOM_FEATURES), dtype=np.float64)
    x[0, 0] = 1.0
    x[1:, 1:] = [atom_features(a) for a in mol.GetAtoms()]
    adj = np.zeros((n + 1, n + 1))
    adj[1:, 1:] = np.eye(n)
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx() + 1, b.GetEndAtomIdx() + 1
        adj[i, j] = adj[j, i] = 1.0
    pos = mol.GetConformer().GetPositions()
    dist = np.full((n + 1, n + 1), DUMMY_DISTANCE)
    dist[1:, 1:] = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    return x, adj, dist, used_3d


class MATLayerNorm(nn.Module):
    """MAT's LayerNorm: ``a_2 (x - mean) / (std + eps) + b_2`` with the unbiased standard deviation."""

    def __init__(self, features: int, eps: float = 1e-6):
        super().__init__()
        self.a_2 = nn.Parameter(torch.ones(features))
        self.b_2 = nn.Parameter(torch.zeros(features))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(-1, keepdim=True)
        return self.a_2 * (x - mean) / (x.std(-1, keepdim=True) + self.eps) + self.b_2


class _Linear(nn.Module):
    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.lut = nn.Linear(d_in, d_out)


class _Residual(nn.Module):
    norm: MATLayerNorm

    def __init__(self, d: int):
        super().__init__()
        self.norm = MATLayerNorm(d)


class MATAttention(nn.Module):
    """Multi-head molecule self-attention: ``linears`` 0-2 project Q, K, V; 3 is the output."""

    def __init__(self, d_model: int, heads: int, lambdas=(0.33, 0.33, 0.34), dropout: float = 0.0):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        self.h, self.dk = heads, d_model // heads
        self.linears = nn.ModuleList([nn.Linear(d_model, d_model) for _ in range(4)])
        self.lambdas = tuple(float(v) for v in lambdas)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor, adj: Tensor, dist: Tensor) -> Tensor:
        B, M, _ = x.shape
        q, k, v = (lin(x).view(B, M, self.h, self.dk).transpose(1, 2) for lin in self.linears[:3])
        scores = (q @ k.transpose(-1, -2) / math.sqrt(self.dk)).masked_fill(~mask[:, None, None, :], -1e12)
        p_att = scores.softmax(-1)
        p_dist = torch.exp(-dist.masked_fill(~mask[:, None, :], float("inf")))[:, None]
        p_adj = (adj / (adj.sum(-1, keepdim=True) + 1e-6))[:, None]
        la, ld, lg = self.lambdas
        p = self.dropout(la * p_att + ld * p_dist + lg * p_adj)
        return self.linears[3]((p @ v).transpose(1, 2).reshape(B, M, -1))


class MATFeedForward(nn.Module):
    def __init__(self, d_model: int, n_dense: int = 1, slope: float = 0.1, dropout: float = 0.0):
        super().__init__()
        self.linears = nn.ModuleList([nn.Linear(d_model, d_model) for _ in range(n_dense)])
        self.slope = slope
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        for lin in self.linears:
            x = self.dropout(nn.functional.leaky_relu(lin(x), self.slope))
        return x


class MATBlock(nn.Module):
    def __init__(self, d_model: int, heads: int, n_dense: int, slope: float, lambdas, dropout: float):
        super().__init__()
        self.self_attn = MATAttention(d_model, heads, lambdas, dropout)
        self.feed_forward = MATFeedForward(d_model, n_dense, slope, dropout)
        self.sublayer = nn.ModuleList([_Residual(d_model), _Residual(d_model)])
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor, adj: Tensor, dist: Tensor) -> Tensor:
        pre_attn, pre_ff = (cast(_Residual, m).norm for m in self.sublayer)
        x = x + self.dropout(self.self_attn(pre_attn(x), mask, adj, dist))
        return x + self.dropout(self.feed_forward(pre_ff(x)))


class _Encoder(nn.Module):
    def __init__(self, d_model: int, num_layers: int, heads: int, n_dense: int, slope: float, lambdas, dropout):
        super().__init__()
        self.layers = nn.ModuleList(
            [MATBlock(d_model, heads, n_dense, slope, lambdas, dropout) for _ in range(num_layers)]
        )
        self.norm = MATLayerNorm(d_model)


class MATEncoder(nn.Module):
    """MAT over the molecules of a batch (``graph.smiles``), mean of the final states over atoms and dummy node.

    Args:
        d_model, num_layers, heads: the transformer size (the released CSG²A's MAT: 1024, 8, 16).
        n_dense: position-wise layers per block (1); ``slope``: their leaky-ReLU slope (0.1).
        lambdas: ``(λ_attention, λ_distance, λ_adjacency)`` (0.33, 0.33, 0.34).
        dropout: dropout of attention, residual branches and feed-forward layers.
        weights: a MAT state dict (``torch.save`` file), loaded by ``load_mat_state_dict()``.

    ``forward(graph) -> [num_molecules, d_model]``.
    """

    def __init__(
        self,
        d_model: int = 1024,
        num_layers: int = 8,
        heads: int = 16,
        n_dense: int = 1,
        slope: float = 0.1,
        lambdas=(0.33, 0.33, 0.34),
        dropout: float = 0.0,
        weights: Optional[str] = None,
    ):
        super().__init__()
        self.out_channels = d_model
        self.src_embed = _Linear(NUM_ATOM_FEATURES, d_model)
        self.encoder = _Encoder(d_model, num_layers, heads, n_dense, slope, lambdas, dropout)
        self.embed_dropout = nn.Dropout(dropout)
        for p in self.parameters():  # MAT's initialisation: Xavier-uniform matrices
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        self._features: Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = {}
        self.fallbacks: List[str] = []
        if weights is not None:
            self.load_mat_state_dict(torch.load(weights, map_location="cpu", weights_only=True))

    def load_mat_state_dict(self, state_dict: Dict[str, Tensor]) -> None:
        """Load a MAT state dict (its key names), strictly except MAT's own ``generator.*`` output head."""
        sd = {k: v for k, v in state_dict.items() if not k.startswith("generator.")}
        dropped = len(state_dict) - len(sd)
        if dropped:
            logger.info("MAT weights: %d generator.* tensors (MAT's pretraining head) left out", dropped)
        self.load_state_dict(sd, strict=True)

    def featurize(self, smiles: str):
        if smiles not in self._features:
            f = featurize(smiles)
            if not f[3]:
                self.fallbacks.append(smiles)
                logger.warning("MAT: no 3-D conformer for %s; 2-D coordinates used for its distances", smiles)
            self._features[smiles] = f
        return self._features[smiles]

    def dense_inputs(self, smiles: List[str], device, dtype) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Padded ``(features [G, M, 28], mask [G, M], adjacency [G, M, M], distances [G, M, M])``."""
        feats = [self.featurize(s) for s in smiles]
        G, M = len(feats), max(f[0].shape[0] for f in feats)
        x = torch.zeros(G, M, NUM_ATOM_FEATURES, dtype=dtype)
        adj = torch.zeros(G, M, M, dtype=dtype)
        dist = torch.zeros(G, M, M, dtype=dtype)
        mask = torch.zeros(G, M, dtype=torch.bool)
        for g, (f, a, d, _) in enumerate(feats):
            n = f.shape[0]
            x[g, :n], adj[g, :n, :n], dist[g, :n, :n] = (torch.from_numpy(f), torch.from_numpy(a), torch.from_numpy(d))
            mask[g, :n] = True
        return x.to(device), mask.to(device), adj.to(device), dist.to(device)

    def forward(self, graph) -> Tensor:
        smiles = getattr(graph, "smiles", None)
        if smiles is None:
            raise ValueError(
                "the MAT encoder featurises molecules from their SMILES: the drug batch has none "
                "(use MoleculeStore.batch)"
            )
        dtype = self.src_embed.lut.weight.dtype
        x, mask, adj, dist = self.dense_inputs(list(smiles), self.src_embed.lut.weight.device, dtype)
        h = self.embed_dropout(self.src_embed.lut(x))
        for layer in self.encoder.layers:
            h = layer(h, mask, adj, dist)
        h = self.encoder.norm(h)
        m = mask[..., None].to(h.dtype)
        return (h * m).sum(1) / m.sum(1)


__all__ = ["MATEncoder", "MATAttention", "MATLayerNorm", "featurize", "atom_features", "NUM_ATOM_FEATURES"]
