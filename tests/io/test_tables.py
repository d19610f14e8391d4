"""Moved from the input-hardening tests: each failed on the code before its fix."""

import numpy as np
import pytest


def test_reader_errors_name_the_file_and_what_was_expected(tmp_path):
    from csg2a_graph.datasets.gdsc import read_expression, read_responses
    from csg2a_graph.io.xena import read_xena

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv: the file is empty; expected"):
        read_responses(str(empty))
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"CELL_LINE_NAME,DRUG_NAME,LN_IC50\nA\xff\xfe,x,1\n")
    with pytest.raises(ValueError, match=r"latin\.csv: not UTF-8"):
        read_responses(str(latin))
    header_only = tmp_path / "xena.tsv"
    header_only.write_text("sample\tTCGA-AA-0001-01\n")
    with pytest.raises(ValueError, match=r"xena\.tsv: has a header but no rows"):
        read_xena(str(header_only))
    expr = tmp_path / "expr.csv"
    expr.write_text("cell,DDR1,PAX8\nA,abc,1e400\nB,1.0,NA\n")
    v, cells, genes = read_expression(str(expr))
    assert np.isnan(v[0, 0]) and np.isinf(v[0, 1]) and np.isnan(v[1, 1])  # never 3.4e38


def test_reader_warns_with_counts_of_non_numbers(tmp_path, caplog):
    from csg2a_graph.io.gct import read_gct

    p = tmp_path / "plate.gct"
    p.write_text("#1.2\n2\t2\nName\tDescription\tc1\tc2\nDDR1\tna\tabc\t1e400\nPAX8\tna\t1.5\tNaN\n")
    with caplog.at_level("WARNING"):
        g = read_gct(p)
    assert np.isnan(g.data[0, 0]) and np.isinf(g.data[0, 1]) and g.data[1, 0] == 1.5
    assert "plate.gct: 1 expression values are not numbers" in caplog.text and "1 are infinite" in caplog.text
