"""The code base passes ruff with the project's settings (pyproject.toml [tool.ruff]); skipped without ruff."""

import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_ruff_check_is_clean():
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(__import__("pathlib").Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    r = subprocess.run(
        [ruff, "check", "csg2a_graph", "tests", "benchmarks", "datasets"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_tree_is_formatted():
    """Issue 27: ``ruff format`` (pyproject.toml [tool.ruff.format]) leaves every file as it is; pre-commit runs it."""
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(__import__("pathlib").Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    r = subprocess.run(
        [ruff, "format", "--check", "csg2a_graph", "tests", "benchmarks", "datasets"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean_on_the_public_api():
    """datasets, data, nn, ops, train and explain type-check (pyproject.toml [tool.mypy]); py.typed ships them."""
    mypy = shutil.which("mypy") or shutil.which("mypy", path=str(__import__("pathlib").Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    r = subprocess.run([mypy], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
