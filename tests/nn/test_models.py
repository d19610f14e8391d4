import pytest
import torch

from csg2a_graph.data import MoleculeStore
from csg2a_graph.nn import CSG2A, MODELS, ChemicalConditionEncoder, CSG2AFineTune, build_model
from csg2a_graph.train import load_model, save_checkpoint

GENES = [f"G{i}" for i in range(12)]
SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]


@pytest.fixture(scope="module")
def store():
    return MoleculeStore.from_smiles(["a", "b", "c"], SMILES)[0]


def _prior(n=12):
    ei = torch.tensor([[0, 1, 2, 3, 1, 0], [1, 0, 3, 2, 2, 5]])
    return ei, torch.ones(ei.size(1))


def _inputs(store, B=5, N=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    drug = torch.tensor([0, 2, 2, 1, 0])[:B]
    u, di = torch.unique(drug, return_inverse=True)
    return torch.randn(B, N, generator=g), store.batch(u), di, torch.full((B,), 10.0), torch.full((B,), 72.0)


def test_condition_encoder_encodes_each_distinct_drug_once(store):
    enc = ChemicalConditionEncoder(12, "gin")
    seen = []
    enc.drug.register_forward_hook(lambda m, i, o: seen.append(o.size(0)))
    x, graph, di, dose, time = _inputs(store)
    D = enc(graph, di, dose, time)
    assert D.shape == (5, 12) and seen == [3]  # 3 distinct drugs for 5 pairs
    # dose and time enter scaled by 100 uM and 72 h
    D2 = enc(graph, di, dose * 2, time)
    assert not torch.allclose(D, D2)


def test_frozen_condition_is_cached(store):
    enc = ChemicalConditionEncoder(12, "gin").eval()
    enc.cache_outputs = True
    calls = []
    enc.drug.register_forward_hook(lambda m, i, o: calls.append(1))
    x, graph, di, dose, time = _inputs(store)
    D1 = enc(graph, di, dose, time)
    D2 = enc(graph, di, dose, time)
    assert len(calls) == 1 and torch.equal(D1, D2)
    torch.testing.assert_close(D1, enc.encode(graph, di, dose, time))
    for p in enc.parameters():
        p.requires_grad_(False)
    enc.train()  # frozen: the cache survives a mode switch
    assert enc._cache
    for p in enc.parameters():
        p.requires_grad_(True)
    enc.train()  # trainable parameters may change: the cache is dropped
    assert not enc._cache


@pytest.mark.parametrize("variant", ["released", "improved"])
@pytest.mark.parametrize(
    "opts",
    [{}, {"use_prior": False}, {"attention": False}, {"reduce": "rowsum"}, {"score": "softmax"}, {"score": "sigmoid"}],
)
def test_csg2a_variants(store, opts, variant):
    torch.manual_seed(0)
    m = CSG2A(GENES, prior=_prior(), drug_encoder="gin", variant=variant, **opts)
    x, graph, di, dose, time = _inputs(store)
    out = m(x, graph, di, dose, time)
    assert out.shape == (5, 12) and torch.isfinite(out).all()
    out.square().sum().backward()
    assert all(p.grad is not None for n, p in m.named_parameters() if not n.startswith("cond.drug"))
    biases = {n for n, _ in m.named_parameters() if n.endswith("bias") and not n.startswith("cond.drug")}
    # the released network's only bias terms: LayerNorm, dose/time embeddings, the condition BatchNorm
    assert biases == (
        set() if variant == "improved" else {"norm.bias", "cond.w_dose.bias", "cond.w_time.bias", "cond.mlp.1.bias"}
    )


@pytest.mark.parametrize("reduce", ["matmul", "rowsum"])
def test_prior_changes_the_first_layer_exactly_by_a_g0(store, reduce):
    """matmul (the paper's z = S g0): the prior adds A g0; rowsum (released z_i = g0_i sum_j S_ij): g0 * A 1."""
    torch.manual_seed(0)
    m = CSG2A(GENES, prior=_prior(), drug_encoder="gin", reduce=reduce).eval()
    x, graph, di, dose, time = _inputs(store)
    D = m.condition(graph, di, dose, time)
    with_prior = m.mix(x, D)
    m.use_prior = False
    without = m.mix(x, D)
    A = torch.zeros(12, 12)
    ei, ew = _prior()
    A[ei[1], ei[0]] = ew
    expected = x @ A.T if reduce == "matmul" else x * A.sum(1)
    torch.testing.assert_close(with_prior - without, expected, rtol=1e-4, atol=1e-4)


def test_finetune_gene_space_fill_and_mask(store):
    torch.manual_seed(0)
    pre = CSG2A(GENES, prior=_prior(), drug_encoder="gin")
    genes_in = ["G3", "G0", "G7", "G9"]
    ft = CSG2AFineTune.from_pretrained(pre, genes=genes_in, measured=[True, True, False, True], scaling="scalar")
    with torch.no_grad():
        ft.shift.fill_(1.0)
        ft.scale.fill_(2.0)
    x = torch.arange(8.0).view(2, 4)
    full = ft.scale_input(x)
    assert full.shape == (2, 12)
    assert full[0, 3] == (0 + 1) * 2 and full[0, 0] == (1 + 1) * 2 and full[0, 9] == (3 + 1) * 2
    assert full[0, 7] == 0.0  # present in the input but not measured: the fill value, not scaled
    others = [i for i in range(12) if i not in (3, 0, 7, 9)]
    assert full[:, others].eq(0).all()
    with pytest.raises(ValueError, match="not in the pretrained gene space"):
        CSG2AFineTune(pre.hparams, genes=["G1", "TP53"])
    out = ft(*(x[:, :4], *_inputs(store, B=2)[1:]))
    assert out.shape == (2,)


def test_freezing_and_frozen_mode(store):
    pre = CSG2A(GENES, prior=_prior(), drug_encoder="gin", dropout=0.5)
    ft = CSG2AFineTune.from_pretrained(pre, frozen_mode="eval")
    assert not any(p.requires_grad for p in ft.pretrained.parameters())
    ft.train()
    assert not ft.pretrained.training and ft.head.training  # frozen part in eval mode: cacheable
    assert ft.pretrained.cond.cache_outputs
    ft2 = CSG2AFineTune.from_pretrained(pre)  # released (the default): frozen part follows the model's mode
    assert ft2.frozen_mode == "train"
    ft2.train()
    assert ft2.pretrained.training and not ft2.pretrained.cond.cache_outputs  # the released code's behaviour
    ft3 = CSG2AFineTune.from_pretrained(pre, freeze=False)
    assert all(p.requires_grad for p in ft3.pretrained.parameters())


def test_registry_and_checkpoint_round_trip(store, tmp_path):
    assert {"csg2a", "csg2a-pretrain"} <= set(MODELS)
    torch.manual_seed(0)
    pre = build_model("csg2a-pretrain", genes=GENES, prior=_prior(), drug_encoder="morgan")
    ft = CSG2AFineTune.from_pretrained(pre, genes=GENES[:6]).eval()
    x, graph, di, dose, time = _inputs(store)
    ref = ft(x[:, :6], graph, di, dose, time)
    save_checkpoint(str(tmp_path / "m.pt"), ft)
    again = CSG2AFineTune.from_checkpoint(str(tmp_path / "m.pt"))
    torch.testing.assert_close(again(x[:, :6], graph, di, dose, time), ref)
    assert torch.equal(again.pretrained.prior_edge_index, _prior()[0])
    with pytest.raises(TypeError, match="not a CSG2A"):
        CSG2A.from_checkpoint(str(tmp_path / "m.pt"))
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nope")
    torch.save({"weights": 1}, tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="not a csg2a-graph checkpoint"):
        load_model(str(tmp_path / "junk.pt"))


def test_residual_network_starts_as_copying_the_basal_profile(tmp_path):
    """Issue 26.10: ``CSG2A(residual=True)`` predicts g0 + f(...) with f's output layer at zero, so the untrained
    network is copy-basal exactly; it round-trips through a checkpoint; the default stays the published function."""
    torch.manual_seed(0)
    store, _ = MoleculeStore.from_smiles(["a", "b"], ["CCO", "c1ccccc1O"])
    graph = store.batch()
    expr = torch.randn(4, 12)
    args = (graph, torch.tensor([0, 1, 0, 1]), torch.full((4,), 10.0), torch.full((4,), 24.0))
    net = CSG2A(12, hidden_channels=4, drug_encoder="morgan", residual=True).eval()
    assert torch.equal(net(expr, *args), expr) and net.hparams["residual"] is True
    plain = CSG2A(12, hidden_channels=4, drug_encoder="morgan").eval()
    assert "residual" not in plain.hparams and not torch.allclose(plain(expr, *args), expr)
    with torch.no_grad():
        net.out.weight.normal_()
    save_checkpoint(str(tmp_path / "r.pt"), net)
    again = load_model(str(tmp_path / "r.pt")).eval()
    torch.testing.assert_close(again(expr, *args), net(expr, *args))
    assert not torch.allclose(net(expr, *args), expr)  # trained away from the copy: the residual still adds g0
    torch.testing.assert_close(
        net(expr, *args) - expr, net.out(net.dropout(torch.relu(net.norm(net.mix(expr, net.condition(*args))))))
    )
