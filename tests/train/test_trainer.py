"""Training on the real files: LINCS plate pretraining, GDSC2 fine-tuning, resume, DDP."""

import os

import pytest
import torch

from csg2a_graph.nn import CSG2A, CSG2AFineTune
from csg2a_graph.train import TrainConfig, Trainer, load_model
from csg2a_graph.train.metrics import rmse


def _cfg(**kw):
    base = dict(epochs=4, batch_size=32, lr=1e-3, patience=10, progress=False, seed=0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def pretrained(lincs3, gcn_weights, tmp_path_factory):
    """A short pretraining on the real LINCS plate (the checkpoint is reused by the fine-tuning tests)."""
    torch.manual_seed(0)
    model = CSG2A(
        lincs3.gene_space.genes,
        prior=(lincs3.prior_edge_index, lincs3.prior_edge_weight),
        drug_encoder="pretrained-gcn",
        drug_weights=gcn_weights,
    )
    out = tmp_path_factory.mktemp("pretrain")
    split = lincs3.get_idx_split("mixed", fold=0, n_folds=5)
    trainer = Trainer(model, _cfg(epochs=6), out_dir=str(out))
    trainer.fit(lincs3, split)
    return trainer, str(out / "model.pt"), split


def test_pretraining_on_real_lincs_learns_and_round_trips(pretrained, lincs3):
    trainer, path, split = pretrained
    h = trainer.history
    assert h[-1]["train_mse"] < 0.5 * h[0]["train_mse"]  # the loss decreases
    assert min(r["val_mse"] for r in h) < h[0]["val_mse"]
    # predicting "no change" (the basal profile) is the baseline a perturbation model must approach
    base = ((lincs3.expression[lincs3.pairs["cell"][split["test"]]] - lincs3.pairs["y"][split["test"]]) ** 2).mean()
    assert trainer.evaluate(lincs3, split["test"])["mse"] < 10 * float(base)
    again = load_model(path)
    assert isinstance(again, CSG2A) and again.genes == lincs3.gene_space.genes
    ref = trainer.predict(lincs3, split["test"])
    torch.testing.assert_close(Trainer(again, _cfg()).predict(lincs3, split["test"]), ref)
    assert {"metrics.csv", "train.log", "checkpoint.pt", "model.pt"} <= set(os.listdir(os.path.dirname(path)))
    assert "epoch 0: train mse" in open(os.path.join(os.path.dirname(path), "train.log")).read()
    import logging

    pkg = logging.getLogger("csg2a_graph")  # the run's log file is detached, the level restored
    assert pkg.level == logging.NOTSET and not any(isinstance(h, logging.FileHandler) for h in pkg.handlers)
    st = torch.load(os.path.join(os.path.dirname(path), "checkpoint.pt"), weights_only=True)
    assert {"optimizer", "scheduler", "epoch", "hparams", "genes", "dataset", "split", "version"} <= set(st)


@pytest.fixture(scope="module")
def gdsc_small(gdsc2):
    s = gdsc2.get_idx_split("mixed", fold=0)
    g = torch.Generator().manual_seed(0)
    pick = lambda t, n: t[torch.randperm(t.numel(), generator=g)[:n]]  # noqa: E731
    return {"train": pick(s["train"], 4000), "val": pick(s["val"], 600), "test": pick(s["test"], 1000)}


def test_finetune_on_real_gdsc_beats_the_mean_and_keeps_frozen_weights(pretrained, gdsc2, gdsc_small):
    _, path, _ = pretrained
    torch.manual_seed(0)
    model = CSG2AFineTune.from_pretrained(path, genes=gdsc2.gene_space.genes, measured=gdsc2.gene_mask.tolist())
    assert model.pretrained.num_genes == 978 and model.gene_index.numel() == gdsc2.num_genes == 484
    before = {k: v.clone() for k, v in model.pretrained.state_dict().items()}
    trainer = Trainer(model, _cfg(epochs=3, batch_size=128))
    trainer.fit(gdsc2, gdsc_small)
    after = model.pretrained.state_dict()
    # frozen: parameters bit-identical; as released, the frozen part runs in training mode and its BatchNorms
    # (the condition block's; here also the GCN drug encoder's) re-estimate running statistics on GDSC batches
    assert model.variant == "released" and model.frozen_mode == "train"
    params = {k for k, _ in model.pretrained.named_parameters()}
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert not moved & params
    assert {"cond.mlp.1.running_mean", "cond.mlp.1.running_var"} <= moved
    assert all(k.startswith("cond.mlp.1.") or k.startswith("cond.drug.batch_norms.") for k in moved)
    y = gdsc2.pairs["y"]
    test = gdsc_small["test"]
    mean_rmse = rmse(y[test], torch.full((test.numel(),), float(y[gdsc_small["train"]].mean())))
    m = trainer.evaluate(gdsc2, test)
    assert m["rmse"] < 0.9 * mean_rmse and m["pcc"] > 0.4


def test_resume_reaches_the_same_result(lincs3, tmp_path):
    split = lincs3.get_idx_split("mixed", fold=1, n_folds=5)

    def make():
        torch.manual_seed(0)
        return CSG2A(
            lincs3.gene_space.genes,
            prior=(lincs3.prior_edge_index, lincs3.prior_edge_weight),
            drug_encoder="gin",
            dropout=0.2,
        )

    full = make()
    Trainer(full, _cfg(epochs=4), out_dir=str(tmp_path / "a")).fit(lincs3, split)

    class Stop(Exception):
        pass

    def stop_after_two(trainer, epoch, row):
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        Trainer(make(), _cfg(epochs=4), out_dir=str(tmp_path / "b"), callbacks=[stop_after_two]).fit(lincs3, split)
    resumed = make()
    with torch.no_grad():  # the resumed run must not depend on the fresh weights
        for p in resumed.parameters():
            p.add_(1.0)
    t = Trainer(resumed, _cfg(epochs=4), out_dir=str(tmp_path / "b"))
    t.fit(lincs3, split, resume=True)
    assert [r["epoch"] for r in t.history] == [0, 1, 2, 3]
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    other = lincs3.get_idx_split("mixed", fold=2, n_folds=5)
    with pytest.raises(ValueError, match="another split"):
        Trainer(make(), _cfg(epochs=4), out_dir=str(tmp_path / "b")).fit(lincs3, other, resume=True)
    # other training settings: refused (the optimiser state would carry the old learning rate on silently) ...
    with pytest.raises(ValueError, match=r"other settings \(lr: "):
        Trainer(make(), _cfg(epochs=4, lr=3e-4), out_dir=str(tmp_path / "b")).fit(lincs3, split, resume=True)
    # ... and a cv runner starts such a folder over instead of continuing it; more epochs may continue it
    from csg2a_graph.train.runners import resumable

    assert resumable(str(tmp_path / "b"), split, _cfg(epochs=6))
    assert not resumable(str(tmp_path / "b"), split, _cfg(epochs=4, weight_decay=1e-3))


def _ddp_worker(rank, world, init_file, root, out):
    import torch.distributed as dist

    from csg2a_graph.datasets import LINCSL1000

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        ds = LINCSL1000(root, level=3, log=False)
        torch.manual_seed(0)
        m = CSG2A(
            ds.gene_space.genes,
            prior=(ds.prior_edge_index, ds.prior_edge_weight),
            drug_encoder="morgan",
            dropout=0.0,
            variant="improved",
        )  # no BatchNorm anywhere: see the test below
        t = Trainer(m, _cfg(epochs=2, batch_size=30))
        t.fit(ds, ds.get_idx_split("mixed", fold=0, n_folds=5))
        if rank == 0:
            torch.save({"state": m.state_dict(), "history": t.history}, out)
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_match_one(lincs3, tmp_path):
    import torch.multiprocessing as mp

    root = os.path.dirname(lincs3.raw_dir)
    out = str(tmp_path / "ddp.pt")
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), root, out), nprocs=2, join=True)
    torch.manual_seed(0)
    # no BatchNorm anywhere (`improved` network, Morgan encoder): a BatchNorm — the released condition block's,
    # GIN's — normalises each rank's share of the batch (no SyncBatchNorm on gloo/CPU), so such DDP runs differ
    # from one process (docs/models.md); this test checks the DDP machinery itself
    single = CSG2A(
        lincs3.gene_space.genes,
        prior=(lincs3.prior_edge_index, lincs3.prior_edge_weight),
        drug_encoder="morgan",
        dropout=0.0,
        variant="improved",
    )
    t = Trainer(single, _cfg(epochs=2, batch_size=30))
    t.fit(lincs3, lincs3.get_idx_split("mixed", fold=0, n_folds=5))
    ddp = torch.load(out, weights_only=True)
    # Adam's first steps are ~lr * sign(grad): gradients equal up to summation order can still move
    # near-zero-gradient weights by ~lr, so compare the losses tightly and the weights at the lr scale
    for a, b in zip(ddp["history"], t.history):
        assert a["train_mse"] == pytest.approx(b["train_mse"], rel=1e-2)
        assert a["val_mse"] == pytest.approx(b["val_mse"], rel=1e-2)
    for k, v in single.named_parameters():
        torch.testing.assert_close(ddp["state"][k], v.detach(), rtol=0.05, atol=0.05, msg=k)


def test_time_budget_stops_training_and_keeps_the_best(gdsc2, tmp_path, monkeypatch):
    """max_minutes: the run stops when the clock runs out, validates what it has and keeps the best."""
    import time as _time

    from csg2a_graph.baselines.deep import build_for
    from csg2a_graph.train.loop import TrainConfig, Trainer

    clock = {"t": 0.0}

    def fake():  # every call advances a fake clock by 1 s
        clock["t"] += 1.0
        return clock["t"]

    monkeypatch.setattr(_time, "perf_counter", fake)
    split = gdsc2.get_idx_split("mixed", fold=0)
    small = {"train": split["train"][:96], "val": split["val"][:32], "test": split["test"][:32]}
    cfg = TrainConfig(epochs=50, batch_size=32, max_minutes=0.25, progress=False, device="cpu")
    trainer = Trainer(build_for("gene-graph", gdsc2, {"conv": "gcn", "hidden_channels": 8}), cfg, out_dir=str(tmp_path))
    hist = trainer.fit(gdsc2, small)
    assert 1 <= len(hist) < 50  # 15 fake seconds: stopped long before 50 epochs
    assert (tmp_path / "model.pt").exists()
