"""Fine-tuning speed on real GDSC2: this package vs a naive implementation of the released code's design.

    python benchmarks/models/bench_speed.py [--batches 30] [--naive-batches 8] [--batch-size 128]

Both sides fine-tune the same CSG2AFineTune weights (pretrained GCN drug encoder, N=978 pretrained gene
space, h=64, batch 128) on the same GDSC2 batches, forward + backward + Adam step, measured side by side
in one run. The naive side follows the released code's design:

- the drug is encoded once per *pair* (a batch of B molecular graphs, duplicates included);
- the attention ``A = q qᵀ/√h + A_PPI`` is materialised as ``[B, N, N]`` and applied with ``bmm``;
- the frozen parts run in training mode and are recomputed every step (dropout active, no cache).

Ours: each distinct drug encoded once per batch, the frozen condition cached per (drug, dose, time),
the layer's exact factorised path (no ``N x N``). Data loading is timed separately on the same batches.
An epoch is extrapolated from the mean step time x the number of batches of a 90% training split.
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
from torch import nn

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks" / "models"))


class NaiveFineTune(nn.Module):
    """The released code's computation on the weights of a CSG2AFineTune ``ft``."""

    def __init__(self, ft):
        super().__init__()
        self.ft = ft
        pre = ft.pretrained
        N = pre.num_genes
        A = torch.zeros(N, N)
        ei, ew = pre.prior_edge_index, pre.prior_edge_weight
        A[ei[1], ei[0]] = ew
        self.register_buffer("A", A)

    def forward(self, expr, per_pair_graph, dose, time):
        ft, pre = self.ft, self.ft.pretrained
        B = expr.size(0)
        g = ft.scale_input(expr)
        D = pre.cond.encode(per_pair_graph, torch.arange(B), dose, time)  # once per pair, train mode
        conv = pre.conv
        q = g.unsqueeze(-1) * conv.w_gene[:, 0] + D.unsqueeze(-1) * conv.w_cond[:, 0]  # [B, N, h]
        S = torch.bmm(q, q.transpose(1, 2)) * conv.scale + self.A  # [B, N, N]
        z = torch.bmm(S, g.unsqueeze(-1)).squeeze(-1)
        perturbed = pre.out(pre.dropout(torch.relu(pre.norm(z))))
        h = torch.cat([ft.proj_basal(g), ft.proj_perturbed(perturbed), ft.proj_condition(D)], -1)
        return ft.head(h).squeeze(-1) * ft.y_std + ft.y_mean


def step_time(fn, batches, opt, warmup=2):
    for b in batches[:warmup]:
        fn(b, opt)
    t = []
    for b in batches[warmup:]:
        t0 = time.perf_counter()
        fn(b, opt)
        t.append(time.perf_counter() - t0)
    t.sort()
    return sum(t) / len(t), t[len(t) // 2]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--naive-batches", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--work", default=str(REPO / "runs" / "speed"))
    args = p.parse_args(argv)
    import bench_accuracy as A

    from csg2a_graph.nn import CSG2AFineTune

    work = Path(args.work)
    gdsc, lincs, _ = A.datasets(work / "data")
    ckpt = A.pretrained(work, lincs, "full")
    torch.manual_seed(0)
    ft = CSG2AFineTune.from_pretrained(ckpt, genes=gdsc.gene_space.genes, measured=gdsc.gene_mask.tolist())
    ft.set_target_scaler(gdsc.pairs["y"])
    split = gdsc.get_idx_split("mixed", fold=0)
    n_epoch_batches = -(-split["train"].numel() // args.batch_size)
    loader = gdsc.loader(split["train"], batch_size=args.batch_size, shuffle=True, seed=0)
    it = iter(loader)
    batches = [next(it) for _ in range(args.batches + 10)]

    # data loading alone, on the same batches
    t0 = time.perf_counter()
    it = iter(gdsc.loader(split["train"], batch_size=args.batch_size, shuffle=True, seed=0))
    for _ in range(args.batches + 2):
        next(it)
    load = (time.perf_counter() - t0) / (args.batches + 2)

    opt = torch.optim.Adam([q for q in ft.parameters() if q.requires_grad], lr=1e-4)

    def ours(b, opt):
        ft.train()
        loss = ((ft.forward_batch(b) - b.y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    naive = NaiveFineTune(ft)
    per_pair = {}

    def naive_step(b, opt):
        ft.train()
        ft.pretrained.train()  # the released code: frozen layers stay in training mode
        key = id(b)
        if key not in per_pair:  # one graph per pair (the loader's distinct-drug batch, expanded)
            per_pair[key] = gdsc.molecules.batch(b.drug)
        loss = ((naive(b.expr, per_pair[key], b.dose, b.time) - b.y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    # the two computations agree (eval mode, same weights) before timing
    ft.eval()
    with torch.no_grad():
        b = batches[0]
        ref = ft.forward_batch(b)
        alt = naive(b.expr, gdsc.molecules.batch(b.drug), b.dose, b.time)
    agree = float((ref - alt).abs().max())

    mean_ours, med_ours = step_time(ours, batches, opt, warmup=10)  # the condition cache fills in the first steps
    nb = batches[: args.naive_batches + 2]
    for b in nb:  # graph expansion is data preparation, not counted in the naive step
        per_pair[id(b)] = gdsc.molecules.batch(b.drug)
    mean_naive, med_naive = step_time(naive_step, nb, opt)
    epoch_ours = (mean_ours + load) * n_epoch_batches
    epoch_naive = (mean_naive + load) * n_epoch_batches
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"date {time.strftime('%Y-%m-%d %H:%M')}, git {rev}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads",
        f"GDSC2 fine-tuning, pretrained N=978 (GDSC measures 484), h=64, batch {args.batch_size}, "
        f"{n_epoch_batches} batches per epoch (mixed fold 0 training split)",
        f"max |ours - naive| on one batch (eval mode, same weights): {agree:.2e}",
        f"data loading: {load * 1e3:.1f} ms/batch",
        f"ours : {mean_ours * 1e3:8.1f} ms/step (median {med_ours * 1e3:.1f}), epoch {epoch_ours / 60:6.1f} min, "
        f"loading {100 * load / (mean_ours + load):.1f}% of the epoch",
        f"naive: {mean_naive * 1e3:8.1f} ms/step (median {med_naive * 1e3:.1f}), epoch {epoch_naive / 60:6.1f} min",
        f"speed-up per epoch: {epoch_naive / epoch_ours:.1f}x",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
