import gzip

import pandas as pd
import pytest
import torch

from csg2a_graph.data import GeneSpace, build_prior, read_edge_list, read_string_links
from csg2a_graph.datasets import STRING
from tests.conftest import link_raw


def _write_official(raw):
    """A few lines in the exact layout of STRING v12 protein.links / protein.info."""
    raw.mkdir(parents=True, exist_ok=True)
    with gzip.open(raw / "9606.protein.links.v12.0.txt.gz", "wt") as f:
        f.write(
            "protein1 protein2 combined_score\n"
            "9606.ENSP00000269305 9606.ENSP00000275493 999\n"  # TP53-EGFR (both directions, as in STRING)
            "9606.ENSP00000275493 9606.ENSP00000269305 999\n"
            "9606.ENSP00000269305 9606.ENSP00000256078 950\n"  # TP53-KRAS
            "9606.ENSP00000256078 9606.ENSP00000269305 950\n"
            "9606.ENSP00000275493 9606.ENSP00000256078 400\n"  # below threshold
            "9606.ENSP00000256078 9606.ENSP00000275493 400\n"
            "9606.ENSP00000269305 9606.ENSP00000999999 990\n"
        )  # partner outside the space
    with gzip.open(raw / "9606.protein.info.v12.0.txt.gz", "wt") as f:
        f.write(
            "#string_protein_id\tpreferred_name\tprotein_size\tannotation\n"
            "9606.ENSP00000269305\tTP53\t393\tCellular tumor antigen p53\n"
            "9606.ENSP00000275493\tEGFR\t1210\tEpidermal growth factor receptor\n"
            "9606.ENSP00000256078\tKRAS\t189\tGTPase KRas\n"
            "9606.ENSP00000999999\tNOTINSPACE\t10\tx\n"
        )


def test_official_links_threshold_symmetric_selfloops(tmp_path):
    _write_official(tmp_path / "raw")
    gs = GeneSpace(["EGFR", "KRAS", "TP53", "ISOLATED"])
    ds = STRING(str(tmp_path), gene_space=gs, min_score=900, log=False)
    g = ds[0]
    assert g.num_nodes == 4
    A = torch.zeros(4, 4)
    A[g.edge_index[0], g.edge_index[1]] = g.edge_weight
    expected = torch.eye(4)
    expected[0, 2] = expected[2, 0] = expected[1, 2] = expected[2, 1] = 1.0
    assert torch.equal(A, expected)
    rep = ds.report
    assert rep["edges_kept"] == 2 and rep["genes_touched"] == 3 and rep["isolated_genes"] == 1
    assert rep["num_components"] == 2
    # a lower threshold admits EGFR-KRAS; weighted=True keeps scores / 1000
    w = STRING(str(tmp_path), gene_space=gs, min_score=300, weighted=True, log=False)
    assert w.report["edges_kept"] == 3
    Aw = w.to_sparse().to_dense()
    assert Aw[0, 1] == pytest.approx(0.4) and Aw[2, 0] == pytest.approx(0.999)


def test_links_without_info_is_a_clear_error(tmp_path):
    _write_official(tmp_path / "raw")
    (tmp_path / "raw" / "9606.protein.info.v12.0.txt.gz").unlink()
    with pytest.raises(FileNotFoundError, match="protein.info"):
        STRING(str(tmp_path), gene_space=GeneSpace(["TP53"]), log=False)


def test_missing_raw_says_what_to_place(tmp_path):
    with pytest.raises(FileNotFoundError, match="9606.protein.links"):
        STRING(str(tmp_path), log=False)


def test_real_csg2a_edges_on_landmarks(tmp_path):
    link_raw(tmp_path, ["string/STRING_edges.csv"])
    ds = STRING(str(tmp_path), log=False)
    rep = ds.report
    # checked by hand with pandas: 1,771 of the 57,260 edges have both ends among the 978
    # landmark genes, touching 608 genes
    assert rep["edges_read"] == 57260 and rep["edges_kept"] == 1771 and rep["genes_touched"] == 608
    g = ds[0]
    assert g.edge_index.size(1) == 2 * 1771 + 978
    A = torch.sparse_coo_tensor(g.edge_index, g.edge_weight, (978, 978)).to_dense()
    assert torch.equal(A, A.T) and torch.all(A.diagonal() == 1)
    # restricting to a sub-space keeps only edges inside it
    sub = GeneSpace(ds.gene_space.genes[:300])
    ei, ew, r = ds.restrict(sub)
    assert int(ei.max()) < 300 and r.edges_kept <= 1771
    # reloading reuses the processed file
    assert STRING(str(tmp_path), log=False).report == rep


def test_edge_list_duplicates_and_self_loops_counted():
    edges = pd.DataFrame({"protein1": ["A", "B", "A", "C"], "protein2": ["B", "A", "A", "Z"], "score": 1000.0})
    ei, ew, rep = build_prior(edges, GeneSpace(["A", "B", "C"]), self_loops=False)
    assert rep.duplicate_edges == 1 and rep.self_loops_in_source == 1 and rep.edges_outside_space == 1
    assert ei.tolist() == [[1, 0], [0, 1]]


def test_read_string_links_rejects_other_tables(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("a b c\n1 2 3\n")
    with pytest.raises(ValueError, match="protein.links"):
        read_string_links(p)
    q = tmp_path / "one.csv"
    q.write_text("source\nA\n")
    with pytest.raises(ValueError, match="two columns"):
        read_edge_list(q)


def test_gene_names_and_min_score_are_checked():
    from csg2a_graph.data import GeneSpace
    from csg2a_graph.data.prior import check_min_score

    for bad in (["A", None], ["A", float("nan")], ["A", " "]):
        with pytest.raises(ValueError, match="gene names are missing"):
            GeneSpace(bad)
    for v in (-1, 1001, 1500):
        with pytest.raises(ValueError, match=r"\[0, 1000\]"):
            check_min_score(v)
    with pytest.raises(TypeError):
        check_min_score("900")
    assert check_min_score(0) == 0 and check_min_score(1000) == 1000
