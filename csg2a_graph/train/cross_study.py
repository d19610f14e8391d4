"""Cross-study evaluation: train on one dataset, predict another on the shared gene space.

``CombinedPairs`` puts a *source* and a *target* dataset into one in-memory pair dataset
(source pairs first), so every registered runner of ``csg2a_graph.train.cv`` — naive means,
RF, SVR, CSG²A, the deep baselines — trains on source pairs and predicts target pairs with no
code of its own. Joins, each reported:

* **drugs** are one drug when they are one compound (``compound_key()``:
  InChIKey skeleton of the largest fragment, so salts and stereo-isomers match) or, failing that,
  share a normalised name; the source's molecule is kept.
* **cell lines** are one line when they share a normalised name *and* their expression rows are
  equal (GDSC1/GDSC2/CCLE built from one expression matrix); a same-named line with other
  expression (NCI-60's CellMiner profile of a line GDSC also screens) stays a separate sample,
  because what a model sees is the expression row.

``cross_study()`` fits each model once on the source (a seeded 90/10 train/validation split)
and reports metrics on named subsets of the target pairs (``new_pairs``: (line, compound) pairs
the source never measured; ``seen_drugs`` / ``new_drugs``...). When the two studies measure
response in different units or directions (GDSC ln IC50, higher = resistant; NCI-60 −log10 GI50,
higher = sensitive) only rank and correlation metrics are reported, on the prediction turned to
the target's direction; RMSE needs one unit and is left empty.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Dataset

from csg2a_graph.data.molecules import MoleculeStore, compound_key, group_ids
from csg2a_graph.data.names import normalize_cell_name, normalize_drug_name
from csg2a_graph.data.pairs import PairDataset
from csg2a_graph.train.metrics import grouped_pearson, grouped_spearman, pearson, rmse, spearman

logger = logging.getLogger(__name__)

CROSS_COLUMNS = [
    "task",
    "source",
    "target",
    "model",
    "subset",
    "n_test",
    "n_drugs",
    "n_cells",
    "rmse",
    "pcc",
    "scc",
    "pcc_per_drug",
    "scc_per_drug",
    "direction",
    "seconds",
    "git_revision",
]


def _drug_names(ds) -> List[str]:
    return [str(n) for n in ds.drug_meta.get("name") or ds.drugs]


class CombinedPairs(PairDataset):
    """``source`` and ``target`` pair datasets as one in-memory dataset over one gene space.

    Pairs ``0 .. source.num_pairs - 1`` are the source's, in order; the rest are the target's.
    ``self.origin`` (bool, per pair) is ``True`` for target pairs; ``self.join`` reports the
    drug and cell-line matches. Both datasets must hold the same genes in the same order
    (build the target with ``gene_space=source.gene_space``). The STRING prior is the source's.
    """

    def __init__(self, source: PairDataset, target: PairDataset, expression_atol: float = 1e-5):
        if list(source.gene_space.genes) != list(target.gene_space.genes):
            a, b = set(source.gene_space.genes), set(target.gene_space.genes)
            raise ValueError(
                f"{target.name} has {len(b)} genes, {source.name} {len(a)} ({len(a & b)} shared): "
                f"build the target with gene_space=source.gene_space and missing_genes='fill' so both "
                "use one gene order"
            )
        if source.pairs["y"].dim() != 1 or target.pairs["y"].dim() != 1:
            raise ValueError("cross-study evaluation needs scalar responses (GDSC, CCLE, NCI-60), not profiles")
        self.name = f"{source.name}->{target.name}"
        self.source_name, self.target_name = source.name, target.name
        self._payload = None
        Dataset.__init__(self, None, log=False)
        self._set_payload(self._combine(source, target, expression_atol))
        self.y_name, self.y_direction = source.y_name, source.y_direction

    # in memory: nothing to download, process or cache
    has_download = False
    has_process = False

    @property
    def options(self) -> Dict:
        return {"combined": self.name}

    def _combine(self, src, tgt, atol: float) -> Dict:
        # ---- drugs: compound key, then normalised name
        s_keys = [compound_key(s) for s in src.molecules.smiles]
        s_names = [normalize_drug_name(n) for n in _drug_names(src)]
        by_key = {k: i for i, k in reversed(list(enumerate(s_keys)))}
        by_name = {n: i for i, n in reversed(list(enumerate(s_names)))}
        names, smiles = list(src.drugs), list(src.molecules.smiles)
        display, keys = _drug_names(src), list(s_keys)
        dmap, by_compound, by_drug_name = [], 0, 0
        for j, (smi, nm) in enumerate(zip(tgt.molecules.smiles, _drug_names(tgt))):
            k = compound_key(smi)
            if k in by_key:
                dmap.append(by_key[k])
                by_compound += 1
            elif normalize_drug_name(nm) in by_name:
                dmap.append(by_name[normalize_drug_name(nm)])
                by_drug_name += 1
            else:
                dmap.append(len(names))
                names.append(f"{tgt.name}:{tgt.drugs[j]}")
                smiles.append(smi)
                display.append(nm)
                keys.append(k)
        # ---- cell lines: one name and one expression row
        s_cells = {normalize_cell_name(c): i for i, c in enumerate(src.cells)}
        cells, rows = list(src.cells), [src.expression]
        s_tcga = list(src.cell_meta.get("tcga") or [""] * src.num_cells)
        t_tcga = list(tgt.cell_meta.get("tcga") or [""] * tgt.num_cells)
        tcga = list(s_tcga)
        cmap, same_line, other_expr, new_rows = [], 0, 0, []
        for j, c in enumerate(tgt.cells):
            i = s_cells.get(normalize_cell_name(c))
            if i is not None and torch.allclose(src.expression[i], tgt.expression[j], atol=atol):
                cmap.append(i)
                same_line += 1
                continue
            other_expr += i is not None
            cmap.append(len(cells))
            cells.append(f"{tgt.name}:{c}")
            new_rows.append(j)
            tcga.append(t_tcga[j] or (s_tcga[i] if i is not None else ""))
        if new_rows:
            rows.append(tgt.expression[torch.tensor(new_rows)])
        molecules, mrep = MoleculeStore.from_smiles(names, smiles)
        if len(molecules) != len(names):
            raise ValueError(f"re-featurising the joined drugs lost {mrep.invalid}")
        dmap_t, cmap_t = torch.tensor(dmap, dtype=torch.long), torch.tensor(cmap, dtype=torch.long)
        sp, tp = src.pairs, tgt.pairs
        cat = {k: torch.cat([sp[k], tp[k]]) for k in ("y", "dose", "time")}
        cell = torch.cat([sp["cell"], cmap_t[tp["cell"]]])
        drug = torch.cat([sp["drug"], dmap_t[tp["drug"]]])
        self.origin = torch.cat(
            [torch.zeros(src.num_pairs, dtype=torch.bool), torch.ones(tgt.num_pairs, dtype=torch.bool)]
        )
        self.join = {
            "drugs": {
                "target_drugs": tgt.num_drugs,
                "matched_by_compound": by_compound,
                "matched_by_name": by_drug_name,
                "new": tgt.num_drugs - by_compound - by_drug_name,
            },
            "cells": {
                "target_cells": tgt.num_cells,
                "same_line_same_expression": same_line,
                "same_name_other_expression": int(other_expr),
                "new": tgt.num_cells - same_line,
            },
        }
        report = {"name": self.name, "join": self.join}
        prior = None if src.prior_edge_index is None else (src.prior_edge_index, src.prior_edge_weight)
        return self.make_payload(
            expr=torch.cat(rows),
            genes=list(src.gene_space.genes),
            gene_mask=src.gene_mask & tgt.gene_mask,
            cells=cells,
            molecules=molecules,
            cell=cell,
            drug=drug,
            prior=prior,
            report=report,
            cell_meta={"tcga": tcga} if any(tcga) else None,
            drug_meta={"name": display, "compound_group": group_ids(keys)},
            **cat,  # type: ignore[arg-type]
        )

    def subsets(self) -> Dict[str, Tensor]:
        """Boolean masks over all pairs naming target subsets: ``all``, ``new_pairs`` ((line, drug)
        not measured in the source), ``seen_drugs`` / ``new_drugs``, ``seen_cells`` / ``new_cells``.
        """
        p, src = self.pairs, ~self.origin
        n_d, n_c = self.num_drugs, self.num_cells
        seen_d = torch.zeros(n_d, dtype=torch.bool)
        seen_d[p["drug"][src]] = True
        seen_c = torch.zeros(n_c, dtype=torch.bool)
        seen_c[p["cell"][src]] = True
        key = p["cell"] * n_d + p["drug"]
        measured = torch.zeros(n_c * n_d, dtype=torch.bool)
        measured[key[src]] = True
        t = self.origin
        return {
            "all": t.clone(),
            "new_pairs": t & ~measured[key],
            "seen_drugs": t & seen_d[p["drug"]],
            "new_drugs": t & ~seen_d[p["drug"]],
            "seen_cells": t & seen_c[p["cell"]],
            "new_cells": t & ~seen_c[p["cell"]],
        }


def cross_metrics(y: Tensor, pred: Tensor, drug: Tensor, cell: Tensor, same_scale: bool, sign: float) -> Dict:
    """Metrics of target ``y`` against ``sign * pred``; RMSE only when both studies share a unit."""
    y_np, p_np = y.double().numpy(), sign * pred.double().numpy()
    d = drug.numpy()
    return {
        "n_test": int(y.numel()),
        "n_drugs": int(np.unique(d).size),
        "n_cells": int(cell.unique().numel()),
        "rmse": rmse(y_np, p_np) if same_scale else float("nan"),
        "pcc": pearson(y_np, p_np),
        "scc": spearman(y_np, p_np),
        "pcc_per_drug": grouped_pearson(y_np, p_np, d),
        "scc_per_drug": grouped_spearman(y_np, p_np, d),
    }


def cross_study(
    source: PairDataset,
    target: PairDataset,
    models: Sequence[str],
    out_dir: str,
    task: Optional[str] = None,
    subsets: Sequence[str] = ("all", "new_pairs"),
    model_options: Optional[Dict[str, Dict]] = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    source_subsample: Optional[int] = None,
    jobs: int = 1,
    executor: Optional[str] = None,
):
    """Fit each model on ``source`` and evaluate it on ``target``; one row per (model, subset).

    The fits run through the same task loop as ``cross_validate`` (``jobs`` at once, ``executor`` as there).

    Rows are appended to ``out_dir/cross_study.csv`` as each model finishes (a stopped run
    resumes: finished (task, model) rows are skipped) and predictions go to
    ``out_dir/predictions/<task>_<model>.csv``. ``source_subsample`` trains on a seeded random
    subset of the source pairs (a smaller, stated run). Returns the rows of this task as a DataFrame.
    """
    import pandas as pd

    from csg2a_graph.train.cv import RUNNERS, _append, _fit_task, git_revision, load_builtin_runners
    from csg2a_graph.train.executors import run_tasks

    load_builtin_runners()
    model_options = model_options or {}
    for m in models:
        if model_options.get(m, {}).get("runner", m) not in RUNNERS:
            raise ValueError(f"unknown model {m!r}; registered runners: {sorted(RUNNERS)}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    task = task or f"{source.name}->{target.name}"
    ds = CombinedPairs(source, target)
    masks = ds.subsets()
    unknown = [s for s in subsets if s not in masks]
    if unknown:
        raise ValueError(f"unknown subsets {unknown}; choose from {sorted(masks)}")
    same_scale = source.y_name == target.y_name
    if source.y_direction is None or target.y_direction is None:
        raise ValueError("cross-study evaluation needs datasets whose y_direction is known")
    sign = 1.0 if source.y_direction == target.y_direction else -1.0
    g = torch.Generator().manual_seed(seed)
    src_idx = torch.arange(source.num_pairs)[torch.randperm(source.num_pairs, generator=g)]
    if source_subsample is not None and source_subsample < source.num_pairs:
        src_idx = src_idx[:source_subsample]
    n_val = max(1, int(round(val_fraction * src_idx.numel())))
    test = torch.zeros(ds.num_pairs, dtype=torch.bool)
    for s in subsets:
        test |= masks[s]
    split = {
        "train": src_idx[n_val:].sort().values,
        "val": src_idx[:n_val].sort().values,
        "test": test.nonzero().flatten(),
    }
    os.makedirs(os.path.join(out_dir, "predictions"), exist_ok=True)
    path = os.path.join(out_dir, "cross_study.csv")
    done = set()
    if os.path.exists(path):
        prev = pd.read_csv(path)
        done = {(r.task, r.model) for r in prev.itertuples()}
    with open(os.path.join(out_dir, f"{_slug(task)}_join.json"), "w") as f:
        json.dump(
            {
                "task": task,
                "join": ds.join,
                "same_scale": same_scale,
                "sign": sign,
                "n_train": split["train"].numel(),
                "n_val": n_val,
                "subsets": {s: int(masks[s].sum()) for s in masks},
            },
            f,
            indent=2,
        )
    logger.info("%s: %s", task, ds.join)
    rev = git_revision()
    p = ds.pairs
    labels, tasks = [], []
    for label in models:
        if (task, label) in done:
            logger.info("%s %s: done earlier, skipped", task, label)
            continue
        opts = dict(model_options.get(label, {}))
        runner = RUNNERS[opts.pop("runner", label)]
        run_dir = os.path.join(out_dir, "runs", f"{_slug(task)}_{label}")
        os.makedirs(run_dir, exist_ok=True)
        labels.append(label)
        tasks.append((runner, split, opts, run_dir, seed, "none", 0))
    ex = executor or ("serial" if jobs == 1 else "process")
    for i, out in run_tasks(_fit_task, ds, tasks, jobs=jobs, executor=ex):
        label = labels[i]
        pred = torch.as_tensor(out["pred"]).reshape(-1).float()
        secs = out["seconds"]
        full = torch.full((ds.num_pairs,), float("nan"))
        full[split["test"]] = pred
        te = split["test"]
        pd.DataFrame(
            {
                "pair": (te - source.num_pairs).numpy(),
                "cell": [ds.cells[i] for i in p["cell"][te].tolist()],
                "drug": [ds.drug_meta["name"][i] for i in p["drug"][te].tolist()],
                "y_true": p["y"][te].numpy(),
                "y_pred": pred.numpy(),
                **{s: masks[s][te].numpy() for s in masks if s != "all"},
            }
        ).to_csv(os.path.join(out_dir, "predictions", f"{_slug(task)}_{label}.csv"), index=False)
        for s in subsets:
            sel = masks[s]
            if not sel.any():
                continue
            met = cross_metrics(p["y"][sel], full[sel], p["drug"][sel], p["cell"][sel], same_scale, sign)
            row = {
                "task": task,
                "source": source.name,
                "target": target.name,
                "model": label,
                "subset": s,
                **met,
                "direction": "same" if sign > 0 else "flipped",
                "seconds": round(secs, 2),
                "git_revision": rev,
            }
            _append(path, row, CROSS_COLUMNS)
            print(
                f"{task:>16} {label:>12} {s:>10}: n {met['n_test']:>6}  RMSE {met['rmse']:.3f}  "
                f"SCC {met['scc']:.3f}  per-drug SCC {met['scc_per_drug']:.3f}  ({secs:.0f} s)",
                flush=True,
            )
    df = pd.read_csv(path)
    return df[df.task == task]


def _slug(task: str) -> str:
    return task.replace("->", "_to_").replace("/", "-").replace(" ", "")


__all__ = ["CombinedPairs", "cross_study", "cross_metrics", "CROSS_COLUMNS"]
