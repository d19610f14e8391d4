"""LINCS data layer: GCTX subset reads vs reading the whole matrix, and LINCS dataset build times.

    python benchmarks/data/bench_lincs.py [--profiles 50000] [--subset 1000]

The real level-5 GCTX (272 profiles x 978 genes, ../shared/data/lincs) is tiled into a
GSE92742-shaped file of --profiles profiles (HDF5 matrix [profiles, genes], chunked by
profile as CMap writes it), then read whole and as a random subset, side by side.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def make_big_gctx(src: Path, dst: Path, n: int) -> None:
    with h5py.File(src, "r") as f:
        mat = f["0/DATA/0/matrix"][()]
        row = {k: f["0/META/ROW"][k][()] for k in f["0/META/ROW"]}
    reps = -(-n // mat.shape[0])
    with h5py.File(dst, "w") as f:
        f.attrs["version"] = "GCTX1.0"
        d = f.create_dataset(
            "0/DATA/0/matrix", shape=(n, mat.shape[1]), dtype="float32", chunks=(min(256, n), mat.shape[1])
        )
        for s in range(0, n, 10000):
            e = min(s + 10000, n)
            d[s:e] = np.tile(mat, (reps, 1))[s:e]
        for k, v in row.items():
            f[f"0/META/ROW/{k}"] = v
        f["0/META/COL/id"] = np.array([f"SIG{i:07d}".encode() for i in range(n)])
        f["0/META/COL/pert_type"] = np.array([b"trt_cp"] * n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profiles", type=int, default=50000)
    ap.add_argument("--subset", type=int, default=1000)
    ap.add_argument("--shared", default=str(SHARED))
    args = ap.parse_args()
    from csg2a_graph.datasets import LINCSL1000
    from csg2a_graph.io import read_gctx

    tmp = Path(tempfile.mkdtemp(prefix="bench_lincs_"))
    big = tmp / "big.gctx"
    t = time.perf_counter()
    make_big_gctx(Path(args.shared) / "lincs" / "l1ktools_modzs_n272x978.gctx", big, args.profiles)
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, date {time.strftime('%Y-%m-%d')}")
    print(f"wrote {args.profiles} x 978 GCTX ({big.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
    rng = np.random.default_rng(0)
    cidx = np.sort(rng.choice(args.profiles, args.subset, replace=False))
    for _ in range(2):  # second round: warm page cache for both
        t = time.perf_counter()
        whole = read_gctx(big, progress=False)
        tw = time.perf_counter() - t
        t = time.perf_counter()
        sub = read_gctx(big, cidx=cidx, progress=False)
        ts = time.perf_counter() - t
    assert np.array_equal(sub.data, whole.data[:, cidx])
    print(f"whole matrix: {tw:6.2f} s ({args.profiles / tw:10,.0f} profiles/s, then select {args.subset})")
    print(
        f"subset read:  {ts:6.2f} s ({args.subset / ts:10,.0f} profiles/s) -> {tw / ts:.1f}x less time than "
        f"reading everything to get {args.subset} profiles, memory {args.subset / args.profiles:.1%} of the whole"
    )

    for level, files in (
        (
            3,
            [
                "lincs/cmappy_test_l1000_LJP005_A375_24H.gct",
                "lincs/deepce_brd_smiles.csv",
                "lincs/dhimmel_lincs_pertinfo.tsv.gz",
                "string/STRING_edges.csv",
            ],
        ),
        (
            5,
            [
                "lincs/l1ktools_modzs_n272x978.gctx",
                "lincs/deepce_brd_smiles.csv",
                "lincs/dhimmel_lincs_pertinfo.tsv.gz",
                "lincs/transigen_basal_dmso_modz_165cells.csv",
            ],
        ),
    ):
        root = tmp / f"l{level}"
        (root / "raw").mkdir(parents=True)
        for f in files:
            os.symlink(Path(args.shared) / f, root / "raw" / Path(f).name)
        t = time.perf_counter()
        ds = LINCSL1000(str(root), level=level, log=False)
        tb = time.perf_counter() - t
        t = time.perf_counter()
        LINCSL1000(str(root), level=level, log=False)
        tr = time.perf_counter() - t
        print(f"LINCS level {level}: build {tb:5.2f} s, reload {tr:5.2f} s -> {ds}")


if __name__ == "__main__":
    main()
