"""Atom and bond attributions of a CSG²A prediction through PyG's explain API.

The drug reaches a CSG²A model only through the chemical condition encoder. ``DrugSideModel``
exposes one pair's prediction as a function of its molecular graph — ``forward(x, edge_index)`` with
``x`` the float atom states entering the drug encoder's first message-passing layer (the atom
embedding of the categorical features) — so that ``torch_geometric.explain.Explainer`` with
``CaptumExplainer`` can attribute it: node attributions on
those atom states (``node_mask_type="attributes"``, summed over channels per atom) and bond masks on
every message-passing layer of the drug encoder (``edge_mask_type="object"``, the two directions of a
bond summed). Only the condition encoder is a submodule, so PyG's edge masks never reach the gene-level
``CSG2AConv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from csg2a_graph.explain.attribution import _is_csg2a, _pretrained


def check_drug_model(model: nn.Module) -> None:
    """Refuse, in one line, a model whose drug side cannot be explained atom by atom (before any work)."""
    if not _is_csg2a(model):
        raise ValueError(f"drug attributions need a CSG2A model (its condition encoder), got {type(model).__name__}")
    drug = _pretrained(model).cond.drug
    if not any(isinstance(m, MessagePassing) for m in drug.modules()):
        raise ValueError(
            f"the drug encoder {_pretrained(model).cond.drug_encoder_name!r} has no message-passing "
            "layer to explain (atom attributions need a graph encoder: pretrained-gcn, gin)"
        )


class DrugSideModel(nn.Module):
    """The prediction of one (cell, drug, dose, time) as a function of the drug's graph."""

    expr: Tensor
    dose: Tensor
    time: Tensor

    def __init__(self, model: nn.Module, expr: Tensor, graph, dose: float, time: float):
        super().__init__()
        if not _is_csg2a(model):
            raise ValueError(
                f"drug attributions need a CSG2A model (its condition encoder), got {type(model).__name__}"
            )
        pre = _pretrained(model)
        self.cond = pre.cond  # the only submodule: PyG's edge masks reach the drug encoder alone
        object.__setattr__(self, "_model", model)
        self.register_buffer("expr", expr.reshape(1, -1).float())
        self.graph = graph
        self.register_buffer("dose", torch.tensor([float(dose)]))
        self.register_buffer("time", torch.tensor([float(time)]))
        convs = [m for m in self.cond.drug.modules() if isinstance(m, MessagePassing)]
        if not convs:
            raise ValueError(
                f"the drug encoder {self.cond.drug_encoder_name!r} has no message-passing layer to explain"
            )
        self._first = convs[0]
        self._x: Optional[Tensor] = None
        self._seen: Optional[Tensor] = None
        self._first.register_forward_pre_hook(self._swap)
        self.eval()  # Explainer restores the mode it finds: training mode would update BatchNorm statistics

    def train(self, mode: bool = True):
        # the explained model is frozen: its dropout and BatchNorm statistics never change here
        return super().train(False)

    def _swap(self, module, args):
        if self._x is None:  # record the atom states of the real graph
            self._seen = args[0].detach()
            return None
        return (self._x, *args[1:])

    def atom_states(self) -> Tensor:
        """``[atoms, channels]`` states entering the first message-passing layer (the explained input)."""
        self._x = None
        with torch.no_grad():
            self.forward_graph()
        assert self._seen is not None  # set by the hook on the first message-passing layer
        return self._seen.clone()

    def forward_graph(self) -> Tensor:
        model: Any = self._model
        cond = self.cond.encode(
            self.graph, torch.zeros(1, dtype=torch.long, device=self.expr.device), self.dose, self.time
        )
        pre = _pretrained(model)
        if pre is model:
            out = model.perturb(self.expr, cond)
            return (out - self.expr).pow(2).sum(-1).sqrt()
        return model.forward_condition(self.expr, cond)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        if edge_index.size(1) != self.graph.edge_index.size(1):
            raise ValueError("edge_index must be the drug graph's own edges")
        self._x = x
        try:
            return self.forward_graph()
        finally:
            self._x = None


@dataclass
class DrugAttributions:
    """Per-atom and per-bond attributions of one pair's prediction to its drug graph."""

    smiles: str
    atom: Tensor  # [atoms]
    bond: Optional[Tensor]  # [bonds] (both directions summed), in RDKit bond order
    bond_atoms: List[tuple]
    prediction: float

    def draw(self, path: str, size: int = 420) -> str:
        """Draw the molecule with atoms coloured by attribution (RDKit similarity map); PNG at ``path``."""
        from rdkit import Chem
        from rdkit.Chem.Draw import SimilarityMaps, rdMolDraw2D

        mol = Chem.MolFromSmiles(self.smiles)
        if mol is None or mol.GetNumAtoms() != self.atom.numel():
            raise ValueError(f"cannot draw {self.smiles!r}: RDKit parses it to a different atom count")
        a = self.atom.double()
        w = (a / a.abs().max().clamp_min(1e-12)).tolist()
        d = rdMolDraw2D.MolDraw2DCairo(size, size)
        SimilarityMaps.GetSimilarityMapFromWeights(mol, w, draw2d=d, colorMap="coolwarm")
        d.FinishDrawing()
        with open(path, "wb") as f:
            f.write(d.GetDrawingText())
        return path


def explain_drug(
    model: nn.Module, dataset, pair: int, method: str = "IntegratedGradients", **method_kwargs
) -> DrugAttributions:
    """Atom and bond attributions of pair ``pair`` of ``dataset`` through ``torch_geometric.explain``.

    ``method`` is a Captum method name that ``CaptumExplainer`` supports
    (``IntegratedGradients``, ``Saliency``, ``InputXGradient``...).
    """
    from torch_geometric.explain import Explainer
    from torch_geometric.explain.algorithm import CaptumExplainer

    model = model.eval()
    device = next(model.parameters()).device
    p = dataset.pairs
    c, d = int(p["cell"][pair]), int(p["drug"][pair])
    graph = dataset.molecules.batch(torch.tensor([d])).to(device)
    wrapper = DrugSideModel(
        model, dataset.expression[c].to(device), graph, float(p["dose"][pair]), float(p["time"][pair])
    ).to(device)
    x = wrapper.atom_states()
    explainer = Explainer(
        wrapper,
        algorithm=CaptumExplainer(method, **method_kwargs),
        explanation_type="model",
        node_mask_type="attributes",
        edge_mask_type="object",
        model_config=dict(mode="regression", task_level="graph", return_type="raw"),
    )
    exp = explainer(x, graph.edge_index)
    atom = exp.node_mask.detach().sum(-1).cpu()
    edge = exp.edge_mask.detach().cpu() if exp.get("edge_mask") is not None else None
    ei = graph.edge_index.cpu()
    bonds, bond_atoms = None, []
    if edge is not None:
        key: Dict[Tuple[int, int], List[int]] = {}
        for e, (a, b) in enumerate(ei.t().tolist()):
            key.setdefault((min(a, b), max(a, b)), []).append(e)
        bond_atoms = sorted(key)
        bonds = torch.stack([edge[key[k]].sum() for k in bond_atoms]) if bond_atoms else torch.zeros(0)
    with torch.no_grad():
        pred = float(wrapper(x, graph.edge_index).reshape(-1)[0])
    return DrugAttributions(dataset.molecules.smiles[d], atom, bonds, bond_atoms, pred)


__all__ = ["DrugSideModel", "DrugAttributions", "explain_drug", "check_drug_model"]
