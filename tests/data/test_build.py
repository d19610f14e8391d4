"""data/build.py: duplicate expression rows merged by the stated rule (or refused), expression aligned to a gene
space with what was filled reported."""

import numpy as np
import pytest

from csg2a_graph.data.build import merge_duplicate_samples
from csg2a_graph.data.names import normalize_cell_name


def _expr():
    values = np.array([[1.0, np.nan], [3.0, 4.0], [5.0, 6.0]])
    return values, ["A-549", "A549", "MCF7"], ["G1", "G2"]


def test_duplicate_rows_merged_by_mean_or_first_and_counted():
    report = {}
    v, s, g = merge_duplicate_samples(_expr(), normalize_cell_name, "mean", report)
    assert s == ["A-549", "MCF7"] and g == ["G1", "G2"]
    np.testing.assert_allclose(v[0], [2.0, 4.0])  # NaN-aware mean of the two rows
    assert report["duplicate_expression_rows"]["rows_merged"] == 1
    v, s, _ = merge_duplicate_samples(_expr(), normalize_cell_name, "first", {})
    assert np.isnan(v[0, 1]) and v[0, 0] == 1.0


def test_duplicate_rows_refused_or_bad_rule():
    with pytest.raises(ValueError, match="several rows .*A-549"):
        merge_duplicate_samples(_expr(), normalize_cell_name, "error", {})
    with pytest.raises(ValueError, match="duplicate_samples must be"):
        merge_duplicate_samples(_expr(), normalize_cell_name, "max", {})
    values, samples, genes = _expr()
    unique = (values[1:], samples[1:], genes)
    assert merge_duplicate_samples(unique, normalize_cell_name, "error", {}) is unique
