"""``csg2a predict``: a fine-tuned checkpoint on a table of (cell, drug) pairs; every input row comes back. The work is
library code (``csg2a_graph.predict.predict_pairs()``); this module parses the arguments.
"""

from __future__ import annotations

import logging
import os

from csg2a_graph.cli.common import CLIError, Subcommand, int_at_least, say
from csg2a_graph.cli.data import RESPONSE_DATASETS

logger = logging.getLogger(__name__)


class PredictSubcommand(Subcommand):
    COMMAND = "predict"
    HELP = "predict responses for (cell, drug) pairs with a fine-tuned checkpoint"

    @classmethod
    def add_args(cls, p):
        p.add_argument("--checkpoint", required=True, help="a fine-tuned model.pt (csg2a finetune / cv / quickstart)")
        p.add_argument("--input", required=True, help="CSV with columns cell and smiles or drug (optional dose, time)")
        p.add_argument("--out", required=True, help="output CSV: the input rows + y_pred, what y_pred is, error")
        add_pair_args(p)
        p.add_argument("--batch-size", type=int_at_least(1), default=512)

    @classmethod
    def check(cls, args):
        if not os.path.exists(args.checkpoint):
            raise CLIError(f"checkpoint {args.checkpoint} not found")
        from csg2a_graph.cli.rundir import check_output_file

        check_output_file(
            "--out", args.out, {"--input": args.input, "--expression": args.expression, "--checkpoint": args.checkpoint}
        )

    @classmethod
    def run(cls, args):
        from csg2a_graph.predict import describe_target, predict_pairs

        if not os.path.exists(args.checkpoint):
            raise CLIError(f"checkpoint {args.checkpoint} not found")
        table, info = predict_pairs(
            args.checkpoint,
            args.input,
            expression=args.expression,
            dataset=pair_dataset(args),
            normalize=args.normalize,
            batch_size=args.batch_size,
        )
        for msg in info["messages"]:
            say(msg, args)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        table.to_csv(args.out, index=False)
        n, bad = len(table), int((table["error"] != "").sum())
        say(f"{n - bad} of {n} pairs predicted, {bad} with an error (see the 'error' column): {args.out}", args)
        say(f"y_pred is {describe_target(info['target'])}", args)
        return 0


def add_pair_args(p) -> None:
    """The pair-table options shared by ``predict`` and ``explain``."""
    p.add_argument("--expression", default=None, help="cells x genes CSV/TSV (first column: cell names)")
    p.add_argument(
        "--normalize",
        default="train",
        choices=["train", "none", "robust_z"],
        help="of --expression: train (the training data's per-gene median and MAD, kept in the "
        "checkpoint: the same transform as the training expression), none (already on the "
        "training scale) or robust_z (over the file's own rows: each cell depends on the others)",
    )
    g = p.add_argument_group("or expression and drug names from the training dataset")
    g.add_argument("--dataset", choices=RESPONSE_DATASETS, default=None)
    g.add_argument("--root", default=None)
    g.add_argument("--fetch", action="store_true")
    g.add_argument("--name", default="GDSC2")


def pair_dataset(args):
    """The dataset ``--dataset``/``--root`` name for the cells' expression and drug names (``None`` with
    ``--expression``).
    """
    if args.expression or not (args.dataset and args.root):
        return None
    from csg2a_graph.cli.data import load_dataset

    return load_dataset(args.dataset, args.root, fetch=args.fetch, name=args.name, log=False)


def resolve_pairs(args, genes, input_path=None, info=None):
    """``csg2a_graph.predict.resolve_pairs()`` from the command line's options (its messages said)."""
    from csg2a_graph.predict import resolve_pairs as resolve

    r = resolve(
        input_path or args.input,
        genes,
        expression=args.expression,
        normalize=args.normalize,
        dataset=pair_dataset(args),
        info=info,
    )
    for msg in r["messages"]:
        say(msg, args)
    return r


def read_expression_file(*a, **kw):
    """``csg2a_graph.predict.read_expression_file()`` (kept here for older imports)."""
    from csg2a_graph.predict import read_expression_file as read

    return read(*a, **kw)


__all__ = ["PredictSubcommand", "read_expression_file", "resolve_pairs", "add_pair_args", "pair_dataset"]
