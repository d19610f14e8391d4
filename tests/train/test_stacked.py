"""Issue 28.4: runs stepped together in one process (``StackedTrainer``) train what the runs one by one train —
weights, validation curves, early stopping and predictions within float tolerance — on real GDSC2 pairs with a
pretrained CSG²A (pretrained GCN drug encoder, released variant: frozen network in training mode, so every frozen
BatchNorm uses each run's own batch statistics), runs of different sizes and patience stops included."""

import copy

import pytest
import torch
from torch import nn

from csg2a_graph.errors import InputError
from csg2a_graph.nn.models import CSG2AFineTune
from csg2a_graph.train.loop import TrainConfig, Trainer
from csg2a_graph.train.stacked import StackedAdam, StackedFineTune, StackedTrainer, _batches, _Tables


def _model(ds, pretrained, seed, dropout=0.0, **kw):
    torch.manual_seed(seed)
    m = CSG2AFineTune.from_pretrained(pretrained, genes=ds.gene_space.genes, measured=ds.gene_mask.tolist(), **kw)
    for mod in m.modules():
        if isinstance(mod, nn.Dropout):
            mod.p = dropout
    return m


def _splits(ds, sizes):
    # random pairs of each fold (a split's first pairs may all be one cell line: a constant basal input, whose
    # BatchNorm gradient is rounding noise)
    out, g = [], torch.Generator().manual_seed(0)
    for f, (n_train, n_val) in enumerate(sizes):
        s = {k: v[torch.randperm(v.numel(), generator=g)] for k, v in ds.get_idx_split("mixed", fold=f).items()}
        out.append({"train": s["train"][:n_train], "val": s["val"][:n_val], "test": s["test"][:150]})
    return out


def _double(ds):
    view = copy.copy(ds)  # the session's dataset stays as it is
    view._expr = ds._expr.double()
    view._pairs = {k: (v.double() if v.is_floating_point() else v) for k, v in ds._pairs.items()}
    return view


# released: the frozen network in training mode (batch statistics in every frozen BatchNorm); improved: frozen in
# eval mode with its condition cache, per-gene input BatchNorm, standardised target, scaled basal input
@pytest.mark.parametrize("variant", ["released", "improved"])
def test_one_stacked_step_has_each_runs_own_loss_and_gradient(gdsc2, pretrained_csg2a, variant):
    # the exact check, in float64 (float32 rounding of the long reductions would hide a wrong term): one training
    # step's predictions, gradients and frozen running statistics per run, against each model alone
    ds = _double(gdsc2)
    splits = _splits(ds, [(300, 10), (250, 10), (130, 10)])
    models = [_model(ds, pretrained_csg2a, sd, variant=variant).double() for sd in (0, 1, 2)]
    for m, sp in zip(models, splits):
        m.set_target_scaler(ds.pairs["y"][sp["train"]])
    alone = copy.deepcopy(models)
    stack = StackedFineTune(models).train()
    tables = _Tables(ds, torch.device("cpu"))
    for sizes in ((64, 64, 64), (64, 51, 37)):  # equal batches (batched matmuls) and ragged ones (the epoch tails)
        sels = [sp["train"][_batches(sp["train"].numel(), n, seed=7)[0]] for sp, n in zip(splits, sizes)]
        expr, graph, dindex, dose, tm, y, layout = tables.batch(sels)
        pred = stack(expr, graph, dindex, dose, tm, [0, 1, 2], layout)
        stack.zero_grad()
        sum(((p - t) ** 2).mean() for p, t in zip(pred.split(layout[0]), y.split(layout[0]))).backward()
        for r, (m, sel) in enumerate(zip(alone, sels)):
            m.train()
            m.zero_grad()
            b = next(iter(ds.loader(sel, batch_size=len(sel))))
            p = m(*b.inputs())
            assert torch.allclose(pred.split(layout[0])[r], p, rtol=1e-10, atol=1e-10)
            ((p - b.y) ** 2).mean().backward()
            top = max(float(q.grad.abs().max()) for q in m.parameters() if q.grad is not None)
            for name, q in m.named_parameters():
                # a bias right before a BatchNorm has a zero gradient in exact arithmetic: both sides are rounding
                if q.grad is None or float(q.grad.abs().max()) < 1e-6 * top:
                    continue
                g = (
                    getattr(stack, name).grad[r]
                    if name in ("shift", "scale")
                    else stack.base.get_parameter(name).grad[r]
                )
                err = float((g - q.grad).abs().max()) / float(q.grad.abs().max())
                assert err < 1e-8, (name, err)
            # the frozen BatchNorms saw this run's rows only: running statistics as the model alone keeps them
            for k, v in m.state_dict().items():
                if "running_" in k:
                    assert torch.allclose(stack.base.state_dict()[k][r], v, rtol=1e-10, atol=1e-10), k


