"""``csg2a`` command line (chemprop v2 style: one class per subcommand, one list of them).

    csg2a data info gdsc|nci60|lincs|tcga|string --root DIR [...]
    csg2a pretrain   --dataset lincs --root DIR --out DIR
    csg2a finetune   --dataset gdsc|nci60 --root DIR --pretrained CKPT --split drug_blind --fold 0 --out DIR
    csg2a cv         --dataset gdsc --schemes mixed drug_blind --folds 10 --models csg2a rf --out DIR
    csg2a predict    --checkpoint CKPT --input pairs.csv --out preds.csv [--expression FILE | --dataset gdsc --root DIR]
    csg2a quickstart [--out DIR] [--string PATH] [--lincs-root DIR] [--drug-weights PATH]

Every subcommand takes ``-v/-q`` and ``--config FILE.toml``; see ``docs/cli.md``.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from csg2a_graph.cli.common import CLIError, apply_config, common_parent, setup_logging
from csg2a_graph.cli.data import DataSubcommand
from csg2a_graph.cli.predict import PredictSubcommand
from csg2a_graph.cli.quickstart import QuickstartSubcommand
from csg2a_graph.cli.train import CVSubcommand, FinetuneSubcommand, PretrainSubcommand

SUBCOMMANDS = [DataSubcommand, PretrainSubcommand, FinetuneSubcommand, CVSubcommand, PredictSubcommand,
               QuickstartSubcommand]


def build_parser():
    p = argparse.ArgumentParser(prog="csg2a", description="csg2a-graph: drug-response datasets, gene-gene "
                                "attention and the CSG2A models")
    sub = p.add_subparsers(dest="command", required=True)
    parents = [common_parent()]
    for cmd in SUBCOMMANDS:
        cmd.add(sub, parents)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args = apply_config(parser, args._parser, argv, args)
        setup_logging(args.verbose, args.quiet)
        return args.cls.run(args)
    except (CLIError, FileNotFoundError, ValueError, RuntimeError, KeyError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"csg2a: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
