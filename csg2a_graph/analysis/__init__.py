"""The paper's biological analyses: attention maps and MoA, enrichment, zero-shot, TCGA patients."""

from csg2a_graph.analysis.enrich import benjamini_hochberg, enrich
from csg2a_graph.analysis.tcga import summary_table, tcga_ttests
from csg2a_graph.analysis.zero_shot import perturbation_distance, zero_shot_stats

__all__ = ["enrich", "benjamini_hochberg", "tcga_ttests", "summary_table", "perturbation_distance", "zero_shot_stats"]
