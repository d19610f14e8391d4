"""Runs stepped together in one process (issue 28.4): ``R`` fine-tunings of one frozen pretrained CSG²A trained as
one model, so that every step is a few large kernels instead of ``R`` sets of small ones.

The protocol of the paper fine-tunes the same frozen network 40 times (4 schemes x 10 folds) and more with seeds and
randomisations; each run alone leaves a GPU idle (issue 28: ~2 ms of kernels per batch-128 step, launch-bound). Here
the runs share what is shared and keep apart what is not:

- the frozen network (condition encoder, attention layer, LayerNorm, output layer) is **one** module: its weights are
  equal in every run, and every operation of it acts on one pair at a time, so the batches of all runs go through it
  as one batch ``[sum B_r, N]``;
- what each run trains (the scaling layer, the three projections and the head) has a leading run dimension
  (``StackedLinear``: one batched matmul for all runs);
- every BatchNorm, trainable or frozen, normalises each run's rows (pairs, or atoms of the drug graphs) with that
  run's own batch statistics and keeps that run's running statistics (``StackedBatchNorm``), exactly as ``R``
  separate models would;
- Adam is elementwise, so one Adam over the stacked weights is ``R`` Adams; ``StackedAdam`` keeps every run's weights,
  gradients and moments as rows of flat ``[R, P]`` tensors and steps the runs that have a batch (runs with fewer
  training pairs end their epoch earlier) in one call of PyTorch's fused Adam kernel; a step in which a run's loss or
  gradient is not finite is skipped on the device and the fit stops at that epoch's end (``TrainingDiverged``);
- each run keeps its own data order (the shuffle of ``Trainer``: seed ``seed_r + epoch``), validation, early stopping
  and best weights; a run that stops early leaves the stack (its rows are simply absent from later steps).

The result of run ``r`` equals ``Trainer(model_r, TrainConfig(seed=seed_r)).fit(...)`` within float tolerance when
the models have no dropout (``tests/train/test_stacked.py`` compares weights, validation curves and predictions);
with dropout the masks are drawn for all runs at once (seeded, reproducible, but not the serial run's masks).
The data (expression, pair tables) live on the training device for the whole fit and batches are gathered there.

Not covered (refused with the reason): a pretrained network that is trained (``freeze=False``), runs whose frozen
networks differ (e.g. one with its prior removed: stack those separately), DDP. ``max_minutes`` is one budget for
the whole stack: when it runs out, every run still training ends after that epoch's validation with its best weights.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
import warnings
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from csg2a_graph.errors import InputError
from csg2a_graph.train.loop import TrainConfig, TrainingDiverged, cosine_then_hold, resolve_device

logger = logging.getLogger(__name__)


def _to_device(values: Sequence[int], device) -> Tensor:
    """A host list as a ``long`` tensor on ``device``, copied without blocking the host: ``torch.tensor(values,
    device=cuda)`` copies synchronously, i.e. waits for every kernel queued before it — a sync every step.
    """
    return torch.tensor(values, dtype=torch.long).to(device, non_blocking=True)


class _Rows:
    """Which run each row of a stacked batch belongs to: the rows of a run are contiguous, the runs in order.

    ``runs``: the stack positions of the runs present (``[A]``); ``sizes``: their row counts.
    """

    def __init__(self, runs: Sequence[int], sizes: Sequence[int], num_runs: int, device):
        # every decision here is made from host lists: no device->host sync per step or per layer
        self.run_list, self.sizes = [int(r) for r in runs], [int(s) for s in sizes]
        # small host lists to the device without blocking (torch.tensor(..., device=cuda) waits for the stream)
        self.runs = _to_device(self.run_list, device)
        self.num = len(self.sizes)
        self.total = sum(self.sizes)
        self.equal = len(set(self.sizes)) == 1
        counts = _to_device(self.sizes, device)
        self.ids = torch.repeat_interleave(torch.arange(self.num, device=device), counts, output_size=self.total)
        self.counts = counts
        self.all = self.run_list == list(range(num_runs))
        self.max = max(self.sizes) if self.sizes else 0
        self._pos: Optional[Tensor] = None
        self._mask: Optional[Tensor] = None

    @property
    def pos(self) -> Tensor:
        """Each row's position within its run (``[total]``): with ``ids``, its place in the padded ``[A, max]``."""
        if self._pos is None:
            starts = _to_device([0] + self.sizes[:-1], self.ids.device).cumsum(0)
            self._pos = torch.arange(self.total, device=self.ids.device) - starts[self.ids]
        return self._pos

    @property
    def mask(self) -> Tensor:
        """``[A, max]``: true where a run has a row (its padded layout)."""
        if self._mask is None:
            self._mask = torch.arange(self.max, device=self.ids.device)[None, :] < self.counts[:, None]
        return self._mask

    def pad(self, x: Tensor) -> Tensor:
        """``x [total, C]`` as ``[A, max, C]``, each run's rows first and zeros after them. Ragged rows (atoms of
        the drug graphs, epoch tails) are computed in this layout: a few kernels whatever the number of runs, and
        no scatter-add (whose float atomics would make a GPU run irreproducible); ``unpad`` is the inverse.
        """
        return x.new_zeros(self.num, self.max, x.size(-1)).index_put((self.ids, self.pos), x)

    def unpad(self, xp: Tensor) -> Tensor:
        """The rows of a padded ``[A, max, C]`` back in order: ``[total, C]``."""
        return xp[self.ids, self.pos]


