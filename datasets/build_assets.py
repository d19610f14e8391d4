"""Build the small assets the main model needs offline, shipped inside the package
(``csg2a_graph/assets``; card: ``datasets/assets.md``). Run from the repository root:

    python datasets/build_assets.py ../shared/data

Writes ``string_landmark_edges.csv`` (the STRING facts the prior needs: which landmark gene pairs
STRING scores above 900), ``lincs_ljp005_a375_24h_level3.gct.gz`` (the real LJP005 level-3 plate,
gzip of the original GCT), ``lincs_ljp005_compounds.csv`` (pert_id, pert_iname, SMILES of that
plate's compounds), the pretrained GCN weights with their licence, and ``MANIFEST.json`` (sha256,
bytes, source, licence of each). Deterministic: the same inputs give the same bytes.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys

import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "csg2a_graph", "assets")


def main(shared: str) -> None:
    sys.path.insert(0, os.path.join(HERE, ".."))
    from csg2a_graph.data import GeneSpace
    from csg2a_graph.datasets.lincs import read_compound_smiles
    from csg2a_graph.io import read_gct
    from csg2a_graph.io.files import sha256

    os.makedirs(OUT, exist_ok=True)
    manifest = {}
    # 1. STRING facts over the landmark genes: one row per unordered pair, both ends landmark genes
    land = GeneSpace.landmark()
    e = pd.read_csv(os.path.join(shared, "string", "STRING_edges.csv"), dtype=str)
    pairs = set()
    for a, b in zip(e.iloc[:, 0], e.iloc[:, 1]):
        ra, rb = land.resolve(a), land.resolve(b)
        if ra and rb and ra != rb:
            pairs.add(tuple(sorted((ra, rb))))
    edges = pd.DataFrame(sorted(pairs), columns=["source", "target"])
    path = os.path.join(OUT, "string_landmark_edges.csv")
    edges.to_csv(path, index=False, lineterminator="\n")
    manifest["string_landmark_edges.csv"] = {
        "source": "STRING v11 human functional associations with combined score > 900 (as thresholded for CSG2A), "
        "restricted to the 978 L1000 landmark genes; pairs re-derived here",
        "licence": "CC BY 4.0 (STRING)",
        "rows": len(edges),
    }
    # 2. the LJP005 A375 level-3 plate, gzip of the original GCT (mtime 0: reproducible bytes)
    gct = os.path.join(shared, "lincs", "cmappy_test_l1000_LJP005_A375_24H.gct")
    path = os.path.join(OUT, "lincs_ljp005_a375_24h_level3.gct.gz")
    with (
        open(gct, "rb") as src,
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as dst,
    ):
        shutil.copyfileobj(src, dst)
    manifest["lincs_ljp005_a375_24h_level3.gct.gz"] = {
        "source": "cmap/cmapPy @ d1652c3: cmapPy/pandasGEXpress/tests/functional_tests/test_l1000.gct "
        f"(LINCS LJP005 plate, A375, 24 h, level 3; sha256 of the GCT {sha256(gct)})",
        "licence": "BSD-3-Clause (Broad CMap); LINCS data CC BY 4.0",
    }
    # 3. SMILES of the plate's compounds (DeepCE's list, then the LINCS pert_info table)
    g = read_gct(gct)
    meta = g.col_meta
    ids = sorted({str(p) for p in meta["pert_id"] if str(p).startswith("BRD-")})
    names = dict(zip(meta["pert_id"].astype(str), meta["pert_iname"].astype(str)))
    by_name: dict = {}
    smi = read_compound_smiles(os.path.join(shared, "lincs", "deepce_brd_smiles.csv"))
    more = read_compound_smiles(os.path.join(shared, "lincs", "dhimmel_lincs_pertinfo.tsv.gz"), by_name)
    from csg2a_graph.datasets.lincs import brd_key

    rows = []
    for p in ids:
        k = brd_key(p)
        s = smi.get(k) or more.get(k) or by_name.get(names.get(p, "").strip().lower())
        if s:
            rows.append({"pert_id": p, "pert_iname": names.get(p, ""), "canonical_smiles": s})
    path = os.path.join(OUT, "lincs_ljp005_compounds.csv")
    pd.DataFrame(rows).to_csv(path, index=False, lineterminator="\n")
    manifest["lincs_ljp005_compounds.csv"] = {
        "source": "SMILES of the plate's compounds from pth1993/DeepCE @ 9b0d04f (drugs_smiles.csv), then "
        "dhimmel/lincs @ 726793b (pertinfo.tsv.gz, CC0), by Broad id then by pert_iname",
        "licence": "facts (structures); CC0 / LINCS CC BY 4.0",
        "rows": len(rows),
    }
    # 4. the pretrained GCN of Hu et al. (MIT) with its licence
    for name in ("pretrain_gnns_gcn_supervised_contextpred.pth", "LICENSE.pretrain-gnns"):
        shutil.copyfile(os.path.join(shared, "pretrained", name), os.path.join(OUT, name))
    manifest["pretrain_gnns_gcn_supervised_contextpred.pth"] = {
        "source": "snap-stanford/pretrain-gnns @ 8b20528: chem/model_architecture/gcn_supervised_contextpred.pth",
        "licence": "MIT (LICENSE.pretrain-gnns)",
    }
    # 5. the LINCS robust-z reference: per landmark gene, median and 1.4826 * MAD over the 165 cell lines'
    #    basal (DMSO MODZ) profiles of TranSiGen (MIT); LINCSL1000's default scale
    import torch

    from csg2a_graph.data.normalize import robust_stats

    b = pd.read_csv(os.path.join(shared, "lincs", "transigen_basal_dmso_modz_165cells.csv"), index_col=0)
    b = b[land.genes]
    med, mad = robust_stats(torch.tensor(b.to_numpy(), dtype=torch.float64), dim=0)
    stats = pd.DataFrame({"gene": land.genes, "median": med[0].numpy().round(6), "mad": mad[0].numpy().round(6)})
    path = os.path.join(OUT, "lincs_basal_robust_stats.csv")
    stats.to_csv(path, index=False, lineterminator="\n")
    ref = os.path.join(shared, "lincs", "transigen_basal_dmso_modz_165cells.csv")
    manifest["lincs_basal_robust_stats.csv"] = {
        "source": "per landmark gene, median and 1.4826 x MAD over the 165 cell lines of myzhengSIMM/TranSiGen @ "
        f"e7582e7 data/LINCS2020/modz_x1.pickle (basal DMSO MODZ profiles, L1000 log2; sha256 of the CSV "
        f"staged from it {sha256(ref)})",
        "licence": "MIT (TranSiGen); LINCS data CC BY 4.0",
        "rows": len(stats),
        "cells": int(len(b)),
    }
    for name, d in manifest.items():
        p = os.path.join(OUT, name)
        d.update({"bytes": os.path.getsize(p), "sha256": sha256(p)})
    with open(os.path.join(OUT, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    for name, d in manifest.items():
        print(f"{name}: {d['bytes']} B, sha256 {d['sha256']}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "data"))
