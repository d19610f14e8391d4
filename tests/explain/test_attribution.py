"""Captum gene attributions and attention maps on a short-trained CSG2A and real GDSC2 pairs."""

import numpy as np
import pytest
import torch

from csg2a_graph.explain import METHODS, deletion_curve, explain_genes
from csg2a_graph.explain.attention import (
    drug_attention_maps,
    map_correlations,
    prior_edge_attention,
    sample_top_pairs,
    top_gene_pairs,
)

pytest.importorskip("captum")


def test_ig_completeness_on_real_pairs(finetuned, gdsc2):
    model, split, _ = finetuned
    idx = split["test"][:12]
    a = explain_genes(model, gdsc2, idx, "ig", n_steps=200, batch_size=12, progress=False)
    assert a.expr.shape == (12, gdsc2.num_genes) and a.expr.abs().sum() > 0
    c = a.completeness()
    # sum of attributions = f(x) - f(0) up to the quadrature error, which shrinks with steps
    assert c["completeness_max_abs_error"] < 0.1 * max(1.0, c["mean_abs_output_change"])
    coarse = explain_genes(model, gdsc2, idx, "ig", n_steps=8, batch_size=12, progress=False, ig_breaks=None)
    assert coarse.completeness()["completeness_max_abs_error"] > c["completeness_max_abs_error"]
    # predictions are the model's own
    with torch.no_grad():
        b = next(iter(gdsc2.loader(idx, batch_size=12)))
        torch.testing.assert_close(a.pred, model.eval().forward_batch(b), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", [m for m in METHODS if m not in ("ablation", "ig")])
def test_every_method_gives_nonzero_attributions_of_the_right_shape(finetuned, gdsc2, method):
    model, split, _ = finetuned
    a = explain_genes(model, gdsc2, split["test"][:4], method, n_steps=8, n_baselines=4, n_samples=4, progress=False)
    n = model.pretrained.num_genes if method == "layer-ig" else gdsc2.num_genes
    assert a.expr.shape == (4, n) and torch.isfinite(a.expr).all() and a.expr.abs().sum() > 0


def test_ablation_is_the_exact_change_of_one_gene(finetuned, gdsc2):
    model, split, _ = finetuned
    i = split["test"][:2]
    a = explain_genes(model, gdsc2, i, "ablation", progress=False)
    b = next(iter(gdsc2.loader(i, batch_size=2)))
    model.eval()
    with torch.no_grad():
        f0 = model.forward_batch(b)
        g = int(a.expr[0].abs().argmax())
        x = b.expr.clone()
        x[:, g] = 0
        f1 = model(x, b.drug_graph, b.drug_index, b.dose, b.time)
    torch.testing.assert_close(a.expr[:, g], f0 - f1, rtol=1e-4, atol=1e-5)


def test_condition_attribution_and_errors(finetuned, gdsc2):
    model, split, _ = finetuned
    a = explain_genes(model, gdsc2, split["test"][:4], "ig", condition=True, n_steps=16, progress=False)
    assert a.condition.shape == (4, model.pretrained.num_genes) and a.condition.abs().sum() > 0
    assert "completeness_max_abs_error" in a.completeness()
    with pytest.raises(ValueError, match="unknown method"):
        explain_genes(model, gdsc2, [0], "shapley", progress=False)
    with pytest.raises(ValueError, match="no pairs"):
        explain_genes(model, gdsc2, torch.zeros(gdsc2.num_pairs, dtype=torch.bool), progress=False)


def test_faithfulness_top_genes_beat_random_deletion(finetuned, gdsc2):
    model, split, _ = finetuned
    a = explain_genes(model, gdsc2, split["test"][:48], "ig", n_steps=32, batch_size=48, progress=False)
    curve = deletion_curve(model, gdsc2, a, ks=(5, 20, 50), n_random=5)
    assert list(curve.k) == [5, 20, 50]
    assert (curve.top > curve.random_mean + 2 * curve.random_sd).all()


def test_pretrained_network_attributes_the_perturbation_distance(pretrained_csg2a, lincs3):
    from csg2a_graph.train.checkpoint import load_model

    net = load_model(pretrained_csg2a)
    a = explain_genes(net, lincs3, [0, 1, 2], "ig", n_steps=16, progress=False)
    assert a.options["target"] == "distance" and a.expr.shape == (3, lincs3.num_genes)
    assert (a.pred > 0).all()
    g = explain_genes(net, lincs3, [0, 1], "saliency", target=5, progress=False)
    assert g.expr.abs().sum() > 0


def test_drug_maps_match_the_per_sample_maps(finetuned, gdsc2):
    from csg2a_graph.explain.attention import gene_queries, map_genes
    from csg2a_graph.ops.attention_map import attention_map

    model, split, _ = finetuned
    d = int(gdsc2.pairs["drug"][split["test"][0]])
    idx = split["test"][gdsc2.pairs["drug"][split["test"]] == d][:40]
    dm = drug_attention_maps(model, gdsc2, idx, batch_size=16, progress=False)  # several batches, summed
    assert list(dm.maps) == [d] and dm.counts[d] == idx.numel() and len(dm.genes) == gdsc2.num_genes
    b = next(iter(gdsc2.loader(idx, batch_size=1000)))
    pos, _ = map_genes(model)
    ref = attention_map(gene_queries(model, b)[:, pos], None, reduce_batch=None).mean(0)
    torch.testing.assert_close(dm.maps[d], ref, rtol=1e-4, atol=1e-4)
    top = top_gene_pairs(dm.maps[d], dm.genes, 25)
    assert len(top) == 25 and (top.gene_i != top.gene_j).all()
    assert np.all(np.diff(np.abs(top.attention.to_numpy())) <= 1e-6)
    i, v = sample_top_pairs(model, b, 10)
    assert i.shape == (idx.numel(), 2, 10) and v.shape == (idx.numel(), 10)
    ei, alpha = prior_edge_attention(model, b)
    assert alpha.shape == (idx.numel(), ei.size(1)) and torch.isfinite(alpha).all()
    ids, C = map_correlations({d: dm.maps[d], d + 1: dm.maps[d] * 2 + 1})
    torch.testing.assert_close(C, torch.ones(2, 2), rtol=1e-5, atol=1e-5)


def test_drug_atoms_and_bonds_through_pyg_explainer(finetuned, gdsc2, tmp_path):
    from csg2a_graph.explain.drug import explain_drug

    model, split, _ = finetuned
    pair = int(split["test"][0])
    b = next(iter(gdsc2.loader(torch.tensor([pair]), batch_size=1)))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        f = float(model.eval().forward_batch(b))
    a = explain_drug(model, gdsc2, pair)
    mol = gdsc2.molecules.get(int(gdsc2.pairs["drug"][pair]))
    assert a.atom.shape == (mol.num_nodes,) and a.atom.abs().sum() > 0
    assert a.bond.numel() == mol.edge_index.size(1) // 2 == len(a.bond_atoms)
    assert a.prediction == pytest.approx(f, abs=1e-4)
    # explaining leaves the model as it was (no BatchNorm statistics updated, no dropout state)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    png = a.draw(str(tmp_path / "mol.png"))
    assert open(png, "rb").read(4) == b"\x89PNG"


def test_ig_reaches_a_completeness_target_per_pair(finetuned, gdsc2):
    """Issue 25.4: IG raises the steps of the pairs short of the target and says what it used and reached."""
    model, split, _ = finetuned
    idx = split["test"][:8]
    a = explain_genes(model, gdsc2, idx, "ig", n_steps=4, batch_size=8, progress=False, completeness_target=0.05)
    c = a.completeness()
    from csg2a_graph.explain.attribution import _gap, completeness_met

    err, diff = _gap(a)
    assert bool(completeness_met(err, diff, 0.05).all()) or int(a.steps.max()) == 1600
    assert a.steps.shape == (8,) and int(a.steps.min()) >= 4 and c["steps_max"] == int(a.steps.max())
    assert sum(a.options["ig_grid"].values()) == 1  # "auto": one grid chosen for the batch, counted
    plain = explain_genes(model, gdsc2, idx, "ig", n_steps=4, batch_size=8, progress=False, ig_breaks=None)
    assert c["completeness_max_abs_error"] <= plain.completeness()["completeness_max_abs_error"] + 1e-9
    with pytest.raises(ValueError, match="applies to method='ig'"):
        explain_genes(model, gdsc2, idx, "deeplift", completeness_target=0.05, progress=False)


def test_layer_ig_completeness_is_against_the_layer_output(finetuned, gdsc2):
    """Issue 25.4: layer IG cannot add up to f(x) - f(0) (paths around the conv): its gap is Captum's delta,
    which shrinks with steps, and the report names its reference."""
    model, split, _ = finetuned
    idx = split["test"][:4]
    few = explain_genes(model, gdsc2, idx, "layer-ig", n_steps=4, progress=False).completeness()
    many = explain_genes(model, gdsc2, idx, "layer-ig", n_steps=64, progress=False).completeness()
    assert "layer's output" in many["reference"]
    assert many["completeness_max_abs_error"] < few["completeness_max_abs_error"]


def test_explain_leaves_the_callers_model_as_it_was(finetuned, gdsc2):
    model, split, _ = finetuned
    model.train()
    explain_genes(model, gdsc2, split["test"][:2], "saliency", progress=False, device="cpu")
    assert model.training and next(model.parameters()).device.type == "cpu"
    model.eval()


def test_attention_tools_accept_any_model_holding_a_csg2aconv(gdsc2):
    """Issue 25.4: drug maps, per-pair top pairs and prior-edge attention for a user's model, not only ours."""
    from torch import nn

    from csg2a_graph.nn import CSG2AConv
    from csg2a_graph.ops import attention_map

    class Mine(nn.Module):  # a user's model: the layer plus a drug-dose condition of their own
        def __init__(self, n):
            super().__init__()
            self.conv = CSG2AConv(n, 8)
            self.dose = nn.Linear(1, n)

        def cond(self, batch):
            return self.dose(batch.dose[:, None].float())

    torch.manual_seed(0)
    model = Mine(gdsc2.num_genes)
    idx = torch.arange(300)
    with pytest.raises(ValueError, match="pass condition="):
        drug_attention_maps(model, gdsc2, idx, progress=False)
    dm = drug_attention_maps(model, gdsc2, idx, condition=model.cond, progress=False)
    assert dm.genes == gdsc2.gene_space.genes and model.training  # the caller's mode kept
    d = next(iter(dm.maps))
    sel = idx[gdsc2.pairs["drug"][idx] == d]
    b = next(iter(gdsc2.loader(sel, batch_size=len(sel))))
    q = model.conv.gene_representation(b.expr[:, :, None], model.cond(b)[:, :, None])
    torch.testing.assert_close(dm.maps[d], attention_map(q.detach(), None), rtol=1e-4, atol=1e-5)
    assert len(top_gene_pairs(dm.maps[d], dm.genes, k=5)) == 5
    prior = (gdsc2.prior_edge_index, gdsc2.prior_edge_weight)
    ei, alpha = prior_edge_attention(model, b, condition=model.cond, prior=prior)
    assert alpha.shape == (len(sel), gdsc2.prior_edge_index.size(1))
    pairs, vals = sample_top_pairs(model, b, k=3, condition=model.cond)
    assert pairs.shape == (len(sel), 2, 3)


def test_completeness_target_reruns_only_the_pairs_short_of_it():
    """A user's model (the documented forward signature): one pair exact at any steps (linear in expr), one not
    (exp of a gene the first pair holds at 0): only the second gets more steps, and both end within the target."""
    from torch import nn

    from csg2a_graph.data import ArrayPairs

    class Cubic(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, expr, drug_graph, drug_index, dose, time):
            return self.w * (expr.sum(1) + torch.exp(2 * expr[:, 0]))

    expr = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    ds = ArrayPairs(
        expr,
        ["A", "B", "C"],
        ["c0", "c1"],
        ["d"],
        ["CCO"],
        torch.tensor([0, 1]),
        torch.tensor([0, 0]),
        torch.tensor([1.0, 1.0]),
        torch.tensor([24.0, 24.0]),
    )
    a = explain_genes(
        Cubic(), ds, None, "ig", n_steps=2, batch_size=2, progress=False, ig_breaks=None, completeness_target=0.01
    )
    assert a.steps.tolist()[0] == 2 and a.steps.tolist()[1] > 2
    assert a.completeness()["completeness_max_rel_error"] <= 0.01


def test_explain_on_a_subset_explains_the_subsets_pairs(finetuned, gdsc2):
    """Issue 25.1: explain_genes(model, subset) reads the subset's pairs, not the whole dataset's."""
    model, split, _ = finetuned
    idx = split["test"][:6]
    sub = gdsc2[idx]
    a = explain_genes(model, sub, None, "saliency", progress=False)
    b = explain_genes(model, gdsc2, idx, "saliency", progress=False)
    assert a.expr.shape == (6, gdsc2.num_genes) and torch.equal(a.expr, b.expr) and torch.equal(a.pred, b.pred)
