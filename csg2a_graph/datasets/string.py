"""The STRING protein-interaction prior as a one-graph PyG dataset over a gene space."""

from __future__ import annotations

import glob
import json
import logging
import os.path as osp
from typing import Callable, List, Optional, Tuple

import pandas as pd
import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset

from csg2a_graph.data.gene_space import GeneSpace
from csg2a_graph.data.pairs import file_fingerprint, options_tag
from csg2a_graph.data.prior import PriorReport, build_prior, check_min_score, read_edge_list, read_string_links
from csg2a_graph.io.files import download

logger = logging.getLogger(__name__)

URLS = {
    "links": "https://stringdb-downloads.org/download/protein.links.v12.0/9606.protein.links.v12.0.txt.gz",
    "links_detailed": "https://stringdb-downloads.org/download/protein.links.detailed.v12.0/9606.protein.links.detailed.v12.0.txt.gz",
    "info": "https://stringdb-downloads.org/download/protein.info.v12.0/9606.protein.info.v12.0.txt.gz",
    "aliases": "https://stringdb-downloads.org/download/protein.aliases.v12.0/9606.protein.aliases.v12.0.txt.gz",
}


class STRING(InMemoryDataset):
    r"""STRING v12 human interactions restricted to a gene space: the shared sparse prior.

    The graph has one node per gene of ``gene_space`` (in order), undirected
    edges stored in both directions, and optional self-loops, i.e. the paper's
    $A_{PPI} = I + A$ with $A_{ij} = 1$ when the STRING combined
    score of genes *i*, *j* exceeds ``min_score``.

    Raw files (``root/raw``), the first found is used:

    - official ``9606.protein.links[.detailed].v12.0.txt[.gz]`` plus
      ``9606.protein.info.v12.0.txt[.gz]`` and/or ``9606.protein.aliases.v12.0.txt[.gz]``
      to map ENSP ids to symbols (``preferred_name`` first, then aliases);
    - a plain symbol edge list ``*edges*.csv`` (``source,target``; CSG2A's
      ``STRING_edges.csv``, already thresholded at 900).

    Args:
        root: dataset folder.
        gene_space: the node set (default: the 978 L1000 landmark genes).
        min_score: combined-score threshold (0..1000) for ``protein.links`` files.
        self_loops: add ``(i, i)`` edges of weight 1.
        weighted: weights ``score / 1000`` instead of 1 (``protein.links`` only).

    Use it in any PyG model: ``g = STRING(root)[0]`` has ``edge_index``,
    ``edge_weight`` and ``num_nodes = len(gene_space)``; ``STRING(root).report``
    gives coverage (genes touched, edges kept, connected components).

    **STATS (the staged CSG2A ``STRING_edges.csv``, landmark space, self-loops):**

    .. list-table::
        :header-rows: 1

        * - #nodes
          - #edges
          - #undirected edges
          - #genes touched
        * - 978
          - 4,520
          - 1,771
          - 608

    (``#edges`` counts both directions and the 978 self-loops; ``datasets/string.md``.)
    """

    def __init__(
        self,
        root: str,
        gene_space: Optional[GeneSpace] = None,
        min_score: int = 900,
        self_loops: bool = True,
        weighted: bool = False,
        transform: Optional[Callable] = None,
        force_reload: bool = False,
        log: bool = True,
    ):
        self.gene_space = gene_space if gene_space is not None else GeneSpace.landmark()
        self.min_score, self.self_loops, self.weighted = check_min_score(min_score), self_loops, weighted
        self._root = root
        super().__init__(root, transform, None, None, log=log, force_reload=force_reload)
        self.load(self.processed_paths[0])
        self.report = json.loads(self._data.report_json) if hasattr(self._data, "report_json") else {}

    @property
    def raw_dir(self) -> str:
        return osp.join(self._root, "raw")

    def _files(self):
        def one(pattern):
            hits = sorted(glob.glob(osp.join(glob.escape(self.raw_dir), pattern)))
            return hits[0] if hits else None

        links = one("9606.protein.links.detailed.v12*") or one("9606.protein.links.v12*")
        if links:
            info, aliases = one("9606.protein.info*"), one("9606.protein.aliases*")
            if not (info or aliases):
                raise FileNotFoundError(
                    f"{links} needs 9606.protein.info.v12.0.txt.gz (or protein.aliases) "
                    f"in {self.raw_dir} to map ENSP ids to gene symbols"
                )
            return {"links": links, "info": info, "aliases": aliases}
        edges = one("*edges*.csv") or one("*edges*.tsv") or one("*edges*.txt")
        if edges:
            return {"edges": edges}
        raise FileNotFoundError(
            f"no STRING file in {self.raw_dir}: place 9606.protein.links.v12.0.txt.gz and "
            f"9606.protein.info.v12.0.txt.gz there (from {URLS['links']} and {URLS['info']}), "
            f"or a symbol edge list named *edges*.csv"
        )

    @property
    def raw_file_names(self) -> List[str]:
        return [osp.basename(p) for p in self._files().values() if p]

    def download(self) -> None:
        self._files()  # raises with what to place where (the network is not assumed)

    @property
    def processed_file_names(self) -> List[str]:
        opts = {
            "genes": self.gene_space.genes,
            "min_score": self.min_score,
            "self_loops": self.self_loops,
            "weighted": self.weighted,
            "raw": file_fingerprint([p for p in self._files().values() if p]),
        }
        return [f"string_{options_tag(opts)}.pt"]

    def process(self) -> None:
        f = self._files()
        if "links" in f:
            edges, names = read_string_links(f["links"], self.min_score, info=f.get("info"), aliases=f.get("aliases"))
            if not self.weighted:
                edges["score"] = 1000.0
            ei, ew, rep = build_prior(edges, self.gene_space, names, self_loops=self.self_loops)
            rep.min_score = self.min_score
        else:
            ei, ew, rep = build_prior(read_edge_list(f["edges"]), self.gene_space, self_loops=self.self_loops)
        logger.info("%s", rep)
        data = Data(edge_index=ei, edge_weight=ew, num_nodes=len(self.gene_space))
        data.report_json = json.dumps(rep.to_dict())
        data.genes_json = json.dumps(self.gene_space.genes)
        self.save([data], self.processed_paths[0])

    # ------------------------------------------------------------------ use
    @property
    def edge_index(self) -> Tensor:
        return self._data.edge_index

    @property
    def edge_weight(self) -> Tensor:
        return self._data.edge_weight

    def fingerprint(self) -> str:
        return self.processed_file_names[0]

    def to_sparse(self) -> Tensor:
        """The prior as a ``[N, N]`` torch sparse COO tensor."""
        n = len(self.gene_space)
        return torch.sparse_coo_tensor(self.edge_index, self.edge_weight, (n, n)).coalesce()

    def restrict(self, space: GeneSpace) -> Tuple[Tensor, Tensor, PriorReport]:
        """The same prior over another gene space (e.g. the genes a dataset measured)."""
        genes = self.gene_space.genes
        ei, ew = self.edge_index, self.edge_weight
        keep = ei[0] < ei[1]  # one direction, no self loops
        df = pd.DataFrame(
            {
                "protein1": [genes[i] for i in ei[0, keep].tolist()],
                "protein2": [genes[i] for i in ei[1, keep].tolist()],
                "score": (ew[keep] * 1000.0).tolist(),
            }
        )
        return build_prior(df, space, self_loops=self.self_loops)

    def summary(self) -> dict:
        return {
            "dataset": "string",
            "num_genes": len(self.gene_space),
            "num_edges": int(self.edge_index.size(1)),
            **self.report,
        }


def fetch_string(raw_dir: str, timeout: float = 30.0) -> Tuple[bool, str]:
    """Download ``9606.protein.links.v12.0.txt.gz`` and ``protein.info`` from the official site into
    ``raw_dir``. STRING publishes no checksums: the sha256 of what arrived is logged (and stated in
    ``datasets/string.md`` once a networked machine has fetched them). Returns ``(ok, message)``.
    """
    import os

    os.makedirs(raw_dir, exist_ok=True)
    for key in ("links", "info"):
        dst = osp.join(raw_dir, osp.basename(URLS[key]))
        if osp.exists(dst):
            continue
        try:
            got = download(URLS[key], dst, timeout=timeout)
            logger.info("downloaded %s (sha256 %s)", dst, got)
        except Exception as e:  # noqa: BLE001 - no network: the caller decides what to do
            return False, f"STRING could not be downloaded from {URLS[key]} ({type(e).__name__})"
    return True, f"STRING v12 downloaded to {raw_dir}"


__all__ = ["STRING", "URLS", "fetch_string"]
