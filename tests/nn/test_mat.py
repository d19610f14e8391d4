"""MAT as the released CSG²A uses it: a state dict with MAT's layout (key names and shapes listed here from the
MAT paper's architecture) loads strictly, and on 5 real GDSC drugs the encoder equals an independent dense
restatement of MAT's equations."""

import math

import numpy as np
import pytest
import torch

from csg2a_graph.nn.encoders.mat import MATEncoder, featurize

D, L, H = 32, 2, 4  # small: the released MAT is 1024, 8, 16


def mat_layout(d=D, layers=L, d_atom=28, n_out=1):
    """MAT's state-dict keys and shapes (N_dense = 1), including its pretraining head ``generator.proj``."""
    keys = {
        "src_embed.lut.weight": (d, d_atom),
        "src_embed.lut.bias": (d,),
        "encoder.norm.a_2": (d,),
        "encoder.norm.b_2": (d,),
        "generator.proj.weight": (n_out, d),
        "generator.proj.bias": (n_out,),
    }
    for i in range(layers):
        p = f"encoder.layers.{i}."
        for j in range(4):
            keys[f"{p}self_attn.linears.{j}.weight"] = (d, d)
            keys[f"{p}self_attn.linears.{j}.bias"] = (d,)
        keys[f"{p}feed_forward.linears.0.weight"] = (d, d)
        keys[f"{p}feed_forward.linears.0.bias"] = (d,)
        for j in range(2):
            keys[f"{p}sublayer.{j}.norm.a_2"] = (d,)
            keys[f"{p}sublayer.{j}.norm.b_2"] = (d,)
    return keys


def random_state(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        k: (
            torch.randn(*s, generator=g) / math.sqrt(s[-1])
            if len(s) == 2
            else 1 + 0.1 * torch.randn(*s, generator=g)
            if k.endswith("a_2")
            else 0.1 * torch.randn(*s, generator=g)
        )
        for k, s in mat_layout().items()
    }


def test_mat_layout_loads_strictly():
    enc = MATEncoder(D, L, H)
    sd = random_state()
    enc.load_mat_state_dict(sd)  # generator.* (MAT's pretraining head) left out, the rest strict
    own = enc.state_dict()
    assert set(own) == {k for k in sd if not k.startswith("generator.")}
    assert all(torch.equal(own[k], sd[k]) for k in own)
    with pytest.raises(RuntimeError, match="Missing key"):
        enc.load_mat_state_dict({k: v for k, v in sd.items() if k != "encoder.norm.a_2"})
    with pytest.raises(RuntimeError, match="size mismatch"):
        enc.load_mat_state_dict({**sd, "src_embed.lut.weight": torch.zeros(D, 26)})
    # the released CSG2A's size builds with the same layout
    big = MATEncoder()
    assert set(big.state_dict()) == {k for k in mat_layout(1024, 8) if not k.startswith("generator.")}
    assert all(tuple(v.shape) == mat_layout(1024, 8)[k] for k, v in big.state_dict().items())


def test_featurisation_facts():
    x, adj, dist, used_3d = featurize("CC(=O)[O-]")  # acetate: C, C, O, O-
    assert used_3d and x.shape == (5, 28) and adj.shape == dist.shape == (5, 5)
    assert x[0].tolist() == [1.0] + [0.0] * 27  # the dummy node: its own flag only
    c_methyl, o_minus = x[1], x[4]
    assert c_methyl[1 + 1] == 1 and c_methyl[12 + 1] == 1  # carbon; one neighbour
    assert c_methyl[18 + 3] == 1  # three hydrogens
    assert c_methyl[23 + 1] == 1 and o_minus[23 + 0] == 1  # formal charge 0 / -1
    assert adj[0].sum() == 0 and np.allclose(np.diag(adj)[1:], 1)  # self-loops; dummy unconnected
    assert adj[1, 2] == adj[2, 1] == 1 and adj[1, 3] == 0
    assert 1.4 < dist[1, 2] < 1.6 and dist[0, 1] == 1e6 and dist[1, 1] == 0  # 3-D C-C bond in angstrom


def test_fallback_to_2d_coordinates(monkeypatch):
    from rdkit.Chem import AllChem

    monkeypatch.setattr(AllChem, "EmbedMolecule", lambda *a, **k: -1)
    enc = MATEncoder(D, L, H)
    x, adj, dist, used_3d = enc.featurize("c1ccccc1O")
    assert not used_3d and enc.fallbacks == ["c1ccccc1O"]
    assert 1.3 < dist[1, 2] < 1.6  # planar coordinates, still bond-length scale


def restated(sd, x, adj, dist, heads=H, slope=0.1, lambdas=(0.33, 0.33, 0.34)):
    """MAT's forward for one molecule, from its equations (no batching, no padding)."""

    def ln(v, p):
        return sd[p + ".a_2"] * (v - v.mean(-1, keepdim=True)) / (v.std(-1, keepdim=True) + 1e-6) + sd[p + ".b_2"]

    def lin(v, p):
        return v @ sd[p + ".weight"].T + sd[p + ".bias"]

    h = lin(x, "src_embed.lut")
    n, dk = x.size(0), h.size(1) // heads
    p_dist = torch.exp(-dist)
    p_adj = adj / (adj.sum(-1, keepdim=True) + 1e-6)
    for i in range(L):
        p = f"encoder.layers.{i}."
        a = ln(h, p + "sublayer.0.norm")
        q, k, v = (lin(a, f"{p}self_attn.linears.{j}").view(n, heads, dk).transpose(0, 1) for j in range(3))
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(dk), -1)
        mix = lambdas[0] * att + lambdas[1] * p_dist + lambdas[2] * p_adj
        h = h + lin((mix @ v).transpose(0, 1).reshape(n, -1), f"{p}self_attn.linears.3")
        f = ln(h, p + "sublayer.1.norm")
        h = h + torch.nn.functional.leaky_relu(lin(f, f"{p}feed_forward.linears.0"), slope)
    h = ln(h, "encoder.norm")
    return h.mean(0)  # over every atom and the dummy node


def test_mat_equals_restatement_on_real_drugs(gdsc2):
    enc = MATEncoder(D, L, H)
    sd = random_state(1)
    enc.load_mat_state_dict(sd)
    enc = enc.double().eval()
    idx = torch.tensor([0, 7, 19, 42, 101])
    graph = gdsc2.molecules.batch(idx)
    out = enc(graph)
    assert out.shape == (5, D)
    sd64 = {k: v.double() for k, v in sd.items()}
    for i, s in enumerate(graph.smiles):
        x, adj, dist, _ = enc.featurize(s)
        ref = restated(sd64, torch.from_numpy(x), torch.from_numpy(adj), torch.from_numpy(dist))
        torch.testing.assert_close(out[i], ref, rtol=1e-9, atol=1e-9)
    # batch-independent: padding never leaks into a molecule's embedding
    torch.testing.assert_close(enc(gdsc2.molecules.batch(idx[[3]])), out[[3]], rtol=1e-9, atol=1e-9)
