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
    assert torch.equal(
        torch.load(dst / "splits" / "mixed_fold0.pt")["test"],
        torch.load(src / "cv" / "splits" / "mixed_fold0.pt")["test"],
    )
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


def test_report_pairs_settings_by_fold(tmp_path, capsys):
    """The report's paired rows compare the same folds: frozen vs unfrozen is the paper's freezing claim."""
    import bench_accuracy
    from scipy.stats import ttest_rel

    frozen, unfrozen, scratch = [1.05, 1.06, 1.04], [1.04, 1.05, 1.02], [1.05, 1.055, 1.045]
    rows = []
    for label, vals in (
        ("released pretrained+frozen", frozen),
        ("released pretrained+unfrozen", unfrozen),
        ("released scratch", scratch),
    ):
        for fold, v in enumerate(vals):
            rows.append(
                {"model": label, "scheme": "mixed", "fold": fold, "rmse": v, "pcc": 0.9 - v / 10, "pcc_per_drug": 0.7}
            )
    (tmp_path / "cv").mkdir()
    pd.DataFrame(rows[::-1]).to_csv(tmp_path / "cv" / "results.csv", index=False)  # order must not matter
    bench_accuracy.cli(["report", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "| pretrained+frozen vs pretrained+unfrozen |" in ln)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert float(cells[2]) == pytest.approx(sum(frozen) / 3 - sum(unfrozen) / 3, abs=5e-4)
    assert float(cells[3]) == pytest.approx(ttest_rel(frozen, unfrozen).pvalue, rel=1e-2)
    assert any("| mixed | pretrained+unfrozen |" in ln for ln in out.splitlines())  # against scratch


def test_report_pairs_single_switches_with_released_scratch(tmp_path, capsys):
    """Each "released scratch + SWITCH" row is compared with released scratch on the same folds."""
    import bench_accuracy
    from scipy.stats import ttest_rel

    scratch, switched = [1.05, 1.06, 1.04], [1.03, 1.05, 1.035]
    rows = []
    for label, vals in (
        ("released pretrained+frozen", [1.06] * 3),
        ("released scratch", scratch),
        ("released scratch + standardised target", switched),
    ):
        for fold, v in enumerate(vals):
            rows.append({"model": label, "scheme": "mixed", "fold": fold, "rmse": v, "pcc": 0.9, "pcc_per_drug": 0.7})
    (tmp_path / "cv").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "cv" / "results.csv", index=False)
    bench_accuracy.cli(["report", "--out", str(tmp_path)])
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "| mixed | standardised target |" in ln)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert float(cells[2]) == pytest.approx(sum(switched) / 3 - sum(scratch) / 3, abs=5e-4)
    assert float(cells[3]) == pytest.approx(ttest_rel(switched, scratch).pvalue, rel=1e-2)


def test_switches_are_improved_settings():
    """Every single switch sets a value that `improved` uses and `released` does not."""
    import bench_accuracy

    from csg2a_graph.nn.models.csg2a import FINETUNE_VARIANTS, VARIANTS

    for name, switch in bench_accuracy.SWITCHES.items():
        for key, value in switch.items():
            table = FINETUNE_VARIANTS if key in FINETUNE_VARIANTS["released"] else VARIANTS
            assert table["improved"][key] == value != table["released"][key], (name, key)
