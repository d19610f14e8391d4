"""The ``released`` variant and ``from_released``: a state dict with the released key names (random values,
keys and shapes from ``../shared/baselines/CSG2A_released.md``) loaded into our models computes the same
function as an independent dense restatement of the released equations, written here from the spec."""

import math

import pytest
import torch

from csg2a_graph.nn.models import CSG2A, CSG2AFineTune
from csg2a_graph.nn.models.csg2a import FINETUNE_VARIANTS, VARIANTS

N, H, E, P = 24, 8, 12, 16  # genes, attention width, drug-embedding width, projection width (512 released)


def released_net_sd(g):
    r = lambda *s: torch.randn(*s, generator=g).double()  # noqa: E731
    bn = {
        "weight": r(N).abs() + 0.5,
        "bias": r(N),
        "running_mean": r(N),
        "running_var": r(N).abs() + 0.5,
        "num_batches_tracked": torch.tensor(7),
    }
    sd = {
        "w_gex": r(N, H),
        "w_comp": r(N, H),
        "CCE.comp_proj.0.weight": r(N, E + 4) / 4,
        **{f"CCE.comp_proj.1.{k}": v for k, v in bn.items()},
        "CCE.dose_enc.weight": r(2, 1),
        "CCE.dose_enc.bias": r(2),
        "CCE.time_enc.weight": r(2, 1),
        "CCE.time_enc.bias": r(2),
        "feed_forward.0.weight": r(N).abs() + 0.5,
        "feed_forward.0.bias": r(N),
        "feed_forward.3.weight": r(N, N) / 4,
    }
    return _f32(sd)


def _f32(sd):
    """Values a float32 model holds exactly (it loads the state dict as float32, then runs in float64)."""
    return {k: v.float().double() if v.is_floating_point() else v for k, v in sd.items()}


def released_ft_sd(g):
    r = lambda *s: torch.randn(*s, generator=g).double()  # noqa: E731
    sd = {f"CSG2A.{k}": v for k, v in released_net_sd(g).items()}
    sd.update({"scalar": r(1).abs() + 1e-8, "bias": r(1)})

    def bn(prefix, n):
        sd.update(
            {
                f"{prefix}.weight": r(n).abs() + 0.5,
                f"{prefix}.bias": r(n),
                f"{prefix}.running_mean": r(n),
                f"{prefix}.running_var": r(n).abs() + 0.5,
                f"{prefix}.num_batches_tracked": torch.tensor(3),
            }
        )

    for p in ("bgex_proj", "agex_proj", "comp_proj"):
        sd[f"{p}.0.weight"], sd[f"{p}.0.bias"] = r(P, N) / 4, r(P)
        bn(f"{p}.1", P)
    sd["pred_head.0.weight"], sd["pred_head.0.bias"] = r(512, 3 * P) / 8, r(512)
    bn("pred_head.1", 512)
    sd["pred_head.4.weight"], sd["pred_head.4.bias"] = r(64, 512) / 16, r(64)
    bn("pred_head.5", 64)
    sd["pred_head.8.weight"], sd["pred_head.8.bias"] = r(1, 64) / 8, r(1)
    return _f32(sd)


# ---------------------------------------------------------------- the released equations, restated
def bn(x, sd, prefix, train):
    if train:
        mean, var = x.mean(0), x.var(0, unbiased=False)
    else:
        mean, var = sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"]
    return (x - mean) / torch.sqrt(var + 1e-5) * sd[f"{prefix}.weight"] + sd[f"{prefix}.bias"]


def released_net(sd, adj, g0, emb, dose_um, time_h, train=False, matmul=False):
    """Steps 1-6 of the spec (dropout 0): condition, q, S = QQ^T/sqrt(h) + (I + A), rowsum, head."""
    d = dose_um[:, None] / 100 * sd["CCE.dose_enc.weight"][:, 0] + sd["CCE.dose_enc.bias"]
    t = time_h[:, None] / 72 * sd["CCE.time_enc.weight"][:, 0] + sd["CCE.time_enc.bias"]
    lin = torch.cat([emb, d, t], 1) @ sd["CCE.comp_proj.0.weight"].T
    D = torch.relu(bn(lin, sd, "CCE.comp_proj.1", train))
    Q = g0[..., None] * sd["w_gex"] + D[..., None] * sd["w_comp"]
    S = Q @ Q.transpose(1, 2) / math.sqrt(Q.size(-1)) + adj
    z = (S @ g0[..., None])[..., 0] if matmul else g0 * S.sum(-1)
    ln = torch.nn.functional.layer_norm(z, (z.size(1),), sd["feed_forward.0.weight"], sd["feed_forward.0.bias"])
    return torch.relu(ln) @ sd["feed_forward.3.weight"].T, D


