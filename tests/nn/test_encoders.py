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
    with pytest.raises(RuntimeError, match="Missing key"):
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
