"""Integrated Gradients cost: 50 steps for 1,000 real GDSC2 pairs at N = 978 genes.

    python benchmarks/explain/bench_ig.py [--pairs 1000] [--steps 50] [--batch-sizes 16 32 64] [--device cpu]

GDSC2 is built on all 978 landmark genes (``missing_genes="fill"``: the 494 genes its expression lacks
are filled and masked), so the CSG2A layer runs at N = 978 as in the paper. The model is a
CSG2AFineTune around a freshly initialised pretraining network (cost does not depend on the weights).
For each pairs-per-call batch size: wall time, pairs/s, forward+backward passes/s (pairs x steps) and
peak memory (CUDA: max allocated; CPU: growth of the process's peak RSS). Prints one table.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from bench_accuracy import GDSC_FILES, link  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=1000)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--device", default="cuda" if os.environ.get("CUDA_VISIBLE_DEVICES", "") != "" else "cpu")
    p.add_argument("--work", default="runs/bench_ig")
    args = p.parse_args(argv)
    import torch

    from csg2a_graph.datasets import GDSC
    from csg2a_graph.explain import explain_genes
    from csg2a_graph.nn import CSG2A, CSG2AFineTune

    dev = torch.device(args.device if (args.device != "cuda" or torch.cuda.is_available()) else "cpu")
    ds = GDSC(link(Path(args.work) / "gdsc2_fill", GDSC_FILES), missing_genes="fill", log=False)
    torch.manual_seed(0)
    pre = CSG2A(ds.gene_space.genes, prior=(ds.prior_edge_index, ds.prior_edge_weight), drug_encoder="gin")
    model = CSG2AFineTune.from_pretrained(pre, genes=ds.gene_space.genes, measured=ds.gene_mask.tolist()).to(dev)
    idx = torch.randperm(ds.num_pairs, generator=torch.Generator().manual_seed(0))[: args.pairs]
    print(
        f"# IG, {args.steps} steps, {args.pairs} real GDSC2 pairs, N={ds.num_genes} "
        f"({int(ds.gene_mask.sum())} measured), device {dev}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    explain_genes(model, ds, idx[:8], "ig", n_steps=args.steps, batch_size=8, progress=False)  # warm-up
    print("| pairs per call | seconds | pairs/s | fwd+bwd samples/s | peak memory (MB) | max completeness error |")
    print("|---|---|---|---|---|---|")
    for bs in args.batch_sizes:
        if dev.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        rss0 = peak_rss_mb()
        t0 = time.perf_counter()
        a = explain_genes(model, ds, idx, "ig", n_steps=args.steps, batch_size=bs, progress=False)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        mem = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else peak_rss_mb() - rss0
        err = a.completeness()["completeness_max_abs_error"]
        print(
            f"| {bs} | {secs:.1f} | {args.pairs / secs:.1f} | {args.pairs * args.steps / secs:.0f} | "
            f"{mem:.0f}{' (RSS growth)' if dev.type != 'cuda' else ''} | {err:.3g} |",
            flush=True,
        )
    print(f"# process peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
