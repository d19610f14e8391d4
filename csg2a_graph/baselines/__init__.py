"""Comparison baselines on one harness: every one is a runner of ``csg2a_graph.train.cross_validate()``
(same folds, same metrics, same ``csg2a cv --models``), the deep ones also ``ResponseModel``s
registered by name (``build_model``) and trained by the package's ``Trainer``.

- naive: ``global-mean``, ``drug-mean``, ``cell-mean``, ``additive``, ``tissue-mean``;
- classical: ``rf``, ``svm`` (Nyström RBF SVR), ``svm-exact`` (libsvm on a subsample);
- deep (``csg2a_graph.baselines.deep``): ``graphdrp`` (GraphDRP), ``deeptta`` (DeepTTA), ``pathdnn``
  (PathDNN; options ``pathways_file``, ``targets_file``), ``precily`` (Precily; ``pathways_file``),
  ``drpreter`` (DRPreter; ``pathways_file``, ``edges_file``), ``deepcovdr`` (DeepCoVDR), and the gene-graph
  family ``gene-gcn``, ``gene-gat``, ``gene-gin``, ``gene-csg2a``, ``gene-csg2a+gcn``.
"""

from csg2a_graph.baselines import classical, deepcovdr, deeptta, drpreter, genegraph, graphdrp, naive, pathdnn, precily  # noqa: F401
from csg2a_graph.baselines.classical import nystroem_svr, rbf_gamma_scale
from csg2a_graph.baselines.deepcovdr import DeepCoVDR
from csg2a_graph.baselines.deeptta import DeepTTA, ESPFTokenizer, find_espf
from csg2a_graph.baselines.drpreter import DRPreter
from csg2a_graph.baselines.genegraph import GENE_CONVS, GeneGraphModel
from csg2a_graph.baselines.graphdrp import GraphDRP
from csg2a_graph.baselines.naive import NAIVE
from csg2a_graph.baselines.pathdnn import PathDNN
from csg2a_graph.baselines.precily import GSVA, Precily

__all__ = [
    "NAIVE",
    "nystroem_svr",
    "rbf_gamma_scale",
    "GraphDRP",
    "DeepTTA",
    "ESPFTokenizer",
    "find_espf",
    "GeneGraphModel",
    "GENE_CONVS",
    "PathDNN",
    "Precily",
    "GSVA",
    "DRPreter",
    "DeepCoVDR",
]
