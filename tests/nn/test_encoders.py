import pytest
import torch

from csg2a_graph.data import MoleculeStore
from csg2a_graph.nn.encoders import (
    DRUG_ENCODERS,
    PretrainedGCN,
    build_drug_encoder,
    find_weights,
    pretrain_gnns_features,
)

SMILES = ["CCO", "C/C=C/Cl", "[Cl-][Pt+2]([Cl-])(N)N", "c1ccccc1O", "CCO.[Na+].[Cl-]", "*CC"]


@pytest.fixture(scope="module")
def store():
    s, rep = MoleculeStore.from_smiles([f"d{i}" for i in range(len(SMILES))], SMILES)
    assert len(s) == len(SMILES)
    return s


def test_pretrained_gcn_loads_strictly_and_round_trips(gcn_weights, store, tmp_path):
    raw = torch.load(gcn_weights, map_location="cpu", weights_only=True)
    enc = PretrainedGCN(gcn_weights).eval()
    assert set(enc.state_dict()) == set(raw)  # every key of the released file, nothing else
    for k, v in raw.items():
        assert torch.equal(enc.state_dict()[k], v)
    out = enc(store.batch())
    assert out.shape == (len(SMILES), 300) and torch.isfinite(out).all()
    torch.save(enc.state_dict(), tmp_path / "gcn.pt")
    again = PretrainedGCN().eval()
    again.load_state_dict(torch.load(tmp_path / "gcn.pt", weights_only=True), strict=True)
    assert torch.equal(again(store.batch()), out)
    # a wrong file fails loudly instead of loading half the weights
    torch.save({"x_embedding1.weight": raw["x_embedding1.weight"]}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="do not fit the pretrained GCN"):  # one line, naming the file
        PretrainedGCN(str(tmp_path / "bad.pt"))


def test_pretrain_gnns_view_and_fallbacks(store):
    g = store.batch()
    x, e = pretrain_gnns_features(g)
    assert x[:, 0].max() < 120 and x[:, 1].max() < 3 and e[:, 0].max() < 6 and e[:, 1].max() < 3
    ethanol = store.batch(torch.tensor([0]))
    xe, _ = pretrain_gnns_features(ethanol)
    assert xe[:, 0].tolist() == [5, 5, 7]  # C, C, O: atomic number - 1
    dummy = store.batch(torch.tensor([5]))  # '*' (atomic number 0) -> the mask token
    assert pretrain_gnns_features(dummy)[0][0, 0] == 118
    chloro = store.batch(torch.tensor([1]))  # C/C=C/Cl keeps its bond directions
    _, ee = pretrain_gnns_features(chloro)
    assert set(ee[:, 1].tolist()) >= {0, 1}
    aromatic = pretrain_gnns_features(store.batch(torch.tensor([3])))[1]
    assert 3 in aromatic[:, 0].tolist()  # aromatic bonds -> index 3
    # out-of-table values never index past a table
    g2 = store.batch(torch.tensor([0]))
    g2.x = g2.x.clone()
    g2.x[:, 1] = 3  # CHI_OTHER
    g2.edge_attr = g2.edge_attr.clone()
    g2.edge_attr[:, 0] = 17  # DATIVE
    g2.bond_dir = torch.full_like(g2.bond_dir, 5)
    x2, e2 = pretrain_gnns_features(g2)
    assert x2[:, 1].eq(0).all() and e2[:, 0].eq(0).all() and e2[:, 1].eq(0).all()


def test_gcn_operators_have_sizes_known_without_reading_the_device(store):
    # a COO coalesce() (or boolean indexing) sizes its output by the values: on a GPU, a read back every batch;
    # the CSR operators are built on "meta", whose tensors hold no values to read
    from csg2a_graph.nn.encoders.pretrained_gcn import gcn_operators

    g = store.batch()
    x, e = pretrain_gnns_features(g)
    n = x.size(0)
    adj, c1, c2 = gcn_operators(g.edge_index.to("meta"), e.to("meta"), n)
    assert adj.layout == torch.sparse_csr and adj.device.type == "meta" and adj.shape == (n, n)
    assert c1.shape == (n, 6) and c2.shape == (n, 3)
    cpu = gcn_operators(g.edge_index, e, n)[0]
    assert cpu.layout == torch.sparse_csr and cpu.crow_indices()[-1] == g.edge_index.size(1) + n  # edges + self-loops


