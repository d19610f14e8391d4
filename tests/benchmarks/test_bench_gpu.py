"""Issue 28.6: benchmarks/models/bench_gpu.py is ready for a GPU machine — its --dry-run runs every part (kernels,
pretraining, the batch-128 epoch old vs fast, the protocol under --jobs) on the CPU at toy sizes."""

import subprocess
import sys

from tests.conftest import REPO


def test_bench_gpu_runs_every_part_dry(tmp_path):
    r = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "models" / "bench_gpu.py"), "--dry-run", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "parts failed: none" in r.stdout
    for part in ("kernels", "pretraining", "epoch", "protocol"):
        text = (tmp_path / f"{part}.md").read_text()
        assert "DRY RUN" in text and "FAILED" not in text, part
    assert (tmp_path / "epoch.md").read_text().count("| 2 |") == 3  # today's path, fast, fast + bf16
    assert "Stacked: 2 runs" in (tmp_path / "epoch.md").read_text()  # and runs stepped together
    assert "not counted on cpu" in (tmp_path / "epoch.md").read_text()  # the sync count's fits ran (counted on CUDA)
    assert "--executor stacked" in (tmp_path / "protocol.md").read_text()
    assert "8 rows" in (tmp_path / "protocol.md").read_text()
