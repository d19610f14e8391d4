"""One trainer for pretraining (profiles) and fine-tuning (responses).

Adam + cosine annealing, early stopping on validation MSE with the best weights restored,
progress bars, a log file, a metrics CSV per epoch (TensorBoard when installed), checkpoints
every epoch that resume to the same result, bf16 autocast and ``torch.compile`` on CUDA, and
distributed data parallel when launched with ``torchrun``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Dict, List, Optional, Sequence, cast

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from csg2a_graph._names import TRAIN_DEFAULTS
from csg2a_graph.checkpoint import data_card, dataset_fingerprint, load_checkpoint, save_checkpoint
from csg2a_graph.errors import Csg2aError
from csg2a_graph.train.metrics import profile_metrics, regression_metrics
from csg2a_graph.train.tables import append_row, write_rows
from csg2a_graph.typing import PairDatasetLike

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Training settings; the defaults are the released code's.

    Attributes:
        epochs: maximum epochs.
        batch_size: pairs per step (the global batch under DDP).
        lr, weight_decay: Adam.
        min_lr: the schedule anneals ``lr`` to ``min_lr`` along a half cosine over ``patience`` epochs,
            then holds ``min_lr`` (no warm restart: ``cosine_then_hold()``).
        schedule: ``"cosine"`` (the above; released fine-tuning) or ``"constant"`` (``lr`` throughout;
            released pretraining).
        patience: early stopping on validation MSE (epochs without improvement).
        seed: seeds shuffling, dropout and initialisation (per epoch, so a resumed run matches).
        device: ``"auto"`` (CUDA when there is one), ``"cpu"``, ``"cuda"``...
        amp: bf16 autocast (CUDA only; ignored with a warning on CPU).
        compile: ``torch.compile`` the model (CUDA only).
        max_batches: cap on training batches per epoch (quick runs; ``None`` = all).
        max_minutes: wall-clock budget of one ``fit``; when it runs out the current epoch stops, is
            validated and checkpointed, and training ends (best weights kept). ``None`` = no budget.
            Single-process runs only (ranks of a DDP run could disagree on the clock).
        eval_batch_size: batch size for validation and prediction.
        progress: progress bars.
        divergence_factor: training stops with ``TrainingDiverged`` when an epoch ends with a
            validation MSE (train MSE without a validation split) above this multiple of the
            variance of the training targets (a model that bad has diverged: predicting the mean
            scores 1x); a non-finite loss or gradient stops it at once. ``None`` keeps only the
            non-finite checks.
        fast: per-epoch bookkeeping for GPUs (issue 28.3): fused Adam; a step whose loss or gradient is not
            finite is skipped on the device (the weights stay finite) and the run stops with
            ``TrainingDiverged`` when that epoch ends, not at once; the training loss is summed on the
            device: no host sync per step. The same results as the default path within float tolerance
            (tested on the CPU).

    Invalid values (``epochs=0``, ``patience=0``, ``max_minutes<=0``, a negative ``lr``...) are
    refused when the config is made: a run that would train nothing never starts.
    """

    epochs: int = TRAIN_DEFAULTS["epochs"]
    batch_size: int = TRAIN_DEFAULTS["batch_size"]
    lr: float = float(TRAIN_DEFAULTS["lr"])
    weight_decay: float = float(TRAIN_DEFAULTS["weight_decay"])
    min_lr: float = float(TRAIN_DEFAULTS["min_lr"])
    schedule: str = "cosine"
    patience: int = TRAIN_DEFAULTS["patience"]
    seed: int = TRAIN_DEFAULTS["seed"]
    device: str = "auto"
    amp: bool = False
    compile: bool = False
    max_batches: Optional[int] = None
    max_minutes: Optional[float] = None
    eval_batch_size: int = 1024
    progress: bool = True
    divergence_factor: Optional[float] = 100.0
    fast: bool = False

    def __post_init__(self):
        from csg2a_graph.data.splits import check_int

        for name in ("epochs", "batch_size", "patience", "eval_batch_size"):
            setattr(self, name, check_int(name, getattr(self, name), 1))
        self.seed = check_int("seed", self.seed)
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.max_batches is not None:
            self.max_batches = check_int("max_batches", self.max_batches, 1)
        for name, positive in (
            ("lr", True),
            ("weight_decay", False),
            ("min_lr", False),
            ("max_minutes", True),
            ("divergence_factor", True),
        ):
            v = getattr(self, name)
            if v is None and name in ("max_minutes", "divergence_factor"):
                continue
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not math.isfinite(v)
                or v < 0
                or (positive and v == 0)
            ):
                raise ValueError(
                    f"{name} must be a {'positive' if positive else 'non-negative'} finite number, got {v!r}"
                )

    @classmethod
    def from_dict(cls, d: Dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)