def released_finetune(sd, adj, g0, emb, dose_um, time_h, train=False):
    net = {k[6:]: v for k, v in sd.items() if k.startswith("CSG2A.")}
    g1 = (g0 + sd["bias"]) * sd["scalar"]
    ghat, D = released_net(net, adj, g1, emb, dose_um, time_h, train)

    def block(x, i, prefix=None):
        p = prefix or f"pred_head.{i}"
        w = sd[f"{p}.weight"] if prefix else sd[f"pred_head.{i}.weight"]
        b = sd[f"{p}.bias"] if prefix else sd[f"pred_head.{i}.bias"]
        return x @ w.T + b

    def proj(x, name):
        return torch.relu(bn(block(x, 0, f"{name}.0"), sd, f"{name}.1", train))

    h = torch.cat([proj(g0, "bgex_proj"), proj(ghat, "agex_proj"), proj(D, "comp_proj")], 1)  # raw g0 in bgex
    h = torch.relu(bn(block(h, 0), sd, "pred_head.1", train))
    h = torch.relu(bn(block(h, 4), sd, "pred_head.5", train))
    return block(h, 8)[:, 0]


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def inputs(gdsc2):
    g = torch.Generator().manual_seed(1)
    drugs = torch.arange(5)
    graph = gdsc2.molecules.batch(drugs)
    emb = {s: torch.randn(E, generator=g) for s in graph.smiles}
    B = 10
    drug_index = torch.arange(B) % 5
    g0 = torch.randn(B, N, generator=g, dtype=torch.float64)
    dose = torch.tensor([0.04, 0.12, 0.37, 1.11, 3.33, 10.0, 10.0, 0.5, 2.0, 10.0], dtype=torch.float64)
    time = torch.tensor([24.0] * 5 + [72.0] * 5, dtype=torch.float64)
    src = torch.tensor([0, 1, 2, 3, 5, 8, 13, 20])
    dst = torch.tensor([1, 0, 3, 2, 8, 5, 20, 13])
    adj = torch.eye(N, dtype=torch.float64)
    adj[dst, src] = 1.0
    emb_rows = torch.stack([emb[graph.smiles[i]] for i in drug_index.tolist()]).double()
    return dict(
        graph=graph,
        emb=emb,
        drug_index=drug_index,
        g0=g0,
        dose=dose,
        time=time,
        edges=(torch.stack([src, dst]), None),
        adj=adj,
        emb_rows=emb_rows,
    )


GENES = [f"G{i}" for i in range(N)]


@pytest.mark.parametrize("variant", ["released", "paper"])
@pytest.mark.parametrize("train", [False, True])
def test_from_released_net_matches_restatement(inputs, variant, train):
    sd = released_net_sd(torch.Generator().manual_seed(2))
    net = CSG2A.from_released(
        sd,
        GENES,
        inputs["edges"],
        drug_encoder="precomputed",
        drug_encoder_kwargs={"embeddings": inputs["emb"]},
        variant=variant,
        dropout=0.0,
    ).double()
    net.train(train)
    out = net(inputs["g0"], inputs["graph"], inputs["drug_index"], inputs["dose"], inputs["time"])
    ref, _ = released_net(
        sd,
        inputs["adj"],
        inputs["g0"],
        inputs["emb_rows"],
        inputs["dose"],
        inputs["time"],
        train,
        matmul=variant == "paper",
    )
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    # the dense prior given as a matrix is the same network
    net2 = CSG2A.from_released(
        sd,
        GENES,
        inputs["adj"],
        drug_encoder="precomputed",
        drug_encoder_kwargs={"embeddings": inputs["emb"]},
        variant=variant,
        dropout=0.0,
    ).double()
    net2.train(train)
    out2 = net2(inputs["g0"], inputs["graph"], inputs["drug_index"], inputs["dose"], inputs["time"])
    torch.testing.assert_close(out2, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("train", [False, True])
def test_from_released_finetune_matches_restatement(inputs, train):
    sd = released_ft_sd(torch.Generator().manual_seed(3))
    # the spec's widths: projections 512 -> here P, so the head's first layer takes 3P
    model = CSG2AFineTune.from_released(
        sd,
        GENES,
        inputs["edges"],
        drug_encoder="precomputed",
        drug_encoder_kwargs={"embeddings": inputs["emb"]},
        dropout=0.0,
    ).double()
    assert model.frozen_mode == "train" and model.basal_input == "raw" and not model.standardize_target
    model.train(train)
    out = model(inputs["g0"], inputs["graph"], inputs["drug_index"], inputs["dose"], inputs["time"])
    ref = released_finetune(sd, inputs["adj"], inputs["g0"], inputs["emb_rows"], inputs["dose"], inputs["time"], train)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)
    if train:  # the frozen condition BatchNorm re-estimates its running statistics, as released
        rm = model.pretrained.cond.mlp[1].running_mean
        assert not torch.allclose(rm, sd["CSG2A.CCE.comp_proj.1.running_mean"])
    # frozen: no pretrained parameter trains
    assert not any(p.requires_grad for p in model.pretrained.parameters())


