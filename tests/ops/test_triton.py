"""Triton kernels vs the PyTorch reference: outputs and gradients.

Without a GPU these run in Triton's interpreter (TRITON_INTERPRET=1, set in
tests/conftest.py before any kernel module is imported) on small shapes; on a
CUDA machine the same tests run compiled, plus the ``gpu``-marked ones.
"""

import os

import pytest
import torch

triton = pytest.importorskip("triton")

from csg2a_graph.ops import attention_map, csg2a_attention  # noqa: E402
from csg2a_graph.ops.factorized import factorized_linear  # noqa: E402
from csg2a_graph.testing import rand_prior, rel_err, withCUDA  # noqa: E402

CUDA = torch.cuda.is_available()
DEV = "cuda" if CUDA else "cpu"
if not CUDA and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no CUDA and TRITON_INTERPRET is not set", allow_module_level=True)

from csg2a_graph.ops.triton import flash_attention, fused_linear_attention, mean_map_rows  # noqa: E402

pytestmark = pytest.mark.interpreter

SMALL = [
    pytest.param(2, 37, 10, 60, id="B2-N37-h10"),
    pytest.param(1, 1, 4, 1, id="B1-N1-h4"),
    pytest.param(3, 70, 16, 0, id="B3-N70-h16-noprior"),
    pytest.param(2, 65, 33, 90, id="B2-N65-h33"),
]


def _prior(N, E, seed=0, isolated=0):
    if not E:
        return None
    ei, ew = rand_prior(N, E, seed, isolated)
    return ei.to(DEV), ew.to(DEV)


def _expansion_ref(x, c, wg, wc, edges, reduce):
    q = x[..., None] * wg + c[..., None] * wc
    return factorized_linear(q, x[..., None], edges, reduce, wg.size(1) ** -0.5)[..., 0]


@pytest.mark.parametrize("B,N,h,E", SMALL)
@pytest.mark.parametrize("reduce", ["matmul", "rowsum"])
def test_fused_linear_matches_reference(B, N, h, E, reduce):
    g = torch.Generator().manual_seed(1)
    x, c = (torch.randn(B, N, generator=g).to(DEV).requires_grad_() for _ in range(2))
    wg, wc = (torch.randn(N, h, generator=g).to(DEV).requires_grad_() for _ in range(2))
    edges = _prior(N, E, isolated=3 if N > 10 else 0)
    out = fused_linear_attention(x, c, wg, wc, edges, reduce)
    ref = _expansion_ref(x, c, wg, wc, edges, reduce)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    go = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, (x, c, wg, wc), go), torch.autograd.grad(ref, (x, c, wg, wc), go)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("B,N,h,E", SMALL)
@pytest.mark.parametrize("F", [1, 3])
@pytest.mark.parametrize("score", ["softmax", "sigmoid"])
@pytest.mark.parametrize("reduce", ["matmul", "rowsum"])
def test_flash_matches_reference(B, N, h, E, F, score, reduce):
    g = torch.Generator().manual_seed(2)
    q = torch.randn(B, N, h, generator=g).to(DEV).requires_grad_()
    x = torch.randn(B, N, F, generator=g).to(DEV).requires_grad_()
    edges = _prior(N, E)
    out = csg2a_attention(q, x, edges, score=score, reduce=reduce, impl="triton")
    ref = csg2a_attention(q, x, edges, score=score, reduce=reduce, impl="reference")
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    go = torch.randn_like(out)
    ga = torch.autograd.grad(out, (q, x), go, allow_unused=True)
    gb = torch.autograd.grad(ref, (q, x), go)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("score", ["linear", "softmax", "sigmoid"])
