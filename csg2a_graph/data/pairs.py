"""Pair storage shared by every drug-response dataset, and the fast pair loader.

A processed drug-response dataset is

- ``expr``: per-cell (or per-sample) basal expression ``[num_cells, N]`` over a gene space;
- ``molecules``: one molecular graph per drug (``MoleculeStore``);
- a pair table ``cell, drug, y, dose (µM), time (h)``, one row per response;
- the gene space and the prior graph (``edge_index``, ``edge_weight`` over the genes).

Nothing is stored per pair except the five columns of the pair table.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data, Dataset

from csg2a_graph.data.gene_space import GeneSpace
from csg2a_graph.data.molecules import MoleculeStore, compound_groups
from csg2a_graph.data.splits import canonical_scheme, make_split
from csg2a_graph.errors import InputIndexError, InputTypeError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 5  # 2: bond_dir, main_fragment; 3: canonical SMILES; 4: true-median robust z, compound groups;
# 5: the expression normalisation (per-gene median / scale) kept for prediction on new expression


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
        n = self.index.numel()
        if self.drop_last:
            return n // self.batch_size
        if self._merges():
            return n // self.batch_size
        return -(-n // self.batch_size)

    def _merges(self) -> bool:
        n = self.index.numel()
        return self.merge_singleton and n > 1 and self.batch_size > 1 and n % self.batch_size == 1

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
        idx = self.index
        if self.shuffle:
            g = torch.Generator().manual_seed(self._seed + self._epoch)
            idx = idx[torch.randperm(idx.numel(), generator=g)]
        self._epoch += 1
        ds = self.dataset
        p = ds._pairs
        nb = len(self)
        for b in range(nb):
            end = idx.numel() if (b == nb - 1 and self._merges()) else (b + 1) * self.batch_size
            sel = idx[b * self.batch_size : end]
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


FULL_HASH_BYTES = 64 << 20  # files up to this size are hashed in full on every check
SAMPLED_HASH_BYTES = 1 << 30  # beyond this, size + mtime + evenly spaced blocks (see file_digest)
_DIGEST_MEMO: Dict[tuple, str] = {}


def file_digest(path: str) -> str:
    """A content hash of one raw file (BLAKE2b, 128 bit).

    - up to 64 MiB (every staged file): the whole content, re-read on every check, so
      any edit is noticed, also one that keeps the size and the modification time;
    - 64 MiB – 1 GiB: the whole content, remembered for this process per
      ``(path, size, mtime_ns, ctime_ns, inode)`` (an edit changes the times);
    - beyond 1 GiB (a full LINCS GCTX is ~50 GB): size, ``mtime_ns`` and 64 blocks of
      64 KiB spread evenly over the file, first and last included.
    """
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if st.st_size > FULL_HASH_BYTES and key in _DIGEST_MEMO:
        return _DIGEST_MEMO[key]
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        if st.st_size <= SAMPLED_HASH_BYTES:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        else:
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            block, n = 1 << 16, 64
            for i in range(n):
                f.seek((st.st_size - block) * i // (n - 1))
                h.update(f.read(block))
    digest = h.hexdigest()
    if st.st_size > FULL_HASH_BYTES:
        _DIGEST_MEMO[key] = digest
    return digest


def file_fingerprint(paths: Sequence[str]) -> str:
    """Short hash of raw files' names and contents (see ``file_digest()``): any edit to a
    raw file gives a new fingerprint, hence a new processed file.
    """
    h = hashlib.sha1()
    for p in sorted(paths):
        h.update(f"{os.path.basename(p)}:{file_digest(p)}".encode())
    return h.hexdigest()[:10]


def write_atomic(obj, path: str) -> None:
    """``torch.save`` to a temporary name unique to this process and thread, then an atomic
    rename: concurrent builds into one root never read or clobber a half-written file.
    """
    import threading
    import uuid

    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def callable_tag(fn) -> Optional[str]:
    """A name for a ``transform`` / ``pre_filter`` that is the same in every process and changes when what the
    function computes changes: its ``repr`` when that is stable (PyG transforms: ``NormalizeFeatures()``),
    else module, qualified name and a hash of its behaviour (``behaviour_digest()``: source, defaults,
    ``functools.partial`` arguments, closure values, the module globals it reads, an instance's attributes).
    ``None`` for ``None``.
    """
    if fn is None:
        return None
    r = repr(fn)
    if " at 0x" not in r:
        return r
    base = fn.func if isinstance(fn, functools.partial) else fn
    target = base if inspect.isfunction(base) or inspect.ismethod(base) else type(base)
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', type(base).__name__)}"
    return f"{name}:{behaviour_digest(fn)}"


def behaviour_digest(fn, _depth: int = 0, _seen: Optional[set] = None) -> str:
    """A hash of what a callable computes, as far as it can be read: its source (or bytecode), default
    arguments, ``functools.partial`` arguments, closure cells, the values of module globals its code names
    (other functions recursively), a bound method's object and a callable object's attributes. A value with
    no stable form (an arbitrary object whose ``repr`` holds its address) makes the digest differ in every
    process: the processed file is then rebuilt rather than reused stale.
    """
    h = hashlib.sha1()
    seen = set() if _seen is None else _seen
    h.update(_value_repr(fn, _depth, seen).encode())
    return h.hexdigest()[:10]


def _code_names(code) -> List[str]:
    names = list(code.co_names)
    for c in code.co_consts:
        if inspect.iscode(c):
            names += _code_names(c)
    return names


def _function_repr(fn, depth: int, seen: set) -> str:
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        code = fn.__code__
        src = code.co_code.hex() + repr([c for c in code.co_consts if not inspect.iscode(c)])
    parts = [src, "defaults", _value_repr(fn.__defaults__, depth, seen), _value_repr(fn.__kwdefaults__, depth, seen)]
    for cell in fn.__closure__ or ():
        try:
            parts.append(_value_repr(cell.cell_contents, depth, seen))
        except ValueError:  # an empty cell
            parts.append("<empty>")
    g = fn.__globals__
    for n in sorted(set(_code_names(fn.__code__))):
        if n in g:
            parts.append(f"{n}={_value_repr(g[n], depth, seen)}")
    return "\n".join(parts)


def _value_repr(v, depth: int, seen: set) -> str:
    """A stable text of ``v`` for ``behaviour_digest()`` (recursion bounded)."""
    import types

    import numpy as np

    if v is None or isinstance(v, (bool, int, float, complex, str, bytes)):
        return repr(v)
    if isinstance(v, types.ModuleType):
        return f"module:{v.__name__}"
    if depth > 4 or id(v) in seen:
        return f"<{type(v).__qualname__}>"
    seen = seen | {id(v)}
    d = depth + 1
    if isinstance(v, (list, tuple, set, frozenset)):
        items = (
            sorted(_value_repr(x, d, seen) for x in v)
            if isinstance(v, (set, frozenset))
            else [_value_repr(x, d, seen) for x in v]
        )
        return f"{type(v).__name__}({', '.join(items)})"
    if isinstance(v, dict):
        return (
            "{"
            + ", ".join(
                f"{_value_repr(k, d, seen)}: {_value_repr(x, d, seen)}"
                for k, x in sorted(v.items(), key=lambda kv: repr(kv[0]))
            )
            + "}"
        )
    if isinstance(v, Tensor):
        t = v.detach().cpu().contiguous()
        return f"tensor{tuple(t.shape)}{t.dtype}:{hashlib.sha1(t.numpy().tobytes()).hexdigest()}"
    if isinstance(v, np.ndarray):
        return f"ndarray{v.shape}{v.dtype}:{hashlib.sha1(np.ascontiguousarray(v).tobytes()).hexdigest()}"
    if isinstance(v, functools.partial):
        return (
            f"partial({_value_repr(v.func, d, seen)}, {_value_repr(v.args, d, seen)}, "
            f"{_value_repr(v.keywords, d, seen)})"
        )
    if inspect.ismethod(v):
        return f"method({_value_repr(v.__func__, d, seen)}, {_value_repr(v.__self__, d, seen)})"
    if inspect.isfunction(v):
        if (
            getattr(v, "__module__", "")
            and not str(v.__module__).startswith("__main__")
            and str(v.__module__).split(".")[0] in ("torch", "numpy", "torch_geometric", "pandas", "scipy")
        ):
            return f"function:{v.__module__}.{v.__qualname__}"  # a library's function: its name says it
        return f"function:{v.__module__}.{v.__qualname__}:{_function_repr(v, d, seen)}"
    if inspect.isbuiltin(v) or isinstance(v, type):
        name = f"{getattr(v, '__module__', '?')}.{getattr(v, '__qualname__', repr(v))}"
        if isinstance(v, type) and name.split(".")[0] not in ("builtins", "torch", "numpy", "torch_geometric"):
            try:
                return f"type:{name}:{hashlib.sha1(inspect.getsource(v).encode()).hexdigest()}"
            except (OSError, TypeError):
                pass
        return f"{'type' if isinstance(v, type) else 'builtin'}:{name}"
    r = repr(v)
    if " at 0x" not in r and " object at " not in r:
        return f"{type(v).__qualname__}:{r}"
    state = getattr(v, "__dict__", None)
    if isinstance(state, dict):  # a callable object / config object: its class and attributes
        return f"{_value_repr(type(v), d, seen)}{_value_repr(state, d, seen)}"
    return r  # no stable form: differs per process (rebuilt, never stale)


def options_tag(options: Dict) -> str:
    return hashlib.sha1(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:10]


class PairDataset(Dataset):
    """Base class of the drug-response datasets (GDSC, NCI-60, LINCS, TCGA).

    Subclasses implement ``raw_file_names``, ``options`` (every argument that
    changes the processed result) and ``build() -> dict`` returning the payload
    of ``make_payload()``. The base class writes and reads the processed file
    (rebuilding it when it is stale, truncated or from another format version),
    serves ``dataset[i]`` as a ``PairData``, splits and loaders.
    """

    name: str = "pairs"
    #: what ``y`` is, and which way is sensitive: ``"higher_is_resistant"`` (ln IC50),
    #: ``"higher_is_sensitive"`` (-log10 GI50, responder = 1) or ``None`` (profiles)
    y_name: str = "response"
    y_direction: Optional[str] = None
    y_unit: Optional[str] = None

    def __init__(
        self,
        root: str,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
        log: bool = True,
    ):
        self._payload: Optional[Dict] = None
        # applied by this class when the processed file is built (apply_pre), part of the cache key; PyG's own
        # bookkeeping of them (pre_transform.pt, pre_filter.pt) is not used: the file name already says
        self._pre = (pre_transform, pre_filter)
        super().__init__(root, transform, None, None, log=log, force_reload=force_reload)
        self.pre_transform, self.pre_filter = pre_transform, pre_filter
        self._load_processed()

    # ------------------------------------------------------------ subclass API
    @property
    def options(self) -> Dict:
        raise NotImplementedError

    def build(self) -> Dict:
        raise NotImplementedError

    def cache_options(self) -> Dict:
        """What identifies the processed file: the dataset's options plus ``pre_transform`` /
        ``pre_filter`` (by a stable tag of the callable).
        """
        opts = dict(self.options)
        pt, pf = getattr(self, "_pre", (None, None))
        if pt is not None or pf is not None:
            opts["pre_transform"], opts["pre_filter"] = callable_tag(pt), callable_tag(pf)
        return opts

    def _cache_stem(self) -> str:
        opts = self.cache_options()
        opts.pop("raw", None)
        return f"{self.name}_{options_tag(opts)}_"

    @property
    def processed_file_names(self) -> List[str]:
        # name_<options except raw files>_<raw files' content fingerprint>.pt
        return [f"{self._cache_stem()}{self.options.get('raw') or 'noraw'}.pt"]

    # ----------------------------------------------------------- processing
    def process(self) -> None:
        payload = self.apply_pre(self.build())
        payload["format"] = FORMAT_VERSION
        payload["options"] = json.dumps(self.cache_options(), sort_keys=True, default=str)
        write_atomic(payload, self.processed_paths[0])
        self._clear_stale()

    def _clear_stale(self) -> None:
        """Remove processed files of this dataset and options built from older raw files."""
        stem, keep = self._cache_stem(), os.path.basename(self.processed_paths[0])
        for f in os.listdir(self.processed_dir):  # listdir, not glob: the root may hold [ ] * ?
            if f.startswith(stem) and f.endswith(".pt") and f != keep:
                try:
                    os.remove(os.path.join(self.processed_dir, f))
                    logger.info("removed %s (built from raw files that have changed since)", f)
                except FileNotFoundError:  # a concurrent build removed it first
                    pass

    def _load_processed(self) -> None:
        path = self.processed_paths[0]
        try:
            payload = torch.load(path, weights_only=True)
            if payload.get("format") != FORMAT_VERSION:
                raise ValueError(f"format {payload.get('format')} != {FORMAT_VERSION}")
            if payload.get("options") != json.dumps(self.cache_options(), sort_keys=True, default=str):
                raise ValueError("options differ from this dataset's")
        except Exception as e:  # truncated, stale or foreign file: rebuild from raw, lose nothing
            warnings.warn(
                f"processed file {path} is unusable ({type(e).__name__}: {e}); rebuilding it from raw", stacklevel=2
            )
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            self.process()
            payload = torch.load(path, weights_only=True)
        self._set_payload(payload)

    def apply_pre(self, payload: Dict) -> Dict:
        """``pre_filter`` and ``pre_transform`` as PyG defines them: each pair's ``PairData`` is
        filtered (dropped pairs counted in ``report["dropped"]["pre_filter"]``) and transformed once, before
        the processed file is written, so both ``dataset[i]`` and the fast loader see the result. The
        storage is tables, so a ``pre_transform`` may change ``x`` (one expression vector per cell: every
        pair of a cell must get the same), ``y``, ``dose`` and ``time``; anything else (the drug graph, the
        prior, new attributes) is refused with a clear error.
        """
        pre_transform, pre_filter = getattr(self, "_pre", (None, None))
        if pre_transform is None and pre_filter is None:
            return payload
        from tqdm.auto import tqdm

        self._set_payload(payload)
        n = self.len()
        pairs = {k: v.clone() for k, v in payload["pairs"].items()}
        expr = payload["expr"].clone()
        keep = torch.ones(n, dtype=torch.bool)
        seen: Dict[int, Tensor] = {}
        fixed = (
            "edge_index",
            "edge_weight",
            "drug_x",
            "drug_edge_index",
            "drug_edge_attr",
            "cell_id",
            "drug_id",
            "pair_id",
        )
        for i in tqdm(range(n), desc="pre_filter / pre_transform", disable=not getattr(self, "log", False)):
            data = self.get(i)
            if pre_filter is not None and not pre_filter(data):
                keep[i] = False
                continue
            if pre_transform is None:
                continue
            before = {k: data[k] for k in fixed if k in data}
            out = pre_transform(data.clone())
            extra = sorted(set(out.keys()) - set(data.keys()))
            changed = [k for k, v in before.items() if k not in out or not torch.equal(out[k], v)]
            if extra or changed:
                raise ValueError(
                    f"pre_transform added {extra} / changed {changed}: pair datasets store expression, "
                    "y, dose and time per pair; use transform= (applied in dataset[i]) for the rest"
                )
            c = int(pairs["cell"][i])
            x = out.x.reshape(-1).to(expr.dtype)
            if c in seen and not torch.equal(seen[c], x):
                raise ValueError(
                    f"pre_transform gave cell {self.cells[c]!r} two different expression vectors (pairs "
                    "of one cell share its expression row); make it depend on the cell only"
                )
            seen[c] = x
            expr[c] = x
            pairs["y"][i] = out.y.reshape(pairs["y"][i].shape)
            pairs["dose"][i], pairs["time"][i] = out.dose.reshape(()), out.time.reshape(())
        payload = dict(payload)
        payload["expr"] = expr
        payload["pairs"] = {k: v[keep] for k, v in pairs.items()}
        report = json.loads(payload["report"])
        report.setdefault("dropped", {})["pre_filter"] = int((~keep).sum())
        report["pre_transform"] = callable_tag(pre_transform)
        payload["report"] = json.dumps(report, default=str)
        logger.info("pre_filter kept %d of %d pairs", int(keep.sum()), n)
        return payload

    def _set_payload(self, payload: Dict) -> None:
        self._payload = payload
        self._expr: Tensor = payload["expr"]
        self._pairs: Dict[str, Tensor] = payload["pairs"]
        self.gene_space = GeneSpace(payload["genes"])
        self.gene_mask: Tensor = payload["gene_mask"]
        self.molecules = MoleculeStore.from_dict(payload["molecules"])
        self.cells: List[str] = payload["cells"]
        self.cell_meta: Dict[str, List] = payload.get("cell_meta", {})
        self.drug_meta: Dict[str, List] = payload.get("drug_meta", {})
        prior = payload.get("prior")
        self.prior_edge_index: Optional[Tensor] = prior["edge_index"] if prior else None
        self.prior_edge_weight: Optional[Tensor] = prior["edge_weight"] if prior else None
        self.report: Dict = json.loads(payload["report"])
        #: the normalisation the expression went through (``{"method", "median", "scale", ...}``), or None
        self.expression_stats: Optional[Dict] = payload.get("expr_stats")

    @staticmethod
    def make_payload(
        *,
        expr: Tensor,
        expr_missing: Optional[Tensor] = None,
        expr_stats: Optional[Dict] = None,
        genes: List[str],
        gene_mask: Tensor,
        cells: List[str],
        molecules: MoleculeStore,
        cell: Tensor,
        drug: Tensor,
        y: Tensor,
        dose: Tensor,
        time: Tensor,
        prior=None,
        cell_meta: Optional[Dict] = None,
        drug_meta: Optional[Dict] = None,
        split_cell: Optional[Tensor] = None,
        report: Dict,
    ) -> Dict:
        """The processed payload. ``split_cell`` (optional, one id per pair) is the biological
        cell line used by the cell-blind/disjoint splits when ``cell`` indexes something else
        (a LINCS plate's basal profile).
        """
        n = y.size(0)  # y: [n] scalar responses or [n, N] profiles (LINCS)
        for k, v in {"cell": cell, "drug": drug, "dose": dose, "time": time}.items():
            if v.numel() != n:
                raise ValueError(f"pair column {k} has {v.numel()} rows, y has {n}")
        if expr.shape != (len(cells), len(genes)):
            raise ValueError(f"expr {tuple(expr.shape)} != ({len(cells)} cells, {len(genes)} genes)")

        def plain(values):  # numpy scalars would make the file unloadable with weights_only=True
            return [v.item() if hasattr(v, "item") else v for v in values]

        drug_meta = dict(drug_meta or {})
        if "compound_group" not in drug_meta:
            group, crep = compound_groups(molecules.names, molecules.smiles)
            drug_meta["compound_group"] = group
            report["compounds"] = crep
            if crep["drugs_merged"]:
                logger.info(
                    "compounds: %d drugs are %d compounds (%d stereo/salt variants grouped for drug-blind splits)",
                    crep["num_drugs"],
                    crep["num_compounds"],
                    crep["drugs_merged"],
                )

        return {
            "expr": expr.float().contiguous(),
            "genes": plain(genes),
            "expr_missing": None if expr_missing is None or not expr_missing.any() else expr_missing.nonzero().T,
            "gene_mask": gene_mask.bool(),
            "expr_stats": expr_stats,
            "cells": plain(cells),
            "cell_meta": {k: plain(v) for k, v in (cell_meta or {}).items()},
            "drug_meta": {k: plain(v) for k, v in drug_meta.items()},
            "molecules": molecules.to_dict(),
            "pairs": {
                "cell": cell.long(),
                "drug": drug.long(),
                "y": y.float(),
                "dose": dose.float(),
                "time": time.float(),
                **({} if split_cell is None else {"split_cell": split_cell.long()}),
            },
            "prior": None if prior is None else {"edge_index": prior[0].long(), "edge_weight": prior[1].float()},
            "report": json.dumps(report, default=str),
        }

    # ------------------------------------------------------------ access
    # ------------------------------------------------------------ subsets (PyG's ds[idx], ds.shuffle())
    def pair_rows(self) -> Optional[Tensor]:
        """The rows of the pair table this dataset is (``ds[idx]`` and ``ds.shuffle()`` are subsets in PyG's
        sense: ``indices()``), or ``None`` for the whole table. Every method of a subset speaks in the subset's
        own positions: ``num_pairs``, ``pairs``, ``get_idx_split``, ``loader``, ``summary``.
        """
        ind = getattr(self, "_indices", None)
        if ind is None:
            return None
        if isinstance(ind, Tensor):
            return ind.long().view(-1)
        if isinstance(ind, range):
            return torch.arange(ind.start, ind.stop, ind.step)
        return torch.as_tensor(list(ind), dtype=torch.long)

    def to_rows(self, index=None) -> Tensor:
        """Positions in this dataset (a subset's own, or a boolean mask over them) -> rows of the pair table."""
        idx = as_pair_index(index, self.num_pairs)
        rows = self.pair_rows()
        return idx if rows is None else rows[idx]

    @property
    def num_pairs(self) -> int:
        rows = self.pair_rows()
        return self.len() if rows is None else int(rows.numel())

    # ------------------------------------------------------------ PyG metadata
    @property
    def y(self) -> Tensor:
        """The targets of this dataset's pairs (``[num_pairs]``, or ``[num_pairs, N]`` profiles for LINCS)."""
        return self.pairs["y"]

    @property
    def genes(self) -> List[str]:
        """The gene names, in node order (``gene_space.genes``)."""
        return list(self.gene_space.genes)

    @property
    def num_node_features(self) -> int:
        """Features per gene node (``x [N, 1]``: one expression value)."""
        return 1

    @property
    def num_edge_features(self) -> int:
        """Features per prior edge: 0 (the prior's edges carry a weight, ``edge_weight``, not features).
        Drug bonds have ``num_bond_features``.
        """
        return 0

    @property
    def atom_feature_sizes(self) -> List[int]:
        """Categories per atom feature column of the drug graphs (size embeddings with these; ``AtomEncoder``)."""
        from csg2a_graph.data.molecules import ATOM_FEATURE_SIZES

        return list(ATOM_FEATURE_SIZES)

    @property
    def bond_feature_sizes(self) -> List[int]:
        from csg2a_graph.data.molecules import BOND_FEATURE_SIZES

        return list(BOND_FEATURE_SIZES)

    @property
    def num_atom_features(self) -> int:
        """Columns of ``drug_x`` / ``drug_graph.x`` (categorical; see ``atom_feature_sizes``)."""
        return len(self.atom_feature_sizes)

    @property
    def num_bond_features(self) -> int:
        """Columns of ``drug_edge_attr`` / ``drug_graph.edge_attr`` (categorical)."""
        return len(self.bond_feature_sizes)

    @property
    def num_classes(self) -> int:
        """PyG's ``num_classes`` without iterating every pair (PyG's default took 26 s on GDSC2 and returned
        184,889): 2 for 0/1 responders (TCGA), 1 for a regression target, ``N`` for profile targets (LINCS).
        """
        y = self._pairs["y"]
        if y.dim() > 1:
            return int(y.size(1))
        if y.numel() and bool(((y == 0) | (y == 1)).all()):
            return 2
        return 1

    @property
    def num_cells(self) -> int:
        return len(self.cells)

    @property
    def num_drugs(self) -> int:
        return len(self.molecules)

    @property
    def num_genes(self) -> int:
        return len(self.gene_space)

    @property
    def drugs(self) -> List[str]:
        return self.molecules.names

    @property
    def expression(self) -> Tensor:
        """``[num_cells, N]`` basal expression."""
        return self._expr

    @property
    def expression_missing(self) -> Tensor:
        """``[num_cells, N]`` bool: ``True`` where a measured gene's value was missing or
        non-finite in the raw matrix and holds the fill value instead.
        """
        out = torch.zeros(self._expr.shape, dtype=torch.bool)
        idx = (self._payload or {}).get("expr_missing")
        if idx is not None:
            out[idx[0], idx[1]] = True
        return out

    @property
    def pairs(self) -> Dict[str, Tensor]:
        """The pair table: ``cell, drug, y, dose, time`` tensors (a subset's rows only, in its order)."""
        rows = self.pair_rows()
        if rows is None:
            return self._pairs
        memo = self.__dict__.get("_subset_pairs")
        if memo is None or memo[0] is not self._indices:
            memo = (self._indices, {k: v[rows] for k, v in self._pairs.items()})
            self.__dict__["_subset_pairs"] = memo
        return memo[1]

    def len(self) -> int:
        """Rows of the whole pair table (PyG indexes a subset through ``indices()``); ``len(ds)`` and
        ``num_pairs`` count a subset's pairs.
        """
        return int(self._pairs["y"].size(0))

    def get(self, idx: int) -> PairData:
        p = self._pairs
        c, d = int(p["cell"][idx]), int(p["drug"][idx])
        mol = self.molecules.get(d)
        data = PairData(
            x=self._expr[c].unsqueeze(-1),
            y=p["y"][idx : idx + 1],
            dose=p["dose"][idx : idx + 1],
            time=p["time"][idx : idx + 1],
            cell_id=torch.tensor([c]),
            drug_id=torch.tensor([d]),
            pair_id=torch.tensor([int(idx)]),
            drug_x=mol.x,
            drug_edge_index=mol.edge_index,
            drug_edge_attr=mol.edge_attr,
        )
        if self.prior_edge_index is not None:
            data.edge_index, data.edge_weight = self.prior_edge_index, self.prior_edge_weight
        return data

    def get_idx_split(
        self, scheme: str = "mixed", fold: int = 0, n_folds: int = 10, seed: int = 0, group_compounds: bool = True
    ) -> Dict[str, Tensor]:
        """Pair indices of ``train``/``val``/``test`` (and ``dropped``) for one fold.

        See ``csg2a_graph.data.splits`` for the schemes (``mixed``,
        ``cell_blind``, ``drug_blind``, ``disjoint``, ``tissue_blind``; LPO/LCO/LDO/LTO aliases).
        With ``group_compounds`` (default) drugs that are one compound (same InChIKey
        connectivity block of the largest fragment: stereo-isomers, salts) are kept on one
        side of drug-blind and disjoint splits (``report["compounds"]`` lists the merges).
        """
        pairs = self.pairs  # a subset splits its own pairs; the indices are positions in it
        cell = pairs.get("split_cell", pairs["cell"])
        group = self.drug_meta.get("compound_group") if group_compounds else None
        tissue = None
        if canonical_scheme(scheme) == "tissue_blind":
            labels = self.cell_meta.get("tcga")
            if not labels or "split_cell" in pairs or not any(labels):
                raise ValueError(
                    f"{self.name}: tissue_blind needs a TCGA label per cell line (cell_meta['tcga']); "
                    "this dataset has none"
                )
            names = sorted(set(labels))
            tissue = torch.tensor([names.index(t) for t in labels])
        return make_split(
            cell,
            pairs["drug"],
            scheme,
            fold,
            n_folds,
            seed,
            drug_group=None if group is None else torch.tensor(group),
            cell_group=tissue,
        )

    def batched_prior(self, batch_size: int):
        """The prior repeated for ``batch_size`` samples as PyG nodes (``([2, B*E], [B*E])``; see
        ``csg2a_graph.data.batched_prior()``), for PyG convs over a batch's ``expr.reshape(-1, 1)``.
        """
        if self.prior_edge_index is None:
            raise ValueError(f"{self.name} has no prior (built with prior=None)")
        from csg2a_graph.data.prior import batched_prior

        return batched_prior(self.prior_edge_index, self.prior_edge_weight, batch_size, self.num_genes)

    def loader(self, index: Optional[Tensor] = None, batch_size: int = 256, **kwargs) -> PairLoader:
        return PairLoader(self, index, batch_size, **kwargs)

    def summary(self) -> Dict:
        """Counts for ``csg2a data info``."""
        rep = self.report
        return {
            "dataset": self.name,
            "y": self.y_name,
            "y_direction": self.y_direction,
            "num_samples": self.num_pairs,
            **({} if self.pair_rows() is None else {"subset_of": self.len()}),
            "num_cells": self.num_cells,
            "num_drugs": self.num_drugs,
            "num_genes": self.num_genes,
            "num_genes_requested": rep.get("genes", {}).get("num_genes_in_space", self.num_genes),
            "num_genes_matched": int(self.gene_mask.sum()),
            "prior_edges": 0 if self.prior_edge_index is None else int(self.prior_edge_index.size(1)),
            "dropped": rep.get("dropped", {}),
            "report": rep,
        }

    def __repr__(self) -> str:
        sub = "" if self.pair_rows() is None else f" of {self.len()}"
        return (
            f"{type(self).__name__}({self.num_pairs}{sub} pairs, {self.num_cells} cells, "
            f"{self.num_drugs} drugs, {self.num_genes} genes)"
        )


class ArrayPairs(PairDataset):
    """A pair dataset held in memory, from arrays: what ``csg2a explain`` / ``predict`` build from a
    user's pair table. Drugs are featurised from ``smiles`` (invalid SMILES raise, naming the drug).

    Args:
        expr: ``[cells, N]`` expression on the model's scale; ``genes``: its ``N`` gene names.
        cells, drugs, smiles: names of the rows of ``expr``, and drug names with their SMILES.
        cell, drug: ``[P]`` row of ``expr`` and drug position of each pair; ``dose``, ``time``: ``[P]``.
        y: ``[P]`` responses (``NaN`` when unknown; default all ``NaN``).
        prior: ``(edge_index, edge_weight)`` or ``None``; ``gene_mask``: measured genes (default all).
    """

    has_download = False
    has_process = False

    def __init__(
        self,
        expr: Tensor,
        genes: Sequence[str],
        cells: Sequence[str],
        drugs: Sequence[str],
        smiles: Sequence[str],
        cell: Tensor,
        drug: Tensor,
        dose: Tensor,
        time: Tensor,
        y: Optional[Tensor] = None,
        prior=None,
        gene_mask: Optional[Tensor] = None,
        name: str = "pairs",
    ):
        self.name = name
        self._payload = None
        Dataset.__init__(self, None, log=False)
        molecules, rep = MoleculeStore.from_smiles(list(drugs), list(smiles))
        if len(molecules) != len(drugs):
            raise ValueError(f"invalid SMILES: {rep.invalid}")
        cell, drug = torch.as_tensor(cell).long(), torch.as_tensor(drug).long()
        y = torch.full((cell.numel(),), float("nan")) if y is None else torch.as_tensor(y).float()
        mask = torch.ones(len(genes), dtype=torch.bool) if gene_mask is None else torch.as_tensor(gene_mask).bool()
        self._set_payload(
            self.make_payload(
                expr=torch.as_tensor(expr).float(),
                genes=list(genes),
                gene_mask=mask,
                cells=list(cells),
                molecules=molecules,
                cell=cell,
                drug=drug,
                y=y,
                dose=torch.as_tensor(dose).float(),
                time=torch.as_tensor(time).float(),
                prior=prior,
                report={"name": name, "in_memory": True},
                drug_meta={"name": list(drugs)},
            )
        )

    @property
    def options(self) -> Dict:
        return {"in_memory": self.name}


__all__ = [
    "PairData",
    "PairBatch",
    "PairLoader",
    "PairDataset",
    "ArrayPairs",
    "file_digest",
    "file_fingerprint",
    "options_tag",
    "write_atomic",
]