class _Context:
    """The row layout of the step being computed, read by the stacked modules (set by ``StackedFineTune``)."""

    def __init__(self, num_runs: int):
        self.num_runs = num_runs
        self.pair: Optional[_Rows] = None
        self.node: Optional[_Rows] = None
        self.graph: Optional[_Rows] = None

    def rows_for(self, n: int, prefer: str) -> _Rows:
        """The layout whose row count is ``n`` (``prefer`` first when several have it)."""
        order = [prefer] + [k for k in ("pair", "node", "graph") if k != prefer]
        for k in order:
            rows = getattr(self, k)
            if rows is not None and rows.total == n:
                return rows
        raise RuntimeError(
            f"a stacked layer got {n} rows, which is no layout of this step (a model the stack misreads)"
        )


def _gather(t: Tensor, rows: _Rows) -> Tensor:
    """``t[runs]`` (the whole tensor when every run is present: no copy)."""
    return t if rows.all else t[rows.runs]


class StackedBatchNorm(nn.Module):
    """``R`` ``BatchNorm1d`` in one: each run's rows normalised with that run's batch statistics (training) or running
    statistics (evaluation), each run's running statistics updated as its own module would be.
    """

    weight: Any
    bias: Any
    running_mean: Tensor
    running_var: Tensor
    num_batches_tracked: Tensor

    def __init__(self, bns: Sequence[nn.BatchNorm1d], ctx: _Context, role: str):
        super().__init__()
        b0 = bns[0]
        if b0.momentum is None or not b0.track_running_stats:
            raise InputError("stacked runs need BatchNorm with a momentum and running statistics")
        self.ctx, self.role = ctx, role
        self.eps, self.momentum, self.affine = b0.eps, float(b0.momentum), b0.affine
        trainable = b0.affine and b0.weight.requires_grad
        for name in ("weight", "bias"):
            if b0.affine:
                t = torch.stack([getattr(b, name).detach() for b in bns]).clone()
                if trainable:
                    setattr(self, name, nn.Parameter(t))
                else:
                    self.register_buffer(name, t)
            else:
                setattr(self, name, None)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, torch.stack([getattr(b, name).detach() for b in bns]).clone())

    def forward(self, x: Tensor) -> Tensor:
        rows = self.ctx.rows_for(x.size(0), self.role)
        F = nn.functional
        if not rows.equal:  # ragged (atoms of the drug graphs, epoch tails): in the padded layout
            return self._ragged(x, rows)
        # as many rows per run: one kernel over (run, channel) pairs as channels: [n, A*C]
        A, n, C = rows.num, rows.sizes[0], x.size(1)
        xt = x.view(A, n, C).transpose(0, 1).reshape(n, A * C)
        if rows.all:
            rm, rv = self.running_mean.view(-1), self.running_var.view(-1)
        else:
            rm, rv = self.running_mean[rows.runs].view(-1), self.running_var[rows.runs].view(-1)
        w = None if self.weight is None else _gather(self.weight, rows).reshape(-1)
        b = None if self.bias is None else _gather(self.bias, rows).reshape(-1)
        y = F.batch_norm(xt, rm, rv, w, b, self.training, self.momentum, self.eps)
        if self.training:
            with torch.no_grad():
                if rows.all:
                    self.num_batches_tracked.add_(1)
                else:  # the gathered copies were updated: put them back
                    self.running_mean[rows.runs] = rm.view(A, C)
                    self.running_var[rows.runs] = rv.view(A, C)
                    self.num_batches_tracked[rows.runs] += 1
        return y.view(n, A, C).transpose(0, 1).reshape(x.shape)

    def _ragged(self, x: Tensor, rows: _Rows) -> Tensor:
        # PyTorch's batch norm written out on [A, max, C] (each run's statistics over its own rows): the same kernels
        # for any number of runs, where a kernel per run would launch R x layers small ones per step
        xp = rows.pad(x)
        if self.training:
            if min(rows.sizes) < 2:
                raise ValueError("Expected more than 1 value per channel when training (a run with one row)")
            n = rows.counts.to(x.dtype)[:, None]
            mean = xp.sum(1) / n
            xc = (xp - mean[:, None]) * rows.mask[..., None].to(x.dtype)
            var = xc.pow(2).sum(1) / n
            with torch.no_grad():
                m = self.momentum
                rm = (1 - m) * self.running_mean[rows.runs] + m * mean
                rv = (1 - m) * self.running_var[rows.runs] + m * var * (n / (n - 1))
                self.running_mean[rows.runs] = rm.to(self.running_mean.dtype)
                self.running_var[rows.runs] = rv.to(self.running_var.dtype)
                self.num_batches_tracked[rows.runs] += 1
            yp = xc * torch.rsqrt(var + self.eps)[:, None]
        else:
            rm, rv = _gather(self.running_mean, rows), _gather(self.running_var, rows)
            yp = (xp - rm[:, None]) * torch.rsqrt(rv + self.eps)[:, None]
        if self.weight is not None:
            yp = yp * _gather(self.weight, rows)[:, None] + _gather(self.bias, rows)[:, None]
        return rows.unpad(yp)