def test_from_released_refuses_bad_state_dicts(inputs):
    sd = released_net_sd(torch.Generator().manual_seed(4))
    kw = dict(drug_encoder="precomputed", drug_encoder_kwargs={"embeddings": inputs["emb"]})
    with pytest.raises(KeyError, match="lacks released keys"):
        CSG2A.from_released({k: v for k, v in sd.items() if k != "w_comp"}, GENES, inputs["edges"], **kw)
    with pytest.raises(KeyError, match="unknown keys"):
        CSG2A.from_released({**sd, "extra.weight": torch.zeros(3)}, GENES, inputs["edges"], **kw)
    with pytest.raises(ValueError, match="genes given"):
        CSG2A.from_released(sd, GENES[:-1], inputs["edges"], **kw)
    with pytest.raises(ValueError, match="drug embeddings"):
        bad = dict(sd, **{"CCE.comp_proj.0.weight": torch.zeros(N, E + 5)})
        CSG2A.from_released(bad, GENES, inputs["edges"], **kw)
    with pytest.raises(KeyError, match="drug-encoder keys"):
        CSG2A.from_released({**sd, "CCE.mat.layer.weight": torch.zeros(3)}, GENES, inputs["edges"], **kw)
    with pytest.raises(KeyError, match="CSG2A"):
        CSG2AFineTune.from_released(sd, GENES, inputs["edges"], **kw)


def test_variants_differ_where_documented():
    """Each variant's switches reach the modules (and an explicit argument wins over the variant)."""
    nets = {
        v: CSG2A(16, drug_encoder="morgan", drug_encoder_kwargs={"hidden_channels": 8}, hidden_channels=4, variant=v)
        for v in VARIANTS
    }
    assert nets["released"].conv.reduce == "rowsum" and nets["paper"].conv.reduce == "matmul"
    for v in ("released", "paper"):
        n = nets[v]
        assert isinstance(n.cond.mlp[1], torch.nn.BatchNorm1d) and n.norm.bias is not None
        assert n.cond.w_dose.bias is not None and isinstance(n.cond.embedding_norm, torch.nn.Identity)
    imp = nets["improved"]
    assert imp.norm.bias is None and imp.cond.w_dose.bias is None and len(imp.cond.mlp) == 4
    assert CSG2A(16, drug_encoder="morgan", variant="released", reduce="matmul").conv.reduce == "matmul"
    with pytest.raises(ValueError, match="variant"):
        CSG2A(16, drug_encoder="morgan", variant="authors")
    for v, preset in FINETUNE_VARIANTS.items():
        ft = CSG2AFineTune.from_pretrained(nets[v])
        assert ft.variant == v and ft.frozen_mode == preset["frozen_mode"]
        assert (ft.head[0].bias is not None) == preset["bias"]
        y = torch.tensor([1.0, 2.0, 4.0])
        ft.set_target_scaler(y)
        assert (float(ft.y_std) != 1.0) == preset["standardize_target"]


def test_old_checkpoints_rebuild_as_improved(tmp_path):
    """A checkpoint written before variants existed (no ``variant`` in its hyperparameters) rebuilds the
    network it held: the ``improved`` one."""
    from csg2a_graph.checkpoint import save_checkpoint
    from csg2a_graph.train import checkpoint as ck

    net = CSG2A(16, drug_encoder="morgan", variant="improved", hidden_channels=4)
    ft = CSG2AFineTune.from_pretrained(net)
    hp = dict(ft.hparams)
    for k in ("variant", "standardize_target", "basal_input", "scale_init"):
        hp.pop(k)
    hp["pretrained"] = {
        k: v
        for k, v in hp["pretrained"].items()
        if k not in ("variant", "cond_block", "norm_bias", "init", "dose_time_bias")
    }
    ft.hparams = hp
    path = str(tmp_path / "old.pt")
    save_checkpoint(path, ft)
    back = ck.load_model(path)
    assert back.variant == "improved" and back.pretrained.variant == "improved"
    torch.testing.assert_close(back.state_dict()["head.0.weight"], ft.state_dict()["head.0.weight"])


def test_from_released_loads_mat_weights_under_cce():
    """The released state dict holds MAT's own keys under ``CCE.``: they load into our MAT encoder strictly
    (MAT's ``generator.*`` pretraining head left out)."""
    from tests.nn.test_mat import D, H, L, random_state

    g = torch.Generator().manual_seed(5)
    sd = released_net_sd(g)
    sd["CCE.comp_proj.0.weight"] = torch.randn(N, D + 4, generator=g).double()
    mat = random_state(2)
    for prefix in ("CCE.", "CCE.mat."):
        full = {**sd, **{prefix + k: v for k, v in mat.items()}}
        net = CSG2A.from_released(
            full,
            GENES,
            (torch.zeros(2, 0, dtype=torch.long), None),
            drug_encoder="mat",
            drug_encoder_kwargs={"d_model": D, "num_layers": L, "heads": H},
        )
        own = net.cond.drug.state_dict()
        assert all(torch.equal(own[k], mat[k]) for k in own)
    with pytest.raises(KeyError, match="drug-encoder keys"):
        CSG2A.from_released(
            {**sd, **{"CCE." + k: v for k, v in mat.items() if "layers.1" not in k}},
            GENES,
            (torch.zeros(2, 0, dtype=torch.long), None),
            drug_encoder="mat",
            drug_encoder_kwargs={"d_model": D, "num_layers": L, "heads": H},
        )
