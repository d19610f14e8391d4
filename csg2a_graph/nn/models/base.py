"""What every response model shares: kept hyperparameters, a registry by name, checkpoint rebuild."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any, Dict

from torch import Tensor, nn

from csg2a_graph.errors import InputTypeError
from csg2a_graph.registry import MODELS, register_model  # the one registry (a leaf module)


class ResponseModel(nn.Module, metaclass=ABCMeta):
    """Abstract base class: subclasses call ``save_hparams()`` with every constructor argument (plain
    JSON-able values) so that ``type(model)(**model.hparams)`` rebuilds the architecture, and
    implement ``forward(expr, drug_graph, drug_index, dose, time)`` (a subclass without it cannot be made).

    ``target`` says what the model predicts: ``"response"`` (one value per pair, ``[B]``) or
    ``"profile"`` (perturbed expression ``[B, N]``).
    """

    model_name: str = "model"
    target: str = "response"
    hparams: Dict[str, Any]
    y_mean: Tensor  # target standardisation buffers, on models that have them
    y_std: Tensor

    def save_hparams(self, **hparams: Any) -> None:
        self.hparams = dict(hparams)

    @abstractmethod
    def forward(self, expr: Tensor, drug_graph, drug_index: Tensor, dose: Tensor, time: Tensor) -> Tensor:
        """The prediction for ``B`` pairs: basal ``expr [B, N]``, the batch's distinct drug graphs, each pair's
        drug (``drug_index [B]``), ``dose [B]`` (µM) and ``time [B]`` (h); ``[B]`` or ``[B, N]`` (``target``).
        """

    def forward_batch(self, batch) -> Tensor:
        """The model on a ``PairBatch``."""
        return self(*batch.inputs())

    def set_target_scaler(self, y: Tensor) -> None:
        """Standardise the training target: the model predicts ``(y - mean) / std`` internally and
        returns responses on the original scale. Models with a ``y_mean`` / ``y_std`` buffer use it;
        the trainer calls this with the training targets before the first epoch.
        """
        if hasattr(self, "y_mean") and hasattr(self, "y_std") and y.dim() == 1 and y.numel() > 1:
            self.y_mean.fill_(float(y.mean()))
            self.y_std.fill_(float(y.std().clamp_min(1e-6)))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        out = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self.clear_cache()  # cached conditions were computed with the old weights
        return out

    def clear_cache(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "clear_cache"):
                m.clear_cache()  # type: ignore[operator]

    @classmethod
    def from_checkpoint(cls, path: str, map_location="cpu") -> "ResponseModel":
        """Rebuild a model from a checkpoint written by ``csg2a_graph.train.Trainer`` (or
        ``csg2a_graph.train.save_checkpoint()``), with its best weights.
        """
        from csg2a_graph.checkpoint import load_model

        model = load_model(path, map_location)
        if cls is not ResponseModel and not isinstance(model, cls):
            raise InputTypeError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


def build_model(name: str, **hparams) -> ResponseModel:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    return MODELS[name](**hparams)


__all__ = ["MODELS", "register_model", "ResponseModel", "build_model"]