def test_gcn_sparse_form_equals_the_message_passing_reference(gcn_weights, store):
    """HuGCNConv.forward (one sparse product, no per-edge messages) against forward_messages (pretrain-gnns'
    per-edge form): outputs and gradients, float64, on a batch with an isolated atom ([Na+]), a salt, a
    metal complex, bond directions and the dummy atom."""
    from csg2a_graph.nn.encoders.pretrained_gcn import gcn_operators

    enc = PretrainedGCN(gcn_weights).double()
    g = store.batch()
    x, e = pretrain_gnns_features(g)
    h0 = (enc.x_embedding1(x[:, 0]) + enc.x_embedding2(x[:, 1])).detach().requires_grad_(True)
    conv = enc.gnns[2]
    ops = gcn_operators(g.edge_index, e, h0.size(0), h0.dtype)
    fast = conv(h0, g.edge_index, e, operators=ops)
    ref = conv.forward_messages(h0, g.edge_index, e)
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(conv(h0, g.edge_index, e), ref, rtol=1e-12, atol=1e-12)  # operators made inside
    w = torch.randn_like(ref)
    params = [h0, conv.linear.weight, conv.linear.bias, conv.edge_embedding1.weight, conv.edge_embedding2.weight]
    g_fast = torch.autograd.grad((fast * w).sum(), params)
    g_ref = torch.autograd.grad((ref * w).sum(), params)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # the whole encoder, in training mode too (BatchNorm on batch statistics)
    for mode in (False, True):
        enc.train(mode)
        out = enc(g)
        ref_h = h0.detach()
        for k, (c, bn) in enumerate(zip(enc.gnns, enc.batch_norms)):
            ref_h = bn(c.forward_messages(ref_h, g.edge_index, e))
            ref_h = torch.relu(ref_h) if k < enc.num_layers - 1 else ref_h
        from csg2a_graph.nn.encoders.base import pool_atoms

        torch.testing.assert_close(out, pool_atoms(ref_h, g, enc.pool), rtol=1e-10, atol=1e-10)


def test_gcn_takes_the_message_form_while_edges_are_masked(gcn_weights, store):
    """PyG's explain API masks edges inside propagate(): with a mask set, forward must honour it."""
    from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

    enc = PretrainedGCN(gcn_weights).eval()
    g = store.batch(torch.tensor([3]))  # phenol
    before = enc(g)
    set_masks(enc, torch.zeros(g.edge_index.size(1)), g.edge_index, apply_sigmoid=False)
    masked = enc(g)
    clear_masks(enc)
    assert not torch.allclose(masked, before)  # every bond masked: only self-loops carry messages
    torch.testing.assert_close(enc(g), before)


def test_salts_are_left_out_of_pooling(gcn_weights, store):
    enc = PretrainedGCN(gcn_weights).eval()
    out = enc(store.batch(torch.tensor([0, 4])))  # CCO and CCO.[Na+].[Cl-]
    torch.testing.assert_close(out[0], out[1])


@pytest.mark.parametrize("name", sorted(DRUG_ENCODERS))
def test_every_encoder_is_batch_independent(name, store):
    kw = {}
    if name == "precomputed":  # the user's own vectors (trainable here, to check the backward pass too)
        g = torch.Generator().manual_seed(0)
        kw = {"embeddings": {s: torch.randn(8, generator=g) for s in store.smiles}, "finetune": True}
    enc = build_drug_encoder(name, **kw).eval()
    full = enc(store.batch())
    assert full.shape == (len(SMILES), enc.out_channels)
    part = enc(store.batch(torch.tensor([3, 1])))
    torch.testing.assert_close(part, full[[3, 1]], rtol=1e-4, atol=1e-5)
    full.sum().backward()  # differentiable


