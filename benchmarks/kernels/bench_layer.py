"""CSG²A layer speed and memory: our paths vs the naive B x N x N materialisation, side by side.

    python benchmarks/kernels/bench_layer.py cpu-linear      # N=978 B=128 h=64 and N=10167 B=8, fwd+bwd
    python benchmarks/kernels/bench_layer.py cpu-softmax     # chunked vs naive dense softmax: time + peak memory
    python benchmarks/kernels/bench_layer.py cpu-scale       # largest N that trains (B=32, h=64)
    python benchmarks/kernels/bench_layer.py gpu             # Triton vs factorised torch vs naive, GB/s and TFLOP/s

"naive" is what the released CSG2A code does: build q, form S = q q^T / sqrt(h) + A
densely for every sample, then S x. Every ratio is measured in the same process, in
alternating repetitions (these 2-core machines are noisy); medians are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

from csg2a_graph.nn import CSG2AConv
from csg2a_graph.ops import csg2a_attention
from csg2a_graph.ops.reference import dense_prior


def _prior(N: int, E: int, device):
    g = torch.Generator().manual_seed(0)
    ei = torch.unique(torch.randint(0, N, (2, E), generator=g), dim=1)
    ei = torch.cat([ei, ei.flip(0), torch.arange(N).repeat(2, 1)], 1)
    ei = torch.unique(ei, dim=1)
    return ei.to(device), torch.ones(ei.size(1), device=device)


class NaiveCSG2A(torch.nn.Module):
    """The materialising layer (as the released code): same parameters as CSG2AConv(F=1)."""

    def __init__(self, conv: CSG2AConv, edges, N: int):
        super().__init__()
        self.conv = conv
        self.register_buffer("A", dense_prior(edges, N, torch.float32, edges[0].device))

    def forward(self, x, c):
        q = self.conv.gene_representation(x, c.unsqueeze(-1))
        S = torch.matmul(q, q.transpose(1, 2)) * self.conv.scale + self.A
        return torch.matmul(S, x)


def _time(fn, reps: int, sync) -> float:
    sync()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    sync()
    return (time.perf_counter() - t) / reps


def _fwd_bwd(layer, x, c, **kw):
    def run():
        for p in layer.parameters():
            p.grad = None
        out = layer(x, c, **kw) if kw else layer(x, c)
        out.square().mean().backward()

    return run


def compare(fns: dict, reps: int, rounds: int, device: str) -> dict:
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for f in fns.values():  # warm-up (and Triton compilation)
        f()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            times[k].append(_time(f, reps, sync))
    return {k: statistics.median(v) for k, v in times.items()}


def cpu_linear(args):
    torch.set_num_threads(os.cpu_count())
    for B, N, h, rounds in ((128, 978, 64, 5), (8, 10167, 64, 3)):
        edges = _prior(N, 2 * N, "cpu")
        conv = CSG2AConv(N, h)  # default CPU path for the paper's layer: "expanded"
        conv_q = CSG2AConv(N, h, impl="factorized")  # q materialised, then q (q^T x)
        conv_q.load_state_dict(conv.state_dict())
        naive = NaiveCSG2A(conv, edges, N)
        x, c = torch.randn(B, N, 1), torch.randn(B, N)

        class Layer(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x_, c_):
                return self.m(x_, edges[0], edges[1], cond=c_)

        res = compare(
            {
                "expanded": _fwd_bwd(Layer(conv), x, c),
                "factorised": _fwd_bwd(Layer(conv_q), x, c),
                "naive": _fwd_bwd(naive, x, c),
            },
            reps=1,
            rounds=rounds,
            device="cpu",
        )
        a, f, b = res["expanded"], res["factorised"], res["naive"]
        print(
            f"linear layer fwd+bwd B={B} N={N} h={h}: csg2a expanded {a * 1e3:8.2f} ms | csg2a factorised (q kept) "
            f"{f * 1e3:8.2f} ms | naive dense {b * 1e3:9.1f} ms | speed-up vs naive: {b / a:6.1f}x (expanded), "
            f"{b / f:6.1f}x (factorised)"
        )


def _peak_child(code: str, exact_memory: bool = True) -> tuple:
    """Run ``code`` in a fresh interpreter; return (seconds, peak RSS MiB, ok).

    ``exact_memory``: a fixed mmap threshold makes glibc return freed large blocks, so the
    RSS high-water mark tracks live tensors instead of heap fragmentation (it slows
    allocation, so times are taken from a separate run without it).
    """
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072") if exact_memory else dict(os.environ)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return float("nan"), float("nan"), False
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["t"], r["rss"], True


_CHILD = """
import json, resource, time, torch
from csg2a_graph.ops import csg2a_attention
torch.manual_seed(0)