def test_stacked_runs_equal_the_runs_one_by_one(gdsc2, pretrained_csg2a, tmp_path):
    # three runs: different folds, seeds and sizes (the last batches differ; run 2 has a batch fewer per epoch)
    splits = _splits(gdsc2, [(700, 120), (640, 100), (577, 90)])
    seeds = [0, 1, 5]
    cfg = TrainConfig(epochs=3, batch_size=64, lr=1e-4, progress=False, patience=20)  # the released lr
    serial = []
    for sp, sd in zip(splits, seeds):
        t = Trainer(_model(gdsc2, pretrained_csg2a, sd), TrainConfig(**{**cfg.__dict__, "seed": sd}))
        t.fit(gdsc2, sp)
        serial.append(t)
    models = [_model(gdsc2, pretrained_csg2a, sd) for sd in seeds]
    outs = [str(tmp_path / f"run{r}") for r in range(3)]
    st = StackedTrainer(models, cfg, seeds=seeds, out_dirs=outs)
    hist = st.fit(gdsc2, splits)
    preds = st.predict(gdsc2, [sp["test"] for sp in splits])
    for r, t in enumerate(serial):
        assert [h["epoch"] for h in hist[r]] == [h["epoch"] for h in t.history]
        # Adam's first steps are +-lr wherever a gradient is ~0 and rounding flips its sign, so the runs drift apart
        # by float noise over epochs (as fused and foreach Adam do, tests/train/test_fast.py); the step itself is
        # checked exactly above
        assert hist[r][0]["train_mse"] == pytest.approx(t.history[0]["train_mse"], rel=1e-3)
        for a, b in zip(t.history, hist[r]):
            assert b["lr"] == pytest.approx(a["lr"], rel=1e-12)  # the schedule, as metrics.csv records it
            assert b["train_mse"] == pytest.approx(a["train_mse"], rel=2e-2)
            assert b["val_mse"] == pytest.approx(a["val_mse"], rel=5e-2)
        assert st.best_epochs[r] == t.best_epoch
        ss, sm = t.model.state_dict(), models[r].state_dict()
        assert set(ss) == set(sm)
        # weights: Adam moves every weight whose gradient is ~0 by +-lr per step, the sign set by rounding, so two
        # float implementations part by up to lr per step there (the step itself is exact, test above); what a run
        # computes must agree: every BatchNorm stepped as often, predictions close
        for k, v in ss.items():
            if not v.is_floating_point():
                assert torch.equal(sm[k], v), k
        alone = t.predict(gdsc2, splits[r]["test"])
        assert torch.corrcoef(torch.stack([preds[r], alone]))[0, 1] > 0.99
        assert float((preds[r] - alone).abs().mean()) < 0.05 * float(alone.std())
        # what cv's budget columns read: the run's metrics.csv and model.pt
        assert (tmp_path / f"run{r}" / "metrics.csv").exists() and (tmp_path / f"run{r}" / "model.pt").exists()
    # the frozen network is untouched, its running statistics are each run's own
    bn = "pretrained.cond.drug.batch_norms.0.running_mean"
    assert not torch.equal(models[0].state_dict()[bn], models[1].state_dict()[bn])


