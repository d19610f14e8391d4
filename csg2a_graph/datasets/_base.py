"""What every file-backed pair dataset does the same way: raw folder, raw file list, prior lookup."""

from __future__ import annotations

import logging
import os.path as osp
from typing import Dict, List

from csg2a_graph.data.gene_space import GeneSpace
from csg2a_graph.data.pairs import PairDataset, file_fingerprint
from csg2a_graph.data.prior import check_min_score, resolve_prior
from csg2a_graph.datasets._files import find_one

logger = logging.getLogger(__name__)

PRIOR_PATTERNS = ["*STRING_edges*", "9606.protein.links*"]
#: how run records and reports name the STRING prior shipped in the package
SHIPPED_PRIOR = "shipped landmark prior (STRING v12, combined score > 900)"


class RawPairDataset(PairDataset):
    """A ``PairDataset`` whose inputs are files in ``root/raw``.

    Subclasses set ``self._root`` and ``self.prior_arg`` (plus ``min_score`` and
    ``self_loops``) before ``super().__init__`` and implement ``_resolve_data()``
    returning ``{kind: path or list of paths}``; the prior file is added here. ``prior="auto"``:
    a STRING edge list or ``protein.links`` + ``protein.info`` found in ``raw/``, else the STRING prior over
    the landmark genes shipped in the package (``csg2a_graph.assets.string_prior()``; said in the log and
    in ``report["prior"]["source"]``). A prior that joins no two genes of the gene space is refused.
    """

    @property
    def raw_dir(self) -> str:
        return osp.join(self._root, "raw")

    def _resolve_data(self) -> Dict:
        raise NotImplementedError

    def _resolve(self) -> Dict:
        out = dict(self._resolve_data())
        if isinstance(self.prior_arg, str) and self.prior_arg == "auto":
            out["prior"] = find_one(self.raw_dir, PRIOR_PATTERNS, "prior", False)
            if out["prior"] and osp.basename(out["prior"]).startswith("9606.protein.links"):
                out["prior_info"] = find_one(self.raw_dir, ["9606.protein.info*"], "prior_info", True)
            elif not out["prior"]:
                from csg2a_graph.assets import string_prior

                out["prior"] = string_prior()  # no STRING file in raw/: the shipped landmark prior
        elif isinstance(self.prior_arg, str):
            out["prior"] = self.prior_arg
        return out

    def _raw_paths(self) -> List[str]:
        paths: List[str] = []
        for v in self._resolve().values():
            paths += v if isinstance(v, list) else ([v] if v else [])
        return paths

    @property
    def raw_file_names(self) -> List[str]:
        return [osp.relpath(p, self.raw_dir) for p in self._raw_paths()]

    def download(self) -> None:
        self._resolve()  # raises FileNotFoundError saying what to place where

    def common_options(self) -> Dict:
        """Options shared by all file datasets (prior, raw files' fingerprint)."""
        prior = self.prior_arg
        if prior is not None and not isinstance(prior, str):
            prior = f"STRING:{prior.fingerprint()}"
        check_min_score(self.min_score)
        files = [p for p in self._raw_paths() if osp.exists(p)]
        return {
            "prior": prior,
            "min_score": self.min_score,
            "self_loops": self.self_loops,
            "raw": file_fingerprint(files) if files else None,
        }

    def build_prior(self, space: GeneSpace, paths: Dict, report: Dict):
        from csg2a_graph.assets import HERE

        obj = None if isinstance(self.prior_arg, str) else self.prior_arg
        file = paths.get("prior")
        shipped = isinstance(file, str) and osp.dirname(osp.abspath(file)) == osp.abspath(HERE)
        out = resolve_prior(
            obj,
            space,
            file,
            paths.get("prior_info"),
            self.min_score,
            self.self_loops,
            report,
            source=SHIPPED_PRIOR if shipped else None,
        )
        if shipped and self.prior_arg == "auto":
            logger.warning(
                "%s: no STRING file in %s: using the %s (%d undirected edges); place a STRING edge list "
                "or 9606.protein.links + protein.info there, or pass prior=, to use another",
                self.name,
                self.raw_dir,
                SHIPPED_PRIOR,
                report["prior"]["edges_kept"],
            )
        return out


__all__ = ["RawPairDataset", "PRIOR_PATTERNS", "SHIPPED_PRIOR"]
