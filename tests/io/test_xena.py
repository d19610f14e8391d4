import numpy as np
import pandas as pd
import pytest

from csg2a_graph.io.xena import patient_of, read_xena, sample_type
from tests.conftest import shared


def test_barcodes():
    assert patient_of("TCGA-OR-A5JM-01A-11R-A29S-07") == "TCGA-OR-A5JM"
    assert sample_type("TCGA-OR-A5JM-01A-11R-A29S-07") == "01" and sample_type("TCGA-OR-A5JM") == ""


def test_xena_layout_primary_tumour_preferred(tmp_path):
    """A small matrix in real Xena layout (genes x sample barcodes), values from the real tumour file."""
    real = pd.read_csv(shared("tcga", "tcga_hanziwei_landmark_expression.csv"), index_col=0, nrows=3)
    genes = list(real.columns[:5])
    p1, p2, p3 = real.index
    cols = {
        f"{p1}-01": real.loc[p1, genes],
        f"{p1}-11": real.loc[p1, genes] + 5,  # normal tissue: never used
        f"{p2}-06": real.loc[p2, genes] + 1,
        f"{p2}-01": real.loc[p2, genes],  # metastasis and primary
        f"{p3}-11": real.loc[p3, genes],
    }  # normal only
    xena = pd.DataFrame(cols, index=genes)
    xena.index.name = "sample"
    path = tmp_path / "TCGA.BRCA.sampleMap_HiSeqV2.tsv"
    xena.to_csv(path, sep="\t")
    values, patients, g, rep = read_xena(str(path))
    assert patients == sorted([p1, p2]) and g == genes
    np.testing.assert_allclose(values[patients.index(p2)], real.loc[p2, genes].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(values[patients.index(p1)], real.loc[p1, genes].to_numpy(), rtol=1e-6)
    assert rep.chosen_sample_types == {"01": 2} and rep.other_samples_dropped == 3
    assert rep.normal_only_patients == [p3]


def test_patient_rows_layout_and_garbage(tmp_path):
    values, patients, genes, rep = read_xena(str(shared("tcga", "tcga_hanziwei_landmark_expression.csv")))
    assert values.shape == (717, 978) and rep.chosen_sample_types == {"patient-level": 717}
    bad = tmp_path / "x.csv"
    bad.write_text("gene,a,b\nTP53,1,2\n")
    with pytest.raises(ValueError, match="TCGA barcodes"):
        read_xena(str(bad))
