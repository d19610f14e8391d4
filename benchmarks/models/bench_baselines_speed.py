"""Training throughput (pairs/s) of every model on real GDSC2 batches, side by side in one run.

    python benchmarks/models/bench_baselines_speed.py [--steps 10] [--models ...] > benchmarks/results/baselines_speed.md

Each deep model trains ``--steps`` Adam steps (after 3 warm-up steps, which also fill the per-SMILES caches)
at its original batch size on shuffled real GDSC2 pairs (484 measured landmark genes, the staged STRING
prior); forward, backward and the optimiser step are timed together, the data loading too (it is part of
training). Classical models: fit time on 10,000 training pairs. Run it alone: a background job on these
2-core machines makes everything several times slower.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import GDSC_FILES, SHARED, link  # noqa: E402

DEEP = {  # model -> (runner options, batch size = the original's)
    "csg2a": ({}, 128),
    "graphdrp": ({}, 1024),
    "deeptta": ({}, 64),
    "pathdnn": ({}, 512),
    "precily": ({}, 128),
    "drpreter": ({}, 128),
    "deepcovdr": ({}, 32),
    "gene-gcn": ({"conv": "gcn"}, 128),
    "gene-gat": ({"conv": "gat"}, 128),
    "gene-gin": ({"conv": "gin"}, 128),
    "gene-csg2a": ({"conv": "csg2a"}, 128),
    "gene-csg2a+gcn": ({"conv": "csg2a+gcn"}, 128),
}


def build(name, ds, opts):
    from csg2a_graph.baselines.deep import build_for
    from csg2a_graph.nn.models import CSG2A, CSG2AFineTune

    if name == "csg2a":  # the fine-tuned model on a freshly initialised network (trainable: the upper bound)
        net = CSG2A(ds.gene_space.genes, prior=(ds.prior_edge_index, ds.prior_edge_weight), drug_encoder="gin")
        return CSG2AFineTune.from_pretrained(
            net, genes=ds.gene_space.genes, measured=ds.gene_mask.tolist(), freeze=False
        )
    res = SHARED.parent / "baselines" / "resources"
    files = {
        "pathdnn": {
            "pathways_file": str(SHARED / "genesets" / "msigdb_c2.cp.kegg.v7.5.1.symbols.gmt"),
            "targets_file": str(SHARED / "gdsc" / "gdsc_drug_list_20220812.csv"),
        },
        "precily": {"pathways_file": str(SHARED / "genesets" / "precily_msigdb_c2.cp.v6.1.symbols.gmt")},
        "drpreter": {
            "pathways_file": str(res / "drpreter_kegg34_pathway_genes.tsv"),
            "edges_file": str(res / "drpreter_kegg34_string990_edges.tsv"),
        },
    }
    if name in files:
        return build_for(name, ds, files[name])
    return build_for("gene-graph" if name.startswith("gene-") else name, ds, opts)


def time_model(name, ds, opts, batch, steps):
    torch.manual_seed(0)
    model = build(name, ds, opts)
    model.set_target_scaler(ds.pairs["y"])
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    it = iter(ds.loader(None, batch_size=batch, shuffle=True, seed=0))

    def step():
        b = next(it)
        loss = (model.forward_batch(b) - b.y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return len(b)

    for _ in range(3):
        step()
    t0, n = time.perf_counter(), 0
    for _ in range(steps):
        n += step()
    dt = time.perf_counter() - t0
    return n / dt, dt / steps * 1000, sum(p.numel() for p in model.parameters())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--models", nargs="+", default=list(DEEP) + ["rf", "svm"])
    p.add_argument("--work", default="runs/bench_speed")
    args = p.parse_args(argv)
    if not os.environ.get("CSG2A_ESPF_DIR") and (SHARED.parent / "baselines/resources/espf").exists():
        os.environ["CSG2A_ESPF_DIR"] = str(SHARED.parent / "baselines/resources/espf")
    from csg2a_graph.datasets import GDSC

    ds = GDSC(link(Path(args.work) / "gdsc2", GDSC_FILES), log=False)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("# Training throughput of every model (real GDSC2 batches)\n")
    print(
        f"Command: `python benchmarks/models/bench_baselines_speed.py --steps {args.steps}`; "
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads; date {time.strftime('%Y-%m-%d')}; "
        f"revision {rev}. Dataset: {ds}.\n"
    )
    print("| model | batch | parameters | ms / step | pairs / s | x csg2a |")
    print("|---|---|---|---|---|---|")
    ref = None
    rows = []
    for name in args.models:
        if name in DEEP:
            opts, batch = DEEP[name]
            pps, ms, params = time_model(name, ds, opts, batch, args.steps)
        else:
            from csg2a_graph.train.cv import load_builtin_runners

            runner = load_builtin_runners()[name]
            g = torch.Generator().manual_seed(0)
            idx = torch.randperm(ds.num_pairs, generator=g)
            split = {"train": idx[:10000], "val": idx[10000:10100], "test": idx[10100:10200]}
            opts = {"max_features": 0.33} if name == "rf" else {}
            t0 = time.perf_counter()
            runner(ds, split, opts, args.work, 0)
            dt = time.perf_counter() - t0
            pps, ms, params, batch = 10000 / dt, float("nan"), None, "fit on 10,000"
        if name == "csg2a":
            ref = pps
        rows.append(name)
        ratio = f"{pps / ref:.2f}" if ref else "—"
        print(
            f"| {name} | {batch} | {params if params is not None else '—'} | "
            f"{'—' if ms != ms else f'{ms:.0f}'} | {pps:,.0f} | {ratio} |",
            flush=True,
        )
    print(
        "\nDeep models: Adam steps at the original batch size, forward + backward + step + loading, each "
        "distinct drug of a batch encoded once. `csg2a` here is the fine-tuned network trained end to end from "
        "a fresh GIN-encoder network (its frozen default is cheaper). Classical rows: pairs fitted per second "
        "(RF: 100 trees, max_features 0.33; SVM: Nyström 2,000 + linear SVR)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
