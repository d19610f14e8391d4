"""The authors' released CSG²A checkpoints as this package's modules: the key tables (released state-dict key ->
ours), the released additive prior term ``I + A`` from a dense matrix or an edge list, and splitting a released
state dict into mapped tensors and the rest. Facts from ``../shared/baselines/CSG2A_released.md``; used by
``CSG2A.from_released`` and ``CSG2AFineTune.from_released``.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor

#: released key (``CSG2A_net``) -> this package's key, for the tensors outside the drug encoder
_RELEASED_NET_KEYS = {
    "w_gex": "conv.w_gene",
    "w_comp": "conv.w_cond",
    "CCE.comp_proj.0.weight": "cond.mlp.0.weight",
    **{
        f"CCE.comp_proj.1.{k}": f"cond.mlp.1.{k}"
        for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    },
    "CCE.dose_enc.weight": "cond.w_dose.weight",
    "CCE.dose_enc.bias": "cond.w_dose.bias",
    "CCE.time_enc.weight": "cond.w_time.weight",
    "CCE.time_enc.bias": "cond.w_time.bias",
    "feed_forward.0.weight": "norm.weight",
    "feed_forward.0.bias": "norm.bias",
    "feed_forward.3.weight": "out.weight",
}
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
#: released key (``CSG2A_finetune``, outside ``CSG2A.``) -> this package's key
_RELEASED_FT_KEYS = {
    "scalar": "scale",
    "bias": "shift",
    **{
        f"{r}.0.{k}": f"{o}.0.{k}"
        for r, o in (("bgex_proj", "proj_basal"), ("agex_proj", "proj_perturbed"), ("comp_proj", "proj_condition"))
        for k in ("weight", "bias")
    },
    **{
        f"{r}.1.{k}": f"{o}.1.{k}"
        for r, o in (("bgex_proj", "proj_basal"), ("agex_proj", "proj_perturbed"), ("comp_proj", "proj_condition"))
        for k in _BN
    },
    **{f"pred_head.{i}.{k}": f"head.{i}.{k}" for i in (0, 4, 8) for k in ("weight", "bias")},
    **{f"pred_head.{i}.{k}": f"head.{i}.{k}" for i in (1, 5) for k in _BN},
}


def _dense_prior(prior, n: int, self_loops: bool):
    """``(edge_index, edge_weight)`` of the released additive term ``I + A`` from a dense ``[N, N]``
    matrix (taken as it is) or an edge list (``self_loops``: ``(i, i)`` of weight 1 added where missing).
    """
    if isinstance(prior, Tensor):
        if tuple(prior.shape) != (n, n):
            raise ValueError(f"a dense prior must be [{n}, {n}] for {n} genes, got {tuple(prior.shape)}")
        dst, src = prior.nonzero(as_tuple=True)  # A[i, j]: the weight of edge j -> i
        return torch.stack([src, dst]), prior[dst, src].float()
    ei, ew = prior
    ew = torch.ones(ei.size(1)) if ew is None else ew.float()
    if self_loops:
        has = torch.zeros(n, dtype=torch.bool)
        loops = ei[0] == ei[1]
        has[ei[0, loops]] = True
        add = torch.arange(n)[~has]
        ei = torch.cat([ei.long(), add.repeat(2, 1)], 1)
        ew = torch.cat([ew, torch.ones(add.numel())])
    return ei.long(), ew


def _split_released(state_dict: Dict[str, Tensor], table: Dict[str, str]):
    """(mapped tensors, the rest) of a released state dict."""
    missing = [k for k in table if k not in state_dict]
    mapped = {table[k]: v for k, v in state_dict.items() if k in table}
    rest = {k: v for k, v in state_dict.items() if k not in table}
    return mapped, rest, missing


__all__ = ["_RELEASED_NET_KEYS", "_RELEASED_FT_KEYS", "_dense_prior", "_split_released"]