def step(B, N, h):
    q = torch.randn(B, N, h, requires_grad=True); x = torch.randn(B, N, 1, requires_grad=True)
    ei = torch.unique(torch.randint(0, N, (2, 2 * N)), dim=1)
    t = time.perf_counter()
    out = csg2a_attention(q, x, (ei, None), score="{score}", impl="{impl}", validate=False)
    out.square().mean().backward()
    return time.perf_counter() - t

step({B}, min({N}, 128), {h})  # warm-up: load kernels and thread pools before the high-water mark is read
inputs = 2 * {B} * {N} * ({h} + 1) * 4 / 2 ** 20  # q, x and their grads
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = step({B}, {N}, {h})
print(json.dumps({{"t": t, "rss": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024}}))
"""


def cpu_softmax(args):
    for B, N, h in ((32, 978, 64), (8, 4000, 64)):
        row = []
        for impl in ("chunked", "reference"):
            code = _CHILD.format(B=B, N=N, h=h, score="softmax", impl=impl)
            _, rss, _ = _peak_child(code, exact_memory=True)
            t, _, _ = _peak_child(code, exact_memory=False)
            row.append((impl, t, rss))
        (_, ta, ma), (_, tb, mb) = row
        print(
            f"softmax dense fwd+bwd B={B} N={N} h={h}: chunked {ta:6.2f} s, +{ma:7.0f} MiB peak | "
            f"naive {tb:6.2f} s, +{mb:7.0f} MiB peak | time ratio {tb / ta:4.1f}x, memory ratio {mb / max(ma, 1):5.1f}x"
        )


def cpu_scale(args):
    B, h = 32, 64
    limit = 18 * 2**10  # MiB: keep the 24 GB machine alive
    for impl, score, Ns in (
        ("factorized", "linear", (5000, 10000, 20000, 40000, 80000, 160000)),
        ("reference", "linear", (2000, 4000, 6000, 8000, 10000, 12000)),
    ):
        best, last = None, None
        for N in Ns:
            if last is not None and last[1] == last[1]:
                need = last[1] * (N / last[0]) ** (2 if impl == "reference" else 1)
                if need > limit:
                    print(
                        f"  {impl:10s} N={N:6d}: not run, extrapolated peak {need / 1024:.0f} GiB > "
                        f"{limit / 1024:.0f} GiB usable on this 24 GB machine"
                    )
                    break
            t, rss, ok = _peak_child(_CHILD.format(B=B, N=N, h=h, score=score, impl=impl))
            print(f"  {impl:10s} N={N:6d}: {'ok' if ok else 'FAILED'} {t:7.2f} s, +{rss:8.0f} MiB peak")
            if not ok:
                break
            best, last = N, (N, rss)
        print(f"largest N that trained ({impl}, B={B}, h={h}): {best}")


def gpu(args):
    assert torch.cuda.is_available(), "needs a CUDA device"
    dev = "cuda"
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    import triton  # noqa: F401
    from triton.testing import do_bench, do_bench_cudagraph

    from csg2a_graph.ops.triton import fused_linear_attention

    def bench(fn):
        return do_bench(fn, warmup=25, rep=100) * 1e-3

    for dtype in (torch.float32, torch.bfloat16):
        for B, N, h in ((128, 978, 64), (2048, 978, 64), (32, 10167, 64), (8, 20000, 64)):
            edges = _prior(N, 2 * N, dev)
            x = torch.randn(B, N, device=dev, dtype=dtype, requires_grad=True)
            c = torch.randn(B, N, device=dev, dtype=dtype, requires_grad=True)
            wg = (torch.randn(N, h, device=dev) / 8).to(dtype).requires_grad_()
            wc = (torch.randn(N, h, device=dev) / 8).to(dtype).requires_grad_()
            ew = edges[1].to(dtype)

            def fused():
                out = fused_linear_attention(x, c, wg, wc, (edges[0], ew), "matmul")
                out.backward(torch.ones_like(out))

            def factorised():
                q = x[..., None] * wg + c[..., None] * wc
                out = csg2a_attention(q, x, (edges[0], ew), impl="factorized", validate=False)
                out.backward(torch.ones_like(out))

            def expanded():
                from csg2a_graph.ops.factorized import expanded_linear

                out = expanded_linear(x, c, wg, wc, (edges[0], ew), "matmul", h**-0.5)
                out.backward(torch.ones_like(out))

            def naive():
                q = x[..., None] * wg + c[..., None] * wc
                A = torch.zeros(N, N, device=dev, dtype=dtype).index_put_((edges[0][1], edges[0][0]), ew)
                out = torch.matmul(torch.matmul(q, q.transpose(1, 2)) * h**-0.5 + A, x[..., None])[..., 0]
                out.backward(torch.ones_like(out))

            tf, tt, te = bench(fused), bench(factorised), bench(expanded)
            te_g = do_bench_cudagraph(expanded, rep=100) * 1e-3
            # kernel time without Python launch overhead (captured in a CUDA graph)
            tg = do_bench_cudagraph(fused, rep=100) * 1e-3
            naive_bytes = 3 * B * N * N * (2 if dtype == torch.bfloat16 else 4)
            tn = bench(naive) if naive_bytes < 40 * 2**30 else float("nan")
            esz = x.element_size()
            # minimal traffic: fwd reads x, c, W twice (reduce + output) and writes out; bwd reads x, c, g,
            # W twice and writes dx, dc, dW (fp32 atomics)
            moved = (
                (2 * (2 * B * N + 2 * N * h) + B * N) * esz
                + (2 * (3 * B * N + 2 * N * h)) * esz
                + (2 * B * N + 2 * N * h) * 4
            )
            flops = 2 * (B * N * h * 10)  # fwd ~10, bwd ~10 multiply-adds per (b, i, k)
            print(
                f"fused linear {str(dtype)[6:]:8s} B={B:4d} N={N:5d} h={h}: triton {tf * 1e3:7.3f} ms eager, "
                f"{tg * 1e3:7.3f} ms in a CUDA graph ({moved / tg / 1e9:6.0f} GB/s, {flops / tg / 1e12:5.2f} TFLOP/s) "
                f"| expanded torch {te * 1e3:7.3f} ms eager, {te_g * 1e3:7.3f} ms graph | factorised torch {tt * 1e3:7.3f} ms "
                f"| naive {tn * 1e3:8.3f} ms | triton vs torch {tt / tf:4.1f}x, vs naive {tn / tf:6.1f}x"
            )
            torch.cuda.empty_cache()

    for dtype in (torch.float32, torch.bfloat16):
        for score in ("softmax", "sigmoid"):
            for B, N, h in ((32, 978, 64), (8, 10167, 64)):
                edges = _prior(N, 2 * N, dev)
                q = torch.randn(B, N, h, device=dev, dtype=dtype, requires_grad=True)
                x = torch.randn(B, N, 1, device=dev, dtype=dtype, requires_grad=True)
                e = (edges[0], edges[1].to(dtype))

                def run(impl):
                    def f():
                        out = csg2a_attention(q, x, e, score=score, impl=impl, validate=False)
                        out.backward(torch.ones_like(out))

                    return f

                # peak above what is already allocated (inputs, earlier CUDA-graph pools)
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                tf = bench(run("triton"))
                mem_f = (torch.cuda.max_memory_allocated() - base) / 2**20
                torch.cuda.reset_peak_memory_stats()
                tr = bench(run("reference"))
                mem_r = (torch.cuda.max_memory_allocated() - base) / 2**20
                fwd = 2 * B * N * N * (h + 16)
                flops = fwd * 3.5  # fwd + bwd (recompute, dq, dk, dv)
                print(
                    f"flash {score:7s} {str(dtype)[6:]:8s} B={B:3d} N={N:5d} h={h}: triton {tf * 1e3:8.3f} ms "
                    f"({flops / tf / 1e12:6.1f} TFLOP/s, +{mem_f:7.0f} MiB peak) | naive torch {tr * 1e3:8.3f} ms "
                    f"(+{mem_r:7.0f} MiB peak) | {tr / tf:4.1f}x faster, {mem_r / mem_f:5.1f}x less memory"
                )
                torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["cpu-linear", "cpu-softmax", "cpu-scale", "gpu"])
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
        f"date {time.strftime('%Y-%m-%d')}; command: {' '.join(sys.argv)}"
    )
    {"cpu-linear": cpu_linear, "cpu-softmax": cpu_softmax, "cpu-scale": cpu_scale, "gpu": gpu}[args.what](args)


if __name__ == "__main__":
    main()
