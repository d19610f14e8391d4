"""The assets shipped in the package are the real files they say they are (sha256 in MANIFEST.json) and
give the same datasets as the files in ../shared/data."""

import os

import torch

from csg2a_graph import assets
from tests.conftest import shared


def test_manifest_checksums_and_licences():
    m = assets.manifest()
    assert set(m) == {
        "string_landmark_edges.csv",
        "lincs_ljp005_a375_24h_level3.gct.gz",
        "lincs_ljp005_compounds.csv",
        "pretrain_gnns_gcn_supervised_contextpred.pth",
        "lincs_basal_robust_stats.csv",
    }
    for name, d in m.items():
        assert os.path.getsize(assets.asset(name)) == d["bytes"] and d["licence"] and d["source"]
    from csg2a_graph.nn.encoders.pretrained_gcn import WEIGHTS_SHA256

    assert m["pretrain_gnns_gcn_supervised_contextpred.pth"]["sha256"] == WEIGHTS_SHA256
    assert os.path.exists(os.path.join(assets.HERE, "LICENSE.pretrain-gnns"))


def test_a_damaged_asset_is_refused(tmp_path, monkeypatch):
    import shutil

    import pytest

    here = tmp_path / "assets"
    shutil.copytree(assets.HERE, here)
    (here / "string_landmark_edges.csv").write_text("source,target\nA,B\n")
    monkeypatch.setattr(assets, "HERE", str(here))
    monkeypatch.setattr(assets, "_CHECKED", {})
    with pytest.raises(ValueError, match="fails its sha256 check"):
        assets.string_prior()


def test_shipped_prior_and_plate_equal_the_shared_files(tmp_path, lincs3):
    """LINCSL1000 on the shipped plate + SMILES + prior equals the one built from the shared GCT, DeepCE and
    pert_info tables and STRING_edges.csv: same wells, profiles, compounds and prior edges."""
    from csg2a_graph.data import GeneSpace
    from csg2a_graph.datasets import LINCSL1000

    ours = LINCSL1000(str(tmp_path / "l"), level=3, log=False, gene_space=GeneSpace.landmark(), **assets.lincs_plate())
    assert (ours.num_pairs, ours.num_drugs) == (lincs3.num_pairs, lincs3.num_drugs) == (322, 54)
    assert torch.equal(ours.pairs["y"], lincs3.pairs["y"]) and torch.equal(ours.expression, lincs3.expression)
    assert sorted(ours.molecules.smiles) == sorted(lincs3.molecules.smiles)
    assert torch.equal(ours.prior_edge_index, lincs3.prior_edge_index)
    assert ours.prior_edge_index.size(1) == 2 * 1771 + 978


def test_shipped_prior_gives_gdscs_prior(gdsc2, tmp_path):
    from csg2a_graph.data.prior import read_edge_list

    edges = read_edge_list(assets.string_prior())
    assert len(edges) == 1771 and len(edges) == len(edges.drop_duplicates())
    shared_edges = read_edge_list(str(shared("string", "STRING_edges.csv")))
    assert len(shared_edges) == 57260