def test_unknown_encoder_and_missing_weights(tmp_path):
    with pytest.raises(ValueError, match="unknown drug encoder"):
        build_drug_encoder("chemberta")
    with pytest.raises(FileNotFoundError):
        find_weights(str(tmp_path / "nope.pth"))
    path, msg = find_weights(None, download=False)
    assert path is None or path.endswith(".pth")


def test_find_weights_checks_the_cached_file(gcn_weights, tmp_path, monkeypatch):
    import shutil

    from csg2a_graph.nn.encoders.pretrained_gcn import WEIGHTS_FILE

    monkeypatch.setenv("CSG2A_CACHE", str(tmp_path))
    monkeypatch.delenv("CSG2A_DRUG_WEIGHTS", raising=False)
    path, msg = find_weights(None, download=False)
    assert "shipped in the package" in msg and path.endswith(WEIGHTS_FILE)  # the copy in csg2a_graph/assets
    from csg2a_graph import assets

    def trimmed():  # an install without the shipped copy: the cache and the download are next
        raise FileNotFoundError("not shipped")

    monkeypatch.setattr(assets, "gcn_weights", trimmed)
    (tmp_path / WEIGHTS_FILE).write_bytes(b"not the weights")
    path, msg = find_weights(None, download=False)
    assert path is None and "not found" in msg  # a cached file with the wrong checksum is not used
    shutil.copy(gcn_weights, tmp_path / WEIGHTS_FILE)
    path, msg = find_weights(None, download=False)
    assert path == str(tmp_path / WEIGHTS_FILE)


def test_pretrained_gcn_sparse_product_stays_fp32_under_autocast(monkeypatch):
    """Issue 28.2: under bf16 autocast the GCN's sparse product runs in fp32 outside autocast (CUDA has no bf16
    addmm_sparse: `--amp` exited 2). Checked on the CPU by recording what the sparse product receives."""
    from csg2a_graph.data.molecules import MoleculeStore
    from csg2a_graph.nn.encoders import PretrainedGCN

    seen = []
    real = torch.sparse.mm

    def spy(a, b):
        seen.append((a.dtype, b.dtype, torch.is_autocast_enabled("cpu")))
        return real(a, b)

    monkeypatch.setattr(torch.sparse, "mm", spy)
    store, _ = MoleculeStore.from_smiles(["ethanol", "phenol"], ["CCO", "c1ccccc1O"])
    enc = PretrainedGCN().eval()
    ref = enc(store.batch())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(store.batch())
    assert seen and all(a == b == torch.float32 and not on for a, b, on in seen[len(seen) // 2 :])
    assert out.dtype == torch.bfloat16 and torch.allclose(out.float(), ref, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("pool", ["mean", "sum", "max"])
def test_pool_atoms_pools_the_main_fragment_only(pool):
    # atoms off the main fragment (a salt's counter-ions) leave no trace, whatever their states
    from types import SimpleNamespace

    from csg2a_graph.nn.encoders.base import pool_atoms

    torch.manual_seed(0)
    h = torch.randn(7, 3)
    batch = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    keep = torch.tensor([True, True, False, True, True, True, False])
    out = pool_atoms(h, SimpleNamespace(batch=batch, num_graphs=3, main_fragment=keep), pool)
    h2 = h.clone()
    h2[~keep] = 1e6  # the dropped atoms changed: nothing of them may show
    assert torch.equal(out, pool_atoms(h2, SimpleNamespace(batch=batch, num_graphs=3, main_fragment=keep), pool))
    ref = {"mean": torch.mean, "sum": torch.sum, "max": lambda t, dim: t.max(dim).values}[pool]
    want = torch.stack([ref(h[(batch == g) & keep], 0) for g in range(3)])
    torch.testing.assert_close(out, want)
