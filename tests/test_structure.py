"""The package's subpackages import each other without cycles (module-level and function-level imports
alike), so a newcomer can change one without reading the others; one registry of models and runners."""

import ast
import os

from tests.conftest import REPO


def _graph():
    edges = {}
    pkg = REPO / "csg2a_graph"
    for dp, _, files in os.walk(pkg):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(dp, f)
            mod = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".").removesuffix(".__init__")
            src = ".".join(mod.split(".")[:2])
            for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("csg2a_graph."):
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names if a.name.startswith("csg2a_graph.")]
                for n in names:
                    dst = ".".join(n.split(".")[:2])
                    if dst != src:
                        edges.setdefault(src, set()).add(dst)
    return edges


def test_no_import_cycles_between_subpackages():
    edges = _graph()

    def reaches(a, b, seen):
        for n in edges.get(a, ()):
            if n == b or (n not in seen and (seen.add(n) or reaches(n, b, seen))):
                return True
        return False

    cycles = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if reaches(b, a, set())})
    assert not cycles, cycles
    assert "csg2a_graph.baselines" not in edges.get("csg2a_graph.train", set())
    assert "csg2a_graph.train" not in edges.get("csg2a_graph.nn", set())
    assert "csg2a_graph.datasets" not in edges.get("csg2a_graph.io", set())


def _module_graph():
    """Module -> the package modules it imports (module-level and inside functions), package ``__init__`` files
    left out (importing ``csg2a_graph.nn.conv`` runs ``nn/__init__`` first; those re-exports are not cycles of
    the code)."""
    pkg = REPO / "csg2a_graph"
    mods = {}
    for dp, _, files in os.walk(pkg):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dp, f)
                m = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                mods[m.removesuffix(".__init__")] = (path, m.endswith(".__init__"))
    edges = {}
    for m, (path, is_pkg) in mods.items():
        if is_pkg:
            continue
        tree = ast.parse(open(path, encoding="utf-8").read())
        typing_only = {  # imports under `if TYPE_CHECKING:` never run
            id(n)
            for b in ast.walk(tree)
            if isinstance(b, ast.If) and "TYPE_CHECKING" in ast.unparse(b.test)
            for s in b.body
            for n in ast.walk(s)
        }
        for node in ast.walk(tree):
            names = []
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("csg2a_graph"):
                names = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module for a in node.names
                ]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("csg2a_graph")]
            edges.setdefault(m, set()).update(n for n in names if n in mods and not mods[n][1] and n != m)
    return edges


def _cycles(edges):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_between_modules():
    """Issue 27: a cycle inside one subpackage (datasets/gdsc.py <-> datasets/registry.py) is a cycle too."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check itself
    assert not _cycles(_module_graph()), _cycles(_module_graph())


def test_one_registry():
    from csg2a_graph import registry
    from csg2a_graph.nn.models import MODELS
    from csg2a_graph.train.cv import RUNNERS, load_builtin_runners

    assert MODELS is registry.MODELS and RUNNERS is registry.RUNNERS
    load_builtin_runners()
    assert {"csg2a", "rf", "svm", "graphdrp", "deepcovdr"} <= set(RUNNERS)
    assert {"csg2a", "csg2a-pretrain", "graphdrp", "deepcovdr"} <= set(MODELS)


def test_contracts_are_abstract_base_classes():
    """Issue 27: every command is a complete ``Subcommand`` and every registered model a complete
    ``ResponseModel`` (abstract methods all implemented); a model without ``forward`` cannot be made."""
    import inspect

    import pytest

    from csg2a_graph.cli.common import Subcommand
    from csg2a_graph.cli.main import build_parser
    from csg2a_graph.nn.models import MODELS
    from csg2a_graph.nn.models.base import ResponseModel
    from csg2a_graph.train.cv import load_builtin_runners

    load_builtin_runners()  # the baselines register their models too
    commands = []
    for action in build_parser()._subparsers._group_actions:
        for p in action.choices.values():
            commands.append(p.get_default("cls"))
    commands = [c for c in commands if c is not None]
    assert len(commands) >= 7 and all(issubclass(c, Subcommand) and not inspect.isabstract(c) for c in commands)
    assert MODELS and all(issubclass(m, ResponseModel) and not inspect.isabstract(m) for m in MODELS.values())

    class NoForward(ResponseModel):
        pass

    with pytest.raises(TypeError, match="abstract"):
        NoForward()