def test_early_stopped_runs_leave_the_stack(gdsc2, pretrained_csg2a):
    splits = _splits(gdsc2, [(400, 80), (150, 80), (300, 80)])
    # patience 1: a run stops at its first epoch without improvement, the other runs go on without it
    cfg = TrainConfig(epochs=8, batch_size=100, lr=2e-3, progress=False, patience=1, schedule="constant", max_batches=1)
    serial = []
    for sp, sd in zip(splits, (0, 1, 2)):
        t = Trainer(_model(gdsc2, pretrained_csg2a, sd), TrainConfig(**{**cfg.__dict__, "seed": sd}))
        t.fit(gdsc2, sp)
        serial.append(t)
    models = [_model(gdsc2, pretrained_csg2a, sd) for sd in (0, 1, 2)]
    st = StackedTrainer(models, cfg, seeds=[0, 1, 2])
    hist = st.fit(gdsc2, splits)
    assert min(len(h) for h in hist) < max(len(h) for h in hist)  # a run left early, the others went on
    for r, t in enumerate(serial):
        assert len(hist[r]) == len(t.history)
        assert [h["val_mse"] for h in hist[r]] == pytest.approx([h["val_mse"] for h in t.history], rel=3e-2)


def test_stacked_adam_is_torch_adam_per_run():
    # one flat state over all weights, per-run masks; a gradient changed in place after finite() is the one stepped
    torch.manual_seed(0)
    w1, w2 = torch.randn(3, 4, 5), torch.randn(3, 2)
    grads = [(torch.randn(3, 4, 5), torch.randn(3, 2)) for k in range(4)]
    active = [torch.tensor([True, True, True]), torch.tensor([True, False, True])] * 2
    p1, p2 = w1.clone().requires_grad_(True), w2.clone().requires_grad_(True)
    opt = StackedAdam([p1, p2], weight_decay=1e-2)
    for (g1, g2), a in zip(grads, active):
        p1.grad, p2.grad = g1.clone() / 2, g2.clone()
        ok = opt.finite()
        p1.grad.mul_(2)  # in place after finite(): the step must see it
        opt.step(1e-2, [r for r in range(3) if a[r]], ok)
    for r in range(3):
        q1, q2 = w1[r].clone().requires_grad_(True), w2[r].clone().requires_grad_(True)
        ref = torch.optim.Adam([q1, q2], lr=1e-2, weight_decay=1e-2, fused=True)  # the same kernel: bit for bit
        for (g1, g2), a in zip(grads, active):
            if a[r]:
                q1.grad, q2.grad = g1[r].clone(), g2[r].clone()
                ref.step()
        assert torch.equal(p1.detach()[r], q1.detach()), r
        assert torch.equal(p2.detach()[r], q2.detach()), r
    # a weight without a gradient is left as it is, moments included (stacked fine-tuning gives every weight one)
    before, m_before = p2.detach().clone(), opt.exp_avg[:, -2:].clone()
    p1.grad, p2.grad = torch.randn(3, 4, 5), None
    opt.step(1e-2, finite=opt.finite())
    assert torch.equal(p2.detach(), before) and torch.equal(opt.exp_avg[:, -2:], m_before)
    p1.grad = torch.full_like(p1, float("nan"))
    p1.grad[1] = 0
    assert opt.finite().tolist() == [False, True, False]
    # a non-finite run holds back the step of every run stepped with it (decided on the device; the fit then stops)
    w_before, steps_before = p1.detach().clone(), opt.steps.clone()
    opt.step(1e-2, [0, 1], opt.finite())
    assert torch.equal(p1.detach(), w_before) and torch.equal(opt.steps, steps_before)
    opt.step(1e-2, [1], opt.finite())  # run 1 alone is finite: stepped
    assert (
        not torch.equal(p1.detach()[1], w_before[1])
        and opt.steps.tolist() == (steps_before + torch.tensor([0, 1, 0])).tolist()
    )
    # wider than one CPU chunk of columns (2^18), with a weight without a gradient after it
    big, small = torch.randn(2, 300_000, requires_grad=True), torch.randn(2, 3, requires_grad=True)
    w0 = big.detach().clone()
    opt = StackedAdam([big, small])
    big.grad, small.grad = torch.randn(2, 300_000), None
    g0 = big.grad.clone()
    opt.step(1e-3, [0])
    q = w0[0].clone().requires_grad_(True)
    ref = torch.optim.Adam([q], lr=1e-3, fused=True)
    q.grad = g0[0]
    ref.step()
    assert torch.equal(big.detach()[0], q.detach()) and torch.equal(big.detach()[1], w0[1])


