"""Issue 27: the command line tells the user's problem (one line, exit 2) from a bug (traceback, exit 1, a request to
report it) — a programming error no longer looks like bad input."""

import pytest

from csg2a_graph.cli.main import main
from csg2a_graph.cli.train import ReportSubcommand
from csg2a_graph.errors import Csg2aError, InputKeyError, InputTypeError


def _raise(exc):
    def run(cls, args):
        raise exc

    return classmethod(run)


@pytest.mark.parametrize(
    "exc",
    [KeyError("cell"), TypeError("unsupported operand"), IndexError("list index"), RuntimeError("shape mismatch")],
)
def test_a_bug_shows_its_traceback_and_asks_for_a_report(monkeypatch, capsys, tmp_path, exc):
    monkeypatch.setattr(ReportSubcommand, "run", _raise(exc))
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error" in err and "please report it" in err


@pytest.mark.parametrize(
    "exc",
    [
        InputKeyError("2 gene(s) not in the gene space: ['XYZ']"),
        ValueError("bad value"),
        FileNotFoundError(2, "No such file", "x.csv"),
        InputTypeError("x must be float"),
    ],
)
def test_the_users_problem_is_one_line(monkeypatch, capsys, tmp_path, exc):
    monkeypatch.setattr(ReportSubcommand, "run", _raise(exc))
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("csg2a: error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    if isinstance(exc, InputKeyError):
        assert err.strip() == "csg2a: error: 2 gene(s) not in the gene space: ['XYZ']"


def test_our_errors_are_the_builtins_callers_catch():
    from csg2a_graph.data.prior import EmptyPriorError
    from csg2a_graph.train.loop import TrainingDiverged

    assert issubclass(InputKeyError, KeyError) and issubclass(InputKeyError, Csg2aError)
    assert issubclass(EmptyPriorError, ValueError) and issubclass(TrainingDiverged, RuntimeError)
    assert issubclass(TrainingDiverged, Csg2aError) and issubclass(EmptyPriorError, Csg2aError)
