"""Baselines on real GDSC2 pairs: naive runners, the SVR approximation, and every deep model
(forward/backward, parameter count against its spec, a few steps reduce the loss, checkpoint round trip)."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from csg2a_graph.train.cv import load_builtin_runners
from csg2a_graph.train.metrics import regression_metrics

RUNNERS = load_builtin_runners()
ESPF = Path(os.environ.get("CSG2A_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
ESPF = ESPF.parent / "baselines" / "resources" / "espf"


@pytest.fixture(autouse=True)
def espf_dir(monkeypatch):
    if ESPF.exists():
        monkeypatch.setenv("CSG2A_ESPF_DIR", str(ESPF))


def fit_and_reload(dataset, name, opts, small, out_dir, **cfg):
    """Train ``name`` briefly with the package Trainer, rebuild it from its checkpoint and check that the
    rebuilt model predicts what the trainer predicts; returns the training history."""
    from csg2a_graph.baselines.deep import build_for
    from csg2a_graph.nn.models import ResponseModel
    from csg2a_graph.train.loop import TrainConfig, Trainer

    trainer = Trainer(
        build_for(name, dataset, opts), TrainConfig(progress=False, device="cpu", **cfg), out_dir=str(out_dir)
    )
    hist = trainer.fit(dataset, small)
    again = ResponseModel.from_checkpoint(str(Path(out_dir) / "model.pt")).eval()
    with torch.no_grad():
        b = next(iter(dataset.loader(small["test"], batch_size=len(small["test"]))))
        torch.testing.assert_close(
            again.forward_batch(b), trainer.predict(dataset, small["test"]), rtol=1e-4, atol=1e-4
        )
    return hist


def few_steps(dataset, name, opts, batch_index, scaler_index, steps: int):
    """Adam steps (lr 1e-3) on one real batch; gradients must stay finite. Returns the losses."""
    from csg2a_graph.baselines.deep import build_for

    torch.manual_seed(0)
    model = build_for(name, dataset, opts)
    model.set_target_scaler(dataset.pairs["y"][scaler_index])
    b = next(iter(dataset.loader(batch_index, batch_size=len(batch_index))))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        loss = (model.forward_batch(b) - b.y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(q.grad).all() for q in model.parameters() if q.grad is not None)
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.fixture(scope="module")
def split(gdsc2):
    return gdsc2.get_idx_split("mixed", fold=0)


def test_naive_baselines_on_real_gdsc(gdsc2, split):
    p, te = gdsc2.pairs, split["test"]
    res = {}
    for name in ("global-mean", "drug-mean", "cell-mean", "additive", "tissue-mean"):
        pred = RUNNERS[name](gdsc2, split, {}, "", 0)
        assert pred.shape == (te.numel(),) and torch.isfinite(pred).all()
        res[name] = regression_metrics(p["y"][te], pred, drug=p["drug"][te].numpy(), cell=p["cell"][te].numpy())
    assert res["global-mean"]["rmse"] > res["drug-mean"]["rmse"] > res["additive"]["rmse"]
    assert res["drug-mean"]["pcc"] > 0.8  # the honesty check: ln IC50 varies mostly between drugs
    assert res["additive"]["pcc_per_drug"] > 0.5 and np.isnan(res["drug-mean"]["pcc_per_drug"])
    # drug-blind: a drug mean cannot exist for unseen drugs -> the training mean
    db = gdsc2.get_idx_split("drug_blind", fold=0)
    pred = RUNNERS["drug-mean"](gdsc2, db, {}, "", 0)
    assert torch.allclose(pred, p["y"][db["train"]].mean().expand_as(pred), atol=1e-4)


def test_nystroem_svr_is_close_to_exact_svr(gdsc2, split):
    sub = {"train": split["train"][:2500], "val": split["val"][:10], "test": split["test"][:1500]}
    exact = RUNNERS["svm-exact"](gdsc2, sub, {}, "", 0)
    approx = RUNNERS["svm"](gdsc2, sub, {"n_components": 1500}, "", 0)
    assert np.corrcoef(exact.numpy(), approx.numpy())[0, 1] > 0.98
    assert float((exact - approx).pow(2).mean().sqrt()) < 0.2


DEEP = [
    ("graphdrp", {}, 726_305 - 3_328, 484),
    ("deeptta", {}, 5_190_977, 978),
    ("gene-graph", {"conv": "gcn"}, None, None),
    ("gene-graph", {"conv": "gat"}, None, None),
    ("gene-graph", {"conv": "gin"}, None, None),
    ("gene-graph", {"conv": "csg2a"}, None, None),
    ("gene-graph", {"conv": "csg2a+gcn"}, None, None),
]


@pytest.mark.parametrize("name,opts,spec_params,spec_genes", DEEP)
def test_deep_baseline_trains_and_round_trips(gdsc2, split, tmp_path, name, opts, spec_params, spec_genes):
    from csg2a_graph.nn.models import build_model

    if name == "deeptta" and not ESPF.exists():
        pytest.skip("ESPF vocabulary not staged")
    if spec_params is not None:  # the spec's parameter count at the spec's gene count (within 10%)
        n = sum(q.numel() for q in build_model(name, genes=spec_genes, **opts).parameters())
        assert abs(n - spec_params) <= 0.1 * spec_params, (n, spec_params)
    losses = few_steps(gdsc2, name, opts, split["train"][:64], split["train"], steps=8)
    assert losses[-1] < losses[0]
    # a short Trainer run writes a checkpoint that rebuilds the same model
    small = {"train": split["train"][:256], "val": split["val"][:64], "test": split["test"][:64]}
    fit_and_reload(gdsc2, name, opts, small, tmp_path, epochs=1, batch_size=32)


def test_gene_graph_rejects_unknown_convs():
    from csg2a_graph.baselines import GeneGraphModel

    with pytest.raises(ValueError, match="conv must be one of"):
        GeneGraphModel(10, conv="sage")


def test_espf_tokens_match_the_original_rules():
    if not ESPF.exists():
        pytest.skip("ESPF vocabulary not staged")
    from csg2a_graph.baselines import ESPFTokenizer

    tok = ESPFTokenizer(str(ESPF))
    assert tok.vocab_size == 2586
    ids, mask = tok("CC(=O)Oc1ccccc1C(=O)O")  # aspirin: three ESPF substructures
    assert mask.sum() == 3 and ids.shape == (50,) and (ids[3:] == 0).all()
    long = "C" * 400 + "N"
    ids, mask = tok(long)
    assert mask.sum() <= 50


def test_the_tutorial_snippet_in_docs_runs():
    """docs/baselines.md's CSG2AConv-in-a-PyG-model example, executed as written."""
    import re

    from csg2a_graph.testing import rand_prior

    text = (Path(__file__).resolve().parents[2] / "docs" / "baselines.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    ns = {}
    exec(compile(code, "docs/baselines.md", "exec"), ns)
    N = 20
    ei, ew = rand_prior(N, 40)
    out = ns["MyGeneGNN"](N)(torch.randn(4, N), torch.randn(4, 128), ei, ew)
    assert out.shape == (4, 64) and torch.isfinite(out).all()


def test_pathdnn_parameter_count_matches_the_spec_shape():
    """323 pathways over 537 cell genes + 741 target genes: 562,110 parameters (baselines/PathDNN.md)."""
    from csg2a_graph.baselines import PathDNN

    genes = [f"G{i}" for i in range(537)]
    targets = [f"T{i}" for i in range(741)]
    members = genes + targets
    pathways = {f"P{k}": members[k::323] for k in range(323)}
    m = PathDNN(genes, pathways, {"C": targets})
    assert m.layer1.mask.shape == (323, 1278)
    assert sum(q.numel() for q in m.parameters()) == 562_110


def test_pathdnn_on_real_gdsc_with_kegg_and_gdsc_targets(gdsc2, split, tmp_path):
    from tests.conftest import shared

    opts = {
        "pathways_file": str(shared("genesets", "msigdb_c2.cp.kegg.v7.5.1.symbols.gmt")),
        "targets_file": str(shared("gdsc", "gdsc_drug_list_20220812.csv")),
    }
    from csg2a_graph.baselines.deep import build_for

    model = build_for("pathdnn", gdsc2, opts)
    with_targets = sum(1 for v in model.targets_of.values() if v)
    assert with_targets >= 130 and model.layer1.mask.sum() > 1000  # 138 of 228 drugs have a KEGG target
    # masked weights get no gradient
    b = next(iter(gdsc2.loader(split["train"][:64], batch_size=64)))
    (model.forward_batch(b) - b.y).pow(2).mean().backward()
    assert (model.layer1.weight.grad[model.layer1.mask == 0] == 0).all()
    small = {"train": split["train"][:512], "val": split["val"][:64], "test": split["test"][:64]}
    fit_and_reload(gdsc2, "pathdnn", opts, small, tmp_path, epochs=2, batch_size=64)


def test_gsva_matches_gseapy_on_real_cell_lines(gdsc2):
    gseapy = pytest.importorskip("gseapy")
    import pandas as pd

    from csg2a_graph.baselines import Precily
    from tests.conftest import shared

    m = Precily.from_dataset(gdsc2, str(shared("genesets", "precily_msigdb_c2.cp.v6.1.symbols.gmt")))
    assert m.gsva.member.shape == (412, 484)  # sets with >= 5 measured genes (baselines/Precily.md: 412)
    genes, names = gdsc2.gene_space.genes, list(m.hparams["pathways"])[:20]
    cells = gdsc2.cells[:150]
    sets = {k: [genes[i] for i in m.hparams["pathways"][k]] for k in names}
    df = pd.DataFrame(gdsc2.expression.numpy().T, index=genes, columns=gdsc2.cells)
    ref = gseapy.gsva(df, sets, min_size=1, max_size=10000, threads=1, kcdf="Gaussian", verbose=False)
    ref = ref.res2d.pivot(index="Term", columns="Name", values="ES").astype(float)
    ours = m.gsva(gdsc2.expression[:150]).numpy()[:, :20]
    for j, k in enumerate(names):
        assert np.corrcoef(ref.loc[k, cells].to_numpy(), ours[:, j])[0, 1] > 0.999


def test_precily_trains_and_round_trips(gdsc2, split, tmp_path):
    from tests.conftest import shared

    opts = {"pathways_file": str(shared("genesets", "precily_msigdb_c2.cp.v6.1.symbols.gmt"))}
    small = {"train": split["train"][:512], "val": split["val"][:64], "test": split["test"][:64]}
    hist = fit_and_reload(gdsc2, "precily", opts, small, tmp_path, epochs=3, batch_size=64, lr=1e-3)
    assert hist[-1]["train_mse"] < hist[0]["train_mse"]
    # the spec's parameter count at 1,329 pathways + 100 descriptors: 2,875,851
    from csg2a_graph.baselines import Precily

    big = Precily(10, {f"P{i}": [0] for i in range(1329)}, 3, ["CCO", "CCN", "CCC"])
    assert sum(q.numel() for q in big.parameters()) == 2_875_851


RES = ESPF.parent


def test_drpreter_graph_matches_the_spec_and_trains(gdsc2, split, tmp_path):
    from types import SimpleNamespace

    from csg2a_graph.baselines import DRPreter
    from csg2a_graph.baselines.deep import build_for
    from csg2a_graph.baselines.drpreter import dgllife_graph
    from csg2a_graph.data import GeneSpace

    if not RES.exists():
        pytest.skip("DRPreter resources not staged")
    files = {
        "pathways_file": str(RES / "drpreter_kegg34_pathway_genes.tsv"),
        "edges_file": str(RES / "drpreter_kegg34_string990_edges.tsv"),
    }
    assert dgllife_graph("CC(=O)Oc1ccccc1C(=O)O").x.shape == (13, 77)
    # the 978-landmark setup of the spec: max_gene 54, 519 edges, 2,080,593 parameters
    land = GeneSpace.landmark()
    full = DRPreter.from_dataset(SimpleNamespace(gene_space=land, gene_mask=torch.ones(978, dtype=torch.bool)), **files)
    assert full.max_gene == 54 and full.cell_edge_index.size(1) == 2 * 519
    assert abs(sum(q.numel() for q in full.parameters()) - 2_080_593) <= 0.1 * 2_080_593
    # the 484 measured genes of GDSC2: 214 edges, two empty pathways
    m = build_for("drpreter", gdsc2, files)
    assert m.cell_edge_index.size(1) == 2 * 214 and sum(1 for p in m.hparams["pathways"] if not p) == 2
    # intended edges stay inside their pathway block; the legacy indexing crowds them into the first nodes
    blocks = torch.repeat_interleave(torch.arange(34), torch.tensor([len(p) for p in m.hparams["pathways"]]))
    ei = m.cell_edge_index
    assert torch.equal(blocks[ei[0]], blocks[ei[1]])
    legacy = DRPreter(gdsc2.gene_space.genes, m.hparams["pathways"], m.hparams["edges"], legacy_edge_indexing=True)
    assert legacy.cell_edge_index.max() < max(len(p) for p in m.hparams["pathways"])
    small = {"train": split["train"][:256], "val": split["val"][:64], "test": split["test"][:64]}
    hist = fit_and_reload(gdsc2, "drpreter", files, small, tmp_path, epochs=2, batch_size=32, lr=1e-3)
    assert hist[-1]["train_mse"] < hist[0]["train_mse"]


def test_deepcovdr_dmpnn_and_training(gdsc2, split, tmp_path):
    from torch_geometric.data import Batch

    from csg2a_graph.baselines import DeepCoVDR
    from csg2a_graph.baselines.deepcovdr import chemprop_graph

    g = Batch.from_data_list([chemprop_graph("CCO"), chemprop_graph("c1ccccc1O")])
    assert g.x.size(1) == 133 and g.edge_attr.size(1) == 14
    ei = g.edge_index  # the reverse of every directed bond, also after batching
    assert torch.equal(ei[0][g.rev], ei[1]) and torch.equal(ei[1][g.rev], ei[0])
    n = sum(q.numel() for q in DeepCoVDR(978).parameters())
    assert abs(n - 6_300_000) <= 0.1 * 6_300_000  # the spec's used parameters at 978 genes
    # small molecules keep the padded attention cheap on CPU
    atoms = gdsc2.molecules.atom_ptr.diff()
    small_drug = atoms[gdsc2.pairs["drug"]] <= 25
    idx = [s[small_drug[s]] for s in (split["train"][:4000], split["val"][:2000], split["test"][:2000])]
    small = {"train": idx[0][:96], "val": idx[1][:32], "test": idx[2][:32]}
    hist = fit_and_reload(gdsc2, "deepcovdr", {"layers": 2}, small, tmp_path, epochs=2, batch_size=32, lr=1e-3)
    assert all(np.isfinite(h["train_mse"]) for h in hist)
    losses = few_steps(gdsc2, "deepcovdr", {"layers": 2}, small["train"][:32], split["train"], steps=6)
    assert losses[-1] < losses[0]


def test_a_baseline_checkpoint_loads_in_a_fresh_process(gdsc2, tmp_path):
    """``csg2a analyze tcga`` / ``predict`` load GraphDRP or DeepTTA checkpoints without importing the baselines first."""
    import subprocess
    import sys

    from csg2a_graph.baselines.deep import build_for
    from csg2a_graph.train.checkpoint import save_checkpoint

    path = save_checkpoint(str(tmp_path / "g.pt"), build_for("graphdrp", gdsc2, {}))
    code = f"from csg2a_graph.train.checkpoint import load_model; print(type(load_model({path!r})).__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "GraphDRP"