def test_stacked_runs_refuse_what_they_cannot_share(gdsc2, pretrained_csg2a):
    a, b = _model(gdsc2, pretrained_csg2a, 0), _model(gdsc2, pretrained_csg2a, 1)
    b2 = copy.deepcopy(b)
    with torch.no_grad():
        b2.pretrained.out.weight.add_(1.0)  # another frozen network (e.g. its prior removed)
    with pytest.raises(InputError, match="differs from run 0"):
        StackedTrainer([a, b2], TrainConfig(epochs=1, progress=False)).fit(gdsc2, _splits(gdsc2, [(100, 20)] * 2))
    b.set_freeze(False)
    with pytest.raises(InputError, match="freeze=False"):
        StackedTrainer([a, b], TrainConfig(epochs=1, progress=False)).fit(gdsc2, _splits(gdsc2, [(100, 20)] * 2))
    bad = _splits(gdsc2, [(100, 20)] * 2)
    bad[1]["train"] = bad[1]["train"] + gdsc2.num_pairs  # indices past the pair table
    with pytest.raises(IndexError, match=r"pair indices must lie in \[0, "):
        StackedTrainer([a, _model(gdsc2, pretrained_csg2a, 1)], TrainConfig(epochs=1, progress=False)).fit(gdsc2, bad)
    with pytest.raises(ValueError, match="2 models need 2 splits"):
        StackedTrainer([a, _model(gdsc2, pretrained_csg2a, 1)], TrainConfig(epochs=1, progress=False)).fit(
            gdsc2, bad[:1]
        )


def test_a_time_budget_ends_every_run_of_the_stack_after_a_validated_epoch(gdsc2, pretrained_csg2a):
    # max_minutes is one budget for the stack, as for Trainer's one run: once it is spent the epoch stops (after at
    # least one step), is validated, and every run still training ends with its best weights
    splits = _splits(gdsc2, [(400, 30), (300, 30)])
    models = [_model(gdsc2, pretrained_csg2a, sd) for sd in (0, 1)]
    before = [copy.deepcopy(m.state_dict()) for m in models]
    st = StackedTrainer(models, TrainConfig(epochs=5, batch_size=64, max_minutes=1e-9, progress=False), seeds=[0, 1])
    hist = st.fit(gdsc2, splits)
    assert [len(h) for h in hist] == [1, 1] and st.best_epochs == [0, 0]
    assert all(h[0]["val_mse"] > 0 for h in hist)
    for m, b in zip(models, before):  # one step was taken and kept (the best, validated epoch)
        assert any(not torch.equal(v, b[k]) for k, v in m.state_dict().items() if v.is_floating_point())
    t = Trainer(
        _model(gdsc2, pretrained_csg2a, 0), TrainConfig(epochs=5, batch_size=64, max_minutes=1e-9, progress=False)
    )
    t.fit(gdsc2, splits[0])
    assert len(t.history) == 1  # what one run does with the same budget