def test_map_kernel_matches_torch(score):
    g = torch.Generator().manual_seed(3)
    q = torch.randn(3, 50, 12, generator=g).to(DEV)
    edges = _prior(50, 80)
    got = attention_map(q, edges, score=score, impl="triton", block_size=20)
    ref = attention_map(q, edges, score=score, impl="torch", block_size=20)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    ti, tv = attention_map(q, edges, score=score, impl="triton", topk=10, block_size=16)
    ri, rv = attention_map(q, edges, score=score, impl="torch", topk=10, block_size=16)
    torch.testing.assert_close(tv, rv, rtol=1e-4, atol=1e-5)
    rows = mean_map_rows(
        q, score, 12**-0.5, 5, 7, None if score != "softmax" else torch.logsumexp(q @ q.transpose(1, 2) * 12**-0.5, -1)
    )
    assert rows.shape == (7, 50)


def test_conv_fused_path_matches_default_path():
    from csg2a_graph.nn import CSG2AConv

    torch.manual_seed(0)
    N = 29
    ei, ew = rand_prior(N, 40)
    for reduce in ("matmul", "rowsum"):
        conv = CSG2AConv(N, 8, reduce=reduce).to(DEV)
        fused = CSG2AConv(N, 8, reduce=reduce, impl="triton").to(DEV)
        fused.load_state_dict(conv.state_dict())
        x = torch.randn(3, N, 1, device=DEV)
        c = torch.randn(3, N, device=DEV)
        a = conv(x, ei.to(DEV), ew.to(DEV), cond=c)
        b = fused(x, ei.to(DEV), ew.to(DEV), cond=c)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        ga = torch.autograd.grad(a.square().sum(), list(conv.parameters()))
        gb = torch.autograd.grad(b.square().sum(), list(fused.parameters()))
        for u, v in zip(ga, gb):
            torch.testing.assert_close(u, v, rtol=1e-3, atol=1e-3)


def test_triton_rejects_what_it_cannot_do():
    q = torch.randn(1, 8, 4, device=DEV)
    x = torch.randn(1, 8, device=DEV)
    with pytest.raises(ValueError, match="fused layer kernel"):
        csg2a_attention(q, x, None, impl="triton")
    with pytest.raises(ValueError, match="h <= 128"):
        flash_attention(torch.randn(1, 8, 200, device=DEV), x[..., None], None, "softmax", "matmul", 0.1)


# ------------------------------------------------------------------ GPU only
gpu = withCUDA


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.bfloat16, 2e-2), (torch.float16, 5e-3)])
@pytest.mark.parametrize("score", ["softmax", "sigmoid"])
def test_gpu_flash_low_precision(dtype, tol, score):
    torch.manual_seed(0)
    q = torch.randn(4, 978, 64, device="cuda", dtype=dtype).requires_grad_()
    x = torch.randn(4, 978, 1, device="cuda", dtype=dtype).requires_grad_()
    edges = _prior(978, 4000)
    out = csg2a_attention(q, x, edges, score=score, impl="triton")
    ref = csg2a_attention(q.float(), x.float(), edges, score=score, impl="reference")
    assert rel_err(out, ref) < tol
    go = torch.randn_like(ref)
    ga = torch.autograd.grad(out, (q, x), go.to(dtype))
    gb = torch.autograd.grad(ref, (q, x), go)
    for a, b in zip(ga, gb):
        assert rel_err(a, b) < 5 * tol


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.bfloat16, 2e-2), (torch.float16, 5e-3)])
def test_gpu_fused_linear_low_precision(dtype, tol):
    torch.manual_seed(0)
    B, N, h = 128, 978, 64
    x, c = (torch.randn(B, N, device="cuda", dtype=dtype).requires_grad_() for _ in range(2))
    wg, wc = ((torch.randn(N, h, device="cuda") / 8).to(dtype).requires_grad_() for _ in range(2))
    edges = _prior(N, 4000)
    out = fused_linear_attention(x, c, wg, wc, edges, "matmul")
    ref = _expansion_ref(x.float(), c.float(), wg.float(), wc.float(), edges, "matmul")
    assert rel_err(out, ref) < tol
    go = torch.randn_like(ref)
    ga = torch.autograd.grad(out, (x, c, wg, wc), go.to(dtype))
    gb = torch.autograd.grad(ref, (x, c, wg, wc), go)
    for a, b in zip(ga, gb):
        assert rel_err(a, b) < 5 * tol
