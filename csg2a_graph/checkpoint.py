"""Checkpoints that rebuild their model: weights, optimiser, scheduler, epoch, hyperparameters, gene
space, dataset fingerprint, split and package version, all loadable with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import zipfile
from typing import Any, Dict, Optional

import torch

CHECKPOINT_FORMAT = 1


def package_version() -> str:
    from csg2a_graph import __version__

    return __version__


def dataset_fingerprint(dataset) -> Dict[str, Any]:
    """What identifies the data a model was trained on (name, options tag, sizes)."""
    from csg2a_graph.data.pairs import options_tag

    fp = {
        "name": getattr(dataset, "name", type(dataset).__name__),
        "num_pairs": int(dataset.num_pairs),
        "num_genes": int(dataset.num_genes),
    }
    try:
        opts = dataset.cache_options() if hasattr(dataset, "cache_options") else dataset.options
        fp["options"] = options_tag(opts)
    except Exception:  # noqa: BLE001 - datasets without options (in-memory subsets)
        fp["options"] = None
    return fp


def data_card(dataset) -> Dict[str, Any]:
    """What a prediction needs to know of the training data: the target (name, direction, dataset) and
    the expression normalisation (per-gene median and scale), so that new expression is put on the
    training scale and outputs say what they are.
    """
    stats = getattr(dataset, "expression_stats", None)
    return {
        "target": {
            "name": getattr(dataset, "y_name", "response"),
            "unit": getattr(dataset, "y_unit", None),
            "direction": getattr(dataset, "y_direction", None),
            "dataset": getattr(dataset, "name", type(dataset).__name__),
        },
        "normalization": stats if isinstance(stats, dict) else None,
        "measured_genes": dataset.gene_mask.clone() if getattr(dataset, "gene_mask", None) is not None else None,
    }


def save_checkpoint(path: str, model, **extra: Any) -> str:
    """Write ``model`` (its name, hyperparameters and weights) plus ``extra`` atomically to ``path``."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": package_version(),
        "model_name": model.model_name,
        "hparams": model.hparams,
        "model": model.state_dict(),
        "genes": _genes_of(model),
        **extra,
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # a stop mid-write never leaves a broken checkpoint
    return path


def _genes_of(model):
    hp = model.hparams
    return hp.get("genes") or hp.get("pretrained", {}).get("genes")


def load_checkpoint(path: str, map_location="cpu") -> Dict[str, Any]:
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path} not found")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a csg2a-graph checkpoint (give its model.pt)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch's messages run to paragraphs: one line, the cause's kind
        kind = "truncated or damaged" if zipfile.is_zipfile(path) or _looks_like_torch(path) else "not a torch file"
        raise ValueError(f"{path} is not a csg2a-graph checkpoint ({kind}; {type(e).__name__})") from e
    if not isinstance(state, dict) or "model_name" not in state or "hparams" not in state:
        raise ValueError(f"{path} is not a csg2a-graph checkpoint (no model name / hyperparameters)")
    return state


def _looks_like_torch(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(4)
    return head[:2] == b"PK" or head[:1] == b"\x80"  # zip archive or legacy pickle


def load_model(path: str, map_location="cpu", which: Optional[str] = None):
    """Rebuild the model of a checkpoint; the best weights when the checkpoint holds them."""
    from csg2a_graph.registry import MODELS, load_builtin

    state = load_checkpoint(path, map_location)
    name = state["model_name"]
    if name not in MODELS:  # the package's models live in the modules the registry lists
        load_builtin()
    if name not in MODELS:
        raise ValueError(f"{path} holds a {name!r} model, not registered here (known: {sorted(MODELS)})")
    cls = MODELS[name]
    hparams = state["hparams"]
    if hasattr(cls, "upgrade_hparams"):  # checkpoints written by an earlier version of the model
        hparams = cls.upgrade_hparams(hparams)
    model = cls(**hparams)
    key = which or ("best_model" if state.get("best_model") is not None else "model")
    model.load_state_dict(state[key])
    model.eval()
    model.checkpoint_info = {
        k: state.get(k)
        for k in (
            "version",
            "dataset",
            "split_scheme",
            "epoch",
            "best_epoch",
            "best_val",
            "config",
            "target",
            "normalization",
            "measured_genes",
        )
    }
    return model


__all__ = ["save_checkpoint", "load_checkpoint", "load_model", "dataset_fingerprint", "data_card", "CHECKPOINT_FORMAT"]
