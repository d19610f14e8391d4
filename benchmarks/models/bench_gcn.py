"""The pretrained GCN drug encoder: its sparse forms vs the per-edge message-passing form, side by side.

    python benchmarks/models/bench_gcn.py [--steps 20] [--batch-size 128]

Same weights, same real GDSC2 batches (the drugs of 128 random pairs: the distinct molecules of a batch),
one run. ``HuGCNConv.forward`` computes a layer as ``A h' + C1 e1 + C2 e2`` (one sparse product, graph
operators built once for the five layers); ``forward_messages`` is pretrain-gnns' per-edge form (the
reference, what the package ran before). Timed: the encoder's forward alone (eval), and a whole
fine-tuning step of the released CSG2A (frozen part in training mode, so the encoder runs every step;
and unfrozen, so it is also differentiated), forward + backward + Adam. The sparse operator ``A`` is CSR (built
from the edges sorted by target: no value-dependent size); the COO form with ``coalesce()`` it replaced (2026-12-05)
is timed beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks" / "models"))


@contextlib.contextmanager
def message_form():
    """Every HuGCNConv computes its per-edge message-passing form (the reference)."""
    from csg2a_graph.nn.encoders.pretrained_gcn import HuGCNConv

    fast = HuGCNConv.forward
    HuGCNConv.forward = lambda self, x, ei, ea, operators=None: self.forward_messages(x, ei, ea)  # type: ignore
    try:
        yield
    finally:
        HuGCNConv.forward = fast  # type: ignore[method-assign]


@contextlib.contextmanager
def coo_form():
    """``A`` as a coalesced COO tensor (the form before 2026-12-05; ``coalesce()`` sizes its output by the values)."""
    from csg2a_graph.nn.encoders import pretrained_gcn as mod

    csr = mod.gcn_operators

    def coo_built(edge_index, edge_attr, num_nodes, dtype=torch.float32):
        n = num_nodes
        src, dst, norm, bond_type, bond_dir = mod._with_self_loops(edge_index, edge_attr, n, dtype)
        adj = torch.sparse_coo_tensor(torch.stack([dst, src]), norm, (n, n), check_invariants=False).coalesce()
        c1 = norm.new_zeros(n, mod.NUM_BOND_TYPES).index_put_((dst, bond_type), norm, accumulate=True)
        c2 = norm.new_zeros(n, mod.NUM_BOND_DIRS).index_put_((dst, bond_dir), norm, accumulate=True)
        return adj, c1, c2

    mod.gcn_operators = coo_built  # type: ignore[assignment]
    try:
        yield
    finally:
        mod.gcn_operators = csr  # type: ignore[assignment]


def timed(fn, steps: int) -> float:
    for _ in range(3):
        fn()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t) / steps * 1e3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--work", default=str(REPO / "runs" / "bench_gcn"))
    p.add_argument("--pretrained", default=None, help="a pretrained CSG2A checkpoint (default: a fresh released one)")
    args = p.parse_args(argv)
    import bench_accuracy as ba

    from csg2a_graph.datasets import GDSC
    from csg2a_graph.nn.models.csg2a import CSG2A, CSG2AFineTune

    gdsc = GDSC(ba.link(Path(args.work) / "gdsc2", ba.GDSC_FILES), log=False)
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(gdsc.num_pairs, generator=g)[: args.batch_size * (args.steps + 3)]
    batches = list(gdsc.loader(idx, batch_size=args.batch_size, shuffle=False))
    if args.pretrained:
        pre = args.pretrained
    else:
        torch.manual_seed(0)
        pre = CSG2A(
            978, variant="released", drug_encoder="pretrained-gcn", drug_encoder_kwargs={"weights": str(ba.WEIGHTS)}
        )
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    print(
        f"date {time.strftime('%Y-%m-%d %H:%M')}, git {rev}, {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; batches of {args.batch_size} GDSC2 pairs, "
        f"{sum(b.drug_graph.num_graphs for b in batches) / len(batches):.0f} distinct drugs and "
        f"{sum(b.drug_graph.num_nodes for b in batches) / len(batches):.0f} atoms per batch on average"
    )

    def model(freeze: bool):
        torch.manual_seed(0)
        m = CSG2AFineTune.from_pretrained(pre, genes=gdsc.gene_space.genes)  # copies the weights
        m.set_freeze(freeze)
        return m

    enc = model(True).pretrained.cond.drug.eval()
    b0 = batches[0]
    with torch.no_grad():
        fast_out = enc(b0.drug_graph)
        with message_form():
            ref_out = enc(b0.drug_graph)
    print(
        f"max |sparse - messages| of the pooled drug embeddings (eval, one batch): "
        f"{float((fast_out - ref_out).abs().max()):.2e}"
    )

    forms = (
        ("per-edge messages", message_form),
        ("sparse COO (before)", coo_form),
        ("sparse CSR", contextlib.nullcontext),
    )
    rows = []
    with torch.no_grad():
        it = iter(range(10**9))
        res = []
        for _, ctx in forms:
            with ctx():
                res.append(timed(lambda: enc(batches[next(it) % len(batches)].drug_graph), args.steps))
    rows.append(("encoder forward (eval)", res))
    for label, freeze in (
        ("fine-tuning step, released, frozen (train mode)", True),
        ("fine-tuning step, released, unfrozen", False),
    ):
        res = []
        for _, ctx in forms:
            m = model(freeze).train()
            opt = torch.optim.Adam([q for q in m.parameters() if q.requires_grad], lr=1e-4)
            k = iter(range(10**9))

            def step():
                b = batches[next(k) % len(batches)]
                loss = torch.nn.functional.mse_loss(m(*b.inputs()), b.y)
                opt.zero_grad()
                loss.backward()
                opt.step()

            with ctx():
                res.append(timed(step, args.steps))
        rows.append((label, res))
    print()
    print("| | " + " | ".join(f for f, _ in forms) + " | messages / CSR | COO / CSR |")
    print("|---|---|---|---|---|---|")
    for label, (ref, coo, fast) in rows:
        print(
            f"| {label} | {ref:.1f} ms | {coo:.1f} ms | {fast:.1f} ms | **{ref / fast:.2f}×** | **{coo / fast:.2f}×** |"
        )


if __name__ == "__main__":
    main()
