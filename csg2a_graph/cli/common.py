"""What every subcommand shares: -v/-q, --config FILE.toml, the resolved config written next to outputs."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from abc import ABC, abstractmethod
from typing import Any, Dict, List, Optional, Sequence

from csg2a_graph.errors import Csg2aError

logger = logging.getLogger("csg2a_graph.cli")


class CLIError(Csg2aError):
    """Bad input: reported in one line, exit status 2."""


class Subcommand(ABC):
    """A ``csg2a`` subcommand (abstract): ``COMMAND``, ``HELP``, ``add_args()`` and ``run()``; a group of
    subcommands is a ``GroupSubcommand``.
    """

    COMMAND: str = ""
    HELP: str = ""
    #: options that never go into the written config (paths of this run, flags)
    NOT_CONFIG = ("command", "func", "config", "verbose", "quiet", "data_command", "analysis", "cls", "_parser")

    @classmethod
    def add(cls, subparsers, parents) -> argparse.ArgumentParser:
        p = subparsers.add_parser(
            cls.COMMAND,
            help=cls.HELP,
            description=cls.HELP,
            parents=parents,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        cls.add_args(p)
        p.set_defaults(cls=cls, _parser=p)
        return p

    @classmethod
    @abstractmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        """Add the command's options to its parser."""

    @classmethod
    @abstractmethod
    def run(cls, args: argparse.Namespace) -> int:
        """Do the work; the exit status."""


class GroupSubcommand(Subcommand):
    """A command whose subcommands are ``CHILDREN`` (``csg2a data info``, ``csg2a analyze tcga``); the chosen
    child's name lands in ``args.<DEST>``.
    """

    CHILDREN: List[type] = []
    DEST: str = "subcommand"

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        """Nothing: each child adds its own options."""

    @classmethod
    def run(cls, args: argparse.Namespace) -> int:
        """Never called: the chosen child runs (``args.cls``)."""
        return args.cls.run(args) if args.cls is not cls else 2

    @classmethod
    def add(cls, subparsers, parents) -> argparse.ArgumentParser:
        p = subparsers.add_parser(cls.COMMAND, help=cls.HELP, description=cls.HELP)
        sub = p.add_subparsers(dest=cls.DEST, required=True)
        for child in cls.CHILDREN:
            child.add(sub, parents)
        return p


