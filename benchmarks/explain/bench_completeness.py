"""IG completeness on the default model: how far sum(attributions) is from f(x) - f(0), per grid and with the
per-pair completeness target (issue 25.4).

    python benchmarks/explain/bench_completeness.py --checkpoint quickstart/checkpoints/csg2a_drug_blind_fold0.pt \
        --root quickstart_data/gdsc2 --split quickstart/cv/splits/drug_blind_fold0.pt [--pairs 20] [--steps 50]

The checkpoint is the quickstart's `released` drug-blind CSG²A (the model a newcomer gets); the pairs are the
first ``--pairs`` of that fold's held-out test pairs. For each setting — Captum's plain grid, the piecewise grid
``(1e-3, 1e-2, 1e-1)``, ``ig_breaks="auto"`` (both, per batch the more complete) and ``auto`` with
``completeness_target=0.05`` — it prints the max and mean absolute gap, the max relative gap, the mean output change
|f(x) - f(0)|, the steps used and the wall time, measured one after the other in one process.
"""

from __future__ import annotations

import argparse
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--root", required=True, help="the GDSC2 root the checkpoint was trained on (registry source)")
    p.add_argument("--split", required=True, help="a saved split (.pt with train/val/test) of that dataset")
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=20)
    args = p.parse_args(argv)
    import torch

    from csg2a_graph.checkpoint import load_model
    from csg2a_graph.datasets import GDSC
    from csg2a_graph.explain import explain_genes

    model = load_model(args.checkpoint)
    ds = GDSC(args.root, source="registry", log=False)
    idx = torch.load(args.split, weights_only=True)["test"][: args.pairs]
    print(
        f"# IG completeness, {idx.numel()} held-out pairs, start {args.steps} steps, model {args.checkpoint}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        "| grid | target | steps (min-max, mean) | max abs gap | mean abs gap | max rel gap | mean abs Δf | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|")
    settings = [
        ("plain", None, None),
        ("pieces", (1e-3, 1e-2, 1e-1), None),
        ("auto", "auto", None),
        ("auto", "auto", 0.05),
    ]
    for name, breaks, target in settings:
        t0 = time.perf_counter()
        a = explain_genes(
            model,
            ds,
            idx,
            "ig",
            n_steps=args.steps,
            batch_size=args.batch_size,
            progress=False,
            ig_breaks=breaks,
            completeness_target=target,
        )
        dt = time.perf_counter() - t0
        c = a.completeness()
        st = a.steps.double() if a.steps is not None else torch.full((idx.numel(),), float(args.steps))
        grid = name if name != "auto" else f"auto ({', '.join(f'{k} {v}' for k, v in a.options['ig_grid'].items())})"
        print(
            f"| {grid} | {target or '-'} | {int(st.min())}-{int(st.max())}, {float(st.mean()):.0f} | "
            f"{c['completeness_max_abs_error']:.4f} | {c['completeness_mean_abs_error']:.4f} | "
            f"{c['completeness_max_rel_error']:.3f} | {c['mean_abs_output_change']:.3f} | {dt:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
