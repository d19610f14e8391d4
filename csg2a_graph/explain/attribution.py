"""Gene-level attribution with Captum: which genes of the basal expression (and of the chemical
condition vector) drove a prediction.

Every method attributes the model's scalar output per pair — ln IC50 for a fine-tuned response
model, and for a pretraining network (which predicts a profile) the Euclidean distance between
the basal and the predicted perturbed expression (the paper's zero-shot quantity, C.2) or one
predicted gene (``target=i``).

Baselines. Expression is robust-z-scored per gene, so **zero is the population median** of every
gene: the attribution of gene ``i`` says how much the prediction owes to this line's expression
of ``i`` differing from a typical line's. The condition's baseline is the zero vector ("no
chemical signal"). The Shapley-type methods (``deepliftshap``, ``gradientshap``) take a
*distribution* of baselines: ``n_baselines`` cell lines drawn from the dataset (seeded).

Methods (``method=``): ``ig`` (Integrated Gradients; reports the completeness gap
``sum(attr) - (f(x) - f(baseline))``), ``saliency`` (plain gradient), ``inputxgradient``,
``deeplift``, ``deepliftshap``, ``gradientshap``, ``ablation`` (set one gene at a time to the
baseline; exact, costs one forward per gene), and ``layer-ig`` (Integrated Gradients of the
output of the ``CSG2AConv`` layer: per gene of the mixed state ``S g0``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from csg2a_graph._names import EXPLAIN_METHODS as METHODS
from csg2a_graph.typing import PairDatasetLike

logger = logging.getLogger(__name__)

_WITH_DELTA = ("ig", "deeplift", "deepliftshap", "gradientshap", "layer-ig")


def _captum():
    try:
        import captum.attr as attr
    except ImportError as e:  # pragma: no cover - captum is a dependency of the package
        raise ImportError("attribution needs Captum (a dependency of csg2a-graph): pip install captum") from e
    return attr


def _is_csg2a(model) -> bool:
    from csg2a_graph.nn.models.csg2a import CSG2A, CSG2AFineTune

    return isinstance(model, (CSG2A, CSG2AFineTune))


def _pretrained(model):
    from csg2a_graph.nn.models.csg2a import CSG2A

    return model if isinstance(model, CSG2A) else model.pretrained


class ScalarOutput(nn.Module):
    """The model as a function of ``(expr[, cond])`` with one scalar per pair (what Captum differentiates).

    ``drug_graph``, ``drug_index``, ``dose`` and ``time`` arrive as additional forward arguments
    (Captum repeats the tensors among them along the batch for its interpolation steps).
    """

    def __init__(self, model: nn.Module, with_condition: bool, target: Union[str, int, None] = None):
        super().__init__()
        self.model, self.with_condition = model, with_condition
        profile = getattr(model, "target", "response") == "profile"
        if profile and target is None:
            target = "distance"
        if not profile and target is not None:
            raise ValueError(
                f"target={target!r} applies to profile models; {type(model).__name__} predicts one response"
            )
        if isinstance(target, str) and target != "distance":
            raise ValueError(f"target must be 'distance' or a gene index, got {target!r}")
        self.target = target

    def forward(self, expr: Tensor, *args) -> Tensor:
        if self.with_condition:
            cond = args[0]
            model: Any = self.model
            if getattr(model, "target", "response") == "profile":
                out = model.perturb(expr, cond)
            else:
                return model.forward_condition(expr, cond)
        else:
            out = self.model(expr, *args)
        if self.target is None:
            return out
        if self.target == "distance":
            return (out - expr).pow(2).sum(-1).clamp_min(1e-12).sqrt()
        return out[:, int(self.target)]


@dataclass
class GeneAttributions:
    """Attributions of ``P`` pairs.

    Attributes:
        method: the Captum method.
        index: ``[P]`` pair indices in the dataset.
        genes: names of the expression attributions' columns (the dataset's genes).
        expr: ``[P, n_genes]`` attribution to each gene's basal expression.
        condition: ``[P, N]`` attribution to the condition vector (over ``condition_genes``), or ``None``.
        pred: ``[P]`` the model's output at the input; ``pred_baseline``: at the baseline (IG, DeepLift).
        delta: ``[P]`` Captum's convergence delta (``sum(attr) - (f(x) - f(baseline))``) where defined.
    """

    method: str
    index: Tensor
    genes: List[str]
    expr: Tensor
    pred: Tensor
    condition: Optional[Tensor] = None
    condition_genes: Optional[List[str]] = None
    pred_baseline: Optional[Tensor] = None
    delta: Optional[Tensor] = None
    options: Dict = field(default_factory=dict)
    #: ``[P]`` integration steps each pair's attribution used (IG with a completeness target raises them)
    steps: Optional[Tensor] = None

    def completeness(self) -> Dict[str, Any]:
        """How far ``sum of attributions`` is from the output change it should add up to (IG's completeness
        axiom): ``f(x) - f(baseline)`` for IG and DeepLift. For layer IG that is *not* the right reference — the
        model has paths around the layer, so its attributions add up to the change of ``f`` when only the
        layer's output moves from its value at the baseline to its value at ``x`` (every other path at ``x``);
        the gap is then Captum's convergence delta, reported against that change (``reference``).
        """
        if self.method == "layer-ig":
            if self.delta is None:
                return {}
            err = self.delta.double().abs()
            change = self.expr.double().sum(1) - self.delta.double()  # f(layer at x) - f(layer at baseline)
            return {
                "completeness_max_abs_error": float(err.max()),
                "completeness_mean_abs_error": float(err.mean()),
                "completeness_max_rel_error": float((err / change.abs().clamp_min(1e-6)).max()),
                "mean_abs_output_change": float(change.abs().mean()),
                "reference": "the output change when only the layer's output moves (f(x) - f(0) does not "
                "apply: the model has paths around the layer)",
            }
        if self.pred_baseline is None:
            return {}
        err, diff = _gap(self)
        out: Dict[str, Any] = {
            "completeness_max_abs_error": float(err.max()),
            "completeness_mean_abs_error": float(err.mean()),
            "completeness_max_rel_error": float((err / diff.abs().clamp_min(1e-6)).max()),
            "mean_abs_output_change": float(diff.abs().mean()),
        }
        if self.steps is not None:
            out.update(
                steps_min=int(self.steps.min()),
                steps_max=int(self.steps.max()),
                steps_mean=float(self.steps.double().mean()),
            )
        return out

    def to_frame(self, dataset=None, top: Optional[int] = None):
        """Long table ``pair, cell, drug, gene, attribution`` (``top``: the ``top`` genes of largest
        ``|attribution|`` per pair); cells and drugs named from ``dataset`` when given.
        """
        import pandas as pd

        A = self.expr.numpy()
        P, n = A.shape
        if top is not None and top < n:
            cols = np.argsort(-np.abs(A), axis=1)[:, :top]
        else:
            cols = np.tile(np.arange(n), (P, 1))
        rows = np.repeat(np.arange(P), cols.shape[1])
        flat = cols.reshape(-1)
        pair = self.index.numpy()[rows]
        df = pd.DataFrame({"pair": pair, "gene": np.asarray(self.genes)[flat], "attribution": A[rows, flat]})
        if dataset is not None:
            p = dataset.pairs
            names = dataset.drug_meta.get("name") or dataset.drugs
            cells = np.asarray(dataset.cells)[p["cell"][self.index].numpy()]
            drugs = np.asarray(names)[p["drug"][self.index].numpy()]
            df.insert(1, "cell", cells[rows])
            df.insert(2, "drug", drugs[rows])
        return df

    def mean_abs(self) -> Tensor:
        """``[n_genes]`` mean |attribution| over pairs: a global gene ranking."""
        return self.expr.abs().mean(0)


def _gap(a: "GeneAttributions"):
    """Per pair: ``|sum of attributions - (f(x) - f(baseline))|`` and ``f(x) - f(baseline)``."""
    total = a.expr.double().sum(1)
    if a.condition is not None:
        total = total + a.condition.double().sum(1)
    assert a.pred_baseline is not None
    diff = (a.pred - a.pred_baseline).double()
    return (total - diff).abs(), diff


def completeness_met(err: Tensor, diff: Tensor, target: float, floor: float = 1e-4) -> Tensor:
    """Whether each pair's completeness gap ``err`` is within ``target`` of its output change ``|diff|`` (or
    below the absolute ``floor``, for pairs whose output barely changes).
    """
    return (err <= target * diff.abs()) | (err <= floor)


def _baseline_distribution(dataset, n: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    X = dataset.expression
    return X[torch.randperm(X.size(0), generator=g)[:n]]


def check_method(model: nn.Module, method: str, condition: bool = False) -> None:
    """Refuse, in one line and before any work, a method the model cannot serve."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    if (condition or method == "layer-ig") and not _is_csg2a(model):
        raise ValueError(
            f"{'condition attribution' if condition else 'layer-ig'} needs a CSG2A model "
            f"(it reads the chemical condition / the CSG2AConv layer); got {type(model).__name__}"
        )
    if method == "layer-ig" and getattr(_pretrained(model), "conv", None) is None:
        raise ValueError(
            "layer-ig attributes through the CSG2AConv layer, and this model was built without "
            "attention (--no-attention): use ig or another input method"
        )
    if method == "ablation" and condition:
        raise ValueError("ablation over the condition vector is not offered (one forward per gene of it)")


