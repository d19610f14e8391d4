"""data/featurize.py: the one-hot conventions the published drug encoders differ by, and bonds as edges."""

import pytest
import torch

from csg2a_graph.data.featurize import bond_edge_index, implicit_valence, one_hot
from csg2a_graph.data.molecules import parse_smiles


def test_one_hot_conventions_for_a_value_outside_the_choices():
    assert one_hot("C", ["C", "N", "other"]) == [1.0, 0.0, 0.0]
    assert one_hot("Pt", ["C", "N", "other"], "last") == [0.0, 0.0, 1.0]  # GraphDRP, MAT
    assert one_hot("Pt", ["C", "N"], "extra") == [0.0, 0.0, 1.0] and one_hot("N", ["C", "N"], "extra") == [0, 1, 0]
    assert one_hot("Pt", ["C", "N"], "none") == [0.0, 0.0]  # DGL-LifeSci, DRPreter
    with pytest.raises(ValueError, match="unknown must be"):
        one_hot("C", ["C"], "ignore")


def test_bonds_both_ways_and_valence():
    mol = parse_smiles("CCO")
    ei = bond_edge_index(mol)
    assert ei.tolist() == [[0, 1, 1, 2], [1, 2, 0, 1]]
    assert bond_edge_index(parse_smiles("C")).shape == (2, 0) and ei.dtype == torch.long
    assert [implicit_valence(a) for a in mol.GetAtoms()] == [3, 2, 1]
