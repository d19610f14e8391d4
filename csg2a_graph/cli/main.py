"""``csg2a`` command line (chemprop v2 style: one class per subcommand, one list of them).

    csg2a data info gdsc|nci60|lincs|tcga|string --root DIR [...]
    csg2a pretrain   --dataset lincs --root DIR --out DIR
    csg2a finetune   --dataset gdsc|nci60 --root DIR --pretrained CKPT --split drug_blind --fold 0 --out DIR
    csg2a cv         --dataset gdsc --schemes mixed drug_blind --folds 10 --models csg2a rf --out DIR
    csg2a predict    --checkpoint CKPT --input pairs.csv --out preds.csv [--expression FILE | --dataset gdsc --root DIR]
    csg2a quickstart [--out DIR] [--string PATH] [--lincs-root DIR] [--drug-weights PATH]

Every subcommand takes ``-v/-q`` and ``--config FILE.toml``; see ``docs/cli.md``. Under
``torchrun --nproc_per_node=K -m csg2a_graph.cli.main pretrain ...`` training runs with DDP.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from csg2a_graph.cli.analyze import AnalyzeSubcommand
from csg2a_graph.cli.common import CLIError, apply_config, common_parent, setup_logging
from csg2a_graph.cli.data import DataSubcommand
from csg2a_graph.cli.explain import ExplainSubcommand
from csg2a_graph.cli.predict import PredictSubcommand
from csg2a_graph.cli.quickstart import QuickstartSubcommand
from csg2a_graph.cli.train import CVSubcommand, FinetuneSubcommand, PretrainSubcommand, ReportSubcommand
from csg2a_graph.errors import Csg2aError

SUBCOMMANDS = [
    DataSubcommand,
    PretrainSubcommand,
    FinetuneSubcommand,
    CVSubcommand,
    ReportSubcommand,
    PredictSubcommand,
    QuickstartSubcommand,
    ExplainSubcommand,
    AnalyzeSubcommand,
]


def build_parser():
    p = argparse.ArgumentParser(
        prog="csg2a", description="csg2a-graph: drug-response datasets, gene-gene attention and the CSG2A models"
    )
    from csg2a_graph import __version__

    p.add_argument("--version", action="version", version=f"csg2a-graph {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    parents = [common_parent()]
    for cmd in SUBCOMMANDS:
        cmd.add(sub, parents)
    return p


def init_distributed() -> bool:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE > 1``): NCCL on CUDA, gloo on CPU."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


def command_paths() -> List[str]:
    """Every command as typed (``"finetune"``, ``"analyze tcga"``): the sections a TOML config may hold."""
    out = []
    for cmd in SUBCOMMANDS:
        children = getattr(cmd, "CHILDREN", None)
        out += [f"{cmd.COMMAND} {c.COMMAND}" for c in children] if children else [cmd.COMMAND]
    return out


def _relax_required(parser: argparse.ArgumentParser) -> List[argparse.Action]:
    """Every required ``--option`` of every subcommand, made optional (a ``--config`` file may give it); the
    actions are returned so that ``_check_required()`` can require them after the file is applied.
    """
    out: List[argparse.Action] = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for p in set(a.choices.values()):
                out += _relax_required(p)
        elif a.required and a.option_strings:
            a.required = False
            out.append(a)
    return out


def _check_required(args: argparse.Namespace, relaxed: List[argparse.Action]) -> None:
    sub = args._parser
    missing = [a.option_strings[-1] for a in sub._actions if a in relaxed and getattr(args, a.dest, None) is None]
    if missing:
        sub.error(
            f"the following arguments are required: {', '.join(missing)} (on the command line or as "
            f"{', '.join(m.lstrip('-').replace('-', '_') for m in missing)} = ... in --config)"
        )


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    has_config = any(a == "--config" or a.startswith("--config=") for a in argv)
    relaxed = _relax_required(parser) if has_config else []
    args = parser.parse_args(argv)
    try:
        args = apply_config(parser, args._parser, argv, args, command_paths())
        if relaxed:
            _check_required(args, relaxed)
        setup_logging(args.verbose, args.quiet)
        check = getattr(args.cls, "check", None)
        if check is not None:  # argument checks that need no heavy import, before any work
            check(args)
        if args.command == "analyze" and getattr(args, "out", None):
            from csg2a_graph.cli.rundir import check_output_folder

            check_output_folder("--out", args.out, ("config.toml",))
        init_distributed()
        return args.cls.run(args)
    except KeyboardInterrupt:
        out = getattr(args, "out", None)
        hint = ""
        if out and args.command in ("pretrain", "finetune", "cv", "quickstart"):
            hint = f"; run the same command again to continue from {out} (finished epochs and folds are kept)"
        print(f"csg2a: interrupted{hint}", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - sorted below: the user's problem in one line, a bug with its traceback
        if not _users_problem(e):
            import traceback

            traceback.print_exc()
            print(
                f"csg2a: internal error ({type(e).__name__}): this looks like a bug in csg2a-graph, not in your "
                "input; please report it with the command and the traceback above",
                file=sys.stderr,
            )
            return 1
        # one line with the cause (a PermissionError names the path); -v shows the traceback
        if getattr(args, "verbose", 0):
            import traceback

            traceback.print_exc()
        text = str(e).strip().strip("'\"")
        msg = text.splitlines()[0] if text else type(e).__name__
        if isinstance(e, PermissionError):
            msg = f"permission denied: {e.filename or msg} (is the root read-only? choose a writable --root)"
        print(f"csg2a: error: {msg}", file=sys.stderr)
        return 2


def _users_problem(e: BaseException) -> bool:
    """Whether ``e`` describes the user's input or machine (one line, exit 2) rather than a bug: our own error
    types, bad values and files (``ValueError``, ``OSError``), a missing optional package, running out of memory.
    A plain ``TypeError``, ``KeyError``, ``IndexError`` or ``RuntimeError`` from inside is a bug.
    """
    import torch

    return isinstance(e, (Csg2aError, CLIError, OSError, ValueError, ImportError, torch.OutOfMemoryError))


if __name__ == "__main__":  # pragma: no cover - python -m csg2a_graph.cli.main (torchrun)
    sys.exit(main())
