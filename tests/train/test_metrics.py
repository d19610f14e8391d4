import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import mean_squared_error, r2_score

from csg2a_graph.train.metrics import grouped_pearson, profile_metrics, regression_metrics


def test_metrics_match_scipy_and_sklearn():
    rng = np.random.default_rng(0)
    y = rng.normal(size=500)
    p = y + rng.normal(scale=0.7, size=500)
    p[::7] = p[::7] ** 3  # not linear: Spearman != Pearson
    m = regression_metrics(y, p)
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)))
    assert m["pcc"] == pytest.approx(pearsonr(y, p)[0])
    assert m["scc"] == pytest.approx(spearmanr(y, p)[0])
    assert m["r2"] == pytest.approx(r2_score(y, p))


def test_grouped_pearson_cannot_be_gamed_by_group_means():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(20), 30)
    means = rng.normal(scale=3, size=20)
    y = means[groups] + rng.normal(size=600)
    group_mean_prediction = means[groups]
    assert regression_metrics(y, group_mean_prediction)["pcc"] > 0.8
    assert np.isnan(grouped_pearson(y, group_mean_prediction, groups))  # constant within every group
    good = y + rng.normal(scale=0.3, size=600)
    assert grouped_pearson(y, good, groups) > 0.9


def test_profile_metrics():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(10, 50))
    m = profile_metrics(y, y)
    assert m["mse"] == 0 and m["pcc"] == pytest.approx(1.0)
