"""Gene space, prior graph, normalisation, molecules, pair storage, loaders and splits."""

from csg2a_graph.data.gene_space import AlignedExpression, AlignReport, GeneSpace
from csg2a_graph.data.molecules import (
    ATOM_FEATURE_SIZES,
    BOND_FEATURE_SIZES,
    MoleculeReport,
    MoleculeStore,
    canonical_smiles,
    morgan_fingerprints,
    smiles_to_graph,
)
from csg2a_graph.data.names import JoinReport, match_names, normalize_cell_name, normalize_drug_name
from csg2a_graph.data.normalize import robust_zscore
from csg2a_graph.data.pairs import ArrayPairs, PairBatch, PairData, PairDataset, PairLoader
from csg2a_graph.data.prior import PriorReport, batched_prior, build_prior, read_edge_list, read_string_links
from csg2a_graph.data.splits import SCHEMES, Split, load_splits_json, make_split, save_splits_json, write_improve_splits

__all__ = [
    "GeneSpace",
    "AlignReport",
    "AlignedExpression",
    "MoleculeStore",
    "MoleculeReport",
    "smiles_to_graph",
    "canonical_smiles",
    "morgan_fingerprints",
    "ATOM_FEATURE_SIZES",
    "BOND_FEATURE_SIZES",
    "JoinReport",
    "match_names",
    "normalize_cell_name",
    "normalize_drug_name",
    "robust_zscore",
    "PairData",
    "PairBatch",
    "PairDataset",
    "PairLoader",
    "ArrayPairs",
    "PriorReport",
    "batched_prior",
    "build_prior",
    "read_edge_list",
    "read_string_links",
    "SCHEMES",
    "make_split",
    "Split",
    "save_splits_json",
    "load_splits_json",
    "write_improve_splits",
]
