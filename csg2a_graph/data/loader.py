"""The fast pair loader: batches of pairs gathered from the dataset's tensors (no per-pair ``Data``), each
batch's distinct drugs encoded once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterator, List, Optional, Tuple

import torch
from torch import Tensor

from csg2a_graph.data.batch import PairBatch, as_pair_index
from csg2a_graph.data.cache_keys import callable_tag

if TYPE_CHECKING:  # the dataset type, for annotations only (pairs.py imports this module)
    from csg2a_graph.data.pairs import PairDataset

logger = logging.getLogger(__name__)


def batch_slices(
    n: int, batch_size: int, drop_last: bool = False, merge_singleton: bool = False
) -> List[Tuple[int, int]]:
    """``(start, end)`` of each batch over ``n`` items: ``batch_size`` each, the last one short (dropped with
    ``drop_last``; with ``merge_singleton`` a last batch of one item joins the batch before).
    """
    merges = merge_singleton and n > 1 and batch_size > 1 and n % batch_size == 1
    if drop_last or merges:
        nb = n // batch_size
    else:
        nb = -(-n // batch_size)
    return [(b * batch_size, n if (b == nb - 1 and merges) else min(n, (b + 1) * batch_size)) for b in range(nb)]


def shuffled(index: Tensor, seed: int) -> Tensor:
    """``index`` in the order a shuffling ``PairLoader`` with seed ``seed`` visits it."""
    g = torch.Generator().manual_seed(seed)
    return index[torch.randperm(index.numel(), generator=g)]


class PairLoader:
    """Iterate mini-batches of pairs by gathering rows with index tensors.

    Per batch this does a handful of tensor gathers (expression rows, labels,
    the distinct drugs' graphs via ``MoleculeStore.batch()``), never a Python
    loop over pairs, so an epoch over ~200k pairs costs well under a second.

    Args:
        dataset: a ``PairDataset``.
        index: pair indices to iterate (e.g. ``dataset.get_idx_split(...)["train"]``),
            or a boolean mask with one entry per pair; all pairs when ``None``.
        batch_size: pairs per batch.
        shuffle: reshuffle every epoch (seeded by ``seed`` and the epoch count).
        drop_last: drop the last incomplete batch.
        merge_singleton: when the last batch would hold a single pair, add it to the batch before
            (training: BatchNorm cannot normalise a batch of one; no pair is dropped).
        all_drugs: pass the cached ``Batch`` of *all* drugs every time instead of
            the batch's distinct drugs (cheaper when there are few drugs).
        ignore_transform: iterate a dataset that has a ``transform`` without it (it is refused otherwise: the
            loader gathers tables and never builds the per-pair ``Data`` a transform acts on).
        pin_memory: yield page-locked batches (then ``batch.to("cuda", non_blocking=True)`` overlaps the copy).
        prefetch: gather up to this many batches ahead in a background thread (the gathers release the GIL),
            so the next batch is ready when the model asks; ``0``: gather on demand.
    """

    def __init__(
        self,
        dataset: "PairDataset",
        index: Optional[Tensor] = None,
        batch_size: int = 256,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        all_drugs: bool = False,
        merge_singleton: bool = False,
        ignore_transform: bool = False,
        pin_memory: bool = False,
        prefetch: int = 0,
    ):
        from csg2a_graph.data.splits import check_int

        if getattr(dataset, "transform", None) is not None and not ignore_transform:
            raise ValueError(
                f"{type(dataset).__name__} has transform={callable_tag(dataset.transform)}, which dataset[i] applies but "
                "the fast loader cannot (it gathers tables into a PairBatch, never a Data per pair): the transform "
                "would silently not reach training. Use pre_transform= (applied once to the stored pairs), PyG's "
                "DataLoader(dataset) (applies it per item), or loader(..., ignore_transform=True) to go without it"
            )
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.pin_memory, self.prefetch = bool(pin_memory), check_int("prefetch", prefetch, 0)
        if self.pin_memory and not torch.cuda.is_available():
            logger.info("pin_memory=True without CUDA: batches are not pinned (nothing to copy to)")
            self.pin_memory = False
        self.dataset = dataset
        self.index = as_pair_index(index, dataset.num_pairs)  # positions in the dataset (a subset's own)
        rows = dataset.pair_rows() if hasattr(dataset, "pair_rows") else None
        self._rows = rows  # a subset: its positions -> rows of the pair table; never a pair outside it
        self.shuffle, self.drop_last = shuffle, drop_last
        self.merge_singleton = merge_singleton
        self.all_drugs = all_drugs
        self._seed, self._epoch = seed, 0

    def __len__(self) -> int:
        return len(self._slices())

    def _slices(self) -> List[Tuple[int, int]]:
        return batch_slices(self.index.numel(), self.batch_size, self.drop_last, self.merge_singleton)

    def __iter__(self) -> Iterator[PairBatch]:
        if not self.prefetch:
            yield from self._batches()
            return
        import queue
        import threading

        q: "queue.Queue" = queue.Queue(maxsize=self.prefetch)
        done = object()
        stop = threading.Event()

        def work():
            try:
                for b in self._batches():
                    while not stop.is_set():
                        try:
                            q.put(b, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                q.put(done)
            except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
                q.put(e)

        t = threading.Thread(target=work, daemon=True, name="PairLoader-prefetch")
        t.start()
        try:
            while True:
                item = q.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:  # the consumer stopped early (break, an exception): let the worker end
            stop.set()
            t.join(timeout=5)

    def _batches(self) -> Iterator[PairBatch]:
        idx = shuffled(self.index, self._seed + self._epoch) if self.shuffle else self.index
        self._epoch += 1
        ds = self.dataset
        p = ds._pairs
        for start, end in self._slices():
            sel = idx[start:end]
            row = sel if self._rows is None else self._rows[sel]
            cell, drug = p["cell"][row], p["drug"][row]
            if self.all_drugs:
                graph, dindex = ds.molecules.batch(), drug
            else:
                uniq, dindex = torch.unique(drug, return_inverse=True)
                graph = ds.molecules.batch(uniq)
            out = PairBatch(
                expr=ds._expr[cell],
                drug_graph=graph,
                drug_index=dindex,
                y=p["y"][row],
                dose=p["dose"][row],
                time=p["time"][row],
                cell=cell,
                drug=drug,
                index=sel,
            )
            yield out.pin_memory() if self.pin_memory else out
