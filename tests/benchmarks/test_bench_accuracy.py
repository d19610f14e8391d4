"""bench_accuracy.py's --reuse: rows of a ``main`` run stand for ``transfer``'s only on identical splits."""
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "models"))


def _main_run(root: Path, split_seed: int = 0):
    cv = root / "cv"
    (cv / "splits").mkdir(parents=True)
    (cv / "predictions").mkdir()
    rows = []
    for fold in (0, 1):
        g = torch.Generator().manual_seed(split_seed * 10 + fold)
        perm = torch.randperm(30, generator=g)
        torch.save({"train": perm[:20], "val": perm[20:25], "test": perm[25:]}, cv / "splits" / f"mixed_fold{fold}.pt")
        for model, rmse in (("drug-mean", 2.0), ("additive", 1.5), ("csg2a", 1.0 + fold / 10), ("rf", 1.3)):
            rows.append({"model": model, "scheme": "mixed", "fold": fold, "rmse": rmse, "pcc": 0.9})
            (cv / "predictions" / f"{model}_mixed_fold{fold}.csv").write_text("y,pred\n1,1\n")
    pd.DataFrame(rows).to_csv(cv / "results.csv", index=False)
    return root


def test_reuse_copies_main_rows_under_transfer_labels(tmp_path):
    import bench_accuracy

    src = _main_run(tmp_path / "acc")
    dst = tmp_path / "tr" / "cv"
    bench_accuracy.reuse_rows(src, dst, ["mixed"], folds=2, subsample=None)
    res = pd.read_csv(dst / "results.csv")
    assert sorted(set(res.model)) == ["additive", "released pretrained+frozen", "rf"]  # drug-mean is not reused
    frozen = res[res.model == "released pretrained+frozen"].sort_values("fold")
    assert frozen.rmse.tolist() == pytest.approx([1.0, 1.1])
    assert (dst / "predictions" / "released pretrained+frozen_mixed_fold1.csv").exists()
    assert torch.equal(torch.load(dst / "splits" / "mixed_fold0.pt")["test"],
                       torch.load(src / "cv" / "splits" / "mixed_fold0.pt")["test"])
    bench_accuracy.reuse_rows(src, dst, ["mixed"], folds=2, subsample=None)  # again: nothing doubles
    assert len(pd.read_csv(dst / "results.csv")) == 6
    # fewer folds asked: only those are taken
    dst1 = tmp_path / "tr1" / "cv"
    bench_accuracy.reuse_rows(src, dst1, ["mixed"], folds=1, subsample=None)
    assert set(pd.read_csv(dst1 / "results.csv").fold) == {0}


def test_reuse_refuses_other_splits_and_subsamples(tmp_path):
    import bench_accuracy

    src = _main_run(tmp_path / "acc")
    other = _main_run(tmp_path / "other", split_seed=1)
    dst = other / "cv"  # its own splits differ from src's
    (dst / "results.csv").unlink()
    with pytest.raises(SystemExit, match="another split"):
        bench_accuracy.reuse_rows(src, dst, ["mixed"], folds=2, subsample=None)
    with pytest.raises(SystemExit, match="subsample"):
        bench_accuracy.reuse_rows(src, tmp_path / "sub" / "cv", ["mixed"], folds=2, subsample=1000)
