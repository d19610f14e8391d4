"""drevalpy (Bernett et al., the drug-response evaluation framework) as a real client.

- ``write_drevalpy()`` writes any of our pair datasets in drevalpy's layout
  (``DIR/NAME/NAME.csv`` with ``cell_line_name, pubchem_id, drug_name, <measure>, tissue``,
  ``gene_expression.csv``, ``drug_smiles.csv``, ``cell_line_names.csv``, ``drug_names.csv``);
- drevalpy's response CSVs read into our datasets: ``GDSC`` and
  ``ResponseTable`` accept its column names (``cell_line_name``,
  ``drug_name`` / ``pubchem_id``, ``LN_IC50`` / ``LN_IC50_curvecurator`` / ``response``);
- ``drp_model()`` returns a drevalpy ``DRPModel`` that runs any of our registered runners (``csg2a``,
  ``rf``, ``additive``...) inside drevalpy's own pipeline (``experiment.train_and_predict``), scored by
  its ``evaluation.evaluate``.

drevalpy is optional (``pip install 'csg2a-graph[drevalpy]'``); only ``drp_model()`` needs it.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import numpy as np
import pandas as pd
import torch

from csg2a_graph.errors import InputKeyError

CELL, DRUG = "cell_line_name", "pubchem_id"  # drevalpy's identifier columns


def write_drevalpy(dataset, out_dir: str, name: Optional[str] = None, measure: str = "LN_IC50", index=None) -> str:
    """Write ``dataset`` (its pairs ``index``, default all) in drevalpy's data layout under
    ``out_dir/name``; the drug identifier is our drug key (drevalpy's ``pubchem_id`` column holds any
    string). Expression is written as it is in the dataset (robust z). Returns the folder.
    """
    name = name or str(getattr(dataset, "name", "csg2a"))
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    p = dataset.pairs
    idx = torch.arange(dataset.num_pairs) if index is None else torch.as_tensor(index).long()
    if p["y"].dim() != 1:
        raise ValueError(f"{dataset!r} has profile targets; drevalpy takes one response per pair")
    names = dataset.drug_meta.get("name") or dataset.drugs
    tissue = dataset.cell_meta.get("tcga") if hasattr(dataset, "cell_meta") else None
    cells, drugs = p["cell"][idx].tolist(), p["drug"][idx].tolist()
    resp = pd.DataFrame(
        {
            CELL: [dataset.cells[c] for c in cells],
            DRUG: [dataset.drugs[d] for d in drugs],
            "drug_name": [names[d] for d in drugs],
            measure: p["y"][idx].numpy(),
        }
    )
    if tissue:
        resp["tissue"] = [tissue[c] or "unknown" for c in cells]
    resp.to_csv(os.path.join(folder, f"{name}.csv"), index=False)
    used_c = sorted(set(cells))
    expr = pd.DataFrame(dataset.expression[used_c].numpy(), columns=dataset.gene_space.genes)
    expr.insert(0, CELL, [dataset.cells[c] for c in used_c])
    expr.to_csv(os.path.join(folder, "gene_expression.csv"), index=False)
    used_d = sorted(set(drugs))
    pd.DataFrame(
        {DRUG: [dataset.drugs[d] for d in used_d], "canonical_smiles": [dataset.molecules.smiles[d] for d in used_d]}
    ).to_csv(os.path.join(folder, "drug_smiles.csv"), index=False)
    pd.DataFrame({DRUG: [dataset.drugs[d] for d in used_d], "drug_name": [names[d] for d in used_d]}).to_csv(
        os.path.join(folder, "drug_names.csv"), index=False
    )
    cl = pd.DataFrame({CELL: [dataset.cells[c] for c in used_c]})
    if tissue:
        cl["tissue"] = [tissue[c] or "unknown" for c in used_c]
    cl.to_csv(os.path.join(folder, "cell_line_names.csv"), index=False)
    return folder


def drp_model(runner: str = "csg2a", options: Optional[Dict[str, Any]] = None, prior: Optional[str] = "shipped"):
    """A drevalpy ``DRPModel`` class running our runner ``runner`` (any name of
    ``csg2a_graph.registry.RUNNERS``) with ``options`` (the runner's, as in ``csg2a cv
    --model-option``). ``prior``: ``"shipped"`` (the STRING landmark prior in the package), a STRING edge
    file, or ``None``. Features: ``gene_expression.csv`` and ``drug_smiles.csv`` of the dataset folder
    (``write_drevalpy()`` writes both).

    Our runners train and predict in one call (the fold's split is theirs), so ``train`` keeps the
    training (and early-stopping) pairs and ``predict`` runs the runner on them plus the pairs asked for.
    """
    from drevalpy.datasets.dataset import FeatureDataset
    from drevalpy.models.drp_model import DRPModel

    from csg2a_graph.registry import RUNNERS, load_builtin

    load_builtin()
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; registered: {sorted(RUNNERS)}")
    base_options = dict(options or {})

    class CSG2AGraphModel(DRPModel):
        """csg2a-graph's ``{runner}`` runner inside drevalpy."""

        early_stopping = True
        is_single_drug_model = False

        @classmethod
        def get_model_name(cls) -> str:
            return f"csg2a-graph:{runner}"

        @property
        def cell_line_views(self):
            return ["gene_expression"]

        @property
        def drug_views(self):
            return ["smiles"]

        def build_model(self, hyperparameters: Dict[str, Any]) -> None:
            self.hyperparameters = dict(hyperparameters or {})
            self._train = None

        def train(
            self,
            output,
            cell_line_input,
            drug_input=None,
            output_earlystopping=None,
            model_checkpoint_dir: str = "checkpoints",
        ) -> None:
            self._train = (output.copy(), None if output_earlystopping is None else output_earlystopping.copy())
            self._dir = model_checkpoint_dir

        def predict(self, cell_line_ids, drug_ids, cell_line_input, drug_input=None) -> np.ndarray:
            if self._train is None:
                raise RuntimeError("predict() before train()")
            train, es = self._train
            parts = [(train.cell_line_ids, train.drug_ids, train.response, "train")]
            if es is not None and len(es):
                parts.append((es.cell_line_ids, es.drug_ids, es.response, "val"))
            parts.append((np.asarray(cell_line_ids), np.asarray(drug_ids), None, "test"))
            ds, split = _pairs(parts, cell_line_input, drug_input, prior)
            if split["val"].numel() == 0:  # our runners validate on something: the last 10 % of training
                n = split["train"].numel()
                split["val"], split["train"] = split["train"][int(0.9 * n) :], split["train"][: int(0.9 * n)]
            opts = {**base_options, **self.hyperparameters}
            seed = int(opts.pop("seed", 0))
            run_dir = os.path.join(self._dir, "csg2a_graph_run")
            os.makedirs(run_dir, exist_ok=True)
            pred = RUNNERS[runner](ds, split, opts, run_dir, seed)
            return pred.reshape(-1).cpu().numpy().astype(np.float64)

        def load_cell_line_features(self, data_path: str, dataset_name: str):
            return FeatureDataset.from_csv(
                os.path.join(data_path, dataset_name, "gene_expression.csv"),
                id_column=CELL,
                view_name="gene_expression",
            )

        def load_drug_features(self, data_path: str, dataset_name: str):
            t = pd.read_csv(os.path.join(data_path, dataset_name, "drug_smiles.csv"), dtype=str)
            return FeatureDataset(
                features={d: {"smiles": np.array([s])} for d, s in zip(t[DRUG], t["canonical_smiles"])}
            )

    CSG2AGraphModel.__name__ = CSG2AGraphModel.__qualname__ = f"CSG2AGraph_{runner.replace('-', '_')}"
    return CSG2AGraphModel


def _pairs(parts, cell_input, drug_input, prior):
    """An ``ArrayPairs`` of the given (cells, drugs, responses, part) and its split."""
    from csg2a_graph.data import ArrayPairs, GeneSpace

    genes = list(cell_input.meta_info["gene_expression"])
    cells = sorted({str(c) for p in parts for c in p[0]})
    drugs = sorted({str(d) for p in parts for d in p[1]})
    missing = [d for d in drugs if drug_input is None or d not in drug_input.identifiers]
    if missing:
        raise InputKeyError(f"no SMILES for drugs {missing[:5]} in drug_smiles.csv")
    expr = np.stack(
        [np.asarray(cell_input.features[c]["gene_expression"], dtype=np.float32).reshape(-1) for c in cells]
    )
    smiles = [str(np.asarray(drug_input.features[d]["smiles"]).reshape(-1)[0]) for d in drugs]
    cpos, dpos = {c: i for i, c in enumerate(cells)}, {d: i for i, d in enumerate(drugs)}
    cell, drug, y, split, start = [], [], [], {}, 0
    for c_ids, d_ids, resp, part in parts:
        cell += [cpos[str(c)] for c in c_ids]
        drug += [dpos[str(d)] for d in d_ids]
        y += list(np.asarray(resp, dtype=np.float64)) if resp is not None else [float("nan")] * len(c_ids)
        split[part] = torch.arange(start, start + len(c_ids))
        start += len(c_ids)
    split.setdefault("val", torch.zeros(0, dtype=torch.long))
    space = GeneSpace(genes)
    edges = None
    if prior is not None:
        from csg2a_graph.data.prior import resolve_prior

        path = prior
        if prior == "shipped":
            from csg2a_graph import assets

            path = assets.string_prior()
        edges = resolve_prior(None, space, path)
    n = len(cell)
    ds = ArrayPairs(
        torch.from_numpy(expr),
        genes,
        cells,
        drugs,
        smiles,
        torch.tensor(cell),
        torch.tensor(drug),
        torch.full((n,), 10.0),
        torch.full((n,), 72.0),
        torch.tensor(y, dtype=torch.float32),
        prior=edges,
        name="drevalpy",
    )
    return ds, split


__all__ = ["write_drevalpy", "drp_model"]
