import pytest
import torch
from torch_geometric.data import Batch

from csg2a_graph.data import ATOM_FEATURE_SIZES, MoleculeStore, canonical_smiles, morgan_fingerprints, smiles_to_graph


def test_smiles_to_graph_and_canonical():
    g = smiles_to_graph("OCC")  # ethanol
    assert g.num_nodes == 3 and g.edge_index.size(1) == 4
    assert g.x.size(1) == len(ATOM_FEATURE_SIZES) and g.edge_attr.size(1) == 3
    assert g.x[:, 0].tolist() == [8, 6, 6] or sorted(g.x[:, 0].tolist()) == [6, 6, 8]
    assert canonical_smiles("OCC") == canonical_smiles("CCO") == "CCO"
    with pytest.raises(ValueError, match="invalid SMILES"):
        smiles_to_graph("C1CC(")


def test_store_reports_invalid_by_name_and_batches_like_pyg():
    names = ["ethanol", "broken", "benzene", "empty", "aspirin"]
    smiles = ["CCO", "C1CC(", "c1ccccc1", "", "CC(=O)Oc1ccccc1C(=O)O"]
    store, rep = MoleculeStore.from_smiles(names, smiles)
    assert store.names == ["ethanol", "benzene", "aspirin"]
    assert [n for n, _ in rep.invalid] == ["broken", "empty"] and rep.num_valid == 3
    assert "2 invalid and excluded: broken, empty" in str(rep)
    idx = torch.tensor([2, 0, 2])
    got = store.batch(idx)
    ref = Batch.from_data_list([store.get(i) for i in idx.tolist()])
    for k in ("x", "edge_index", "edge_attr", "batch", "ptr"):
        assert torch.equal(got[k], ref[k]), k
    assert got.num_graphs == 3
    assert store.batch() is store.batch()  # the all-drugs batch is cached
    again = MoleculeStore.from_dict(store.to_dict())
    assert torch.equal(again.batch(idx).x, got.x)


def test_a_store_on_a_device_batches_there_without_reading_it_back():
    # a trainer keeping its data on a GPU gathers each step's drug graphs from tables resident there; "meta" tensors
    # hold no values, so any read from the device (a sync on a GPU) would raise here
    store, _ = MoleculeStore.from_smiles(
        ["ethanol", "benzene", "aspirin"], ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O"]
    )
    idx = torch.tensor([2, 0, 2, 1])
    ref = store.batch(idx)
    assert store.to("cpu") is store
    got = store.to("meta").batch(idx)
    for k in ("x", "edge_index", "edge_attr", "bond_dir", "main_fragment", "batch", "ptr"):
        assert got[k].device.type == "meta" and got[k].shape == ref[k].shape and got[k].dtype == ref[k].dtype, k
    assert got.smiles == ref.smiles and got.num_graphs == 4
    assert store.atom_ptr.device.type == "cpu"  # the offsets, where batches are planned, stay on the host


def test_morgan_fingerprints():
    fp = morgan_fingerprints(["CCO", "c1ccccc1", "CCO"], radius=2, n_bits=256)
    assert fp.shape == (3, 256) and torch.equal(fp[0], fp[2]) and not torch.equal(fp[0], fp[1])
    assert set(fp.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="position 1"):
        morgan_fingerprints(["CCO", "xx("])


def test_two_spellings_of_one_molecule_give_one_graph():
    a = smiles_to_graph("Cl/C=C/CO")  # (E)-3-chloroprop-2-en-1-ol written twice
    b = smiles_to_graph("OC/C=C/Cl")
    assert a.smiles == b.smiles
    for k in ("x", "edge_index", "edge_attr", "bond_dir"):
        assert torch.equal(getattr(a, k), getattr(b, k)), k
