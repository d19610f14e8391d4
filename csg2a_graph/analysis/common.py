"""Shared helpers of the analyses: batch prediction, paper figures, writing outputs."""

from __future__ import annotations

import json
import os
from typing import Dict, Optional

import torch
from torch import Tensor


@torch.no_grad()
def predict_pairs(
    model, dataset, index=None, batch_size: int = 512, progress: bool = False, desc: str = "predict"
) -> Tensor:
    """``model``'s output for the pairs ``index`` of ``dataset`` (eval mode, batches, optional progress bar)."""
    from csg2a_graph.data.pairs import as_pair_index

    index = as_pair_index(index, dataset.num_pairs)
    device = next(model.parameters()).device
    model = model.eval()
    if model.hparams.get("genes") is not None and getattr(model, "target", "response") == "response":
        genes = list(model.hparams["genes"])
        if genes != list(dataset.gene_space.genes):
            raise ValueError(
                f"the model's {len(genes)} genes differ from the dataset's {dataset.num_genes}: build the "
                "dataset on the model's gene space (gene_space=GeneSpace(model.hparams['genes']))"
            )
    loader = dataset.loader(index, batch_size=batch_size)
    it = loader
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(loader, total=len(loader), desc=desc, unit="batch")
    out = [model.forward_batch(b.to(device)).float().cpu() for b in it]
    return torch.cat(out) if out else torch.zeros(0)


def write_json(obj: Dict, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, default=_plain)
    return path


def _plain(v):
    if hasattr(v, "item"):
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def drug_names(dataset) -> list:
    return [str(n) for n in (dataset.drug_meta.get("name") or dataset.drugs)]


def find_drug(dataset, name: str) -> Optional[int]:
    """A drug id by (normalised) name or id, ``None`` when absent."""
    from csg2a_graph.data.names import normalize_drug_name

    key = normalize_drug_name(name)
    for i, (d, n) in enumerate(zip(dataset.drugs, drug_names(dataset))):
        if normalize_drug_name(d) == key or normalize_drug_name(n) == key:
            return i
    return None


__all__ = ["predict_pairs", "write_json", "pyplot", "drug_names", "find_drug"]
