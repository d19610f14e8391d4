import pytest
import torch
from torch.autograd import gradcheck

from csg2a_graph.ops import attention_map, csg2a_attention
from csg2a_graph.ops.reference import dense_prior, dense_reference, dense_scores, segment_softmax_native
from csg2a_graph.testing import rand_prior

SHAPES = [
    pytest.param(2, 37, 8, 1, 40, 0, id="B2-N37-h8-F1"),
    pytest.param(1, 1, 4, 1, 1, 0, id="B1-N1-h4"),
    pytest.param(3, 70, 16, 3, 150, 10, id="B3-N70-h16-F3-isolated"),
    pytest.param(2, 33, 5, 2, 0, 0, id="B2-N33-empty-prior"),
]
COMBOS = [
    (s, sup, r) for s in ("linear", "softmax", "sigmoid") for sup in ("dense", "prior") for r in ("matmul", "rowsum")
]


def _inputs(B, N, h, F, E, iso, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, N, h, generator=g, dtype=dtype).requires_grad_()
    x = torch.randn(B, N, F, generator=g, dtype=dtype).requires_grad_()
    prior = (
        rand_prior(N, E, seed, iso, dtype) if E else (torch.empty(2, 0, dtype=torch.long), torch.empty(0, dtype=dtype))
    )
    return q, x, prior


