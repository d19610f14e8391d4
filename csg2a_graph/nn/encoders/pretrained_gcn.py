r"""The pretrained 5-layer GCN of Hu et al. (ICLR 2020), written from the facts of its released weights.

`Strategies for Pre-training Graph Neural Networks <https://arxiv.org/abs/1905.12265>`_
(snap-stanford/pretrain-gnns, MIT). The state-dict keys of
``gcn_supervised_contextpred.pth`` load into ``PretrainedGCN`` with
``load_state_dict(strict=True)``:

- atoms: ``x_embedding1`` (atomic number - 1, 0..117; 119 = mask) + ``x_embedding2`` (chirality:
  unspecified, CW, CCW);
- five layers ``gnns.{k}``: ``h' = linear(h)``, self-loops with bond type 4 / direction 0, edge
  feature ``edge_embedding1(type) + edge_embedding2(direction)``, message
  ``deg_i^-1/2 deg_j^-1/2 (h'_j + e_ij)`` summed at each atom;
- ``batch_norms.{k}`` after each layer, ReLU on all but the last; per-atom output 300 dims.

Features outside the tables fall back to defined indices (``pretrain_gnns_features()``).
"""

from __future__ import annotations

import logging
import os
import os.path as osp
import warnings
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import add_self_loops, degree

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "pretrain_gnns_gcn_supervised_contextpred.pth"
WEIGHTS_URL = (
    "https://raw.githubusercontent.com/snap-stanford/pretrain-gnns/"
    "8b20528a83b8869ce16451305b32c827258d19a3/chem/model_architecture/gcn_supervised_contextpred.pth"
)
WEIGHTS_SHA256 = "49cf0465e623c14fc802cdc67b47cbb78326f43fc7991afe6a14e1ff471755d5"

NUM_ATOM_TYPES, NUM_CHIRALITY = 120, 3
NUM_BOND_TYPES, NUM_BOND_DIRS = 6, 3
SELF_LOOP_BOND, MASK_ATOM = 4, 118
# PyG's from_rdmol bond_type index -> Hu et al.'s (SINGLE, DOUBLE, TRIPLE, AROMATIC); others -> SINGLE
_PYG_BOND_TO_HU = torch.zeros(22, dtype=torch.long)
_PYG_BOND_TO_HU[1], _PYG_BOND_TO_HU[2], _PYG_BOND_TO_HU[3], _PYG_BOND_TO_HU[12] = 0, 1, 2, 3


_BOND_MAPS: Dict[torch.device, Tensor] = {}


def _bond_map(device: torch.device) -> Tensor:
    """``_PYG_BOND_TO_HU`` on ``device``, copied there once (a copy per batch would wait for the GPU every step)."""
    t = _BOND_MAPS.get(device)
    if t is None:
        t = _BOND_MAPS[device] = _PYG_BOND_TO_HU.to(device)
    return t


def pretrain_gnns_features(graph) -> Tuple[Tensor, Tensor]:
    """The pretrain-gnns view of a molecule batch from the store: ``x [A, 2]`` (atom type,
    chirality) and ``edge_attr [E, 2]`` (bond type, direction).

    Fallbacks (never an index past a table): atomic number 0 (dummy atom) or > 118 -> the mask
    token; chirality other than unspecified/CW/CCW (``CHI_OTHER``, newer RDKit tags) ->
    unspecified; bond types other than single/double/triple/aromatic (``DATIVE``, ``IONIC``...)
    -> single; bond directions other than none/up/down -> none.
    """
    z = graph.x[:, 0].long()
    atom = torch.where((z >= 1) & (z <= 118), z - 1, torch.full_like(z, MASK_ATOM))
    chi = graph.x[:, 1].long()
    chi = torch.where(chi < NUM_CHIRALITY, chi, torch.zeros_like(chi))
    bt = _bond_map(graph.x.device)[graph.edge_attr[:, 0].long().clamp(0, 21)]
    bd = getattr(graph, "bond_dir", None)
    bd = torch.zeros_like(bt) if bd is None else bd.long()
    bd = torch.where(bd < NUM_BOND_DIRS, bd, torch.zeros_like(bd))
    return torch.stack([atom, chi], 1), torch.stack([bt, bd], 1)


