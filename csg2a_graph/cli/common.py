"""What every subcommand shares: -v/-q, --config FILE.toml, the resolved config written next to outputs."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Dict, List, Optional

logger = logging.getLogger("csg2a_graph.cli")


class CLIError(Exception):
    """Bad input: reported in one line, exit status 2."""


class Subcommand:
    """A ``csg2a`` subcommand: ``COMMAND``, ``HELP``, :meth:`add_args` and :meth:`run`."""

    COMMAND: str = ""
    HELP: str = ""
    #: options that never go into the written config (paths of this run, flags)
    NOT_CONFIG = ("command", "func", "config", "verbose", "quiet", "data_command", "analysis", "cls", "_parser")

    @classmethod
    def add(cls, subparsers, parents) -> argparse.ArgumentParser:
        p = subparsers.add_parser(cls.COMMAND, help=cls.HELP, description=cls.HELP, parents=parents,
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        cls.add_args(p)
        p.set_defaults(cls=cls, _parser=p)
        return p

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    @classmethod
    def run(cls, args: argparse.Namespace) -> int:
        raise NotImplementedError


class GroupSubcommand(Subcommand):
    """A command whose subcommands are ``CHILDREN`` (``csg2a data info``, ``csg2a analyze tcga``); the chosen
    child's name lands in ``args.<DEST>``."""

    CHILDREN: List[type] = []
    DEST: str = "subcommand"

    @classmethod
    def add(cls, subparsers, parents) -> argparse.ArgumentParser:
        p = subparsers.add_parser(cls.COMMAND, help=cls.HELP, description=cls.HELP)
        sub = p.add_subparsers(dest=cls.DEST, required=True)
        for child in cls.CHILDREN:
            child.add(sub, parents)
        return p


def int_at_least(lo: int):
    """argparse type: an integer ``>= lo`` (the message names the bound)."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        return v

    return parse


def fraction(text: str) -> float:
    """argparse type: a number in (0, 1]."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1], got {v}")
    return v


def common_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common")
    g.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    g.add_argument("-q", "--quiet", action="store_true", help="errors only, no progress bars")
    g.add_argument("--config", default=None, metavar="FILE.toml",
                   help="options from a TOML file (keys as the long options, '-' or '_'); flags given override it")
    return p


def read_config(path: str) -> Dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    if not os.path.exists(path):
        raise CLIError(f"config file {path} not found")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except Exception as e:  # noqa: BLE001 - tomllib.TOMLDecodeError and friends
        raise CLIError(f"config file {path} is not valid TOML: {e}") from e
    flat: Dict[str, Any] = {}
    for k, v in data.items():  # a [section] of the subcommand's name is merged in
        if isinstance(v, dict):
            flat.update({kk.replace("-", "_"): vv for kk, vv in v.items()})
        else:
            flat[k.replace("-", "_")] = v
    return flat


def apply_config(parser: argparse.ArgumentParser, sub: argparse.ArgumentParser, argv: List[str],
                 args: argparse.Namespace) -> argparse.Namespace:
    """Re-parse with the TOML values as defaults, so explicit flags win."""
    if not args.config:
        return args
    values = read_config(args.config)
    known = {a.dest for a in sub._actions}
    unknown = sorted(set(values) - known)
    if unknown:
        raise CLIError(f"{args.config}: unknown options {unknown} for 'csg2a {sub.prog.split()[-1]}'")
    sub.set_defaults(**values)
    return parser.parse_args(argv)


def write_config(args: argparse.Namespace, out_dir: str, name: str = "config.toml") -> str:
    """The resolved options of this run as TOML (``None`` values left out)."""
    import tomli_w

    os.makedirs(out_dir, exist_ok=True)
    d = {k: v for k, v in vars(args).items() if k not in Subcommand.NOT_CONFIG and v is not None}
    d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
    path = os.path.join(out_dir, name)
    with open(path, "wb") as f:
        tomli_w.dump(d, f)
    return path


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else max(logging.WARNING - 10 * verbose, logging.DEBUG)
    root = logging.getLogger()
    if not any(getattr(h, "_csg2a", False) for h in root.handlers):
        h = logging.StreamHandler(sys.stderr)
        h._csg2a = True
        h.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(h)
    for h in root.handlers:
        if getattr(h, "_csg2a", False):
            h.setLevel(level)
    root.setLevel(min(level, logging.INFO))


def say(msg: str, args: Optional[argparse.Namespace] = None) -> None:
    """A line for the user on stdout (silenced by -q)."""
    if args is None or not getattr(args, "quiet", False):
        print(msg, flush=True)


__all__ = ["Subcommand", "GroupSubcommand", "int_at_least", "fraction", "CLIError", "common_parent", "apply_config", "write_config", "setup_logging", "say",
           "logger"]
