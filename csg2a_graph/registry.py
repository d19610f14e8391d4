"""The one registry of models and cross-validation runners, by name.

A leaf module (it imports nothing of the package), so every model and runner registers here without an
import cycle: model classes with ``register_model()``, runners with ``register_runner()``.
``load_builtin()`` imports the modules where the package's own models and runners live — the list
below is the one place that says where each lives:

- models ``csg2a-pretrain``, ``csg2a``: ``csg2a_graph.nn.models.csg2a``;
- runner ``csg2a``: ``csg2a_graph.train.runners``;
- runners ``rf``, ``svm``, ``svm-exact``: ``csg2a_graph.baselines.classical``; the naive means:
  ``csg2a_graph.baselines.naive``; the deep baselines (model and runner): their modules in
  ``csg2a_graph.baselines``.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict

#: model name -> ResponseModel subclass (a checkpoint's ``model_name`` rebuilds it)
MODELS: Dict[str, Any] = {}
#: runner name -> ``fn(dataset, split, options, run_dir, seed) -> test predictions``
RUNNERS: Dict[str, Callable] = {}

BUILTIN_MODULES = ("csg2a_graph.nn.models.csg2a", "csg2a_graph.train.runners", "csg2a_graph.baselines")


def register_model(name: str) -> Callable:
    """Class decorator: make a model buildable (and rebuildable from checkpoints) by ``name``."""

    def deco(cls):
        if name in MODELS and MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered by {MODELS[name].__name__}")
        MODELS[name] = cls
        cls.model_name = name
        return cls

    return deco


def register_runner(name: str) -> Callable:
    """Decorator: ``fn(dataset, split, options: dict, run_dir: str, seed: int) -> Tensor`` (test predictions), a
    ``csg2a_graph.typing.Runner``.
    """

    def deco(fn):
        RUNNERS[name] = fn
        return fn

    return deco


def load_builtin() -> None:
    """Import the modules of the package's models and runners (``BUILTIN_MODULES``), once."""
    for mod in BUILTIN_MODULES:
        importlib.import_module(mod)


__all__ = ["MODELS", "RUNNERS", "register_model", "register_runner", "load_builtin", "BUILTIN_MODULES"]