class StackedLinear(nn.Module):
    """``R`` ``nn.Linear`` in one: ``weight [R, out, in]``; each run's rows through its own weights (one batched
    matmul when the runs have as many rows each).
    """

    def __init__(self, lins: Sequence[nn.Linear], ctx: _Context):
        super().__init__()
        self.ctx = ctx
        self.weight = nn.Parameter(torch.stack([lin.weight.detach() for lin in lins]).clone())
        if lins[0].bias is not None:
            self.bias: Optional[nn.Parameter] = nn.Parameter(torch.stack([lin.bias.detach() for lin in lins]).clone())
        else:
            self.bias = None

    def forward(self, x: Tensor) -> Tensor:
        rows = self.ctx.rows_for(x.size(0), "pair")
        w = _gather(self.weight, rows)
        b = None if self.bias is None else _gather(self.bias, rows)
        if rows.equal:
            xv = x.view(rows.num, rows.sizes[0], -1)
            y = torch.bmm(xv, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), xv, w.transpose(1, 2))
            return y.reshape(x.size(0), -1)
        xp = rows.pad(x)  # ragged: one batched matmul over the padded rows, whatever the number of runs
        yp = torch.bmm(xp, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), xp, w.transpose(1, 2))
        return rows.unpad(yp)


#: per-run tensors of ``CSG2AFineTune`` outside its modules (scaling layer, target scaler)
_TOP_LEVEL = ("shift", "scale", "mu", "sigma", "y_mean", "y_std")


