import pytest
import torch
from torch_geometric.explain import Explainer
from torch_geometric.explain.algorithm import AttentionExplainer
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GCNConv, Sequential, global_mean_pool

from csg2a_graph.nn import CSG2AConv
from csg2a_graph.ops.reference import dense_reference
from csg2a_graph.testing import rand_prior, rel_err

COMBOS = [
    (s, sup, r) for s in ("linear", "softmax", "sigmoid") for sup in ("dense", "prior") for r in ("matmul", "rowsum")
]


@pytest.mark.parametrize("score,support,reduce", COMBOS)
def test_matches_the_definition_in_both_input_formats(score, support, reduce):
    torch.manual_seed(0)
    B, N, h = 3, 17, 8
    ei, ew = rand_prior(N, 40, isolated=2)
    conv = CSG2AConv(N, h, score=score, support=support, reduce=reduce)
    x, c = torch.randn(B, N, 1), torch.randn(B, N)
    out, (e, alpha) = conv(x, ei, ew, cond=c, return_attention_weights=True)
    q = conv.gene_representation(x, c.unsqueeze(-1))
    ref = dense_reference(q, x, (ei, ew), score, support, reduce, h**-0.5)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(e, ei) and alpha.shape == (B, ei.size(1))
    # alpha is S_b on every prior edge
    mask = torch.zeros(N, N, dtype=torch.bool)
    mask[ei[1], ei[0]] = True
    from csg2a_graph.ops.reference import dense_prior, dense_scores

    S = dense_scores(q, score, h**-0.5, mask if support == "prior" else None) + dense_prior(
        (ei, ew), N, q.dtype, q.device
    )
    torch.testing.assert_close(alpha, S[:, ei[1], ei[0]], rtol=1e-5, atol=1e-5)
    # PyG format: [B*N, 1] nodes with a batched edge_index
    eib = torch.cat([ei + b * N for b in range(B)], dim=1)
    out2, (e2, alpha2) = conv(x.reshape(B * N, 1), eib, ew.repeat(B), cond=c.reshape(-1), return_attention_weights=True)
    torch.testing.assert_close(out2, ref.reshape(B * N, 1), rtol=1e-5, atol=1e-5)
    assert torch.equal(e2, eib)
    torch.testing.assert_close(alpha2, alpha.reshape(-1))


def test_multi_channel_with_projection_and_gradients():
    torch.manual_seed(0)
    N = 12
    ei, ew = rand_prior(N, 30)
    conv = CSG2AConv(N, 6, in_channels=4, out_channels=5, cond_channels=2)
    x = torch.randn(2, N, 4, requires_grad=True)
    out = conv(x, ei, ew, cond=torch.randn(2, N, 2))
    assert out.shape == (2, N, 5)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in conv.parameters())
    q = conv.gene_representation(x.detach(), torch.zeros(2, N, 2))
    assert q.shape == (2, N, 6)
    assert "CSG2AConv(genes=12, 4, 5, hidden=6" in repr(conv)


def test_in_a_pyg_sequential_next_to_gcnconv():
    torch.manual_seed(0)
    N, B = 20, 4
    ei, ew = rand_prior(N, 50)
    eib = torch.cat([ei + b * N for b in range(B)], 1)
    model = Sequential(
        "x, edge_index, edge_weight, batch",
        [
            (CSG2AConv(N, 16, reduce="matmul"), "x, edge_index, edge_weight, batch -> x"),
            (torch.nn.Tanh(), "x -> x"),
            (GCNConv(1, 8), "x, edge_index, edge_weight -> x"),
            (global_mean_pool, "x, batch -> x"),
            (torch.nn.Linear(8, 1), "x -> x"),
        ],
    )
    x = torch.randn(B * N, 1)
    batch = torch.arange(B).repeat_interleave(N)
    y = model(x, eib, ew.repeat(B), batch)
    assert y.shape == (B, 1)
    y.sum().backward()


def test_attention_explainer_reads_csg2a_attention():
    torch.manual_seed(0)
    N = 10
    ei, ew = rand_prior(N, 25)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = CSG2AConv(N, 8, support="prior", score="softmax")
            self.lin = torch.nn.Linear(1, 3)

        def forward(self, x, edge_index):
            return self.lin(self.conv(x, edge_index))

    explainer = Explainer(
        Net(),
        AttentionExplainer(),
        explanation_type="model",
        edge_mask_type="object",
        model_config=dict(mode="multiclass_classification", task_level="node", return_type="raw"),
    )
    expl = explainer(torch.randn(N, 1), ei)
    assert expl.edge_mask.shape == (ei.size(1),) and expl.edge_mask.abs().sum() > 0


def test_bad_shapes_are_clear():
    conv = CSG2AConv(10, 4)
    with pytest.raises(ValueError, match="not a multiple"):
        conv(torch.randn(25, 1), None)
    with pytest.raises(ValueError, match="num_genes=10"):
        conv(torch.randn(2, 9, 1), None)
    with pytest.raises(ValueError, match="in_channels"):
        conv(torch.randn(2, 10, 3), None)
    with pytest.raises(ValueError, match="refers to node"):
        conv(torch.randn(20, 1), torch.tensor([[0, 25], [1, 2]]))
    with pytest.raises(ValueError, match="cond must be"):
        conv(torch.randn(2, 10, 1), None, cond=torch.randn(2, 7))
    with pytest.raises(ValueError, match="batch says"):
        conv(torch.randn(20, 1), None, batch=torch.zeros(20, dtype=torch.long))