def test_cv_stacked_executor_runs_the_csg2a_rows_together(gdsc2, pretrained_csg2a, tmp_path):
    from csg2a_graph.train.cv import cross_validate

    def run(out, **kw):
        return cross_validate(
            gdsc2,
            ["additive", "csg2a"],
            ["mixed", "drug_blind"],
            folds=1,
            out_dir=str(tmp_path / out),
            subsample=1500,
            seeds=2,
            model_options={"csg2a": {"pretrained": pretrained_csg2a, "train": {"epochs": 2, "progress": False}}},
            **kw,
        )

    serial = run("serial").set_index(["model", "scheme", "fold", "seed"]).sort_index()
    stacked = run("stacked", executor="stacked").set_index(["model", "scheme", "fold", "seed"]).sort_index()
    assert list(stacked.index) == list(serial.index)  # every row, the additive ones too (run one by one)
    for col in ("n_train", "n_val", "n_test", "epochs", "best_epoch", "pairs_seen"):
        assert stacked[col].fillna(-1).tolist() == serial[col].fillna(-1).tolist(), col
    add = [i for i in serial.index if i[0] == "additive"]
    assert list(stacked.loc[add, "rmse"]) == list(serial.loc[add, "rmse"])
    # the four CSG2A runs were one stack; dropout masks are drawn for the stack, so these agree as two seeds do
    csg = [i for i in serial.index if i[0] == "csg2a"]
    rel = (stacked.loc[csg, "rmse"] - serial.loc[csg, "rmse"]).abs() / serial.loc[csg, "rmse"]
    assert (rel < 0.15).all(), rel
    ck = torch.load(tmp_path / "stacked" / "runs" / "csg2a_mixed_fold0" / "model.pt", weights_only=False)
    assert ck["stacked"] == 4


def test_a_stacked_step_reads_nothing_back_from_the_device(gdsc2, pretrained_csg2a, monkeypatch):
    # on a GPU every tensor -> Python value (item, tolist, bool, int, float) waits for the device: the stacked
    # forward, backward and Adam step must do none (the layer's value checks run on CPU tensors only: off here, as on
    # a GPU; the prior's edge check runs once per batch shape: the warm-up step)
    splits = _splits(gdsc2, [(300, 10), (250, 10)])
    models = [_model(gdsc2, pretrained_csg2a, sd) for sd in (0, 1)]
    stack = StackedFineTune(models).train()
    stack.base.pretrained.conv.validate = False
    opt = StackedAdam(stack.trainable)
    tables = _Tables(gdsc2, torch.device("cpu"))
    sels = [sp["train"][_batches(sp["train"].numel(), 64, seed=1)[0]] for sp in splits]
    expr, graph, dindex, dose, tm, y, layout = tables.batch(sels)

    def step():
        pred = stack(expr, graph, dindex, dose, tm, [0, 1], layout)
        opt.zero_grad()
        ((pred - y) ** 2).mean().backward()
        opt.step(1e-4, finite=opt.finite())

    step()
    reads = []
    for name in ("item", "tolist", "__bool__", "__int__", "__float__", "__index__"):
        orig = getattr(torch.Tensor, name)

        def spy(self, *a, _orig=orig, _name=name, **k):
            reads.append(_name)
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, spy)
    step()
    monkeypatch.undo()
    assert reads == []


def test_a_stacked_step_launches_as_many_operations_for_any_number_of_runs(gdsc2, pretrained_csg2a):
    # the point of stacking on a GPU is fewer, larger kernels: a step over 2 runs and over 5 runs must dispatch the
    # same operations (ragged rows, i.e. the drug graphs' atoms and unequal batches, included: a kernel per run there
    # would add runs x layers launches per step); counted at the ATen level, where each op is one or a few kernels
    from collections import Counter

    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops[str(func.overloadpacket)] += 1
            return func(*args, **(kwargs or {}))

    tables = _Tables(gdsc2, torch.device("cpu"))
    counts = {}
    for R in (2, 5):
        splits = _splits(gdsc2, [(200, 10)] * R)
        stack = StackedFineTune([_model(gdsc2, pretrained_csg2a, sd) for sd in range(R)]).train()
        opt = StackedAdam(stack.trainable)
        for ragged in (False, True):
            sizes = [64 - 5 * r * ragged for r in range(R)]
            sels = [sp["train"][:n] for sp, n in zip(splits, sizes)]
            expr, graph, dindex, dose, tm, y, layout = tables.batch(sels)
            assert len(set(layout[2])) > 1  # the atoms are ragged in every step
            with Count() as c:
                pred = stack(expr, graph, dindex, dose, tm, list(range(R)), layout)
                opt.zero_grad()
                ((pred - y) ** 2).mean().backward()
                opt.step(1e-4, finite=opt.finite())
            counts[R, ragged] = c.ops
            assert opt.flat_grad() is opt.grads  # autograd accumulated into the flat gradient: nothing gathered
            assert all(p.data_ptr() == v.data_ptr() for p, v in zip(opt.params, opt._wviews))  # weights in place
    assert counts[2, False] == counts[5, False]
    assert counts[2, True] == counts[5, True]


