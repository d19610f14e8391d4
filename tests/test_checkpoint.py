"""checkpoint.py: a checkpoint round-trips a model (name, hyperparameters, weights, genes) and anything that is not
one is refused in one line."""

import pytest
import torch

from csg2a_graph.checkpoint import load_checkpoint, load_model, save_checkpoint
from csg2a_graph.nn import CSG2A


def test_round_trip_and_extras(tmp_path):
    torch.manual_seed(0)
    net = CSG2A(6, hidden_channels=4, drug_encoder="morgan")
    path = save_checkpoint(str(tmp_path / "sub" / "m.pt"), net, best_epoch=3, target={"name": "ln IC50"})
    st = load_checkpoint(path)
    assert st["model_name"] == "csg2a-pretrain" and st["genes"] == [f"g{i}" for i in range(6)]
    again = load_model(path)
    assert not again.training and again.checkpoint_info["best_epoch"] == 3
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in net.state_dict().items())
    assert not (tmp_path / "sub" / "m.pt.tmp").exists()  # written atomically


def test_what_is_not_a_checkpoint_is_refused_in_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(str(tmp_path / "none.pt"))
    with pytest.raises(ValueError, match="is a folder"):
        load_checkpoint(str(tmp_path))
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ValueError, match="not a torch file"):
        load_checkpoint(str(tmp_path / "text.pt"))
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="no model name"):
        load_checkpoint(str(tmp_path / "plain.pt"))
    good = save_checkpoint(str(tmp_path / "g.pt"), CSG2A(4, hidden_channels=2, drug_encoder="morgan"))
    data = open(good, "rb").read()
    open(tmp_path / "cut.pt", "wb").write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or damaged"):
        load_checkpoint(str(tmp_path / "cut.pt"))