def explain_genes(
    model: nn.Module,
    dataset: PairDatasetLike,
    index=None,
    method: str = "ig",
    *,
    condition: bool = False,
    target: Union[str, int, None] = None,
    n_steps: int = 50,
    batch_size: int = 32,
    internal_batch_size: Optional[int] = None,
    n_baselines: int = 20,
    n_samples: int = 20,
    seed: int = 0,
    device: Union[str, torch.device, None] = None,
    progress: bool = True,
    ig_breaks: Union[str, Sequence[float], None] = "auto",
    completeness_target: Optional[float] = None,
    max_steps: int = 1600,
) -> GeneAttributions:
    """Attribute ``model``'s output on the pairs ``index`` of ``dataset`` to the genes.

    Args:
        model: a response model (any ``ResponseModel``) or a CSG²A
            pretraining network.
        dataset: the pair dataset whose expression, drugs, doses and times are explained.
        index: pair indices or a boolean mask (``None``: all pairs).
        method: one of ``METHODS``.
        condition: also attribute to the chemical condition vector ``D`` (CSG²A models only).
        target: profile models only — ``"distance"`` (default) or a gene index of the prediction.
        n_steps: integration steps (IG, layer IG); for IG the total over the path's pieces.
        ig_breaks: the grid of the IG path integral. A list ``[b1, ..., bk]`` integrates the straight path
            piecewise over ``[0, b1], ..., [bk, 1]`` with ``n_steps`` split evenly — CSG²A's mixed state ``S g0``
            vanishes at the zero baseline and the LayerNorm after it makes the output change fastest in the first
            thousandth of the path, which the pieces ``(1e-3, 1e-2, 1e-1)`` resolve (3-7x smaller completeness
            error on the pretrained network's GDSC pairs) — while on other models the plain grid is the more
            complete (2x, measured on a small model trained from scratch). ``None``: one piece (Captum's plain
            IG). ``"auto"`` (default): both grids on each batch, the one with the smaller completeness gap kept
            (``options["ig_grid"]`` counts the batches of each); one piece with ``condition=True``.
        completeness_target: IG only: a relative completeness error per pair (e.g. ``0.05``): pairs whose gap
            ``|sum attr - (f(x) - f(0))|`` exceeds ``target * |f(x) - f(0)|`` (and ``1e-4``) are attributed
            again with twice the steps, up to ``max_steps``; ``steps`` records each pair's steps and
            ``GeneAttributions.completeness()`` the gap reached. ``None``: ``n_steps`` for every pair.
        batch_size: pairs per attribution call; ``internal_batch_size`` bounds Captum's
            expanded batch (pairs x steps) for memory.
        n_baselines, n_samples: baseline lines (DeepLiftShap, GradientShap) and GradientShap samples.
        device: where to run (default: the model's device; CUDA when the model is there).
        progress: a progress bar over batches.
    """
    from csg2a_graph.data.pairs import as_pair_index

    attr = _captum()
    check_method(model, method, condition)
    if int(n_steps) < 2:
        raise ValueError(f"n_steps must be >= 2, got {n_steps}")
    index = as_pair_index(index, dataset.num_pairs)
    if index.numel() == 0:
        raise ValueError("no pairs to explain")
    if completeness_target is not None:
        if method != "ig":
            raise ValueError(f"completeness_target applies to method='ig', not {method!r}")
        if not 0 < float(completeness_target) < 1:
            raise ValueError(f"completeness_target must lie in (0, 1), got {completeness_target!r}")
    if isinstance(ig_breaks, str):
        if ig_breaks != "auto":
            raise ValueError(f"ig_breaks must be 'auto', None or a list of numbers in (0, 1), got {ig_breaks!r}")
        ig_breaks = None if condition else "auto"
    if ig_breaks is not None and ig_breaks != "auto" and not all(0 < float(b) < 1 for b in ig_breaks):
        raise ValueError(f"ig_breaks must lie in (0, 1), got {list(ig_breaks)}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    home, was_training = next(model.parameters()).device, model.training
    try:
        return _explain(
            model,
            dataset,
            index,
            method,
            attr,
            condition,
            target,
            n_steps,
            batch_size,
            internal_batch_size,
            n_baselines,
            n_samples,
            seed,
            device,
            progress,
            ig_breaks,
            completeness_target,
            max_steps,
        )
    finally:  # the caller's model as it was: its device and its mode
        model.to(home)
        model.train(was_training)


def _explain(
    model,
    dataset,
    index,
    method,
    attr,
    condition,
    target,
    n_steps,
    batch_size,
    internal_batch_size,
    n_baselines,
    n_samples,
    seed,
    device,
    progress,
    ig_breaks,
    completeness_target,
    max_steps,
):
    model = model.to(device).eval()
    # CSG2A models: the condition D does not depend on the expression, so it is computed once per batch outside
    # the attribution and passed along (no Captum hook ever sees the frozen condition block, whose tensors need
    # no gradient; the released variant has no condition cache)
    fixed_condition = not condition and _is_csg2a(model) and method != "layer-ig"
    fwd = ScalarOutput(model, condition or fixed_condition, target).to(device).eval()
    profile = getattr(model, "target", "response") == "profile"
    if method == "layer-ig":
        explainer = attr.LayerIntegratedGradients(fwd, _pretrained(model).conv)
    else:
        explainer = {
            "ig": attr.IntegratedGradients,
            "saliency": attr.Saliency,
            "inputxgradient": attr.InputXGradient,
            "deeplift": attr.DeepLift,
            "deepliftshap": attr.DeepLiftShap,
            "gradientshap": attr.GradientShap,
            "ablation": attr.FeatureAblation,
        }[method](fwd)
    dist = _baseline_distribution(dataset, n_baselines, seed).to(device)
    out_e, out_c, preds, base_preds, deltas = [], [], [], [], []
    steps_used: List[Tensor] = []
    grids: Dict[str, int] = {}
    loader = dataset.loader(index, batch_size=batch_size)
    it = loader
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(loader, total=len(loader), desc=f"{method} attributions", unit="batch")
    torch.manual_seed(seed)
    for batch in it:
        b = batch.to(device)
        drug_args = (b.drug_graph, b.drug_index, b.dose, b.time)
        expr = b.expr.float()
        if condition:
            with torch.no_grad():
                cond = _pretrained(model).condition(*drug_args)
            inputs: tuple = (expr, cond)
            extra: tuple = ()
            zeros = (torch.zeros_like(expr), torch.zeros_like(cond))
        elif fixed_condition:
            with torch.no_grad():
                cond = _pretrained(model).condition(*drug_args)
            inputs, extra, zeros = (expr,), (cond,), (torch.zeros_like(expr),)  # type: ignore[assignment]
        else:
            inputs, extra, zeros = (expr,), drug_args, (torch.zeros_like(expr),)  # type: ignore[assignment]
        kw: Dict = {"additional_forward_args": extra or None}
        if method in ("ig", "layer-ig"):
            kw.update(
                baselines=zeros if method == "ig" else zeros[0],
                n_steps=n_steps,
                internal_batch_size=internal_batch_size,
                return_convergence_delta=True,
            )
        elif method == "deeplift":
            kw.update(baselines=zeros, return_convergence_delta=True)
        elif method == "deepliftshap":
            base = (dist,) if not condition else (dist, torch.zeros(dist.size(0), cond.size(1), device=device))
            kw.update(baselines=base, return_convergence_delta=True)
        elif method == "gradientshap":
            base = (dist,) if not condition else (dist, torch.zeros(dist.size(0), cond.size(1), device=device))
            kw.update(baselines=base, n_samples=n_samples, stdevs=0.0, return_convergence_delta=True)
        elif method == "ablation":
            kw.update(baselines=0.0, perturbations_per_eval=4)
        elif method == "saliency":
            kw.update(abs=False)
        if method == "ig":
            res, steps_b = _ig_batch(
                explainer, fwd, inputs, extra, zeros, kw, ig_breaks, n_steps, completeness_target, max_steps, grids
            )
            steps_used.append(steps_b)
        else:
            res = explainer.attribute(inputs if method != "layer-ig" else inputs[0], **kw)
        delta = None
        if method in _WITH_DELTA:
            res, delta = res
        res = res if isinstance(res, (tuple, list)) else (res,)
        if method == "layer-ig":  # attributions of the conv's output [B, N, 1] over the pretrained genes
            res = (res[0].reshape(expr.size(0), -1),)
        out_e.append(res[0].detach().float().cpu())
        if condition:
            out_c.append(res[1].detach().float().cpu())
        with torch.no_grad():
            preds.append(fwd(*inputs, *extra).float().cpu())
            if method in ("ig", "deeplift"):  # layer IG's reference is not f(0): see completeness()
                base_preds.append(fwd(*zeros, *extra).float().cpu())
        if delta is not None:
            d = delta.detach().float().cpu().reshape(-1)
            if d.numel() != expr.size(0):  # shap methods: one delta per (pair, baseline sample)
                d = d.view(expr.size(0), -1).abs().max(1).values
            deltas.append(d)
    pre: Any = _pretrained(model) if _is_csg2a(model) else None
    genes = list(pre.genes) if method == "layer-ig" else list(dataset.gene_space.genes)
    return GeneAttributions(
        method=method,
        index=index,
        genes=genes,
        expr=torch.cat(out_e),
        pred=torch.cat(preds),
        condition=torch.cat(out_c) if condition else None,
        condition_genes=list(pre.genes) if condition else None,
        pred_baseline=torch.cat(base_preds) if base_preds else None,
        delta=torch.cat(deltas) if deltas else None,
        steps=torch.cat(steps_used) if steps_used else None,
        options={
            "n_steps": n_steps,
            "ig_breaks": (ig_breaks if ig_breaks in (None, "auto") else list(ig_breaks)) if method == "ig" else None,
            "ig_grid": dict(grids) if method == "ig" else None,
            "completeness_target": completeness_target,
            "baseline": "zero (population median after robust z)"
            if method not in ("deepliftshap", "gradientshap")
            else f"{n_baselines} random lines (seed {seed})",
            "target": "distance" if profile and target is None else target,
            "condition": condition,
        },
    )


AUTO_BREAKS = (1e-3, 1e-2, 1e-1)


def _ig_once(explainer, inputs, zeros, kw, breaks, steps):
    kw = {**kw, "n_steps": steps, "baselines": zeros}
    if breaks:
        return _segmented_ig(explainer, inputs, zeros, kw, breaks)
    return explainer.attribute(inputs, **kw)


def _ig_batch(explainer, fwd, inputs, extra, zeros, kw, ig_breaks, n_steps, target, max_steps, grids):
    """IG for one batch: the grid chosen (``"auto"``: the more complete of plain and piecewise), then pairs above
    the completeness target attributed again with doubled steps. Returns ``((attr, ...), delta)`` and the steps
    each pair used.
    """
    with torch.no_grad():
        diff = (fwd(*inputs, *extra) - fwd(*zeros, *extra)).double().reshape(-1)

    def gap(res):
        a = res[0] if isinstance(res[0], (tuple, list)) else (res[0],)
        total = sum(t.detach().double().reshape(t.size(0), -1).sum(1) for t in a)
        return (total - diff).abs()

    candidates = (
        [("plain", None), ("pieces", AUTO_BREAKS)]
        if ig_breaks == "auto"
        else [("pieces" if ig_breaks else "plain", ig_breaks)]
    )
    best = None
    for name, breaks in candidates:
        res = _ig_once(explainer, inputs, zeros, kw, breaks, n_steps)
        err = float(gap(res).mean())
        if best is None or err < best[0]:
            best = (err, name, breaks, res)
    assert best is not None
    _, name, breaks, res = best
    grids[name] = grids.get(name, 0) + 1
    steps = torch.full((diff.numel(),), int(n_steps), dtype=torch.long)
    if target is None:
        return res, steps
    attrs = list(res[0]) if isinstance(res[0], (tuple, list)) else [res[0]]
    delta = res[1].detach().clone()
    todo = ~completeness_met(gap(res), diff, target)
    s = int(n_steps)
    while bool(todo.any()) and s * 2 <= max_steps:
        s *= 2
        sel = todo.nonzero().view(-1)
        if all(isinstance(t, Tensor) for t in extra):  # only the pairs still short of the target
            rows = torch.arange(sel.numel())
            sub_kw = {**kw, "additional_forward_args": tuple(t[sel] for t in extra) if extra else None}
            a2, d2 = _ig_once(explainer, tuple(t[sel] for t in inputs), tuple(t[sel] for t in zeros), sub_kw, breaks, s)
        else:  # drug graphs ride along (a model that is not CSG2A): the whole batch again, its rows taken
            rows = sel
            a2, d2 = _ig_once(explainer, inputs, zeros, kw, breaks, s)
        a2 = list(a2) if isinstance(a2, (tuple, list)) else [a2]
        for k in range(len(attrs)):
            attrs[k] = attrs[k].detach().clone()
            attrs[k][sel] = a2[k].detach()[rows]
        delta[sel] = d2.detach().reshape(-1)[rows]
        steps[sel] = s
        err = (sum(t.double().reshape(t.size(0), -1).sum(1) for t in attrs) - diff).abs()
        todo = ~completeness_met(err, diff, target)
    return (tuple(attrs) if len(attrs) > 1 else attrs[0], delta), steps


def _segmented_ig(explainer, inputs, baselines, kw, breaks):
    """IG on the straight path from ``baselines`` to ``inputs``, integrated piecewise over
    ``[0, b1], [b1, b2], ..., [bk, 1]`` (each piece is IG between two points of the path; the pieces'
    attributions and convergence deltas add up to the whole path's).
    """
    pts = [0.0] + sorted(float(b) for b in breaks) + [1.0]
    steps = max(2, int(kw["n_steps"]) // (len(pts) - 1))
    total, delta = None, None
    for a0, a1 in zip(pts[:-1], pts[1:]):
        start = tuple(b + a0 * (x - b) for x, b in zip(inputs, baselines))
        end = tuple(b + a1 * (x - b) for x, b in zip(inputs, baselines))
        a, d = explainer.attribute(end, **{**kw, "baselines": start, "n_steps": steps})
        a = a if isinstance(a, tuple) else (a,)
        total = a if total is None else tuple(t + u for t, u in zip(total, a))
        delta = d if delta is None else delta + d
    return total, delta


def deletion_curve(
    model: nn.Module,
    dataset,
    attributions: GeneAttributions,
    ks: Sequence[int] = (1, 2, 5, 10, 20, 50, 100),
    n_random: int = 10,
    batch_size: int = 128,
    seed: int = 0,
    target: Union[str, int, None] = None,
):
    """Faithfulness: set the ``k`` genes of largest ``|attribution|`` to the baseline (0) and measure
    the mean ``|Δ prediction|``; the same for ``n_random`` draws of ``k`` random measured genes.

    A faithful attribution changes the prediction more than random deletion. Returns a DataFrame
    ``k, top, random_mean, random_sd`` (mean |Δ| over pairs).
    """
    import pandas as pd

    if attributions.method == "layer-ig":
        raise ValueError("deletion needs attributions over the input genes, not over the CSG2AConv output")
    device = next(model.parameters()).device
    model = model.eval()
    fwd = ScalarOutput(model, False, target)
    A = attributions.expr.abs()
    n = A.size(1)
    measured = getattr(dataset, "gene_mask", torch.ones(n, dtype=torch.bool)).bool()
    candidates = measured.nonzero().flatten()
    ks = [int(k) for k in ks if 0 < int(k) <= candidates.numel()]
    g = torch.Generator().manual_seed(seed)
    order = A.masked_fill(~measured, -1).argsort(1, descending=True)
    top_sum = {k: 0.0 for k in ks}
    rnd_sum = {k: torch.zeros(n_random, dtype=torch.float64) for k in ks}
    count = 0
    pos = 0
    with torch.no_grad():
        for batch in dataset.loader(attributions.index, batch_size=batch_size):
            b = batch.to(device)
            args = (b.drug_graph, b.drug_index, b.dose, b.time)
            x = b.expr.float()
            B = x.size(0)
            f0 = fwd(x, *args)
            rows = order[pos : pos + B].to(device)
            for k in ks:
                xt = x.clone()
                xt.scatter_(1, rows[:, :k], 0.0)
                top_sum[k] += float((fwd(xt, *args) - f0).abs().sum())
                for r in range(n_random):
                    pick = candidates[torch.rand(B, candidates.numel(), generator=g).argsort(1)[:, :k]].to(device)
                    xr = x.clone()
                    xr.scatter_(1, pick, 0.0)
                    rnd_sum[k][r] += float((fwd(xr, *args) - f0).abs().sum())
            pos += B
            count += B
    rows_out = []
    for k in ks:
        rnd = rnd_sum[k] / count
        rows_out.append(
            {
                "k": k,
                "top": top_sum[k] / count,
                "random_mean": float(rnd.mean()),
                "random_sd": float(rnd.std()) if n_random > 1 else 0.0,
            }
        )
    return pd.DataFrame(rows_out)


__all__ = ["METHODS", "GeneAttributions", "ScalarOutput", "explain_genes", "deletion_curve"]