def gcn_operators(edge_index: Tensor, edge_attr: Tensor, num_nodes: int, dtype: torch.dtype = torch.float32):
    """The graph's part of a ``HuGCNConv`` layer, shared by all layers of a forward pass.

    With self-loops (bond type 4, direction 0) and ``norm_ij = deg_i^-1/2 deg_j^-1/2``, a layer is
    ``out_i = sum_j norm_ij (h'_j + e1[type_ij] + e2[dir_ij]) = (A h')_i + (C1 e1)_i + (C2 e2)_i`` with
    ``A [n, n]`` the normalised adjacency (sparse) and ``C1 [n, 6]`` / ``C2 [n, 3]`` the summed ``norm_ij``
    per bond type / direction at each atom. Returns ``(A, C1, C2)``.

    ``A`` is built as CSR from the edges sorted by target atom, with its row offsets by ``searchsorted``: no step
    whose output size depends on the values (a COO ``coalesce()`` reads its number of entries back from a GPU every
    batch), deterministic, and faster on the CPU too (``benchmarks/results/gcn_speed.md``).
    """
    n = num_nodes
    src, dst, norm, bond_type, bond_dir = _with_self_loops(edge_index, edge_attr, n, dtype)
    order = torch.argsort(dst, stable=True)
    crow = torch.searchsorted(dst[order], torch.arange(n + 1, device=dst.device))
    with warnings.catch_warnings():  # "sparse CSR support is in beta": products with a dense matrix are supported
        warnings.simplefilter("ignore", UserWarning)
        adj = torch.sparse_csr_tensor(crow, src[order], norm[order], (n, n), check_invariants=False)
    c1 = norm.new_zeros(n, NUM_BOND_TYPES).index_put_((dst, bond_type), norm, accumulate=True)
    c2 = norm.new_zeros(n, NUM_BOND_DIRS).index_put_((dst, bond_dir), norm, accumulate=True)
    return adj, c1, c2


def _with_self_loops(edge_index: Tensor, edge_attr: Tensor, n: int, dtype: torch.dtype):
    """Edges with one self-loop per atom (as pretrain-gnns adds them), their ``norm`` (degrees counted at
    the source, as there) and bond features.
    """
    edge_index, _ = add_self_loops(edge_index, num_nodes=n)
    loop_attr = torch.zeros(n, 2, dtype=edge_attr.dtype, device=edge_attr.device)
    loop_attr[:, 0] = SELF_LOOP_BOND
    edge_attr = torch.cat([edge_attr, loop_attr], 0)
    src, dst = edge_index[0], edge_index[1]
    deg = degree(src, n, dtype=dtype)
    dinv = deg.pow(-0.5)
    dinv = dinv.masked_fill(torch.isinf(dinv), 0)  # not boolean indexing: no read from the device
    return src, dst, dinv[src] * dinv[dst], edge_attr[:, 0].long(), edge_attr[:, 1].long()


