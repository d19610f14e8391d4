"""Small real assets shipped inside the package, so the main model runs offline from the wheel alone
(card: ``datasets/assets.md`` in the source tree; ``MANIFEST.json`` here has each file's source,
licence, size and sha256, checked on first use):

- ``string_landmark_edges.csv``: the STRING prior over the 978 L1000 landmark genes (pairs with a
  combined score > 900; CC BY 4.0), 1,771 edges;
- ``lincs_ljp005_a375_24h_level3.gct.gz`` + ``lincs_ljp005_compounds.csv``: a real LINCS L1000
  level-3 plate (A375, 24 h, 55 compounds x 6 doses, 26 DMSO wells; BSD-3 / CC BY 4.0) and its
  compounds' SMILES: the pretraining set of ``csg2a quickstart``;
- ``pretrain_gnns_gcn_supervised_contextpred.pth``: the pretrained GCN drug encoder of Hu et al.
  (ICLR 2020; MIT, ``LICENSE.pretrain-gnns``).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Dict
from csg2a_graph.errors import InputKeyError

HERE = os.path.dirname(os.path.abspath(__file__))
_CHECKED: Dict[str, str] = {}


def manifest() -> Dict[str, Dict]:
    with open(os.path.join(HERE, "MANIFEST.json")) as f:
        return json.load(f)


def asset(name: str) -> str:
    """The path of a shipped asset, its sha256 checked against ``MANIFEST.json`` (once per process)."""
    m = manifest()
    if name not in m:
        raise InputKeyError(f"no shipped asset {name!r}; there are {sorted(m)}")
    path = os.path.join(HERE, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"the shipped asset {name} is missing from {HERE}: reinstall csg2a-graph")
    if _CHECKED.get(path) != m[name]["sha256"]:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != m[name]["sha256"]:
            raise ValueError(f"the shipped asset {path} fails its sha256 check (changed or damaged): reinstall "
                             "csg2a-graph")
        _CHECKED[path] = h.hexdigest()
    return path


def string_prior() -> str:
    """The STRING edge list over the landmark genes (``source,target``), usable as ``prior=``."""
    return asset("string_landmark_edges.csv")


def gcn_weights() -> str:
    """The pretrained GCN drug encoder weights (Hu et al., MIT)."""
    return asset("pretrain_gnns_gcn_supervised_contextpred.pth")


def lincs_plate() -> Dict[str, object]:
    """Keyword arguments of ``LINCSL1000`` for the shipped level-3 plate:
    ``LINCSL1000(root, level=3, **lincs_plate())`` (322 treated wells paired with the plate's DMSO basal)."""
    return {"expression_files": [asset("lincs_ljp005_a375_24h_level3.gct.gz")],
            "smiles_file": asset("lincs_ljp005_compounds.csv"), "prior": string_prior()}


__all__ = ["asset", "manifest", "string_prior", "gcn_weights", "lincs_plate"]
