"""Drug-response datasets and the STRING prior, one file per dataset."""

from csg2a_graph.datasets.custom import ResponseTable
from csg2a_graph.datasets.gdsc import CCLE, GDSC
from csg2a_graph.datasets.lincs import LINCSL1000
from csg2a_graph.datasets.nci60 import NCI60
from csg2a_graph.datasets.string import STRING
from csg2a_graph.datasets.tcga import TCGA

__all__ = ["CCLE", "GDSC", "LINCSL1000", "NCI60", "ResponseTable", "STRING", "TCGA"]
