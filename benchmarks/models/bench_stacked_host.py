"""Host time of planning one stacked step (issue 28.3/28.4): what the CPU does per step before the device works.

    python benchmarks/models/bench_stacked_host.py --root GDSC2_ROOT [--runs 1 10 40] [--steps 30]

A GPU step is launch-bound (issue 28's profile: the device busy ~2 ms of a batch-128 step), so every millisecond
the host spends assembling a batch is a millisecond of idle device. The tables are placed on PyTorch's ``meta``
device: its operations only compute shapes, so the time measured is the host's alone (Python, the dispatcher, the
CPU-side index arithmetic), as on a GPU where the kernels run asynchronously. Side by side, in one run:

- ``pyg``: the generic way — per run ``unique`` of its drugs, ``MoleculeStore.batch`` on the CPU, then
  ``Batch.to(device)`` (PyG walks every attribute, the per-graph SMILES and name lists included);
- ``resident``: ``_Tables.batch`` — one ``unique`` over (run, drug) keys, the drug graphs gathered on the device from
  tables resident there, offsets planned on the host.

Also on ``cpu`` (the gathers included) for reference.
"""

from __future__ import annotations

import argparse
import time

import torch


def pyg_batch(tables, sels):
    """The generic batch: per-run distinct drugs, a CPU ``Batch`` moved to the device."""
    cells, uniqs, dindex, offset = [], [], [], 0
    for sel in sels:
        row = sel if tables.rows is None else tables.rows[sel]
        uniq, inv = torch.unique(tables.drug[row], return_inverse=True)
        cells.append(tables.cell[row])
        uniqs.append(uniq)
        dindex.append(inv + offset)
        offset += uniq.numel()
    graph = tables.dataset.molecules.batch(torch.cat(uniqs))
    rows = torch.cat(list(sels)).to(tables.device)
    dev = tables.device
    return (
        tables.expr[torch.cat(cells).to(dev)],
        graph.to(dev),
        torch.cat(dindex).to(dev),
        tables.values["y"][rows],
    )


def timed(fn, steps: int) -> float:
    fn()
    out = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        out.append((time.perf_counter() - t) / steps)
    return min(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="a GDSC2 root (the registry source)")
    p.add_argument("--runs", type=int, nargs="+", default=[1, 10, 40])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    a = p.parse_args(argv)

    from csg2a_graph.datasets import GDSC
    from csg2a_graph.train.stacked import _Tables

    ds = GDSC(a.root, source="registry", log=False)
    print(f"{len(ds)} pairs, {len(ds.molecules)} drugs; batch {a.batch_size} per run; best of 3 x {a.steps} steps")
    print(f"{'device':>6} {'runs':>5} {'pyg ms':>8} {'resident ms':>12} {'ratio':>6}")
    for dev in ("meta", "cpu"):
        tables = _Tables(ds, torch.device(dev))
        g = torch.Generator().manual_seed(0)
        for R in a.runs:
            sels = [torch.randperm(len(ds), generator=g)[: a.batch_size] for _ in range(R)]
            old = timed(lambda: pyg_batch(tables, sels), a.steps)
            new = timed(lambda: tables.batch(sels), a.steps)
            print(f"{dev:>6} {R:>5} {old * 1e3:>8.2f} {new * 1e3:>12.2f} {old / new:>5.1f}x")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