class HuGCNConv(MessagePassing):
    """One GCN layer with bond embeddings, exactly as in pretrain-gnns' ``GCNConv``.

    ``forward()`` computes it as one sparse product and two small dense ones (``gcn_operators()``)
    — no ``[edges, dim]`` message tensor; ``forward_messages()`` is the per-edge message-passing form
    (the reference; tests compare outputs and gradients). While PyG's explain API masks edges
    (``self.explain``), ``forward()`` takes the message-passing form, where the masks act.
    """

    def __init__(self, dim: int = 300):
        super().__init__(aggr="add")
        self.linear = nn.Linear(dim, dim)
        self.edge_embedding1 = nn.Embedding(NUM_BOND_TYPES, dim)
        self.edge_embedding2 = nn.Embedding(NUM_BOND_DIRS, dim)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, operators=None) -> Tensor:
        """``operators``: ``gcn_operators()`` of this graph (computed here when ``None``)."""
        if self.explain:
            return self.forward_messages(x, edge_index, edge_attr)
        h = self.linear(x)
        adj, c1, c2 = operators if operators is not None else gcn_operators(edge_index, edge_attr, x.size(0), x.dtype)
        if h.dtype != adj.dtype:  # autocast: the sparse product in the operators' precision, outside autocast,
            # which would cast it to bf16 again (CUDA has no bf16 addmm_sparse: `--amp` exited 2)
            with torch.autocast(device_type=h.device.type, enabled=False):
                out = torch.sparse.mm(adj, h.to(adj.dtype)).to(h.dtype)
        else:
            out = torch.sparse.mm(adj, h)
        return out + (c1 @ self.edge_embedding1.weight + c2 @ self.edge_embedding2.weight).to(out.dtype)

    def forward_messages(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        src, dst, norm, bond_type, bond_dir = _with_self_loops(edge_index, edge_attr, x.size(0), x.dtype)
        e = self.edge_embedding1(bond_type) + self.edge_embedding2(bond_dir)
        return self.propagate(torch.stack([src, dst]), x=self.linear(x), edge_attr=e, norm=norm)

    def message(self, x_j: Tensor, edge_attr: Tensor, norm: Tensor) -> Tensor:
        return norm.view(-1, 1) * (x_j + edge_attr)


class PretrainedGCN(nn.Module):
    """Hu et al.'s 5-layer GCN: per-atom states pooled per molecule.

    Args:
        weights: path of ``gcn_supervised_contextpred.pth`` (loaded strictly) or ``None``
            (random init; ``find_weights()`` finds a local copy).
        pool: ``"mean"`` (the authors' default) or ``"sum"``; only atoms of each molecule's
            largest fragment are pooled (salts and counter-ions left out).
    """

    out_channels = 300

    def __init__(
        self,
        weights: Optional[str] = None,
        num_layers: int = 5,
        dim: int = 300,
        pool: str = "mean",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.num_layers, self.pool, self.dropout = num_layers, pool, dropout
        self.out_channels = dim
        self.x_embedding1 = nn.Embedding(NUM_ATOM_TYPES, dim)
        self.x_embedding2 = nn.Embedding(NUM_CHIRALITY, dim)
        self.gnns = nn.ModuleList([HuGCNConv(dim) for _ in range(num_layers)])
        self.batch_norms = nn.ModuleList([nn.BatchNorm1d(dim) for _ in range(num_layers)])
        if weights is not None:
            self.load_weights(weights)

    def load_weights(self, path: str) -> None:
        import pickle

        hint = (
            "give the pretrain-gnns GCN weights (gcn_supervised_contextpred.pth), or leave --drug-weights out to "
            "use the copy shipped in the package"
        )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ValueError(f"drug encoder weights {path} cannot be read by torch.load ({first}): {hint}") from e
        if not isinstance(state, dict):
            raise ValueError(f"drug encoder weights {path} hold a {type(state).__name__}, not a state dict: {hint}")
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as e:
            missing = sorted(set(self.state_dict()) - set(state))[:3]
            raise ValueError(
                f"drug encoder weights {path} do not fit the pretrained GCN (missing e.g. {missing}, "
                f"{len(state)} tensors in the file): {hint}"
            ) from e
        logger.info("pretrained GCN weights loaded from %s", path)

    def atom_states(self, graph) -> Tensor:
        x, e = pretrain_gnns_features(graph)
        h = self.x_embedding1(x[:, 0]) + self.x_embedding2(x[:, 1])
        ops = gcn_operators(graph.edge_index, e, h.size(0), h.dtype)  # the same graph for all layers
        for k, (conv, bn) in enumerate(zip(self.gnns, self.batch_norms)):
            h = bn(conv(h, graph.edge_index, e, operators=ops))
            if k < self.num_layers - 1:
                h = torch.relu(h)
            h = nn.functional.dropout(h, self.dropout, self.training)
        return h

    def forward(self, graph) -> Tensor:
        from csg2a_graph.nn.encoders.base import pool_atoms

        return pool_atoms(self.atom_states(graph), graph, self.pool)


def user_cache_dir() -> str:
    """``csg2a_graph.io.files.user_cache_dir()`` (kept here for older imports)."""
    from csg2a_graph.io.files import user_cache_dir as cache_dir

    return cache_dir()


def find_weights(path: Optional[str] = None, download: bool = True) -> Tuple[Optional[str], str]:
    """Locate the pretrained GCN weights: ``path``, ``$CSG2A_DRUG_WEIGHTS``, the copy shipped in the
    package (``csg2a_graph.assets``), the user cache dir, or a download from the official URL
    (sha256-checked). Returns ``(path or None, message)``.
    """
    from csg2a_graph.io.files import sha256

    if path:
        if not osp.exists(path):
            raise FileNotFoundError(f"drug encoder weights {path} not found")
        return path, f"pretrained GCN weights: {path}"
    env = os.environ.get("CSG2A_DRUG_WEIGHTS")
    if env and osp.exists(env):
        return env, f"pretrained GCN weights: {env} ($CSG2A_DRUG_WEIGHTS)"
    damaged = ""
    try:
        from csg2a_graph.assets import gcn_weights

        return gcn_weights(), "pretrained GCN weights: the copy shipped in the package (Hu et al. 2020, MIT)"
    except (FileNotFoundError, KeyError):  # a trimmed install: look further
        pass
    except ValueError as e:  # there, but damaged: said in every message below
        damaged = f"; {e}"
        logger.warning("%s", e)
    cached = osp.join(user_cache_dir(), WEIGHTS_FILE)
    if osp.exists(cached) and sha256(Path(cached)) == WEIGHTS_SHA256:
        return cached, f"pretrained GCN weights: {cached}" + damaged
    if download:
        from csg2a_graph.io.files import download as fetch

        try:
            fetch(WEIGHTS_URL, cached, WEIGHTS_SHA256)
            return cached, f"pretrained GCN weights downloaded to {cached}"
        except ValueError as e:  # the sha256 check
            return None, f"downloaded GCN weights fail the sha256 check: not used ({e}){damaged}"
        except Exception as e:  # noqa: BLE001 - no network, proxy, HTTP error: fall back, say why
            return None, f"pretrained GCN weights not found and not downloadable ({type(e).__name__}){damaged}"
    return None, "pretrained GCN weights not found" + damaged


__all__ = ["PretrainedGCN", "HuGCNConv", "pretrain_gnns_features", "find_weights", "WEIGHTS_URL", "WEIGHTS_SHA256"]
