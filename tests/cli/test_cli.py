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


def test_text_summary_reports_non_finite_values_replicates_and_compounds(gdsc2_root, capsys):
    assert main(["data", "info", "gdsc", "--root", str(gdsc2_root)]) == 0
    out = capsys.readouterr().out
    assert "expression: 0 NaN and 0 infinite/overflowing values" in out
    assert "replicates: 6258 pairs screened more than once, 3387 differ by more than 1.0" in out
    assert "compounds: 228 drugs = 227 compounds" in out
    assert "higher_is_resistant" in out and "robust z: max |z|" in out


def test_min_score_outside_the_string_range_is_refused(tmp_path, capsys):
    link_raw(tmp_path, ["string/STRING_edges.csv"])
    for bad in ("0.9", "1500", "-1"):
        with pytest.raises(SystemExit) as e:
            main(["data", "info", "string", "--root", str(tmp_path), "--min-score", bad])
        assert e.value.code == 2
        assert "--min-score" in capsys.readouterr().err


def test_read_only_root_is_one_line_and_verbose_shows_the_traceback(gdsc2_root, tmp_path, capsys, monkeypatch):
    import torch

    root = tmp_path / "g"
    (root / "raw").mkdir(parents=True)
    for f in (gdsc2_root / "raw").iterdir():
        (root / "raw" / f.name).symlink_to(f.resolve())

    def denied(obj, path, *a, **k):  # what a read-only root does (tests may run as root, where chmod cannot)
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(torch, "save", denied)
    assert main(["data", "info", "gdsc", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "permission denied" in err and str(root) in err and "Traceback" not in err
    assert main(["data", "info", "gdsc", "--root", str(root), "-v"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_tcga_without_combat_dependency_names_the_cli_option(tmp_path, capsys, monkeypatch):
    import sys

    from tests.datasets.test_tcga import TCGA_FILES

    link_raw(tmp_path, TCGA_FILES)
    monkeypatch.setitem(sys.modules, "inmoose", None)  # as if the tcga extra were not installed
    monkeypatch.setitem(sys.modules, "inmoose.pycombat", None)
    assert main(["data", "info", "tcga", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "inmoose" in err and "--no-combat" in err
    assert main(["data", "info", "tcga", "--root", str(tmp_path), "--no-combat", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["report"]["z_reference"]["statistics"].startswith("all patients")