def test_on_real_gdsc_pairs_with_the_string_prior(gdsc2):
    """PairData from the real GDSC2 build, collated by PyG, through the layer."""
    loader = DataLoader([gdsc2[i] for i in range(8)], batch_size=4)
    batch = next(iter(loader))
    conv = CSG2AConv(gdsc2.num_genes, 16)
    out, (e, alpha) = conv(
        batch.x, batch.edge_index, batch.edge_weight, batch=batch.batch, return_attention_weights=True
    )
    assert out.shape == (4 * gdsc2.num_genes, 1) and alpha.shape == (batch.edge_index.size(1),)
    dense = conv(batch.x.view(4, -1, 1), gdsc2.prior_edge_index, gdsc2.prior_edge_weight)
    torch.testing.assert_close(out.view(4, -1, 1), dense, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reduce", ["matmul", "rowsum"])
def test_expanded_and_factorised_layer_paths_agree(reduce):
    torch.manual_seed(0)
    N = 25
    ei, ew = rand_prior(N, 40)
    a = CSG2AConv(N, 8, reduce=reduce)  # default CPU path: "expanded"
    b = CSG2AConv(N, 8, reduce=reduce, impl="factorized")
    b.load_state_dict(a.state_dict())
    x, c = torch.randn(4, N, 1), torch.randn(4, N)
    oa, ob = a(x, ei, ew, cond=c), b(x, ei, ew, cond=c)
    torch.testing.assert_close(oa, ob, rtol=1e-5, atol=1e-5)
    ga = torch.autograd.grad(oa.square().sum(), list(a.parameters()))
    gb = torch.autograd.grad(ob.square().sum(), list(b.parameters()))
    for u, v in zip(ga, gb):  # gradients reach ~1e4 here: compare by relative RMS error
        assert rel_err(u, v) < 1e-5
    no_cond = CSG2AConv(N, 8, reduce=reduce, cond_channels=0)
    assert no_cond(x, ei, ew).shape == (4, N, 1)


def test_prior_cache_follows_the_tensor_not_its_address():
    torch.manual_seed(0)
    N = 6
    conv = CSG2AConv(N, 4, support="prior")
    x = torch.randn(2, N, 1)
    a = torch.tensor([[0, 1], [1, 2]])
    out_a = conv(x, a)
    b = a.clone()
    b[1, 1] = 5  # same shape, other edge
    out_b = conv(x, b)
    a[1, 1] = 5  # in-place change of the cached tensor is seen too
    torch.testing.assert_close(conv(x, a), out_b)
    assert not torch.allclose(out_a, out_b)


def test_flat_input_never_reads_edges_as_a_gene_level_prior():
    """Issue 8: a batched edge_index whose edges all lie in graph 0 was taken for a gene-level
    prior and copied into every graph. Flat x now always means PyG's batched edge_index."""
    torch.manual_seed(0)
    B, N = 3, 8
    ei, ew = rand_prior(N, 12)  # edges of graph 0 only, in the batched numbering
    conv = CSG2AConv(N, 4, support="prior")
    x = torch.randn(B * N, 1)
    with pytest.warns(UserWarning, match="the prior reaches sample 0 only.*batched_prior"):  # issue 25: said
        out, (e, alpha) = conv(x, ei, ew, return_attention_weights=True)
    assert torch.equal(e, ei) and alpha.shape == (ei.size(1),)  # returned edges and alpha always match
    # graphs 1 and 2 have no prior edges: their output must equal a run without any edges
    empty = conv(x, None)
    torch.testing.assert_close(out[N:], empty[N:])
    assert not torch.allclose(out[:N], empty[:N])
    # the same prior meant for every sample is given with dense x
    dense, (e2, alpha2) = conv(x.view(B, N, 1), ei, ew, return_attention_weights=True)
    assert torch.equal(e2, ei) and alpha2.shape == (B, ei.size(1))
    with pytest.raises(ValueError, match="gene-level prior"):
        conv(x.view(B, N, 1), ei + N)  # dense x with node-level indices is refused, not wrapped


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_is_refused_by_the_module(bad):
    N = 6
    conv = CSG2AConv(N, 4)
    x = torch.randn(2, N, 1)
    x[1, 2, 0] = bad
    with pytest.raises(ValueError, match=r"x contains .* in samples \[1\]"):
        conv(x, None)
    c = torch.randn(2, N)
    c[0, 0] = bad
    with pytest.raises(ValueError, match="cond contains"):
        conv(torch.randn(2, N, 1), None, cond=c)
    quiet = CSG2AConv(N, 4, validate=False)  # opt out (as on GPU by default, where a check syncs)
    assert not torch.isfinite(quiet(x, None)).all()
    from csg2a_graph.ops import csg2a_attention

    with pytest.raises(ValueError, match="contains"):
        csg2a_attention(torch.randn(2, N, 3), x)


def test_argument_checks_at_the_layer_boundary():
    with pytest.raises(ValueError, match="hidden_channels"):
        CSG2AConv(10, 0)
    with pytest.raises(ValueError, match="num_genes"):
        CSG2AConv(0, 4)
    conv = CSG2AConv(10, 4)
    with pytest.raises(ValueError, match=r"x must be \[B\*N, F\]"):
        conv(torch.randn(1, 2, 10, 1), None)
    with pytest.raises(ValueError, match="empty batch"):
        conv(torch.randn(0, 10, 1), None)
    with pytest.raises(TypeError, match="cast one of them"):
        conv(torch.randn(2, 10, 1, dtype=torch.float64), None)
    with pytest.raises(TypeError, match="floating-point"):
        conv(torch.ones(2, 10, 1, dtype=torch.long), None)
    with pytest.raises(ValueError, match="edge_weight has"):
        conv(torch.randn(2, 10, 1), torch.tensor([[0, 1], [1, 2]]), torch.ones(3))