def cosine_then_hold(lr: float, min_lr: float, period: int):
    """Multiplier of ``lr`` at epoch ``e`` (for ``LambdaLR``): a half cosine from ``lr`` down to ``min_lr``
    over ``period`` epochs, then ``min_lr`` held. (``CosineAnnealingLR`` would climb back to ``lr`` after
    ``period`` epochs and restart every ``2 * period``.)
    """
    floor = min(min_lr, lr) / lr

    def factor(epoch: int) -> float:
        t = min(epoch, period) / period
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


class TrainingDiverged(Csg2aError, RuntimeError):
    """The loss or a gradient became non-finite, or the error exploded: training stopped before the
    bad step was applied or checkpointed (``checkpoint.pt`` holds the last good epoch).
    """


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when there is one, else CPU; a device that is not there is refused in one line."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device {device!r} is not a device name (auto, cpu, cuda, cuda:1...)") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r}: this machine has no CUDA device (torch {torch.__version__}, "
                f"CUDA build: {torch.version.cuda or 'no'}); use --device cpu or auto"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r}: MPS is not available here; use --device cpu or auto")
    return dev


def _dist():
    """``(rank, world_size)``; ``(0, 1)`` outside ``torch.distributed``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


#: the settings a resumed run must share with its checkpoint (they define what is trained); epochs, max_minutes,
#: the device and the bookkeeping may change between a run and its continuation
RESUME_KEYS = ("batch_size", "lr", "weight_decay", "min_lr", "schedule", "patience", "seed", "max_batches")


def resume_conflicts(saved: Optional[Dict], config: "TrainConfig") -> List[str]:
    """``"lr: 0.001 -> 0.0001"`` for each of ``RESUME_KEYS`` in which a checkpoint's saved config differs from
    ``config`` (empty: it may be continued). A checkpoint without a config (older files) has no conflicts.
    """
    if not saved:
        return []
    now = asdict(config)
    return [f"{k}: {saved[k]!r} -> {now[k]!r}" for k in RESUME_KEYS if k in saved and saved[k] != now[k]]


class Trainer:
    """Fit, evaluate and predict a ``ResponseModel`` on a pair dataset.

    Args:
        model: the model; ``model.target`` (``"profile"`` or ``"response"``) picks the metrics.
        config: a ``TrainConfig``.
        out_dir: where ``checkpoint.pt`` (every epoch), ``model.pt`` (best weights),
            ``metrics.csv`` and ``train.log`` go; ``None`` keeps everything in memory.
        callbacks: ``fn(trainer, epoch, row)`` called after each epoch's checkpoint is written.

    Example:
        >>> trainer = Trainer(model, TrainConfig(epochs=50), out_dir="runs/ft")
        >>> trainer.fit(dataset, dataset.get_idx_split("drug_blind", fold=0))
        >>> trainer.evaluate(dataset, split["test"])
    """

    def __init__(
        self,
        model: nn.Module,
        config: Optional[TrainConfig] = None,
        out_dir: Optional[str] = None,
        callbacks: Sequence[Callable] = (),
    ):
        self.model, self.config, self.out_dir = model, config or TrainConfig(), out_dir
        self.callbacks = list(callbacks)
        self.device = resolve_device(self.config.device)
        self.rank, self.world = _dist()
        self.history: List[Dict] = []
        self.warnings: List[str] = []  # what the last fit wants said (e.g. no better than the mean)
        self.optimizer: Optional[torch.optim.Optimizer] = None  # the last fit's
        if self.device.type != "cuda" and (self.config.amp or self.config.compile):
            logger.warning("amp/compile are CUDA options; ignored on %s", self.device)

    # ----------------------------------------------------------------- helpers
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _autocast(self):
        if self.config.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def _forward(self, module: nn.Module, batch) -> Tensor:
        with self._autocast():
            return module(*batch.inputs()).float()

    def _file_logger(self) -> Optional[logging.Handler]:
        """A ``train.log`` handler on the package logger, which is opened to INFO for the run
        (its previous level is restored in ``fit()``).
        """
        if not (self.out_dir and self.is_main):
            return None
        os.makedirs(self.out_dir, exist_ok=True)
        h = logging.FileHandler(os.path.join(self.out_dir, "train.log"))
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        pkg = logging.getLogger("csg2a_graph")
        h._previous_level = pkg.level  # type: ignore[attr-defined]
        pkg.addHandler(h)
        if pkg.getEffectiveLevel() > logging.INFO:
            pkg.setLevel(logging.INFO)
        return h

    # ----------------------------------------------------------------- API
    @torch.no_grad()
    def predict(self, dataset, index: Optional[Tensor] = None, batch_size: Optional[int] = None) -> Tensor:
        """Predictions for the pairs ``index`` (all pairs when ``None``), in that order."""
        self.model.to(self.device).eval()
        outs = []
        for batch in dataset.loader(index, batch_size=batch_size or self.config.eval_batch_size):
            outs.append(self._forward(self.model, batch.to(self.device)).cpu())
        if not outs:
            return torch.zeros(0)
        return torch.cat(outs)

    def evaluate(self, dataset, index: Optional[Tensor] = None) -> Dict[str, float]:
        """Metrics on ``index``: RMSE, Pearson, Spearman, R² (responses) or MSE / per-profile Pearson."""
        pred = self.predict(dataset, index)
        idx = torch.arange(dataset.num_pairs) if index is None else torch.as_tensor(index).long()
        y = dataset.pairs["y"][idx]
        if getattr(self.model, "target", "response") == "profile" or y.dim() == 2:
            return profile_metrics(y, pred)
        return regression_metrics(y, pred, drug=dataset.pairs["drug"][idx].numpy())

    def fit(self, dataset: PairDatasetLike, split: Dict[str, Tensor], resume: bool = False) -> List[Dict]:
        """Train on ``split["train"]`` with early stopping on ``split["val"]``; the best weights are
        restored at the end. ``resume=True`` continues from ``out_dir/checkpoint.pt``.
        """
        cfg = self.config
        run = self._prepare(dataset, split)
        self.optimizer = run.opt
        if resume:
            self._resume(run)
        handler = self._file_logger()
        if run.csv_path:  # the file holds this run's epochs only: never rows of another run or another header
            write_rows(run.csv_path, self.history)
        tb = self._tensorboard()
        show = cfg.progress and self.is_main
        try:
            epochs = tqdm(
                range(run.start, cfg.epochs), desc="epochs", disable=not show, initial=run.start, total=cfg.epochs
            )
            for epoch in epochs:
                if run.bad >= cfg.patience:
                    break
                t0 = time.perf_counter()
                train_loss = self._train_epoch(run, epoch, show)
                row = self._validate(run, epoch, train_loss, t0)
                self._record(run, epoch, row, tb)
                epochs.set_postfix(train=f"{train_loss:.4f}", val=f"{row['val_mse']:.4f}", best=run.best_epoch)
                for cb in self.callbacks:
                    cb(self, epoch, row)
                if run.out_of_time or (run.deadline is not None and time.perf_counter() > run.deadline):
                    logger.info("time budget of %s min reached after epoch %d", cfg.max_minutes, epoch)
                    break
        finally:
            if handler is not None:
                pkg = logging.getLogger("csg2a_graph")
                pkg.removeHandler(handler)
                pkg.setLevel(handler._previous_level)  # type: ignore[attr-defined]  # the caller's set-up back
                handler.close()
            if tb is not None:
                tb.close()
        return self._finish(run)

    # ----------------------------------------------------------------- the pieces of fit
    def _prepare(self, dataset, split: Dict[str, Tensor]) -> "_Run":
        """Check the split and the config, set the model up, make the optimiser and the schedule."""
        cfg = self.config
        train_idx = torch.as_tensor(split["train"]).long()
        val_idx = torch.as_tensor(split["val"]).long() if split.get("val") is not None else None
        if train_idx.numel() < 2:
            raise ValueError(
                f"the training split has {train_idx.numel()} pair(s); training needs at least 2 "
                "(BatchNorm layers cannot normalise one sample)"
            )
        if val_idx is not None and val_idx.numel() == 0:
            val_idx = None
        if cfg.max_minutes is not None and self.world > 1:
            raise ValueError("max_minutes works in single-process runs only (DDP ranks could disagree)")
        y_train = dataset.pairs["y"][train_idx].double()
        y_var = float(y_train.var()) if y_train.numel() > 1 else 0.0
        if not math.isfinite(y_var):
            raise ValueError("the training targets contain NaN or infinite values")
        model: Any = self.model.to(self.device)
        torch.manual_seed(cfg.seed)
        if hasattr(model, "clear_cache"):
            model.clear_cache()
        if hasattr(model, "set_target_scaler"):  # a resumed run loads the scaler with the weights
            model.set_target_scaler(dataset.pairs["y"][train_idx].to(self.device))
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters")
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True if cfg.fast else None)
        factor = (
            cosine_then_hold(cfg.lr, cfg.min_lr, max(1, cfg.patience))
            if cfg.schedule == "cosine"
            else (lambda epoch: 1.0)
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        module = model
        if self.world > 1:
            module = nn.parallel.DistributedDataParallel(
                model, device_ids=None if self.device.type == "cpu" else [self.device.index]
            )
        return _Run(
            dataset=dataset,
            split=split,
            train_idx=train_idx,
            val_idx=val_idx,
            y_train=y_train,
            y_var=y_var,
            model=model,
            module=module,
            fwd_module=torch.compile(module) if (cfg.compile and self.device.type == "cuda") else module,
            params=params,
            opt=opt,
            sched=sched,
            fingerprint=dataset_fingerprint(dataset),
            data_info=data_card(dataset),  # kept in every checkpoint: the target and the expression scale
            ckpt_path=os.path.join(self.out_dir, "checkpoint.pt") if self.out_dir else None,
            csv_path=os.path.join(self.out_dir, "metrics.csv") if (self.out_dir and self.is_main) else None,
            deadline=None if cfg.max_minutes is None else time.perf_counter() + 60.0 * float(cfg.max_minutes),
        )

    def _resume(self, run: "_Run") -> None:
        """Load ``checkpoint.pt`` (same data and split, refused otherwise) into the model, optimiser,
        schedule, early-stopping state and history.
        """
        path = run.ckpt_path
        if not path or not os.path.exists(path):
            raise FileNotFoundError(f"--resume: no checkpoint at {path}")
        st = load_checkpoint(path, self.device)
        fp = run.fingerprint
        if (
            st.get("dataset", {}).get("options") != fp.get("options")
            or st.get("dataset", {}).get("num_pairs") != fp["num_pairs"]
        ):
            raise ValueError(f"{path} was trained on other data ({st.get('dataset')}), not {fp}")
        if not torch.equal(st["split"]["train"], run.train_idx):
            raise ValueError(f"{path} was trained on another split")
        changed = resume_conflicts(st.get("config"), self.config)
        if changed:
            raise ValueError(
                f"{path} was trained with other settings ({', '.join(changed)}); continuing it would mix two "
                "runs: use another out_dir, or the checkpoint's settings"
            )
        run.model.load_state_dict(st["model"])
        run.opt.load_state_dict(st["optimizer"])
        run.sched.load_state_dict(st["scheduler"])
        run.start, run.best_val, run.best_epoch, run.bad = (
            st["epoch"] + 1,
            st["best_val"],
            st["best_epoch"],
            st["bad_epochs"],
        )
        run.best_state, self.history = st["best_model"], list(st["history"])[: run.start]
        logger.info(
            "resumed from %s at epoch %d (best val %.4f at epoch %d)", path, run.start, run.best_val, run.best_epoch
        )

    def _train_epoch(self, run: "_Run", epoch: int, show: bool) -> float:
        """One pass over the (shuffled) training pairs; returns the mean training MSE on the response scale."""
        cfg, model = self.config, cast(Any, run.model)
        torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout: a function of (seed, epoch) only
        run.module.train()
        loader = run.dataset.loader(
            run.train_idx, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed + epoch, merge_singleton=True
        )  # a last batch of one pair breaks BatchNorm
        n_batches = len(loader) if cfg.max_batches is None else min(len(loader), cfg.max_batches)
        if cfg.fast:
            return self._train_epoch_fast(run, epoch, show, loader, n_batches)
        total, count = 0.0, 0
        bar = tqdm(loader, total=n_batches, desc=f"epoch {epoch}", leave=False, disable=not show)
        for b, batch in enumerate(bar):
            if b >= n_batches:
                break
            if run.deadline is not None and b > 0 and time.perf_counter() > run.deadline:
                run.out_of_time = True
                break
            share = 1.0
            if self.world > 1:
                n_global = len(batch)
                batch = _rank_slice(batch, self.rank, self.world)
                if batch is None:
                    continue
                # DDP averages gradients over ranks: weigh each rank's mean by its share of the
                # global batch so the result is the global batch's mean, also for uneven slices
                share = len(batch) * self.world / n_global
            batch = batch.to(self.device)
            try:
                pred = self._forward(run.fwd_module, batch)
            except ValueError as e:  # a layer's NaN/inf check: the weights have blown up
                if "NaN" not in str(e) and "inf" not in str(e):
                    raise
                self._diverged(epoch, b, f"the forward pass met non-finite values ({e})", run.ckpt_path, run.opt)
            loss = nn.functional.mse_loss(pred, batch.y)
            if getattr(model, "y_std", None) is not None:
                loss = loss / model.y_std**2  # the loss on the standardised scale
            if not torch.isfinite(loss.detach()):
                self._diverged(epoch, b, f"the training loss is {float(loss.detach())}", run.ckpt_path, run.opt)
            run.opt.zero_grad(set_to_none=True)
            (loss * share).backward()
            if not _grads_finite(run.params):  # checked before the step: the weights stay finite
                self._diverged(epoch, b, "a gradient is NaN or infinite", run.ckpt_path, run.opt)
            run.opt.step()
            ys = float(getattr(model, "y_std", 1.0)) ** 2  # report MSE on the response scale
            total += float(loss.detach()) * ys * len(batch)
            count += len(batch)
            if b % 20 == 0:
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        run.sched.step()
        if self.world > 1:  # every rank saw its share: the epoch's train MSE is over all ranks' pairs
            import torch.distributed as dist

            t = torch.tensor([total, float(count)], dtype=torch.float64, device=self.device)
            dist.all_reduce(t)
            total, count = float(t[0]), int(t[1])
        return total / max(count, 1)

    def _train_epoch_fast(self, run: "_Run", epoch: int, show: bool, loader, n_batches: int) -> float:
        """``_train_epoch()`` without a host sync per step (``TrainConfig.fast``): the finiteness checks gate the
        fused optimiser's step on the device, the loss is summed on the device, both read once at the end.
        """
        model = cast(Any, run.model)
        y_std = getattr(model, "y_std", None)
        ys = float(y_std) ** 2 if y_std is not None else 1.0  # fixed for the fit: the scaler is set before
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        skipped = torch.zeros((), dtype=torch.float32, device=self.device)
        count = 0
        bar = tqdm(loader, total=n_batches, desc=f"epoch {epoch}", leave=False, disable=not show)
        for b, batch in enumerate(bar):
            if b >= n_batches:
                break
            if run.deadline is not None and b > 0 and time.perf_counter() > run.deadline:
                run.out_of_time = True
                break
            if self.world > 1:
                raise ValueError("fast=True runs in single-process training only")
            batch = batch.to(self.device, non_blocking=True)
            pred = self._forward(run.fwd_module, batch)
            loss = nn.functional.mse_loss(pred, batch.y)
            if y_std is not None:
                loss = loss / y_std**2
            run.opt.zero_grad(set_to_none=True)
            loss.backward()
            grads = [p.grad for p in run.params if p.grad is not None]
            norms = torch.stack(torch._foreach_norm(grads)) if grads else loss.detach().reshape(1)
            bad = (~torch.isfinite(loss.detach()) | ~torch.isfinite(norms).all()).float()
            cast(Any, run.opt).found_inf = bad  # fused Adam skips the step where found_inf is 1, on the device
            run.opt.step()
            skipped += bad
            total += torch.where(bad > 0, 0.0, loss.detach().double()) * len(batch)
            count += len(batch)
        cast(Any, run.opt).found_inf = None
        run.sched.step()
        n_bad = int(skipped.item())
        if n_bad:
            self._diverged(
                epoch,
                None,
                f"{n_bad} step(s) met a non-finite loss or gradient (skipped: the weights stayed finite)",
                run.ckpt_path,
                run.opt,
            )
        return float(total.item()) * ys / max(count, 1)

    def _validate(self, run: "_Run", epoch: int, train_loss: float, t0: float) -> Dict:
        """The epoch's metrics row (validation metrics when there is a validation split); stops a run
        whose error has exploded (``TrainingDiverged``).
        """
        cfg = self.config
        row = {"epoch": epoch, "train_mse": train_loss, "lr": run.opt.param_groups[0]["lr"]}
        if run.val_idx is not None:
            vm = self.evaluate(run.dataset, run.val_idx)
            row.update({f"val_{k}": v for k, v in vm.items()})
            val = vm["mse"] if "mse" in vm else vm["rmse"] ** 2
        else:
            val = train_loss
        row["val_mse"] = val
        row["seconds"] = time.perf_counter() - t0
        # the model at the end of the epoch (validation; the train average also holds the first steps)
        if not (math.isfinite(train_loss) and math.isfinite(val)) or (
            cfg.divergence_factor is not None and run.y_var > 0 and val > cfg.divergence_factor * run.y_var
        ):
            self._diverged(
                epoch,
                None,
                f"validation MSE {val:.4g} (train {train_loss:.4g}) against a "
                f"target variance of {run.y_var:.4g} (predicting the mean scores about that)",
                run.ckpt_path,
                run.opt,
            )
        return row

    def _record(self, run: "_Run", epoch: int, row: Dict, tb) -> None:
        """Early-stopping state, history, log, metrics.csv, TensorBoard and the epoch's checkpoint."""
        val = row["val_mse"]
        if val < run.best_val - 1e-12:
            run.best_val, run.best_epoch, run.bad = val, epoch, 0
            run.best_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
        else:
            run.bad += 1
        self.history.append(row)
        logger.info(
            "epoch %d: train mse %.4f, val mse %.4f%s (%.1fs)",
            epoch,
            row["train_mse"],
            val,
            " *" if run.best_epoch == epoch else "",
            row["seconds"],
        )
        if run.csv_path:
            append_row(run.csv_path, row)
        if tb is not None:
            for k, v in row.items():
                if k != "epoch":
                    tb.add_scalar(k, v, epoch)
        if run.ckpt_path and self.is_main:
            save_checkpoint(
                run.ckpt_path,
                run.model,
                best_model=run.best_state,
                optimizer=run.opt.state_dict(),
                scheduler=run.sched.state_dict(),
                epoch=epoch,
                best_epoch=run.best_epoch,
                best_val=run.best_val,
                bad_epochs=run.bad,
                history=self.history,
                config=asdict(self.config),
                dataset=run.fingerprint,
                split=_split_tensors(run.split),
                **run.data_info,
            )

    def _finish(self, run: "_Run") -> List[Dict]:
        """Restore the best weights, say when they are no better than the training mean, write ``model.pt``."""
        model = run.model
        if run.best_state is not None:
            model.load_state_dict(run.best_state)
        self.best_epoch, self.best_val = run.best_epoch, run.best_val
        self.warnings = []
        if run.val_idx is not None and self.history:
            y_val = run.dataset.pairs["y"][run.val_idx].double()
            mean_mse = float(((y_val - run.y_train.mean(0)) ** 2).mean())
            if run.best_val >= mean_mse:  # the best epoch is no better than predicting the training mean
                msg = (
                    f"the best model (epoch {run.best_epoch}, validation MSE {run.best_val:.4g}) is no better "
                    f"than predicting the training mean (validation MSE {mean_mse:.4g}): nothing useful was "
                    "learned; check the learning rate and the number of epochs"
                )
                logger.warning(msg)
                self.warnings.append(msg)
        if self.out_dir and self.is_main:
            save_checkpoint(
                os.path.join(self.out_dir, "model.pt"),
                model,
                best_epoch=run.best_epoch,
                best_val=run.best_val,
                config=asdict(self.config),
                dataset=run.fingerprint,
                split=_split_tensors(run.split),
                history=self.history,
                **run.data_info,
            )
        return self.history

    def _diverged(self, epoch: int, batch: Optional[int], what: str, ckpt_path: Optional[str], opt) -> None:
        """Stop: nothing of the bad epoch is checkpointed; say where the last good state is."""
        where = f"epoch {epoch}" + ("" if batch is None else f", batch {batch}")
        lr = opt.param_groups[0]["lr"]
        if ckpt_path and os.path.exists(ckpt_path):
            kept = f"the last good epoch ({epoch - 1}) is kept in {ckpt_path}"
        else:
            kept = "no epoch had finished, nothing was saved"
        logger.info("training diverged at %s: %s", where, what)  # train.log; the exception says it on screen
        raise TrainingDiverged(
            f"training diverged at {where} (lr {lr:g}): {what}; {kept}. "
            "Lower the learning rate and start again (--overwrite)"
        )

    def _tensorboard(self):
        if not (self.out_dir and self.is_main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # noqa: BLE001 - tensorboard not installed
            return None
        return SummaryWriter(os.path.join(self.out_dir, "tb"))


@dataclass
class _Run:
    """What one ``Trainer.fit()`` works on: data, model, optimiser, schedule and early-stopping state."""

    dataset: Any
    split: Dict
    train_idx: Tensor
    val_idx: Optional[Tensor]
    y_train: Tensor
    y_var: float
    model: nn.Module
    module: nn.Module
    fwd_module: Any
    params: List[nn.Parameter]
    opt: torch.optim.Optimizer
    sched: Any
    fingerprint: Dict
    data_info: Dict
    ckpt_path: Optional[str]
    csv_path: Optional[str]
    deadline: Optional[float]
    start: int = 0
    best_val: float = math.inf
    best_epoch: int = -1
    bad: int = 0
    best_state: Optional[Dict] = None
    out_of_time: bool = False


def _split_tensors(split: Dict) -> Dict[str, Tensor]:
    return {k: torch.as_tensor(v).long() for k, v in split.items() if v is not None and k in ("train", "val", "test")}


def _grads_finite(params) -> bool:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    return bool(torch.stack([torch.isfinite(g.detach()).all() for g in grads]).all())


def _rank_slice(batch, rank: int, world: int):
    """This rank's share ``[rank::world]`` of a global batch (every rank sees the same global batches).

    The drug graphs of the whole global batch stay (each rank encodes the same distinct drugs, so
    encoder BatchNorm statistics match a single process).
    """
    n = len(batch)
    if n < world:
        return None
    sel = torch.arange(rank, n, world)
    from csg2a_graph.data.pairs import PairBatch

    return PairBatch(
        expr=batch.expr[sel],
        drug_graph=batch.drug_graph,
        drug_index=batch.drug_index[sel],
        y=batch.y[sel],
        dose=batch.dose[sel],
        time=batch.time[sel],
        cell=batch.cell[sel],
        drug=batch.drug[sel],
        index=batch.index[sel],
    )


__all__ = ["Trainer", "TrainConfig", "TrainingDiverged", "resolve_device", "cosine_then_hold"]