@pytest.mark.parametrize("B,N,h,F,E,iso", SHAPES)
@pytest.mark.parametrize("score,support,reduce", COMBOS)
def test_default_and_forced_paths_match_reference(B, N, h, F, E, iso, score, support, reduce):
    q, x, prior = _inputs(B, N, h, F, E, iso)
    ref = csg2a_attention(q, x, prior, score=score, support=support, reduce=reduce, impl="reference")
    g = torch.randn_like(ref)
    gref = torch.autograd.grad(ref, (q, x), g)
    impls = (
        [None]
        + (["factorized"] if score == "linear" and support == "dense" else [])
        + (["chunked"] if support == "dense" else ["edgewise"])
    )
    for impl in impls:
        out = csg2a_attention(q, x, prior, score=score, support=support, reduce=reduce, impl=impl, block_size=16)
        assert out.shape == x.shape
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
        for a, b in zip(torch.autograd.grad(out, (q, x), g, allow_unused=True), gref):
            torch.testing.assert_close(a if a is not None else torch.zeros_like(b), b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("score,support,reduce", COMBOS)
def test_gradcheck_float64(score, support, reduce):
    q, x, prior = _inputs(2, 9, 3, 2, 14, 2, dtype=torch.float64)
    impls = (
        ["reference"]
        + (["factorized"] if score == "linear" and support == "dense" else [])
        + (["chunked"] if support == "dense" else ["edgewise"])
    )
    for impl in impls:
        fn = lambda q_, x_: csg2a_attention(  # noqa: E731
            q_,
            x_,
            prior,
            score=score,
            support=support,
            reduce=reduce,
            impl=impl,
            block_size=4,
        )
        assert gradcheck(fn, (q, x), eps=1e-6, atol=1e-5)


def test_reference_is_the_definition():
    """The paper's formula written out for one sample, against dense_reference."""
    q, x, (ei, ew) = _inputs(1, 6, 3, 1, 8, 0)
    A = torch.zeros(6, 6)
    for (j, i), w in zip(ei.T.tolist(), ew.tolist()):
        A[i, j] += w
    S = q[0] @ q[0].T / 3**0.5 + A
    torch.testing.assert_close(dense_reference(q, x, (ei, ew), "linear", "dense", "matmul", 3**-0.5)[0], S @ x[0])
    torch.testing.assert_close(
        dense_reference(q, x, (ei, ew), "linear", "dense", "rowsum", 3**-0.5)[0], x[0] * S.sum(1, keepdim=True)
    )


def test_unbatched_and_vector_inputs_and_prior_formats():
    q, x, (ei, ew) = _inputs(1, 12, 4, 1, 20, 0)
    ref = csg2a_attention(q[0], x[0, :, 0], (ei, ew))
    assert ref.shape == (12,)
    sp = torch.sparse_coo_tensor(torch.stack([ei[1], ei[0]]), ew, (12, 12))
    torch.testing.assert_close(csg2a_attention(q[0], x[0, :, 0], sp), ref)
    torch.testing.assert_close(csg2a_attention(q[0], x[0, :, 0], sp.to_sparse_csr()), ref)
    ones = csg2a_attention(q, x, (ei, None))
    torch.testing.assert_close(ones, csg2a_attention(q, x, (ei, torch.ones_like(ew))))
    no_prior = csg2a_attention(q, x, None)
    torch.testing.assert_close(no_prior, csg2a_attention(q, x, (ei, torch.zeros_like(ew))))


def test_never_saves_an_n_by_n_tensor_for_backward():
    """The factorised and chunked paths keep no [B, N, N] (or [B, N, N/2]) tensor for the backward."""
    B, N, h = 2, 96, 4
    q, x, prior = _inputs(B, N, h, 1, 200, 0)
    for kw in (
        {"score": "linear"},
        {"score": "softmax", "impl": "chunked", "block_size": 16},
        {"score": "sigmoid", "impl": "chunked", "block_size": 16},
    ):
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
            out = csg2a_attention(q, x, prior, **kw)
        out.sum().backward()
        assert max(sizes) < B * N * N // 4, (kw, max(sizes))
    sizes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        csg2a_attention(q, x, prior, impl="reference")
    assert max(sizes) >= B * N * N  # the check above can fail


def test_bad_input_raises_clearly():
    q, x, (ei, ew) = _inputs(2, 10, 4, 1, 12, 0)
    with pytest.raises(ValueError, match="x must be"):
        csg2a_attention(q, x[:, :9], (ei, ew))
    with pytest.raises(ValueError, match="outside"):
        csg2a_attention(q, x, (ei + 5, ew))
    with pytest.raises(ValueError, match="edge_weight has"):
        csg2a_attention(q, x, (ei, ew[:-1]))
    with pytest.raises(ValueError, match="prior is"):
        csg2a_attention(q, x, torch.sparse_coo_tensor(ei, ew, (11, 11)))
    bad = x.detach().clone()
    bad[0, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        csg2a_attention(q, bad, (ei, ew))
    dup = (torch.cat([ei, ei[:, :1]], 1), torch.cat([ew, ew[:1]]))
    with pytest.raises(ValueError, match="duplicate"):
        csg2a_attention(q, x, dup, support="prior")
    with pytest.raises(ValueError, match="no factorisation"):
        csg2a_attention(q, x, (ei, ew), score="softmax", impl="factorized")
    with pytest.raises(ValueError, match="edgewise"):
        csg2a_attention(q, x, (ei, ew), support="prior", impl="chunked")
    with pytest.raises(ValueError, match="score must be"):
        csg2a_attention(q, x, (ei, ew), score="relu")


def test_segment_softmax_native_matches_dense():
    q, x, (ei, ew) = _inputs(2, 15, 4, 1, 40, 3)
    s = (q[:, ei[1]] * q[:, ei[0]]).sum(-1)
    p = segment_softmax_native(s, ei[1], 15)
    dense = torch.full((2, 15, 15), float("-inf"))
    dense[:, ei[1], ei[0]] = s
    ref = torch.nan_to_num(torch.softmax(dense, -1))[:, ei[1], ei[0]]
    torch.testing.assert_close(p, ref)


def test_segment_softmax_torch_scatter_path():
    pytest.importorskip("torch_scatter")
    from csg2a_graph.ops.reference import segment_softmax  # torch-scatter path when installed

    q, x, (ei, ew) = _inputs(2, 15, 4, 1, 40, 3)
    s = (q[:, ei[1]] * q[:, ei[0]]).sum(-1)
    torch.testing.assert_close(segment_softmax(s, ei[1], 15), segment_softmax_native(s, ei[1], 15))


@pytest.mark.parametrize("score", ["linear", "softmax", "sigmoid"])
def test_attention_map_mean_and_topk(score):
    q, x, (ei, ew) = _inputs(4, 40, 6, 1, 60, 0)
    q = q.detach()
    maps = dense_scores(q, score, 6**-0.5) + dense_prior((ei, ew), 40, q.dtype, q.device)
    mean = attention_map(q, (ei, ew), score=score, block_size=7)
    torch.testing.assert_close(mean, maps.mean(0), rtol=1e-4, atol=1e-5)
    per = attention_map(q, (ei, ew), score=score, reduce_batch=None)
    torch.testing.assert_close(per, maps)
    idx, val = attention_map(q, (ei, ew), score=score, topk=25, block_size=7)
    M = maps.mean(0)
    mask = torch.ones(40, 40, dtype=torch.bool).triu(1) if score != "softmax" else ~torch.eye(40, dtype=torch.bool)
    brute = M[mask].abs().topk(25).values
    torch.testing.assert_close(val.abs(), brute, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(M[idx[0], idx[1]], val, rtol=1e-4, atol=1e-5)
    pidx, pval = attention_map(q, (ei, ew), score=score, reduce_batch=None, topk=5)
    assert pidx.shape == (4, 2, 5) and pval.shape == (4, 5)
    torch.testing.assert_close(maps[1][pidx[1, 0], pidx[1, 1]], pval[1], rtol=1e-4, atol=1e-5)


def test_linear_mean_map_is_one_gram_product():
    q = torch.randn(5, 30, 4)
    qs = q.permute(1, 0, 2).reshape(30, 20)
    torch.testing.assert_close(attention_map(q, None, scale=1.0), qs @ qs.T / 5)


def test_attention_map_on_prior_support():
    q, x, (ei, ew) = _inputs(3, 20, 4, 1, 50, 0)
    q = q.detach()
    e, vals = attention_map(q, (ei, ew), score="softmax", support="prior")
    assert torch.equal(e, ei) and vals.shape == (ei.size(1),)
    mask = torch.zeros(20, 20, dtype=torch.bool)
    mask[ei[1], ei[0]] = True
    dense = (dense_scores(q, "softmax", 0.5, mask) + dense_prior((ei, ew), 20, q.dtype, q.device)).mean(0)
    torch.testing.assert_close(vals, dense[ei[1], ei[0]])
    with pytest.raises(ValueError, match="needs a prior"):
        attention_map(q, None, support="prior")


@pytest.mark.parametrize("reduce", ["matmul", "rowsum"])
def test_expanded_linear_equals_q_materialised_and_gradchecks(reduce):
    from csg2a_graph.ops.factorized import expanded_linear, factorized_linear

    g = torch.Generator().manual_seed(5)
    B, N, h = 3, 21, 6
    x, c = (torch.randn(B, N, generator=g, dtype=torch.float64).requires_grad_() for _ in range(2))
    wg, wc = (torch.randn(N, h, generator=g, dtype=torch.float64).requires_grad_() for _ in range(2))
    prior = rand_prior(N, 30, dtype=torch.float64)
    q = x[..., None] * wg + c[..., None] * wc
    ref = factorized_linear(q, x[..., None], prior, reduce, 0.4)[..., 0]
    torch.testing.assert_close(expanded_linear(x, c, wg, wc, prior, reduce, 0.4), ref)
    assert gradcheck(lambda *a: expanded_linear(*a, prior, reduce, 0.4), (x, c, wg, wc))
    # without a condition
    q0 = x[..., None] * wg
    torch.testing.assert_close(
        expanded_linear(x, None, wg, None, prior, reduce, 0.4),
        factorized_linear(q0, x[..., None], prior, reduce, 0.4)[..., 0],
    )
