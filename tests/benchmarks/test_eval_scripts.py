"""Issue 26.9: the full-data evaluation command (benchmarks/eval/run_full.sh, a GPU command) runs as written — its
DRY=1 mode on the CPU (600 real GDSC2 pairs, 2 epochs, folds 1-2, every model, scheme and randomisation, CSG2A
stepped together) — and leaves a report."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.conftest import REPO


def test_run_full_dry_runs_every_scheme_model_and_randomisation(gdsc2_root, pretrained_csg2a, tmp_path):
    out = tmp_path / "full"
    env = {
        **os.environ,
        "DRY": "1",
        "GDSC_ARGS": "",  # the release tables linked into the test root (the script's default fetches the registry)
        "CSG2A": str(Path(sys.executable).parent / "csg2a"),
        "OMP_NUM_THREADS": "1",
    }
    r = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "eval" / "run_full.sh"), str(gdsc2_root), str(pretrained_csg2a), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    df = pd.read_csv(out / "results.csv")
    assert set(df["scheme"]) == {"mixed", "cell_blind", "drug_blind", "disjoint", "tissue_blind"}
    assert set(df["model"]) == {"additive", "rf", "gbm", "csg2a"}
    assert sorted(df["fold"].unique().tolist()) == [0, 1]
    csg = df[df["model"] == "csg2a"]
    assert set(csg["randomization"]) == {"none", "prior-remove", "cell-permute"} and len(csg) == 2 * 5 * 3
    assert (out / "report.html").stat().st_size > 10_000
