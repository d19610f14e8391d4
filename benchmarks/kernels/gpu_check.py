"""The GPU checks of issue 28.1 in one short script: the fused linear CSG²A kernel at the sizes that crashed,
forward and backward against the PyTorch reference (``expanded_linear``, fp64), fp32 and bf16; and one CSG²A
fine-tune step under bf16 autocast with the pretrained GCN (issue 28.2).

    python benchmarks/kernels/gpu_check.py              # on a CUDA machine (H100/H200: a few seconds)
    python benchmarks/kernels/gpu_check.py --dry-run    # the same code path at tiny sizes, Triton interpreter, CPU

Prints one row per case: B, N, h, dtype, the shared memory limit, the stages chosen, the max relative error of the
output and of each gradient, and the milliseconds of one forward + backward. Exit status 1 if any case fails
(an exception such as Triton's OutOfResources, or an error above the dtype's tolerance).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

CASES = [(2048, 978), (2560, 978), (4096, 978), (16_384, 978), (64, 20_000)]
DRY = [(3, 37), (40, 70)]
TOL = {"float32": 1e-4, "bfloat16": 3e-2}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU under TRITON_INTERPRET=1")
    p.add_argument("--hidden", type=int, default=64)
    args = p.parse_args(argv)
    if args.dry_run:
        os.environ["TRITON_INTERPRET"] = "1"  # before any Triton kernel is defined
    import torch

    from csg2a_graph.ops.factorized import expanded_linear
    from csg2a_graph.ops.triton._utils import dot_precision, shared_memory_limit
    from csg2a_graph.ops.triton.fused_linear import _config, _stages, fused_linear_attention

    dev = torch.device("cpu" if args.dry_run else "cuda")
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run, or on a GPU machine", file=sys.stderr)
        return 2
    h = args.hidden
    print(
        f"# fused linear kernel, h={h}, device {torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}, "
        f"torch {torch.__version__}, shared memory limit {shared_memory_limit(dev)}"
    )
    print("| B | N | dtype | stages | rel err out | rel err dx | rel err dW | ms fwd+bwd | ok |")
    print("|---|---|---|---|---|---|---|---|---|")
    bad = 0
    for B, N in DRY if args.dry_run else CASES:
        for dtype in (torch.float32, torch.bfloat16):
            g = torch.Generator().manual_seed(0)
            x = torch.randn(B, N, generator=g).to(dev, dtype)
            c = torch.randn(B, N, generator=g).to(dev, dtype)
            wg = (torch.randn(N, h, generator=g) / h**0.5).to(dev, dtype)
            wc = (torch.randn(N, h, generator=g) / h**0.5).to(dev, dtype)
            go = torch.randn(B, N, generator=g).to(dev, dtype)
            cfg = _config(B, N, h)
            stages = _stages(x, cfg, dot_precision(x.dtype))
            try:
                leaves = [t.clone().requires_grad_() for t in (x, c, wg, wc)]
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                out = fused_linear_attention(*leaves, None, "matmul")
                out.backward(go)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                ms = (time.perf_counter() - t0) * 1e3
                ref_leaves = [t.double().clone().requires_grad_() for t in (x, c, wg, wc)]
                ref = expanded_linear(
                    ref_leaves[0], ref_leaves[1], ref_leaves[2], ref_leaves[3], None, "matmul", h**-0.5
                )
                ref.backward(go.double())

                def rel(a, b):
                    a, b = a.detach().double(), b.detach()
                    return float((a - b).norm() / b.norm().clamp_min(1e-30))

                errs = [rel(out, ref), rel(leaves[0].grad, ref_leaves[0].grad), rel(leaves[2].grad, ref_leaves[2].grad)]
                ok = max(errs) <= TOL[str(dtype).split(".")[-1]]
                row = f"{errs[0]:.2e} | {errs[1]:.2e} | {errs[2]:.2e} | {ms:.1f}"
            except Exception as e:  # noqa: BLE001 - a crash is a result of this check
                ok, row = False, f"{type(e).__name__}: {str(e).splitlines()[0][:80]} | - | - | -"
            bad += not ok
            print(
                f"| {B} | {N} | {str(dtype).split('.')[-1]} | {stages} | {row} | {'yes' if ok else 'NO'} |", flush=True
            )
    bad += not amp_check(dev)
    return 1 if bad else 0


def amp_check(dev) -> bool:
    """Issue 28.2: a CSG2A fine-tune step under bf16 autocast with the pretrained GCN (the sparse product
    raised `addmm_sparse_cuda not implemented for 'BFloat16'`), against the fp32 step."""
    import torch

    from csg2a_graph import assets
    from csg2a_graph.data import GeneSpace
    from csg2a_graph.data.molecules import MoleculeStore
    from csg2a_graph.nn import CSG2A, CSG2AFineTune

    genes = GeneSpace.landmark().genes
    torch.manual_seed(0)
    pre = CSG2A(genes, drug_encoder="pretrained-gcn", drug_weights=assets.gcn_weights())
    model = CSG2AFineTune.from_pretrained(pre, genes=genes).to(dev).eval()  # no dropout: fp32 and bf16 comparable
    store, _ = MoleculeStore.from_smiles(["a", "b", "c"], ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"])
    B = 128
    expr = torch.randn(B, len(genes), device=dev)
    dindex = torch.arange(B, device=dev) % 3
    dose, time_ = torch.full((B,), 10.0, device=dev), torch.full((B,), 72.0, device=dev)
    graph = store.batch().to(dev)
    try:
        with torch.no_grad():
            ref = model(expr, graph, dindex, dose, time_).float()
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
                out = model(expr, graph, dindex, dose, time_)
        err = float((out.float() - ref).norm() / ref.norm().clamp_min(1e-30))
        model.train()  # and a training step (forward + backward) under autocast
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
            loss = model(expr, graph, dindex, dose, time_).float().pow(2).mean()
        loss.backward()
        ok = err < 0.1
        print(
            f"# amp: CSG2AFineTune + pretrained GCN under bf16 autocast on {dev.type}: relative difference to fp32 "
            f"{err:.2e} ({'ok' if ok else 'TOO LARGE'})"
        )
        return ok
    except Exception as e:  # noqa: BLE001 - a crash is a result of this check
        print(f"# amp: FAILED {type(e).__name__}: {str(e).splitlines()[0][:120]}")
        return False


if __name__ == "__main__":
    sys.exit(main())
