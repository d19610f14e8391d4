"""io/files.py: content hashes, atomic writes and the checked download every fetcher uses (a file:// URL here)."""

import hashlib

import pytest

from csg2a_graph.io.files import atomic_write_text, download, sha256


def test_checked_download_and_hash(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"csg2a" * 1000)
    want = hashlib.sha256(src.read_bytes()).hexdigest()
    assert sha256(src) == want
    dst = tmp_path / "cache" / "got.bin"
    assert download(src.as_uri(), dst, want) == want and dst.read_bytes() == src.read_bytes()
    bad = tmp_path / "cache" / "bad.bin"
    with pytest.raises(ValueError, match="fails the sha256 check"):
        download(src.as_uri(), bad, "0" * 64)
    assert not bad.exists() and not (tmp_path / "cache" / "bad.bin.part").exists()
    with pytest.raises(OSError):
        download((tmp_path / "missing").as_uri(), tmp_path / "cache" / "m.bin")
    assert not (tmp_path / "cache" / "m.bin.part").exists()


def test_atomic_write_text(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_text(p, "{}")
    atomic_write_text(p, '{"x": 1}')
    assert p.read_text() == '{"x": 1}' and [f.name for f in tmp_path.iterdir()] == ["a.json"]
