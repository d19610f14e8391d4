"""``csg2a explain``: gene attributions (Captum) of a checkpoint's predictions; ``csg2a analyze`` lives in
``csg2a_graph.cli.analyze``.
"""

from __future__ import annotations

import json
import os

import numpy as np

from csg2a_graph.cli.common import CLIError, Subcommand, int_at_least, say, write_config
from csg2a_graph.cli.predict import add_pair_args, resolve_pairs


def _load(path: str):
    from csg2a_graph.checkpoint import load_model

    if not os.path.exists(path):
        raise CLIError(f"checkpoint {path} not found")
    return load_model(path)


def _device(model, name: str):
    from csg2a_graph.train.loop import resolve_device

    return model.to(resolve_device(name))


def _target(text: str) -> float:
    import argparse

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (0: off), got {text}")
    return v


#: what ``explain`` writes into its --out folder
OUT_FILES = (
    "gene_attributions.csv",
    "condition_attributions.csv",
    "predictions.csv",
    "faithfulness.csv",
    "faithfulness.png",
    "summary.json",
    "top_genes.png",
    "config.toml",
    "atom_attributions.csv",
    "bond_attributions.csv",
)


class ExplainSubcommand(Subcommand):
    COMMAND = "explain"
    HELP = "gene attributions (Captum) of a checkpoint's predictions for a table of (cell, drug) pairs"

    @classmethod
    def add_args(cls, p):
        from csg2a_graph._names import EXPLAIN_METHODS as METHODS

        p.add_argument("--checkpoint", required=True, help="a fine-tuned model.pt (or a pretraining model.pt)")
        p.add_argument("--pairs", required=True, help="CSV with columns cell and smiles or drug (optional dose, time)")
        p.add_argument("--out", required=True, help="output folder")
        p.add_argument("--method", default="ig", choices=METHODS)
        p.add_argument(
            "--steps",
            type=int_at_least(2),
            default=50,
            help="integration steps (ig, layer-ig); ig starts here and raises them per pair to reach --completeness",
        )
        p.add_argument(
            "--completeness",
            type=_target,
            default=0.05,
            help="ig: relative completeness error to reach per pair (|sum attr - (f(x) - f(0))| <= "
            "c * |f(x) - f(0)|), doubling the steps up to --max-steps; 0 turns it off",
        )
        p.add_argument("--max-steps", type=int_at_least(2), default=1600, help="ig: the most steps per pair")
        p.add_argument("--condition", action="store_true", help="also attribute to the chemical condition vector")
        p.add_argument(
            "--top",
            type=int_at_least(1),
            default=None,
            help="write only the TOP genes of largest |attribution| per pair",
        )
        p.add_argument(
            "--faithfulness",
            action="store_true",
            help="deletion curve: top-k attributed genes vs k random genes set to the baseline",
        )
        p.add_argument(
            "--drug-atoms",
            type=int_at_least(0),
            default=0,
            metavar="N",
            help="also atom and bond attributions (PyG Explainer + CaptumExplainer, IG) for the first N "
            "pairs, drawn on the molecule (CSG2A models)",
        )
        p.add_argument("--batch-size", type=int_at_least(1), default=16)
        p.add_argument("--device", default="auto")
        add_pair_args(p)

    @classmethod
    def check(cls, args):
        if not os.path.exists(args.checkpoint):
            raise CLIError(f"checkpoint {args.checkpoint} not found")
        if args.faithfulness and args.method == "layer-ig":
            raise CLIError("--faithfulness needs attributions over the input genes, not layer-ig")
        from csg2a_graph.cli.rundir import check_output_folder

        check_output_folder("--out", args.out, OUT_FILES)
        for opt, path in (
            ("--checkpoint", args.checkpoint),
            ("--pairs", args.pairs),
            ("--expression", getattr(args, "expression", None)),
        ):
            if (
                path
                and os.path.abspath(os.path.dirname(os.path.abspath(path))) == os.path.abspath(args.out)
                and os.path.basename(path) in OUT_FILES
            ):
                raise CLIError(f"--out {args.out} would overwrite the {opt} file {path}: choose another folder")

    @classmethod
    def run(cls, args):
        import pandas as pd
        import torch

        from csg2a_graph.data.pairs import ArrayPairs
        from csg2a_graph.explain import deletion_curve, explain_genes
        from csg2a_graph.explain.attribution import check_method

        if args.faithfulness and args.method == "layer-ig":
            raise CLIError("--faithfulness needs attributions over the input genes, not layer-ig")
        model = _device(_load(args.checkpoint), args.device)
        check_method(model, args.method, args.condition)  # every option against the model, before any work
        if args.drug_atoms:
            from csg2a_graph.explain.drug import check_drug_model

            check_drug_model(model)
        genes = model.hparams["genes"]
        r = resolve_pairs(args, genes, input_path=args.pairs, info=getattr(model, "checkpoint_info", {}))
        ok = r["ok"]
        if not ok:
            raise CLIError(f"no pair of {args.pairs} could be resolved: {sorted(set(r['errors']))[:3]}")
        rows = np.asarray(r["rows"])[ok]
        uniq_rows, cell = np.unique(rows, return_inverse=True)
        smiles = [r["smiles"][i] for i in ok]
        uniq_smiles = sorted(set(smiles))
        drug = [uniq_smiles.index(s) for s in smiles]
        label_of = {}
        for i in ok:
            label_of.setdefault(r["smiles"][i], r["labels"][i])
        ds = ArrayPairs(
            torch.from_numpy(np.ascontiguousarray(r["expr"][uniq_rows])).float(),
            genes,
            [r["cells"][i] for i in uniq_rows],
            [label_of[s] for s in uniq_smiles],
            uniq_smiles,
            torch.tensor(cell),
            torch.tensor(drug),
            torch.tensor(r["dose"][ok]),
            torch.tensor(r["time"][ok]),
            gene_mask=torch.as_tensor(r["measured"]),
            name="explain",
        )
        target = args.completeness if args.method == "ig" and args.completeness > 0 else None
        att = explain_genes(
            model,
            ds,
            None,
            args.method,
            condition=args.condition,
            n_steps=args.steps,
            batch_size=args.batch_size,
            progress=not args.quiet,
            completeness_target=target,
            max_steps=args.max_steps,
        )
        os.makedirs(args.out, exist_ok=True)
        df = att.to_frame(ds, top=args.top)
        df["pair"] = np.asarray(ok)[df["pair"].to_numpy()]  # row of the input table
        df.to_csv(os.path.join(args.out, "gene_attributions.csv"), index=False)
        if att.condition is not None:
            cf = pd.DataFrame(att.condition.numpy(), columns=att.condition_genes)
            cf.insert(0, "pair", ok)
            cf.to_csv(os.path.join(args.out, "condition_attributions.csv"), index=False)
        pd.DataFrame(
            {
                "pair": ok,
                "cell": [r["table"].iloc[i]["cell"] for i in ok],
                "drug": [r["labels"][i] for i in ok],
                "prediction": att.pred.numpy(),
                **({"prediction_at_baseline": att.pred_baseline.numpy()} if att.pred_baseline is not None else {}),
                **({"convergence_delta": att.delta.numpy()} if att.delta is not None else {}),
            }
        ).to_csv(os.path.join(args.out, "predictions.csv"), index=False)
        summary = {
            "method": args.method,
            "n_pairs": len(ok),
            "n_input_rows": len(r["table"]),
            "rows_with_errors": {str(i): e for i, e in enumerate(r["errors"]) if e},
            "genes": len(att.genes),
            "checkpoint": os.path.abspath(args.checkpoint),
            **att.options,
            **att.completeness(),
        }
        if args.faithfulness:
            curve = deletion_curve(model, ds, att)
            curve.to_csv(os.path.join(args.out, "faithfulness.csv"), index=False)
            summary["faithfulness"] = curve.to_dict(orient="records")
            _plot_curve(curve, os.path.join(args.out, "faithfulness.png"))
        if args.drug_atoms:
            summary["drug_atoms"] = _drug_atoms(model, ds, ok, args)
        with open(os.path.join(args.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        _plot_top(att, os.path.join(args.out, "top_genes.png"))
        write_config(args, args.out)
        msg = f"{len(ok)} pairs attributed with {args.method} over {len(att.genes)} genes -> {args.out}"
        if "completeness_max_abs_error" in summary:
            msg += (
                f" (completeness: max |sum - Δf| = {summary['completeness_max_abs_error']:.3g}, max relative "
                f"{summary['completeness_max_rel_error']:.3g}"
            )
            if att.steps is not None:
                msg += f"; steps {int(att.steps.min())}-{int(att.steps.max())}"
            msg += ")"
            if target is not None and summary["completeness_max_rel_error"] > target:
                short = int((att.steps >= args.max_steps).sum()) if att.steps is not None else 0
                msg += (
                    f"; {short} pairs stayed above the {target:g} target at --max-steps {args.max_steps} "
                    "(raise it, or read their attributions with care)"
                )
        say(msg, args)
        return 0


def _drug_atoms(model, ds, ok, args):
    import pandas as pd
    from rdkit import Chem

    from csg2a_graph.explain.drug import explain_drug

    rows, bonds, files = [], [], []
    for j in range(min(args.drug_atoms, ds.num_pairs)):
        a = explain_drug(model, ds, j)
        mol = Chem.MolFromSmiles(a.smiles)
        names = [atom.GetSymbol() for atom in mol.GetAtoms()] if mol is not None else ["?"] * a.atom.numel()
        rows += [
            {"pair": ok[j], "smiles": a.smiles, "atom": i, "element": names[i], "attribution": float(v)}
            for i, v in enumerate(a.atom.tolist())
        ]
        if a.bond is not None:
            bonds += [
                {"pair": ok[j], "atom_a": u, "atom_b": w, "attribution": float(v)}
                for (u, w), v in zip(a.bond_atoms, a.bond.tolist())
            ]
        files.append(os.path.basename(a.draw(os.path.join(args.out, f"drug_atoms_pair{ok[j]}.png"))))
    pd.DataFrame(rows).to_csv(os.path.join(args.out, "atom_attributions.csv"), index=False)
    pd.DataFrame(bonds).to_csv(os.path.join(args.out, "bond_attributions.csv"), index=False)
    return {
        "pairs": len(files),
        "method": "IntegratedGradients via torch_geometric.explain.CaptumExplainer",
        "images": files,
    }


def _plot_top(att, path: str, k: int = 30) -> None:
    from csg2a_graph.analysis.common import pyplot

    plt = pyplot()
    m = att.expr.mean(0)
    a = att.expr.abs().mean(0)
    top = a.topk(min(k, a.numel())).indices.flip(0)
    fig, ax = plt.subplots(figsize=(5, 0.22 * len(top) + 1))
    ax.barh(range(len(top)), m[top].numpy(), color=["C3" if v > 0 else "C0" for v in m[top].tolist()])
    ax.set_yticks(range(len(top)))
    ax.set_yticklabels([att.genes[i] for i in top.tolist()], fontsize=7)
    ax.set_xlabel(f"mean {att.method} attribution (genes ranked by mean |attribution|)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_curve(curve, path: str) -> None:
    from csg2a_graph.analysis.common import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    ax.plot(curve.k, curve.top, "o-", label="top-k attributed genes")
    ax.errorbar(curve.k, curve.random_mean, yerr=curve.random_sd, fmt="s--", label="k random genes")
    ax.set_xscale("log")
    ax.set_xlabel("genes set to baseline (k)")
    ax.set_ylabel("mean |Δ prediction|")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["ExplainSubcommand"]
