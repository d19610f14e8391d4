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


def test_one_registry():
    from csg2a_graph import registry
    from csg2a_graph.nn.models import MODELS
    from csg2a_graph.train.cv import RUNNERS, load_builtin_runners

    assert MODELS is registry.MODELS and RUNNERS is registry.RUNNERS
    load_builtin_runners()
    assert {"csg2a", "rf", "svm", "graphdrp", "deepcovdr"} <= set(RUNNERS)
    assert {"csg2a", "csg2a-pretrain", "graphdrp", "deepcovdr"} <= set(MODELS)
