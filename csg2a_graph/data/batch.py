"""One pair and a batch of pairs: ``PairData`` (PyG ``Data``) and ``PairBatch`` (the fast loader's batch, one
vocabulary with PyG's), and ``as_pair_index`` (pair indices checked).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from csg2a_graph.errors import InputIndexError, InputTypeError

if TYPE_CHECKING:  # the dataset type, for annotations only (pairs.py imports this module)
    from csg2a_graph.data.pairs import PairDataset

logger = logging.getLogger(__name__)


class PairData(Data):
    r"""One (sample, drug) pair as a PyG graph over the gene space.

    ``x [N, 1]`` is the basal expression on the gene nodes, ``edge_index`` /
    ``edge_weight`` the prior; ``y``, ``dose``, ``time`` one value each (``y [1, N]`` for a
    profile); ``cell_id``, ``drug_id``, ``pair_id`` the dataset's ids of the pair (never
    incremented when batched: ids, not node indices). The drug graph rides along as ``drug_x``,
    ``drug_edge_index``, ``drug_edge_attr`` and batches correctly (``drug_edge_index`` is
    incremented by the number of drug atoms); ``DataLoader(..., follow_batch=["drug_x"])`` adds
    ``drug_x_batch``, the pair of every drug atom.
    """

    def __inc__(self, key, value, *args, **kwargs):
        if key == "drug_edge_index":
            return self.drug_x.size(0)
        if key in ("cell_id", "drug_id", "pair_id"):
            return 0
        return super().__inc__(key, value, *args, **kwargs)

    def __cat_dim__(self, key, value, *args, **kwargs):
        if key == "drug_edge_index":
            return 1
        return super().__cat_dim__(key, value, *args, **kwargs)

    # the fast loader's names for the same things (one vocabulary for both loaders)
    @property
    def expr(self) -> Tensor:
        """``[B, N]`` expression (``x`` with one row per pair; ``[1, N]`` for one pair)."""
        return self.x.view(int(getattr(self, "num_graphs", 1) or 1), -1)

    @property
    def cell(self) -> Tensor:
        return self.cell_id

    @property
    def drug(self) -> Tensor:
        return self.drug_id

    @property
    def index(self) -> Tensor:
        return self.pair_id


@dataclass
class PairBatch:
    """A mini-batch gathered by index (see ``PairLoader``).

    Attributes:
        expr: ``[B, N]`` basal expression.
        drug_graph: a PyG ``Batch`` of the distinct drugs of the batch.
        drug_index: ``[B]`` position of each pair's drug in ``drug_graph``.
        y, dose, time: ``[B]`` response, dose (µM), time (h).
        cell, drug, index: ``[B]`` cell id, drug id and position of the pair in the dataset iterated.

    One vocabulary with PyG's batch of ``PairData``: both answer ``expr``, ``x`` (``[B*N, 1]``), ``y``,
    ``dose``, ``time``, ``cell_id``/``cell``, ``drug_id``/``drug``, ``pair_id``/``index``, ``num_graphs``;
    ``to_pyg()`` and ``from_pyg()`` convert one into the other.
    """

    expr: Tensor
    drug_graph: Batch
    drug_index: Tensor
    y: Tensor
    dose: Tensor
    time: Tensor
    cell: Tensor
    drug: Tensor
    index: Tensor

    def to(self, device, non_blocking: bool = False) -> "PairBatch":
        kw = {k: getattr(self, k).to(device, non_blocking=non_blocking) for k in self.__dataclass_fields__}
        return PairBatch(**kw)

    def pin_memory(self) -> "PairBatch":
        """Page-locked copies (for ``to(device, non_blocking=True)`` from a loader thread)."""
        return PairBatch(**{k: getattr(self, k).pin_memory() for k in self.__dataclass_fields__})

    # ------------------------------------------------ PyG's names for the same things
    @property
    def num_graphs(self) -> int:
        return int(self.y.size(0))

    @property
    def x(self) -> Tensor:
        """``[B*N, 1]``: the expression as PyG node features (genes of a pair consecutive)."""
        return self.expr.reshape(-1, 1)

    @property
    def batch(self) -> Tensor:
        """``[B*N]``: the pair of every gene node (PyG's ``batch`` vector)."""
        return torch.arange(self.num_graphs, device=self.expr.device).repeat_interleave(self.expr.size(1))

    @property
    def cell_id(self) -> Tensor:
        return self.cell

    @property
    def drug_id(self) -> Tensor:
        return self.drug

    @property
    def pair_id(self) -> Tensor:
        return self.index

    # ------------------------------------------------ bridges
    def to_pyg(self, dataset: "PairDataset") -> Batch:
        """The same pairs as PyG's ``Batch`` of ``PairData`` (what ``DataLoader(dataset)`` yields:
        gene nodes with the prior edges, a drug graph per pair; ``follow_batch=["drug_x"]``'s ``drug_x_batch``
        included). ``dataset``: the dataset this batch came from (its prior and drug graphs).
        """
        rows = dataset.to_rows(self.index.cpu())
        return Batch.from_data_list([dataset.get(int(r)) for r in rows], follow_batch=["drug_x"])

    @classmethod
    def from_pyg(cls, batch: Batch, dataset: "PairDataset") -> "PairBatch":
        """A PyG ``Batch`` of ``PairData`` as the fast loader's batch (distinct drugs once, from
        ``dataset.molecules``, so every drug encoder's features are there — the pretrained GCN's bond
        directions too).
        """
        B = int(batch.num_graphs)
        drug = batch.drug_id.view(-1)
        index = batch.pair_id.view(-1)  # rows of the pair table -> positions in ``dataset`` (a subset's own)
        rows = dataset.pair_rows()
        if rows is not None:
            pos = torch.full((dataset.len(),), -1, dtype=torch.long)
            pos[rows] = torch.arange(rows.numel())
            index = pos[index.cpu()].to(index.device)
            if bool((index < 0).any()):
                raise ValueError(
                    "the PyG batch holds pairs outside this dataset (a subset): pass the dataset it came from"
                )
        uniq, dindex = torch.unique(drug, return_inverse=True)
        return cls(
            expr=batch.x.view(B, -1),
            drug_graph=dataset.molecules.batch(uniq.cpu()).to(drug.device),
            drug_index=dindex,
            y=batch.y.view(B, *batch.y.shape[1:]) if batch.y.dim() > 1 else batch.y.view(B),
            dose=batch.dose.view(B),
            time=batch.time.view(B),
            cell=batch.cell_id.view(-1),
            drug=drug,
            index=index,
        )

    def __len__(self) -> int:
        return self.y.size(0)  # pairs, also when y holds a profile per pair

    def inputs(self):
        """What a response model takes: ``(expr, drug_graph, drug_index, dose, time)``."""
        return self.expr, self.drug_graph, self.drug_index, self.dose, self.time


def as_pair_index(index, num_pairs: int) -> Tensor:
    """Pair indices from ``None`` (all pairs), integer indices, or a boolean mask of length ``num_pairs``.

    Refuses what would be read wrongly: float arrays (``[0., 1.]`` is not an index list),
    multi-dimensional arrays, boolean masks of the wrong length and indices out of range.
    """
    if index is None:
        return torch.arange(num_pairs)
    if isinstance(index, range):
        index = list(index)
    t = torch.as_tensor(index)
    if t.dim() != 1:
        raise ValueError(f"pair indices must be one-dimensional, got shape {tuple(t.shape)}")
    if t.dtype == torch.bool:
        if t.numel() != num_pairs:
            raise ValueError(f"a boolean mask must have one entry per pair ({num_pairs}), got {t.numel()}")
        return t.nonzero().view(-1)
    if t.is_floating_point() or t.is_complex():
        raise InputTypeError(f"pair indices must be integers or a boolean mask, got dtype {t.dtype}")
    t = t.long()
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_pairs):
        raise InputIndexError(f"pair indices must lie in [0, {num_pairs}), got min {int(t.min())}, max {int(t.max())}")
    return t