class StackedFineTune(nn.Module):
    """``R`` ``CSG2AFineTune`` models sharing one frozen pretrained network, computed as one (see the module
    docstring). ``forward(expr, drug_graph, drug_index, dose, time, runs, rows)`` takes the batches of the runs ``runs``
    (stack positions, a list) concatenated; ``rows`` = (pairs, distinct drugs, atoms) of each, in order.
    ``run_state(r)`` is run ``r``'s state dict for its own ``CSG2AFineTune``.
    """

    def __init__(self, models: Sequence[nn.Module]):
        super().__init__()
        from csg2a_graph.nn.models.csg2a import CSG2AFineTune

        if not models:
            raise InputError("no models to stack")
        if not all(isinstance(m, CSG2AFineTune) for m in models):
            raise InputError("stacked runs are CSG2AFineTune models (a frozen pretrained CSG²A and its head)")
        h0 = models[0].hparams
        for i, m in enumerate(models):
            if not m.freeze:
                raise InputError(
                    "stacked runs share one frozen pretrained network; run "
                    f"{i} trains it (freeze=False): run such runs one by one (--executor serial/process)"
                )
            if m.hparams != h0:
                raise InputError(f"stacked runs need one architecture: run {i}'s hyperparameters differ from run 0's")
        R = len(models)
        self.num_runs = R
        self.ctx = _Context(R)
        base = copy.deepcopy(models[0])
        mods = [dict(m.named_modules()) for m in models]
        self.stacked_keys: List[str] = []
        for name, mod in list(base.named_modules()):
            if isinstance(mod, nn.BatchNorm1d):
                role = "node" if name.startswith("pretrained.cond.drug.") else "pair"
                new: nn.Module = StackedBatchNorm([d[name] for d in mods], self.ctx, role)
            elif isinstance(mod, nn.Linear) and mod.weight.requires_grad:
                new = StackedLinear([d[name] for d in mods], self.ctx)
            else:
                continue
            parent, _, attr = name.rpartition(".")
            setattr(base.get_submodule(parent) if parent else base, attr, new)
            self.stacked_keys += [f"{name}.{k}" for k, _ in new.named_parameters()]
            self.stacked_keys += [f"{name}.{k}" for k, _ in new.named_buffers()]
        for name in _TOP_LEVEL:
            if name in base._parameters or name in base._buffers:
                t = torch.stack([getattr(m, name).detach() for m in models]).clone()
                trainable = name in base._parameters
                delattr(base, name)
                if trainable:
                    self.register_parameter(name, nn.Parameter(t))
                else:
                    self.register_buffer(name, t)
        for name, p in base.named_parameters():  # every trainable weight is a run's own
            if p.requires_grad and not any(name.startswith(k.rsplit(".", 1)[0] + ".") for k in self.stacked_keys):
                raise InputError(f"stacked runs cannot train {name} (a {type(p).__name__} outside Linear/BatchNorm)")
        shared = {k: v for k, v in base.state_dict().items() if k not in self.stacked_keys}
        for i, m in enumerate(models[1:], 1):  # the frozen network must be the same in every run
            own = m.state_dict()
            for k, v in shared.items():
                if not torch.equal(own[k].to(v.device), v):
                    raise InputError(
                        f"stacked runs share one frozen network, but run {i} differs from run 0 in {k} "
                        "(e.g. a prior removed in one run): stack such runs separately"
                    )
        self.base = base

    @property
    def trainable(self) -> List[Tensor]:
        return [p for p in self.parameters() if p.requires_grad]

    def train(self, mode: bool = True):
        super().train(mode)
        self.base.train(mode)  # CSG2AFineTune keeps a frozen network in eval mode where it should
        return self

    def forward(
        self,
        expr: Tensor,
        drug_graph,
        drug_index: Tensor,
        dose: Tensor,
        time: Tensor,
        runs: Sequence[int],
        rows: Sequence[Sequence[int]],
    ) -> Tensor:
        ctx = self.ctx
        pair_rows, graph_rows, node_rows = rows
        dev = expr.device
        ctx.pair = _Rows(runs, pair_rows, self.num_runs, dev)
        ctx.graph = _Rows(runs, graph_rows, self.num_runs, dev)
        ctx.node = _Rows(runs, node_rows, self.num_runs, dev)
        try:
            m: Any = self.base
            run: Any = self  # the per-run tensors registered by name in __init__
            cond = m.pretrained.condition(drug_graph, drug_index, dose, time)
            ids = ctx.pair.ids
            if m.scaling == "scalar":
                g = (expr + _gather(run.shift, ctx.pair)[ids]) * _gather(run.scale, ctx.pair)[ids]
            elif m.scaling == "gene":
                g = (expr - _gather(run.mu, ctx.pair)[ids]) / _gather(run.sigma, ctx.pair)[ids]
            else:
                g = expr
            g = m.place(g)
            perturbed = m.pretrained.perturb(g, cond)
            basal = g if m.basal_input == "scaled" else m.place(expr)
            h = torch.cat([m.proj_basal(basal), m.proj_perturbed(perturbed), m.proj_condition(cond)], -1)
            out = m.head(h).squeeze(-1)
            return out * _gather(run.y_std, ctx.pair)[ids] + _gather(run.y_mean, ctx.pair)[ids]
        finally:
            ctx.pair = ctx.node = ctx.graph = None

    def run_state(self, r: int) -> Dict[str, Tensor]:
        """Run ``r``'s state dict, for its ``CSG2AFineTune`` (keys as there)."""
        out = {}
        for k, v in self.base.state_dict().items():
            out[k] = (v[r] if k in self.stacked_keys else v).detach().clone()
        for name in _TOP_LEVEL:
            if hasattr(self, name) and (name in self._parameters or name in self._buffers):
                out[name] = getattr(self, name)[r].detach().clone()
        return out

    def load_run_state(self, r: int, state: Dict[str, Tensor]) -> None:
        """Put ``state`` (from ``run_state``) back as run ``r``'s slice."""
        with torch.no_grad():
            own = self.base.state_dict(keep_vars=True)
            for k in self.stacked_keys:
                own[k][r].copy_(state[k])
            for name in _TOP_LEVEL:
                if name in self._parameters or name in self._buffers:
                    getattr(self, name)[r].copy_(state[name])


