"""drevalpy as a real client, on a small real GDSC2 subset: our dataset written in its layout and read back
by our datasets, and CSG2A and a naive baseline trained and predicted by drevalpy's own pipeline
(``experiment.train_and_predict`` on its LPO split) and scored by its ``evaluate``."""

import math

import numpy as np
import pytest
import torch

drevalpy = pytest.importorskip("drevalpy", reason="drevalpy is not installed (pip install -e '.[drevalpy]')")

N_CELLS = 40


@pytest.fixture(scope="module")
def subset(gdsc2, tmp_path_factory):
    from csg2a_graph.interop.drevalpy import write_drevalpy

    cells = torch.arange(N_CELLS)
    idx = torch.isin(gdsc2.pairs["cell"], cells).nonzero().view(-1)
    root = tmp_path_factory.mktemp("drevalpy")
    folder = write_drevalpy(gdsc2, str(root), name="GDSC2sub", index=idx)
    return root, folder, idx


def test_written_files_read_back_by_drevalpy_and_by_us(gdsc2, subset, tmp_path):
    import shutil

    from drevalpy.datasets.dataset import DrugResponseDataset

    from csg2a_graph.datasets import GDSC, ResponseTable

    root, folder, idx = subset
    resp = DrugResponseDataset.from_csv(f"{folder}/GDSC2sub.csv", dataset_name="GDSC2sub", measure="LN_IC50")
    assert len(resp) == idx.numel() and np.allclose(resp.response, gdsc2.pairs["y"][idx].numpy(), atol=1e-6)
    # drevalpy's column names into ours: as GDSC's response table and as your own screen
    raw = tmp_path / "g" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(f"{folder}/GDSC2sub.csv", raw / "drevalpy_GDSC2_ic50.csv")
    shutil.copy(f"{folder}/drug_names.csv", raw / "names.csv")
    from csg2a_graph.datasets.gdsc import read_responses

    r = read_responses(str(raw / "drevalpy_GDSC2_ic50.csv"))
    assert {"CELL_LINE_NAME", "DRUG_NAME", "LN_IC50"} <= set(r.columns) and len(r) == idx.numel()
    raw2 = tmp_path / "c" / "raw"
    raw2.mkdir(parents=True)
    shutil.copy(f"{folder}/GDSC2sub.csv", raw2 / "responses.csv")
    shutil.copy(f"{folder}/gene_expression.csv", raw2 / "expression.csv")
    shutil.copy(f"{folder}/drug_smiles.csv", raw2 / "smiles.csv")
    mine = ResponseTable(str(tmp_path / "c"), normalize=None, log=False)
    assert mine.num_pairs == idx.numel() and mine.num_cells == N_CELLS
    assert GDSC is not None


@pytest.mark.parametrize(
    "runner, options",
    [
        ("additive", {}),
        ("csg2a", {"drug_encoder": "morgan", "hidden_channels": 8, "train": {"epochs": 2, "batch_size": 128}}),
    ],
)
def test_our_models_inside_drevalpys_pipeline(gdsc2, subset, runner, options, tmp_path):
    from drevalpy.datasets.dataset import DrugResponseDataset
    from drevalpy.evaluation import evaluate
    from drevalpy.experiment import train_and_predict

    from csg2a_graph.interop.drevalpy import drp_model

    root, folder, idx = subset
    resp = DrugResponseDataset.from_csv(f"{folder}/GDSC2sub.csv", dataset_name="GDSC2sub", measure="LN_IC50")
    fold = resp.split_dataset(n_cv_splits=5, mode="LPO", random_state=0)[0]
    Model = drp_model(runner, options)
    pred = train_and_predict(
        model=Model(),
        hpams={},
        path_data=str(root),
        train_dataset=fold["train"],
        prediction_dataset=fold["test"],
        early_stopping_dataset=fold["early_stopping"],
        model_checkpoint_dir=str(tmp_path),
    )
    scores = evaluate(pred, ["RMSE", "Pearson"])
    assert len(pred.predictions) == len(fold["test"]) and math.isfinite(scores["RMSE"])
    assert scores["Pearson"] > 0.5, scores  # drug identity alone explains much of ln IC50