def test_stacked_batches_are_planned_on_the_host(gdsc2):
    # each step's tables (expression, targets, drug graphs) are gathered where they live; the plan (which pairs, drugs
    # and atoms per run) comes from host copies: on "meta", whose tensors cannot be read, one step's batch is built
    cpu, meta = _Tables(gdsc2, torch.device("cpu")), _Tables(gdsc2, torch.device("meta"))
    g = torch.Generator().manual_seed(3)
    sels = [torch.randperm(len(gdsc2), generator=g)[:n] for n in (40, 17, 33)]
    a, b = cpu.batch(sels), meta.batch(sels)
    assert a[-1] == b[-1]  # pairs, distinct drugs and atoms of each run
    assert all(t.device.type == "meta" for t in (b[0], b[1].x, b[1].edge_index, b[2], b[3], b[4], b[5]))
    # the per-run layout: each run's distinct drugs in order, a pair's drug index pointing at its own run's copy
    dindex, names = a[2], a[1].names
    offsets = [0] + torch.tensor(a[-1][1]).cumsum(0).tolist()
    for r, sel in enumerate(sels):
        ids = dindex[sum(len(s) for s in sels[:r]) :][: len(sel)]
        assert ((ids >= offsets[r]) & (ids < offsets[r + 1])).all()
        assert [names[i] for i in ids.tolist()] == [
            gdsc2.molecules.names[d] for d in gdsc2._pairs["drug"][sel].tolist()
        ]


def test_a_stacked_step_copies_nothing_to_the_device_blockingly(gdsc2, pretrained_csg2a, monkeypatch):
    # torch.tensor(..., device=cuda) and x.to(cuda) without non_blocking copy synchronously: the host waits for every
    # kernel queued before them, a sync every step on a GPU. Spied on the CPU: any such call in a step (the batch
    # planned, forward, backward, Adam), after a warm-up step (one-time copies: the bond-type table)
    splits = _splits(gdsc2, [(300, 10), (250, 10)])
    stack = StackedFineTune([_model(gdsc2, pretrained_csg2a, sd) for sd in (0, 1)]).train()
    stack.base.pretrained.conv.validate = False
    opt = StackedAdam(stack.trainable)
    tables = _Tables(gdsc2, torch.device("cpu"))
    sels = [sp["train"][_batches(sp["train"].numel(), 64, seed=1)[0]] for sp in splits]

    def step():
        expr, graph, dindex, dose, tm, y, layout = tables.batch(sels)
        pred = stack(expr, graph, dindex, dose, tm, [0, 1], layout)
        opt.zero_grad()
        ((pred - y) ** 2).mean().backward()
        opt.step(1e-4, finite=opt.finite())

    step()
    blocking = []
    for name in ("tensor", "as_tensor"):
        orig = getattr(torch, name)

        def make(*a, _orig=orig, _name=name, **k):
            if k.get("device") is not None:
                blocking.append(f"torch.{_name}(device=)")
            return _orig(*a, **k)

        monkeypatch.setattr(torch, name, make)
    orig_to = torch.Tensor.to

    def to(self, *a, **k):
        target = k.get("device", a[0] if a and isinstance(a[0], (str, torch.device)) else None)
        if target is not None and not k.get("non_blocking", False):
            blocking.append(f"Tensor.to({target})")
        return orig_to(self, *a, **k)

    monkeypatch.setattr(torch.Tensor, "to", to)
    step()
    monkeypatch.undo()
    assert blocking == []