class StackedAdam:
    """Adam (``torch.optim.Adam``'s update, L2 weight decay) over stacked weights ``[R, ...]`` with a step count per
    run: ``step(active, lr)`` updates only the runs in ``active`` (bool ``[R]``), each with its ``lr``; runs whose
    gradient is not finite are left as they were and reported.

    Flat, as multi-tensor optimisers are: the weights and their gradients become views into one ``[R, P]`` tensor
    each (``P`` = one run's trainable values; ``weights``, ``grads``), so a step is a dozen elementwise operations on
    them, in place, whatever the number of weight tensors (a loop over the tensors issued ~650 small operations per
    step, more than the forward pass), ``finite()`` is one reduction and ``zero_grad()`` one fill. Gradients that
    autograd accumulates stay in ``grads`` (they are defined, zeroed, before each backward); a gradient replaced or set
    to ``None`` by hand is gathered instead (a weight with ``None`` is then not stepped), a weight moved elsewhere
    written back.
    """

    def __init__(self, params: Sequence[Tensor], weight_decay: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        if not self.params:
            raise InputError("StackedAdam needs at least one stacked weight")
        self.wd, (self.b1, self.b2), self.eps = float(weight_decay), betas, float(eps)
        p0 = self.params[0]
        R, dev, dtype = p0.size(0), p0.device, p0.dtype
        if any(p.size(0) != R or p.device != dev or p.dtype != dtype for p in self.params):
            raise InputError("stacked weights must share the run dimension, device and dtype")
        self.numel = [p[0].numel() for p in self.params]
        P = sum(self.numel)
        self.steps = torch.zeros(R, dtype=torch.float32, device=dev)  # float32 as torch's fused Adam keeps it
        self.exp_avg = torch.zeros(R, P, dtype=dtype, device=dev)
        self.exp_avg_sq = torch.zeros_like(self.exp_avg)
        self.weights = torch.empty_like(self.exp_avg)
        self.grads = torch.zeros_like(self.exp_avg)
        self._wviews: List[Tensor] = []
        self._gviews: List[Tensor] = []
        c = 0
        with torch.no_grad():
            for p, n in zip(self.params, self.numel):
                wv = self.weights[:, c : c + n].view(p.shape)
                wv.copy_(p)
                p.data = wv  # the weight now lives in the flat tensor
                self._wviews.append(wv)
                self._gviews.append(self.grads[:, c : c + n].view(p.shape))
                c += n
        self.zero_grad()

    def zero_grad(self) -> None:
        """Zero the gradients (views into ``grads``: autograd accumulates into them in place)."""
        for p, gv in zip(self.params, self._gviews):
            if p.grad is not gv:
                p.grad = gv
        self.grads.zero_()

    def _flat(self, values: Sequence[Optional[Tensor]]) -> Tensor:
        R = self.exp_avg.size(0)
        return torch.cat(
            [
                (v if v is not None else self.exp_avg.new_zeros(p.shape)).reshape(R, -1)
                for v, p in zip(values, self.params)
            ],
            1,
        )

    def _grads_in_place(self) -> bool:
        """Whether every gradient is still its view into ``grads`` (autograd accumulated there)."""
        return all(p.grad is gv for p, gv in zip(self.params, self._gviews))

    def flat_grad(self) -> Tensor:
        """The gradients as one ``[R, P]`` tensor (a weight without a gradient contributes zeros)."""
        return self.grads if self._grads_in_place() else self._flat([p.grad for p in self.params])

    def finite(self) -> Tensor:
        """Per run: whether every gradient is finite (``[R]`` bool)."""
        return torch.isfinite(self.flat_grad()).all(1)

    @torch.no_grad()
    def step(self, lr: float, runs: Optional[Sequence[int]] = None, finite: Optional[Tensor] = None) -> None:
        """One Adam step, learning rate ``lr``, of the runs ``runs`` (stack positions, a host list; ``None``: all) —
        one call of PyTorch's fused Adam kernel (what ``torch.optim.Adam(fused=True)`` runs) over their rows of the
        flat tensors. ``finite`` (``[R]`` bool on the device, e.g. ``finite()``): when one of these runs is ``False``
        none of them is stepped — decided on the device by the kernel's skip flag, as ``torch.optim`` does with a
        gradient scaler, so nothing is read back (a fit stops with ``TrainingDiverged`` at the end of such an epoch).
        """
        R = self.weights.size(0)
        runs = list(range(R)) if runs is None else [int(r) for r in runs]
        if not runs or all(p.grad is None for p in self.params):
            return
        dev = self.weights.device
        idx = None if len(runs) == R else _to_device(runs, dev)
        found = None
        if finite is not None:
            found = (~(finite if idx is None else finite[idx]).all()).to(torch.float32)
        aliased = all(p.data_ptr() == wv.data_ptr() and p.shape == wv.shape for p, wv in zip(self.params, self._wviews))
        steps = self.steps.unbind(0)
        if aliased and self._grads_in_place():  # each run's values as one row: one tensor per run
            rows = [t.unbind(0) for t in (self.weights, self.grads, self.exp_avg, self.exp_avg_sq)]
            ws, gs, ms, vs = ([t[r] for r in runs] for t in rows)
            st = [steps[r] for r in runs]
        else:  # weights moved or gradients replaced by hand: each weight with a gradient (None: not stepped)
            ws, gs, ms, vs, st = [], [], [], [], []
            c = 0
            for p, n in zip(self.params, self.numel):
                if p.grad is not None:
                    for r in runs:
                        ws.append(p.detach()[r])
                        gs.append(p.grad[r])
                        ms.append(self.exp_avg[r, c : c + n].view(p.shape[1:]))
                        vs.append(self.exp_avg_sq[r, c : c + n].view(p.shape[1:]))
                        st.append(steps[r])
                c += n
        one = torch.ones(len(runs), dtype=self.steps.dtype, device=dev)
        if idx is None:  # as torch's Adam: count first (the kernel reads the count), take a skipped step back after
            self.steps.add_(one)
        else:
            self.steps.index_add_(0, idx, one)
        torch._fused_adam_(
            ws,
            gs,
            ms,
            vs,
            [],
            st,
            lr=float(lr),
            beta1=self.b1,
            beta2=self.b2,
            weight_decay=self.wd,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
            found_inf=found,
        )
        if found is not None:
            if idx is None:
                self.steps.sub_(found)
            else:
                self.steps.index_add_(0, idx, -found.expand(len(runs)))


def _backward(loss: Tensor) -> None:
    """``loss.backward()`` without autograd's "gradient layout contract" warning: the weights are column blocks of
    ``StackedAdam.weights`` (not dense), and their gradients accumulate in place into the blocks of ``grads`` with the
    same strides — which is what the flat optimiser wants, not a slower path.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")
        loss.backward()


def _batches(n: int, batch_size: int, seed: int) -> List[Tensor]:
    """Positions ``0..n-1`` in the training batches of ``Trainer`` (its loader: shuffled with ``seed``, a last batch
    of one pair merged into the one before).
    """
    from csg2a_graph.data.loader import batch_slices, shuffled

    idx = shuffled(torch.arange(n), seed)
    return [idx[a:b] for a, b in batch_slices(n, batch_size, merge_singleton=True)]


class _Tables:
    """The dataset's tables: expression, targets and the drug graphs' atom and bond tables on the training device for
    the whole fit (gathered there every step), the indices (cells, drugs) and graph offsets on the CPU, where each step
    is planned — no read from the device and no graph copied to it per step.
    """

    def __init__(self, dataset, device: torch.device):
        if not all(hasattr(dataset, a) for a in ("_expr", "_pairs", "molecules")):
            raise InputError(
                f"stacked runs need a PairDataset (expression, pair table, molecules); got {type(dataset)}"
            )
        self.dataset, self.device = dataset, device
        self.expr = dataset._expr.to(device)
        self.molecules = dataset.molecules.to(device)  # the drug graphs' atom and bond tables, resident
        p = dataset._pairs
        self.cell, self.drug = p["cell"].cpu(), p["drug"].cpu()
        self.values = {k: p[k].to(device) for k in ("y", "dose", "time")}
        rows = dataset.pair_rows() if hasattr(dataset, "pair_rows") else None
        self.rows = None if rows is None else rows.cpu()

    def batch(self, sels: Sequence[Tensor]):
        """The pairs ``sels[a]`` (dataset positions) of each present run, concatenated: ``(expr, drug_graph,
        drug_index, dose, time, y, rows)`` with ``rows`` the pairs, distinct drugs and atoms of each run.
        """
        # one pass over all runs (no loop per run): a run's distinct drugs are the distinct (run, drug) keys
        pair_rows = [int(s.numel()) for s in sels]
        num_drugs = len(self.molecules)
        sel = torch.cat(list(sels)).cpu()
        row = sel if self.rows is None else self.rows[sel]
        run = torch.repeat_interleave(torch.arange(len(sels)), torch.tensor(pair_rows), output_size=sel.numel())
        keys, dindex = torch.unique(run * num_drugs + self.drug[row], return_inverse=True)  # sorted: run, then drug
        key_run, drugs = keys // num_drugs, keys % num_drugs
        graph = self.molecules.batch(drugs)  # gathered on the device from its resident tables
        aptr = self.molecules.atom_ptr  # on the CPU: each run's atoms, with no read from the device
        atoms = torch.zeros(len(sels), dtype=torch.long).index_add_(0, key_run, aptr[drugs + 1] - aptr[drugs])
        graph_rows = torch.bincount(key_run, minlength=len(sels)).tolist()
        node_rows = atoms.tolist()
        cells = self.cell[row]
        rows = row.to(self.device, non_blocking=True)
        dev = self.device
        return (
            self.expr[cells.to(dev, non_blocking=True)],
            graph,
            dindex.to(dev, non_blocking=True),
            self.values["dose"][rows],
            self.values["time"][rows],
            self.values["y"][rows],
            (pair_rows, graph_rows, node_rows),
        )


class StackedTrainer:
    """Fine-tune ``models`` (``CSG2AFineTune``, one frozen pretrained network) on their own splits of ``dataset``,
    stepped together (see the module docstring).

    Args:
        models: the runs' models, initialised as each run would be (their seeds).
        config: one ``TrainConfig`` for all runs (its ``seed`` is replaced by ``seeds``).
        seeds: each run's seed: its data order (``seed + epoch``, as ``Trainer``).
        out_dirs: per run, where ``metrics.csv`` and ``model.pt`` go (``None``: nothing written).

    ``fit(dataset, splits)`` restores each model's best weights and returns the runs' histories; ``predict``
    predicts each run's pairs with its own model.
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        config: Optional[TrainConfig] = None,
        seeds: Optional[Sequence[int]] = None,
        out_dirs: Optional[Sequence[Optional[str]]] = None,
    ):
        self.models = list(models)
        self.config = config or TrainConfig()
        R = len(self.models)
        self.seeds = [self.config.seed + r for r in range(R)] if seeds is None else [int(s) for s in seeds]
        self.out_dirs = list(out_dirs) if out_dirs is not None else [None] * R
        if len(self.seeds) != R or len(self.out_dirs) != R:
            raise ValueError(f"{R} models need {R} seeds and out_dirs")
        if self.config.compile:
            logger.warning("compile is ignored by stacked runs")
        self.device = resolve_device(self.config.device)
        self.histories: List[List[Dict]] = [[] for _ in range(R)]
        self.best_epochs = [-1] * R
        self.best_vals = [math.inf] * R
        self.stack: Optional[StackedFineTune] = None

    def _autocast(self):
        if self.config.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def fit(self, dataset, splits: Sequence[Dict[str, Tensor]]) -> List[List[Dict]]:
        """Train every run on ``splits[r]["train"]`` with early stopping on ``splits[r]["val"]``."""
        from tqdm.auto import tqdm

        from csg2a_graph.checkpoint import data_card, dataset_fingerprint, save_checkpoint
        from csg2a_graph.data.batch import as_pair_index
        from csg2a_graph.train.tables import write_rows

        cfg, R, dev = self.config, len(self.models), self.device
        if len(splits) != R:
            raise ValueError(f"{R} models need {R} splits, got {len(splits)}")
        n = dataset.num_pairs
        train_idx = [as_pair_index(s["train"], n) for s in splits]  # out of range, floats, bad masks: refused here
        val_idx = [as_pair_index(s["val"], n) if s.get("val") is not None else None for s in splits]
        for r, t in enumerate(train_idx):
            if t.numel() < 2:
                raise ValueError(f"run {r}: the training split has {t.numel()} pair(s); training needs at least 2")
        y = dataset.pairs["y"]
        y_var = [float(y[t].double().var()) for t in train_idx]
        models: List[Any] = self.models
        for m, t in zip(models, train_idx):
            m.to(dev)
            if hasattr(m, "clear_cache"):
                m.clear_cache()
            m.set_target_scaler(y[t].to(dev))
        stack = StackedFineTune(self.models).to(dev)
        self.stack = stack
        tables = _Tables(dataset, dev)
        opt = StackedAdam(stack.trainable, weight_decay=cfg.weight_decay)
        factor = (
            cosine_then_hold(cfg.lr, cfg.min_lr, max(1, cfg.patience))
            if cfg.schedule == "cosine"
            else (lambda epoch: 1.0)
        )
        stopped = [False] * R
        bad = [0] * R
        best_state: List[Optional[Dict]] = [None] * R
        y_std = getattr(stack, "y_std", None)
        y_std2 = (y_std.detach().double() ** 2) if y_std is not None else torch.ones(R, device=dev)
        bar = tqdm(range(cfg.epochs), desc=f"{R} runs stepped together", disable=not cfg.progress)
        # max_minutes: one budget for the stack; when it runs out the current epoch stops, is validated, and every run
        # still training ends there with its best weights (as Trainer does for one run)
        deadline = None if cfg.max_minutes is None else time.perf_counter() + 60.0 * cfg.max_minutes
        out_of_time = False
        for epoch in bar:
            live = [r for r in range(R) if not stopped[r]]
            if not live or out_of_time:
                break
            t0 = time.perf_counter()
            torch.manual_seed(self.seeds[0] * 100_003 + epoch)  # dropout (all runs at once)
            order = {r: _batches(train_idx[r].numel(), cfg.batch_size, self.seeds[r] + epoch) for r in live}
            if cfg.max_batches is not None:
                order = {r: b[: cfg.max_batches] for r, b in order.items()}
            lr = cfg.lr * factor(epoch)  # the runs of a stack are at the same epoch: one schedule value for all
            total = torch.zeros(R, dtype=torch.float64, device=dev)
            count = torch.zeros(R, dtype=torch.float64, device=dev)
            skipped = torch.zeros(R, dtype=torch.float64, device=dev)
            stack.train()
            for k in range(max(len(b) for b in order.values())):
                if deadline is not None and k > 0 and time.perf_counter() > deadline:
                    out_of_time = True
                    break
                present = [r for r in live if k < len(order[r])]
                sels = [train_idx[r][order[r][k]] for r in present]
                expr, graph, dindex, dose, tm, yb, layout = tables.batch(sels)
                with self._autocast():
                    pred = stack(expr, graph, dindex, dose, tm, present, layout).float()
                rows = _Rows(present, layout[0], R, dev)
                runs = rows.runs
                se = (pred - yb) ** 2
                per_run = se.new_zeros(len(present)).index_add_(0, rows.ids, se) / rows.counts.to(se.dtype)
                loss_r = per_run / y_std2[runs].to(se.dtype)  # each run's loss on its standardised scale
                opt.zero_grad()
                _backward(loss_r.sum())  # runs share no weight: each run's gradient is its own loss's
                ok = opt.finite() & torch.isfinite(
                    torch.zeros(R, device=dev).index_put((runs,), loss_r.detach().float())
                )
                opt.step(lr, present, ok)  # a non-finite run holds back the step of all: the fit then stops
                skipped[runs] += (~ok[runs]).double()
                good = ok[runs]
                total[runs] += torch.where(good, per_run.detach().double() * rows.counts.double(), 0.0)
                count[runs] += rows.counts.double()
            train_mse = (total / count.clamp_min(1)).tolist()
            n_bad = skipped.tolist()
            val = self._predict_runs(tables, live, [val_idx[r] for r in live], dataset) if live else {}
            for r in live:
                if n_bad[r]:
                    raise TrainingDiverged(
                        f"run {r} (seed {self.seeds[r]}): {int(n_bad[r])} step(s) of epoch {epoch} met a non-finite "
                        "loss or gradient; lower the learning rate"
                    )
                # "lr" as Trainer's metrics.csv has it: read after the epoch's schedule step (the next epoch's)
                row: Dict[str, Any] = {"epoch": epoch, "train_mse": train_mse[r], "lr": cfg.lr * factor(epoch + 1)}
                vi = val_idx[r]
                if vi is not None and vi.numel():
                    from csg2a_graph.train.metrics import regression_metrics

                    vm = regression_metrics(y[vi], val[r], drug=dataset.pairs["drug"][vi].numpy())
                    row.update({f"val_{k}": v for k, v in vm.items()})
                    v = vm["rmse"] ** 2
                else:
                    v = train_mse[r]
                row["val_mse"] = v
                row["seconds"] = time.perf_counter() - t0
                if not math.isfinite(v) or (
                    cfg.divergence_factor is not None and y_var[r] > 0 and v > cfg.divergence_factor * y_var[r]
                ):
                    raise TrainingDiverged(
                        f"run {r} (seed {self.seeds[r]}): validation MSE {v:.4g} at epoch {epoch} against a target "
                        f"variance of {y_var[r]:.4g}; lower the learning rate"
                    )
                if v < self.best_vals[r] - 1e-12:
                    self.best_vals[r], self.best_epochs[r], bad[r] = v, epoch, 0
                    best_state[r] = stack.run_state(r)
                else:
                    bad[r] += 1
                self.histories[r].append(row)
                if bad[r] >= cfg.patience:
                    stopped[r] = True
            bar.set_postfix(running=sum(not x for x in stopped), best=min(self.best_vals))
            if out_of_time or (deadline is not None and time.perf_counter() > deadline):
                out_of_time = True
                logger.info(
                    "time budget of %s min reached after epoch %d: %d runs end here",
                    cfg.max_minutes,
                    epoch,
                    sum(not x for x in stopped),
                )
            logger.info(
                "stacked epoch %d: %d runs, train mse %s (%.1fs)",
                epoch,
                len(live),
                " ".join(f"{train_mse[r]:.4f}" for r in live),
                time.perf_counter() - t0,
            )
        for r, m in enumerate(self.models):
            state = best_state[r]
            m.load_state_dict(state if state is not None else stack.run_state(r))
            out_dir = self.out_dirs[r]
            if out_dir:
                os.makedirs(out_dir, exist_ok=True)
                write_rows(os.path.join(out_dir, "metrics.csv"), self.histories[r])
                save_checkpoint(
                    os.path.join(out_dir, "model.pt"),
                    m,
                    best_epoch=self.best_epochs[r],
                    best_val=self.best_vals[r],
                    config={**asdict(cfg), "seed": self.seeds[r]},
                    dataset=dataset_fingerprint(dataset),
                    split={k: torch.as_tensor(v).long() for k, v in splits[r].items() if k in ("train", "val", "test")},
                    history=self.histories[r],
                    stacked=R,
                    **data_card(dataset),
                )
        return self.histories

    @torch.no_grad()
    def _predict_runs(self, tables: _Tables, runs: Sequence[int], index: Sequence[Optional[Tensor]], dataset) -> Dict:
        """Each run's predictions for its ``index`` (evaluation mode, its running statistics), in that order."""
        stack = self.stack
        assert stack is not None
        stack.eval()
        bs = self.config.eval_batch_size
        chunks = {r: (list(i.split(bs)) if i is not None and i.numel() else []) for r, i in zip(runs, index)}
        outs: Dict[int, List[Tensor]] = {r: [] for r in runs}
        for k in range(max((len(c) for c in chunks.values()), default=0)):
            present = [r for r in runs if k < len(chunks[r])]
            sels = [chunks[r][k] for r in present]
            expr, graph, dindex, dose, tm, _, layout = tables.batch(sels)
            with self._autocast():
                pred = stack(expr, graph, dindex, dose, tm, present, layout)
            for r, p in zip(present, pred.float().split(layout[0])):
                outs[r].append(p.cpu())
        return {r: (torch.cat(o) if o else torch.zeros(0)) for r, o in outs.items()}

    def predict(self, dataset, indices: Sequence[Tensor]) -> List[Tensor]:
        """Every run's predictions for ``indices[r]`` with its best weights (after ``fit``)."""
        if self.stack is None:
            raise RuntimeError("predict() after fit()")
        R = len(self.models)
        for r, m in enumerate(self.models):
            self.stack.load_run_state(r, m.state_dict())
        tables = _Tables(dataset, self.device)
        from csg2a_graph.data.batch import as_pair_index

        index = [as_pair_index(i, dataset.num_pairs) for i in indices]
        out = self._predict_runs(tables, list(range(R)), index, dataset)
        return [out[r] for r in range(R)]


__all__ = ["StackedTrainer", "StackedFineTune", "StackedAdam", "StackedBatchNorm", "StackedLinear"]
