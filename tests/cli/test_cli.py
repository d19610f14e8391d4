import json

import pytest

from csg2a_graph.cli.main import main
from tests.conftest import link_raw


def test_data_info_gdsc_json(gdsc2_root, capsys):
    assert main(["data", "info", "gdsc", "--root", str(gdsc2_root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["num_samples"], out["num_cells"], out["num_drugs"], out["num_genes"]) == (187836, 939, 228, 484)
    assert out["dropped"]["drug_without_smiles"] == 42249
    assert out["num_genes_requested"] == 978 and out["prior_edges"] == 2 * 633 + 484


def test_data_info_gdsc_text(gdsc2_root, capsys):
    assert main(["data", "info", "gdsc", "--root", str(gdsc2_root)]) == 0
    out = capsys.readouterr().out
    assert "num_samples" in out and "484 of 978" in out and "drugs (responses -> SMILES): 228 matched" in out


def test_data_info_string(tmp_path, capsys):
    link_raw(tmp_path, ["string/STRING_edges.csv"])
    assert main(["data", "info", "string", "--root", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["edges_kept"] == 1771 and out["num_genes"] == 978 and "dropped" in out


def test_missing_raw_is_an_error_message(tmp_path, capsys):
    assert main(["data", "info", "gdsc", "--root", str(tmp_path)]) == 2
    assert "source='registry'" in capsys.readouterr().err


def test_data_info_nci60_json(tmp_path, capsys):
    from tests.datasets.test_nci60 import NCI60_FILES

    link_raw(tmp_path, NCI60_FILES)
    assert main(["data", "info", "nci60", "--root", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["num_samples"], out["num_cells"], out["num_drugs"], out["num_genes"]) == (10167, 59, 181, 978)
    assert out["dropped"]["cell_without_expression"] == 682


def test_data_info_lincs_and_tcga_json(tmp_path, capsys):
    pytest.importorskip("inmoose")
    from tests.datasets.test_lincs import L3
    from tests.datasets.test_tcga import TCGA_FILES

    link_raw(tmp_path / "lincs", L3)
    assert main(["data", "info", "lincs", "--root", str(tmp_path / "lincs"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["num_samples"], out["num_cells"], out["num_drugs"], out["num_genes"]) == (322, 1, 54, 978)
    assert out["dropped"]["other_pert_type"] == 23
    link_raw(tmp_path / "tcga", TCGA_FILES)
    assert main(["data", "info", "tcga", "--root", str(tmp_path / "tcga"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["num_cells"] == 522 and out["num_samples"] == 1222 and "drug_without_smiles" in out["dropped"]
