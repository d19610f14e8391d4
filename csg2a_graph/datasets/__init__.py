"""Drug-response datasets and the STRING prior, one file per dataset."""
from csg2a_graph.datasets.gdsc import GDSC
from csg2a_graph.datasets.nci60 import NCI60
from csg2a_graph.datasets.string import STRING

__all__ = ["GDSC", "NCI60", "STRING"]
