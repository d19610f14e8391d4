"""Every ``csg2a`` command shown in docs/cli.md and README.md parses with the real parser (issue 24: an example
in docs/cli.md used options the CLI lacked). Optional parts in ``[...]`` are dropped, ``a|b`` takes ``a``, synopses
with ``...`` placeholders are skipped;
required options may come from a ``--config`` file, as the docs say."""

import re
import shlex

import pytest

from csg2a_graph.cli.main import _relax_required, build_parser
from tests.conftest import REPO


def _commands(text):
    out = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("csg2a "):
                out.append(line)
            elif ".venv/bin/csg2a " in line:
                out.append("csg2a " + line.split(".venv/bin/csg2a ", 1)[1])
    out += [c for c in re.findall(r"`(csg2a [^`]+)`", text) if " --" in c]
    return [c for c in out if "..." not in c and "…" not in c]  # synopses with placeholders are not examples


def _argv(cmd):
    while re.search(r"\[[^\[\]]*\]", cmd):  # optional parts, innermost first
        cmd = re.sub(r"\[[^\[\]]*\]", " ", cmd)
    argv = []
    for tok in shlex.split(cmd)[1:]:
        argv.append(tok.split("|")[0] if "|" in tok and not tok.startswith("-") else tok)
    return [a for a in argv if a not in ("...", "…")]


DOCS = {name: _commands((REPO / name).read_text()) for name in ("docs/cli.md", "README.md")}


@pytest.mark.parametrize("doc,cmd", [(d, c) for d, cs in DOCS.items() for c in cs])
def test_documented_command_parses(doc, cmd, capsys):
    parser = build_parser()
    if "--config" in cmd:
        _relax_required(parser)
    try:
        parser.parse_args(_argv(cmd))
    except SystemExit:
        pytest.fail(f"{doc}: `{cmd}` does not parse: {capsys.readouterr().err.strip().splitlines()[-1]}")


def test_the_docs_show_commands():
    assert len(DOCS["docs/cli.md"]) >= 12 and DOCS["README.md"]
