"""Issue 26.1-2: DrEval's normalised metrics in every cv row, and the baselines DrEval uses (gradient boosting,
elastic net) on the same features as the random forest."""
import numpy as np
import pandas as pd
import pytest
import torch

from csg2a_graph.train.cv import _OLD_COLUMNS, RESULT_COLUMNS, cross_validate, load_builtin_runners
from csg2a_graph.train.metrics import normalized_metrics, pearson, r2, spearman

RUNNERS = load_builtin_runners()


def test_normalised_metrics_are_drevals_definition():
    rng = np.random.default_rng(0)
    base = rng.normal(size=200)
    y = base + rng.normal(size=200)
    p = base + 0.5 * (y - base) + rng.normal(scale=0.3, size=200)
    m = normalized_metrics(y, p, base)
    assert m["pcc_norm"] == pytest.approx(pearson(y - base, p - base))
    assert m["scc_norm"] == pytest.approx(spearman(y - base, p - base))
    assert m["r2_norm"] == pytest.approx(r2(y - base, p - base))
    assert np.isnan(normalized_metrics(y, base, base)["pcc_norm"])  # the means themselves: nothing beyond them
    means_plus_noise = base + rng.normal(scale=0.3, size=200)  # knows the means, nothing beyond them
    assert pearson(y, means_plus_noise) > 0.5 and abs(normalized_metrics(y, means_plus_noise, base)["pcc_norm"]) < 0.2


@pytest.fixture(scope="module")
def small(gdsc2):
    g = torch.Generator().manual_seed(0)
    keep = torch.zeros(gdsc2.num_pairs, dtype=torch.bool)
    keep[torch.randperm(gdsc2.num_pairs, generator=g)[:4000]] = True
    s = gdsc2.get_idx_split("mixed", fold=0)
    return {k: v[keep[v]] for k, v in s.items()}


@pytest.mark.parametrize("name,opts", [("gbm", {"max_iter": 30}), ("elastic-net", {"alpha": 0.05})])
def test_gbm_and_elastic_net_beat_the_global_mean(gdsc2, small, name, opts):
    p, te = gdsc2.pairs, small["test"]
    pred = RUNNERS[name](gdsc2, small, opts, "", 0)
    assert pred.shape == (te.numel(),) and torch.isfinite(pred).all()
    glob = torch.full_like(pred, float(p["y"][small["train"]].mean()))
    assert float((pred - p["y"][te]).pow(2).mean()) < float((glob - p["y"][te]).pow(2).mean())


def test_cv_rows_carry_normalised_metrics_and_old_tables_are_migrated(gdsc2, tmp_path):
    out = tmp_path / "cv"
    df = cross_validate(gdsc2, ["additive", "drug-mean"], ["mixed"], folds=1, out_dir=str(out), subsample=3000)
    assert list(df.columns) == RESULT_COLUMNS
    add = df[df.model == "additive"].iloc[0]
    dm = df[df.model == "drug-mean"].iloc[0]
    assert np.isnan(add["pcc_norm"]) and np.isfinite(dm["pcc_norm"]) and np.isfinite(dm["r2_norm"])
    assert "pcc_norm" in (out / "summary.md").read_text()
    # a table written before the normalised metrics: continuing the run migrates it from its own predictions
    old = df[_OLD_COLUMNS]
    old.to_csv(out / "results.csv", index=False)
    again = cross_validate(gdsc2, ["additive", "drug-mean", "cell-mean"], ["mixed"], folds=1, out_dir=str(out),
                           subsample=3000)
    assert list(again.columns) == RESULT_COLUMNS and len(again) == 3
    assert again[again.model == "drug-mean"]["pcc_norm"].iloc[0] == pytest.approx(dm["pcc_norm"], abs=1e-6)
    assert pd.read_csv(out / "results.csv").shape[0] == 3
