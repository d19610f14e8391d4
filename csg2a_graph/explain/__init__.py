"""Attribution: which genes, gene pairs and atoms drove a prediction (Captum, PyG explain)."""

from csg2a_graph.explain.attention import DrugMaps, drug_attention_maps, prior_edge_attention, top_gene_pairs
from csg2a_graph.explain.attribution import METHODS, GeneAttributions, deletion_curve, explain_genes
from csg2a_graph.explain.drug import DrugAttributions, explain_drug

__all__ = [
    "METHODS",
    "GeneAttributions",
    "explain_genes",
    "deletion_curve",
    "DrugMaps",
    "drug_attention_maps",
    "top_gene_pairs",
    "prior_edge_attention",
    "DrugAttributions",
    "explain_drug",
]
