import h5py
import numpy as np
import pandas as pd
import pytest

from csg2a_graph.io import read_gct, read_gctx, read_gctx_meta
from tests.conftest import shared

GCT13 = ("lincs", "cmappy_test_l1000_LJP005_A375_24H.gct")
GCTX = ("lincs", "l1ktools_modzs_n272x978.gctx")


def test_real_gct13_plate():
    g = read_gct(shared(*GCT13))
    assert g.data.shape == (978, 377)
    assert g.col_meta["pert_type"].value_counts().to_dict() == {"trt_cp": 328, "ctl_vehicle": 26, "trt_poscon": 23}
    assert g.row_meta.index[0] == "200814_at" and g.row_meta["pr_gene_symbol"].iloc[0] == "PSME1"
    assert g.col_meta["pert_dose"].isna().sum() == 26  # -666 on DMSO wells became NaN
    # values agree with the derived CSV staged next to it (renamed to CSG2A symbols)
    ref = pd.read_csv(shared("lincs", "ljp005_a375_24h_level3_expression.csv"), index_col=0)
    col = ref.loc["LJP005_A375_24H_X1_B19:A07"]
    np.testing.assert_allclose(g.to_frame()["LJP005_A375_24H_X1_B19:A07"].iloc[0], col["PSME1"], rtol=1e-5)
    sub = read_gct(shared(*GCT13), rid=["218597_s_at", "200814_at"], cid=["LJP005_A375_24H_X1_B19:A07"])
    assert sub.data.shape == (2, 1) and sub.rids == ["218597_s_at", "200814_at"]


def test_gct12(tmp_path):
    p = tmp_path / "x.gct"
    p.write_text("#1.2\n2\t3\nName\tDescription\ts1\ts2\ts3\nTP53\tp53\t1\t2\t3\nEGFR\tna\t4\t5\t6\n")
    g = read_gct(p)
    assert g.data.tolist() == [[1, 2, 3], [4, 5, 6]] and g.cids == ["s1", "s2", "s3"]
    assert g.row_meta["Description"].tolist() == ["p53", "na"]


def test_bad_gct_is_clear(tmp_path):
    p = tmp_path / "bad.gct"
    p.write_text("#1.3\n3\t2\t1\t1\nid\tsym\ta\tb\npert\tna\tx\ty\nG1\tA\t1\t2\n")
    with pytest.raises(ValueError, match="truncated"):
        read_gct(p)
    q = tmp_path / "no.gct"
    q.write_text("hello\n")
    with pytest.raises(ValueError, match="not a GCT"):
        read_gct(q)
    with pytest.raises(KeyError, match="not in the file"):
        read_gct(shared(*GCT13), rid=["nope"])


def test_real_gctx_whole_and_subset():
    full = read_gctx(shared(*GCTX))
    assert full.data.shape == (978, 272)
    with h5py.File(shared(*GCTX)) as f:
        raw = f["0/DATA/0/matrix"][()]  # stored [cols, rows]
    np.testing.assert_array_equal(full.data, raw.T)
    assert full.col_meta["pert_idose"].iloc[0] == "10 µM"  # Latin-1 µ decoded
    cids = [full.cids[200], full.cids[3], full.cids[150]]
    sub = read_gctx(shared(*GCTX), cid=cids, rid=[full.rids[10], full.rids[2]], chunk_size=2)
    np.testing.assert_array_equal(sub.data, full.data[np.ix_([10, 2], [200, 3, 150])])
    assert sub.cids == cids
    by_pos = read_gctx(shared(*GCTX), cidx=[5, 6, 7])
    np.testing.assert_array_equal(by_pos.data, full.data[:, 5:8])
    assert len(read_gctx_meta(shared(*GCTX), "COL")) == 272


def test_gctx_rejects_other_hdf5(tmp_path):
    p = tmp_path / "x.gctx"
    with h5py.File(p, "w") as f:
        f["foo"] = np.zeros(3)
    with pytest.raises(ValueError, match="not a GCTX"):
        read_gctx(p)


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
