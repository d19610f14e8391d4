"""The ``precomputed`` drug encoder: users' own vectors per compound, matched by canonical SMILES or name;
checkpoints rebuild without the file; unknown compounds are named."""

import numpy as np
import pandas as pd
import pytest
import torch

from csg2a_graph.nn.encoders import PrecomputedEncoder, read_embeddings


def _vectors(gdsc2, dim=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {s: torch.randn(dim, generator=g) for s in gdsc2.molecules.smiles}


def test_formats_and_keys(gdsc2, tmp_path):
    vec = _vectors(gdsc2)
    keys = list(vec)
    m = torch.stack([vec[k] for k in keys])
    pd.DataFrame(m.numpy(), index=keys).to_csv(tmp_path / "e.csv")
    torch.save({"keys": keys, "embeddings": m}, tmp_path / "e.pt")
    np.savez(tmp_path / "e.npz", keys=np.array(keys), embeddings=m.numpy())
    for src in (vec, str(tmp_path / "e.csv"), str(tmp_path / "e.pt"), str(tmp_path / "e.npz")):
        k, t = read_embeddings(src)
        assert len(k) == len(keys) and t.shape == (len(keys), 16)
    enc = PrecomputedEncoder(str(tmp_path / "e.csv")).eval()
    graph = gdsc2.molecules.batch(torch.arange(10))
    torch.testing.assert_close(enc(graph), torch.stack([vec[s] for s in graph.smiles]), atol=1e-6, rtol=0)
    # another spelling of the same SMILES, and a name, find their vectors
    from rdkit import Chem

    s0 = gdsc2.molecules.smiles[0]
    other = Chem.MolToSmiles(Chem.MolFromSmiles(s0), canonical=False, doRandom=True)
    name = gdsc2.molecules.names[1]
    enc2 = PrecomputedEncoder({other: vec[s0], name: vec[gdsc2.molecules.smiles[1]]})
    out = enc2(gdsc2.molecules.batch(torch.tensor([0, 1])))
    torch.testing.assert_close(out, torch.stack([vec[s0], vec[gdsc2.molecules.smiles[1]]]))


def test_bad_embeddings_are_named(gdsc2, tmp_path):
    enc = PrecomputedEncoder({gdsc2.molecules.smiles[0]: [1.0, 2.0]})
    with pytest.raises(KeyError, match="no precomputed embedding for 2 compound"):
        enc(gdsc2.molecules.batch(torch.tensor([0, 1, 2])))
    with pytest.raises(ValueError, match="different lengths"):
        read_embeddings({"CCO": [1.0, 2.0], "CCN": [1.0]})
    with pytest.raises(ValueError, match="NaN or infinite"):
        read_embeddings({"CCO": [1.0, float("nan")]})
    with pytest.raises(ValueError, match="given twice"):
        read_embeddings({"CCO": [1.0, 2.0], "OCC": [3.0, 4.0]})  # one compound, two vectors
    with pytest.raises(FileNotFoundError):
        read_embeddings(str(tmp_path / "missing.csv"))


def test_csg2a_with_precomputed_embeddings_round_trips_without_the_file(gdsc2, tmp_path):
    from csg2a_graph.train.loop import TrainConfig
    from csg2a_graph.train.pipeline import finetune

    vec = _vectors(gdsc2, dim=32)
    path = tmp_path / "emb.pt"
    torch.save({k: v for k, v in vec.items()}, path)
    s = gdsc2.get_idx_split("mixed", fold=0)
    split = {k: s[k][:n] for k, n in (("train", 256), ("val", 64), ("test", 64))}
    trainer, _ = finetune(
        gdsc2,
        str(tmp_path / "run"),
        None,
        split,
        {"drug_encoder": "precomputed", "drug_encoder_kwargs": {"embeddings": str(path)}, "hidden_channels": 8},
        TrainConfig(epochs=1, batch_size=64, progress=False),
    )
    before = trainer.predict(gdsc2, split["test"])
    path.unlink()  # the checkpoint holds the table
    from csg2a_graph.checkpoint import load_model

    model = load_model(str(tmp_path / "run" / "model.pt"))
    from csg2a_graph.train.loop import Trainer

    torch.testing.assert_close(Trainer(model, TrainConfig(progress=False)).predict(gdsc2, split["test"]), before)
    assert model.pretrained.hparams["drug_encoder_kwargs"]["dim"] == 32
