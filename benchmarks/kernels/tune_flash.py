"""Pick flash-kernel tiles on a GPU: times forward+backward for candidate (block_m, block_n, warps, stages).

    python benchmarks/kernels/tune_flash.py

Prints one line per candidate; the best per dtype goes into ``csg2a_graph.ops.triton.flash.TUNED``.
"""

import torch
from triton.testing import do_bench

from csg2a_graph.ops import csg2a_attention
from csg2a_graph.ops.triton import flash

CANDIDATES = [(bm, bn, w, s) for bm in (64, 128) for bn in (32, 64, 128) for w in (4, 8) for s in (2, 3)]


def main():
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    for dtype in (torch.bfloat16, torch.float32):
        for B, N, h in ((8, 10167, 64),):
            q = torch.randn(B, N, h, device="cuda", dtype=dtype, requires_grad=True)
            x = torch.randn(B, N, 1, device="cuda", dtype=dtype, requires_grad=True)
            res = []
            for cand in CANDIDATES:
                flash.TUNED[(dtype != torch.float32, 64)] = cand

                def f():
                    out = csg2a_attention(q, x, None, score="softmax", impl="triton", validate=False)
                    out.backward(torch.ones_like(out))

                try:
                    t = do_bench(f, warmup=10, rep=50)
                except Exception:  # out of shared memory / registers
                    t = float("inf")
                res.append((t, cand))
            res.sort()
            print(
                f"{str(dtype)[6:]:8s} B={B} N={N} h={h}: best "
                + ", ".join(f"{c} {t:.3f} ms" for t, c in res[:4])
                + f" | worst {res[-1][1]} {res[-1][0]:.3f} ms"
            )


if __name__ == "__main__":
    main()