def int_at_least(lo: int):
    """Argparse type: an integer ``>= lo`` (the message names the bound)."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        return v

    return parse


def _number(text: str, ok, what: str) -> float:
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(v) and ok(v)):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return v


def positive_float(text: str) -> float:
    """Argparse type: a finite number > 0."""
    return _number(text, lambda v: v > 0, "a positive number")


def non_negative_float(text: str) -> float:
    """Argparse type: a finite number >= 0."""
    return _number(text, lambda v: v >= 0, "a number >= 0")


def fraction(text: str) -> float:
    """Argparse type: a number in (0, 1]."""
    return _number(text, lambda v: 0 < v <= 1, "in (0, 1]")


def common_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common")
    g.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    g.add_argument("-q", "--quiet", action="store_true", help="errors only, no progress bars")
    g.add_argument(
        "--config",
        default=None,
        metavar="FILE.toml",
        help="options from a TOML file (keys as the long options, '-' or '_'); flags given override it",
    )
    return p


def read_config(path: str, command: Optional[str] = None, commands: Sequence[str] = ()) -> Dict[str, Any]:
    """Top-level keys of a TOML file plus the ``[command]`` section of the command being run.

    Sections of other commands (``commands``, e.g. ``"pretrain"``, ``"analyze tcga"``) are skipped, so
    one file can hold ``[pretrain]`` and ``[finetune]``; a section that names no command is refused.
    For a group command (``"analyze tcga"``), ``[analyze]`` keys and ``[analyze.tcga]`` are read.
    The command's own section wins over top-level keys. ``command=None`` merges every section.
    """
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
    parts = (command or "").split()
    heads = {c.split()[0] for c in commands}
    flat: Dict[str, Any] = {}
    sections: List[Dict[str, Any]] = []
    for k, v in data.items():
        if not isinstance(v, dict):
            flat[k.replace("-", "_")] = v
        elif command is None:
            sections.append(v)
        elif k == parts[0]:
            children = {kk for kk, vv in v.items() if isinstance(vv, dict)}
            known = {c.split()[1] for c in commands if len(c.split()) > 1 and c.split()[0] == k}
            if children - known:
                raise CLIError(f"{path}: unknown section [{k}.{sorted(children - known)[0]}]")
            sections.append({kk: vv for kk, vv in v.items() if not isinstance(vv, dict)})
            if len(parts) > 1 and parts[1] in children:
                sections.append(v[parts[1]])
        elif k not in heads:
            raise CLIError(f"{path}: unknown section [{k}]; a section names a command ({', '.join(sorted(heads))})")
    for sec in sections:
        for kk, vv in sec.items():
            flat[kk.replace("-", "_")] = vv
    return flat


def _config_value(action: argparse.Action, key: str, value: Any, path: str) -> Any:
    """Check (and convert) one TOML value as argparse checks the flag: ``epochs = 2.5`` names ``--epochs``."""
    opt = action.option_strings[-1] if action.option_strings else key
    where = f"{path}: {key} = {value!r}"
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise CLIError(f"{where}: {opt} is a flag, expected true or false")
        return value
    if action.nargs in ("+", "*") or isinstance(action.nargs, int) or isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        if action.nargs == "+" and not items:
            raise CLIError(f"{where}: {opt} needs at least one value")
        return [_config_scalar(action, opt, where, v) for v in items]
    if isinstance(value, (list, dict)):
        raise CLIError(f"{where}: {opt} takes one value, not a list")
    return _config_scalar(action, opt, where, value)


def _config_scalar(action: argparse.Action, opt: str, where: str, value: Any) -> Any:
    if isinstance(value, bool) and action.type is not None:
        raise CLIError(f"{where}: {opt} expects a value, not true/false")
    if isinstance(value, (list, dict)):
        raise CLIError(f"{where}: {opt} expects a single value per item")
    if action.type is not None:
        try:
            value = action.type(value if isinstance(value, str) else str(value))
        except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
            kind = {int: "an integer", float: "a number"}.get(action.type)
            raise CLIError(f"{where}: {opt} expects {kind}" if kind else f"{where}: {opt}: {e}") from None
    if action.choices is not None and value not in action.choices:
        raise CLIError(f"{where}: {opt} must be one of {list(action.choices)}")
    return value


def apply_config(
    parser: argparse.ArgumentParser,
    sub: argparse.ArgumentParser,
    argv: List[str],
    args: argparse.Namespace,
    commands: Sequence[str] = (),
) -> argparse.Namespace:
    """Re-parse with the TOML values as defaults, so explicit flags win; values checked as flags."""
    if not args.config:
        return args
    command = " ".join(sub.prog.split()[1:])  # "csg2a analyze tcga" -> "analyze tcga"
    values = read_config(args.config, command, commands or [command])
    actions = {a.dest: a for a in sub._actions}
    unknown = sorted(set(values) - set(actions))
    if unknown:
        raise CLIError(f"{args.config}: unknown options {unknown} for 'csg2a {command}'")
    sub.set_defaults(**{k: _config_value(actions[k], k, v, args.config) for k, v in values.items()})
    return parser.parse_args(argv)


def run_options(args: argparse.Namespace, ignore=()) -> Dict[str, Any]:
    """The options of a parsed command line that define a run (``None`` values and flags of this
    invocation left out): what ``config.toml`` and ``run.json`` record.
    """
    return {k: v for k, v in vars(args).items() if k not in Subcommand.NOT_CONFIG and k not in ignore and v is not None}


def write_config(args: argparse.Namespace, out_dir: str, name: str = "config.toml") -> str:
    """The resolved options of this run (``run_options()``) as TOML."""
    import tomli_w

    os.makedirs(out_dir, exist_ok=True)
    d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in run_options(args).items()}
    path = os.path.join(out_dir, name)
    with open(path, "wb") as f:
        tomli_w.dump(d, f)
    return path


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (not the stream of the first call: redirections and
    test captures that come later are honoured, and a closed stream is never written).
    """

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else max(logging.WARNING - 10 * verbose, logging.DEBUG)
    root = logging.getLogger()
    if not any(getattr(h, "_csg2a", False) for h in root.handlers):
        h = _StderrHandler()
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


__all__ = [
    "Subcommand",
    "GroupSubcommand",
    "int_at_least",
    "positive_float",
    "non_negative_float",
    "fraction",
    "CLIError",
    "common_parent",
    "apply_config",
    "write_config",
    "setup_logging",
    "say",
    "logger",
]
