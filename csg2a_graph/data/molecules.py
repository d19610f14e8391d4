"""Drugs as molecular graphs: SMILES -> PyG graphs stored once per drug, fingerprints.

Atom and bond features are PyG's ``torch_geometric.utils.from_rdmol()``
features (integer categories, see ``torch_geometric.utils.smiles.x_map`` /
``e_map``):

- atoms ``x[:, 0..8]``: atomic number, chirality tag, degree, formal charge,
  total H count, radical electrons, hybridisation, aromatic, in ring;
- bonds ``edge_attr[:, 0..2]``: bond type, stereo, conjugated (both directions stored).

Use ``ATOM_FEATURE_SIZES`` / ``BOND_FEATURE_SIZES`` to size embeddings.

Two more per-graph columns serve encoders with their own featurisation (the pretrained GCN of
Hu et al. reads atom type, chirality, bond type and *bond direction*): ``bond_dir [E]`` (RDKit
``BondDir``: 0 NONE, 1 ENDUPRIGHT, 2 ENDDOWNRIGHT, 3 other) and ``main_fragment [A]`` (the atom
belongs to the largest fragment, so salts and counter-ions can be left out of pooling).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.utils import smiles as _pyg_smiles

logger = logging.getLogger(__name__)

ATOM_FEATURE_SIZES = [len(v) for v in _pyg_smiles.x_map.values()]
BOND_FEATURE_SIZES = [len(v) for v in _pyg_smiles.e_map.values()]


def _rdkit():
    try:
        from rdkit import Chem, RDLogger
    except ImportError as e:  # pragma: no cover - rdkit is a core dependency
        raise ImportError("csg2a-graph needs RDKit for molecules: pip install rdkit") from e
    RDLogger.DisableLog("rdApp.*")
    return Chem


def parse_smiles(smiles: str, relaxed: bool = True):
    """RDKit ``Mol`` for ``smiles`` or ``None`` when it is empty or does not parse.

    With ``relaxed`` a SMILES that parses but fails RDKit's valence check (metal
    complexes such as cisplatin, ``[Cl-][Pt+2]([Cl-])(N)N``) is sanitised
    without the valence check instead of being lost; see ``is_relaxed()``.
    """
    Chem = _rdkit()
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None and relaxed:
        mol = Chem.MolFromSmiles(smiles.strip(), sanitize=False)
        if mol is not None:
            try:
                Chem.SanitizeMol(mol, Chem.SanitizeFlags.SANITIZE_ALL ^ Chem.SanitizeFlags.SANITIZE_PROPERTIES)
                mol.UpdatePropertyCache(strict=False)
                mol.SetProp("csg2a_relaxed", "1")
            except Exception:  # noqa: BLE001 - RDKit raises several types here
                mol = None
    return mol


def is_relaxed(mol) -> bool:
    """Whether ``parse_smiles()`` had to skip the valence check for ``mol``."""
    return mol is not None and mol.HasProp("csg2a_relaxed")


def canonical_smiles(smiles: str) -> str:
    """RDKit canonical isomeric SMILES; raises ``ValueError`` on invalid input."""
    mol = parse_smiles(smiles)
    if mol is None:
        raise ValueError(f"invalid SMILES: {smiles!r}")
    return _rdkit().MolToSmiles(mol)


BOND_DIRS = {"NONE": 0, "ENDUPRIGHT": 1, "ENDDOWNRIGHT": 2}


def smiles_to_graph(smiles: str) -> Data:
    """One molecule as a PyG ``Data`` (``x``, ``edge_index``, ``edge_attr``, ``bond_dir``,
    ``main_fragment``, ``smiles``, ``relaxed``).
    """
    Chem = _rdkit()
    mol = parse_smiles(smiles)
    if mol is None:
        raise ValueError(f"invalid SMILES: {smiles!r}")
    # featurise the canonical form: atom order and bond directions ('/', '\\') depend on how a SMILES
    # is written, so two spellings of one molecule must give one graph (training vs prediction input)
    canonical = parse_smiles(Chem.MolToSmiles(mol))
    if canonical is not None:
        mol = canonical
    data = _pyg_smiles.from_rdmol(mol)
    ei = data.edge_index.tolist()
    data.bond_dir = torch.tensor(
        [BOND_DIRS.get(str(mol.GetBondBetweenAtoms(i, j).GetBondDir()), 3) for i, j in zip(ei[0], ei[1])],
        dtype=torch.long,
    )
    frags = Chem.GetMolFrags(mol)
    main = torch.zeros(mol.GetNumAtoms(), dtype=torch.bool)
    main[list(max(frags, key=lambda f: len(tuple(f))))] = True
    data.main_fragment = main
    data.smiles = Chem.MolToSmiles(mol)
    data.relaxed = is_relaxed(mol)
    return data


def largest_fragment(mol):
    """The largest fragment of a molecule (most heavy atoms; ties broken by canonical SMILES): salts,
    counter-ions and solvent left out, as every drug encoder pools only this fragment's atoms.
    """
    Chem = _rdkit()
    frags = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    if len(frags) <= 1:
        return mol
    main = max(frags, key=lambda m: (m.GetNumHeavyAtoms(), Chem.MolToSmiles(m)))
    main.UpdatePropertyCache(strict=False)
    Chem.GetSymmSSSR(main)  # ring information, which unsanitised fragments lack (fingerprints need it)
    return main


def morgan_fingerprints(
    smiles: Sequence[str], radius: int = 2, n_bits: int = 2048, main_fragment: bool = True
) -> Tensor:
    """``[len(smiles), n_bits]`` float 0/1 Morgan (ECFP-like) fingerprints, of the largest fragment by
    default (a salt form and its free base give one fingerprint, as for the graph encoders).
    """
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    out = torch.zeros(len(smiles), n_bits)
    for i, s in enumerate(smiles):
        mol = parse_smiles(s)
        if mol is None:
            raise ValueError(f"invalid SMILES at position {i}: {s!r}")
        if main_fragment:
            mol = largest_fragment(mol)
        out[i] = torch.from_numpy(gen.GetFingerprintAsNumPy(mol).astype("float32"))
    return out


def compound_key(smiles: str) -> str:
    """The compound a SMILES belongs to: the first (connectivity) block of the InChIKey of its
    largest fragment, so that stereo-isomers, salts and hydrates of one compound share a key.
    Falls back to the canonical SMILES of the largest fragment when InChI cannot be made.
    """
    Chem = _rdkit()
    mol = parse_smiles(smiles)
    if mol is None:
        return f"invalid:{smiles}"
    main = largest_fragment(mol)
    try:
        from rdkit import RDLogger

        RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]
        key = Chem.MolToInchiKey(main)
    except Exception:  # noqa: BLE001 - RDKit raises several types on exotic valences
        key = ""
    finally:
        from rdkit import RDLogger

        RDLogger.EnableLog("rdApp.*")  # type: ignore[attr-defined]
    return key.split("-")[0] if key else "smiles:" + Chem.MolToSmiles(main, isomericSmiles=False)


def group_ids(keys: Sequence[str]) -> List[int]:
    """One id per distinct key, numbered in order of first appearance."""
    first: Dict[str, int] = {}
    return [first.setdefault(k, len(first)) for k in keys]


def compound_groups(names: Sequence[str], smiles: Sequence[str]) -> Tuple[List[int], Dict]:
    """A group id per drug (drugs sharing ``compound_key()`` share an id, numbered in order of
    first appearance) and a report of the merges: ``{"num_drugs", "num_compounds", "merged": {key: names}}``.
    """
    keys = [compound_key(s) for s in smiles]
    group = group_ids(keys)
    n_compounds = max(group) + 1 if group else 0
    members: Dict[str, List[str]] = {}
    for n, k in zip(names, keys):
        members.setdefault(k, []).append(str(n))
    merged = {k: v for k, v in members.items() if len(v) > 1}
    return group, {
        "num_drugs": len(keys),
        "num_compounds": n_compounds,
        "drugs_merged": sum(len(v) - 1 for v in merged.values()),
        "merged": merged,
    }


@dataclass
class MoleculeReport:
    num_input: int = 0
    num_valid: int = 0
    invalid: List[Tuple[str, str]] = field(default_factory=list)  # (drug name, smiles)
    relaxed: List[str] = field(default_factory=list)  # kept, parsed without RDKit's valence check

    def to_dict(self) -> dict:
        return {
            "num_input": self.num_input,
            "num_valid": self.num_valid,
            "num_invalid": len(self.invalid),
            "invalid": [list(p) for p in self.invalid],
            "relaxed_valence": list(self.relaxed),
        }

    def __str__(self) -> str:
        s = f"molecules: {self.num_valid} of {self.num_input} SMILES parsed"
        if self.relaxed:
            s += f" ({len(self.relaxed)} without the valence check: {', '.join(self.relaxed[:5])})"
        if self.invalid:
            s += f"; {len(self.invalid)} invalid and excluded: " + ", ".join(n for n, _ in self.invalid[:5])
        return s


class MoleculeStore:
    """Molecular graphs of a drug set, stored once per drug as flat tensors.

    Graph ``d`` is ``x[atom_ptr[d]:atom_ptr[d+1]]`` with local
    ``edge_index[:, edge_ptr[d]:edge_ptr[d+1]]``. ``batch()`` gathers any drug
    set into a PyG ``Batch`` with tensor ops only
    (no per-graph Python collation), which is what the pair loader uses.
    """

    def __init__(
        self,
        names: List[str],
        smiles: List[str],
        x: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor,
        atom_ptr: Tensor,
        edge_ptr: Tensor,
        bond_dir: Optional[Tensor] = None,
        main_fragment: Optional[Tensor] = None,
    ):
        self.names, self.smiles = list(names), list(smiles)
        self.x, self.edge_index, self.edge_attr = x, edge_index, edge_attr
        self.atom_ptr, self.edge_ptr = atom_ptr, edge_ptr
        self.bond_dir = bond_dir if bond_dir is not None else torch.zeros(edge_index.size(1), dtype=torch.long)
        self.main_fragment = main_fragment if main_fragment is not None else torch.ones(x.size(0), dtype=torch.bool)
        self._all: Optional[Batch] = None

    @classmethod
    def from_smiles(cls, names: Sequence[str], smiles: Sequence[str]) -> Tuple["MoleculeStore", MoleculeReport]:
        """Featurise ``smiles``; invalid ones are excluded and reported by drug name."""
        rep = MoleculeReport(num_input=len(names))
        keep_n, keep_s, graphs = [], [], []
        for n, s in zip(names, smiles):
            try:
                g = smiles_to_graph(s)
            except ValueError:
                rep.invalid.append((str(n), str(s)))
                continue
            if g.relaxed:
                rep.relaxed.append(str(n))
            keep_n.append(str(n))
            keep_s.append(g.smiles)
            graphs.append(g)
        rep.num_valid = len(graphs)
        if rep.invalid:
            logger.warning("%s", rep)
        if not graphs:
            x = torch.zeros(0, len(ATOM_FEATURE_SIZES), dtype=torch.long)
            return cls(
                [],
                [],
                x,
                torch.zeros(2, 0, dtype=torch.long),
                torch.zeros(0, len(BOND_FEATURE_SIZES), dtype=torch.long),
                torch.zeros(1, dtype=torch.long),
                torch.zeros(1, dtype=torch.long),
            ), rep
        na = torch.tensor([g.num_nodes for g in graphs])
        ne = torch.tensor([g.edge_index.size(1) for g in graphs])
        atom_ptr = torch.cat([torch.zeros(1, dtype=torch.long), na.cumsum(0)])
        edge_ptr = torch.cat([torch.zeros(1, dtype=torch.long), ne.cumsum(0)])
        store = cls(
            keep_n,
            keep_s,
            torch.cat([g.x for g in graphs]),
            torch.cat([g.edge_index for g in graphs], dim=1),
            torch.cat([g.edge_attr for g in graphs]),
            atom_ptr,
            edge_ptr,
            torch.cat([g.bond_dir for g in graphs]),
            torch.cat([g.main_fragment for g in graphs]),
        )
        return store, rep

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"MoleculeStore({len(self)} drugs, {self.x.size(0)} atoms)"

    def get(self, d: int) -> Data:
        a0, a1 = int(self.atom_ptr[d]), int(self.atom_ptr[d + 1])
        e0, e1 = int(self.edge_ptr[d]), int(self.edge_ptr[d + 1])
        return Data(
            x=self.x[a0:a1],
            edge_index=self.edge_index[:, e0:e1],
            edge_attr=self.edge_attr[e0:e1],
            bond_dir=self.bond_dir[e0:e1],
            main_fragment=self.main_fragment[a0:a1],
            smiles=self.smiles[d],
            name=self.names[d],
        )

    def to(self, device) -> "MoleculeStore":
        """This store with its atom and bond tables on ``device`` (the offsets stay on the CPU, where batches are
        planned): ``batch()`` then gathers a batch there with no host-to-device copy of the graph and no device-to-host
        read (a trainer that keeps its data on a GPU uses it, issue 28.3).
        """
        dev = torch.device(device)
        if self.x.device == dev:
            return self
        return MoleculeStore(
            self.names,
            self.smiles,
            self.x.to(dev),
            self.edge_index.to(dev),
            self.edge_attr.to(dev),
            self.atom_ptr,
            self.edge_ptr,
            self.bond_dir.to(dev),
            self.main_fragment.to(dev),
        )

    def batch(self, drugs: Optional[Tensor] = None) -> Batch:
        """A ``Batch`` of the drugs ``drugs`` (all drugs, cached, when ``None``), on the store's device.

        Besides PyG's ``x``, ``edge_index``, ``edge_attr``, ``batch`` and ``ptr`` it holds
        ``bond_dir``, ``main_fragment`` and ``smiles`` (a list, one per graph: encoders key
        their caches on it).
        """
        if drugs is None:
            if self._all is None:
                self._all = self.batch(torch.arange(len(self)))
            return self._all
        drugs = drugs.long().cpu()
        a_ptr, e_ptr = self.atom_ptr.cpu(), self.edge_ptr.cpu()
        na = a_ptr[drugs + 1] - a_ptr[drugs]
        ne = e_ptr[drugs + 1] - e_ptr[drugs]
        n_atoms, n_edges = int(na.sum()), int(ne.sum())  # planned on the CPU: no read from the device
        new_aptr = torch.cat([na.new_zeros(1), na.cumsum(0)])
        new_eptr = torch.cat([ne.new_zeros(1), ne.cumsum(0)])
        dev = self.x.device

        def put(t: Tensor) -> Tensor:
            return t.to(dev, non_blocking=True)

        na_d, ne_d, aptr_d = put(na), put(ne), put(new_aptr)
        atom_idx = _ranges(put(a_ptr[drugs]), na_d, aptr_d, n_atoms)
        edge_idx = _ranges(put(e_ptr[drugs]), ne_d, put(new_eptr), n_edges)
        offset = torch.repeat_interleave(aptr_d[:-1], ne_d, output_size=n_edges)
        b = Batch(
            x=self.x[atom_idx],
            edge_index=self.edge_index[:, edge_idx] + offset,
            edge_attr=self.edge_attr[edge_idx],
            bond_dir=self.bond_dir[edge_idx],
            main_fragment=self.main_fragment[atom_idx],
            batch=torch.repeat_interleave(torch.arange(drugs.numel(), device=dev), na_d, output_size=n_atoms),
            ptr=aptr_d,
        )
        ids = drugs.tolist()
        b.smiles = [self.smiles[i] for i in ids]
        b.names = [self.names[i] for i in ids]
        b._num_graphs = drugs.numel()
        return b

    def fingerprints(self, radius: int = 2, n_bits: int = 2048) -> Tensor:
        return morgan_fingerprints(self.smiles, radius, n_bits)

    def to_dict(self) -> Dict:
        return {
            k: getattr(self, k)
            for k in (
                "names",
                "smiles",
                "x",
                "edge_index",
                "edge_attr",
                "atom_ptr",
                "edge_ptr",
                "bond_dir",
                "main_fragment",
            )
        }

    @classmethod
    def from_dict(cls, d: Dict) -> "MoleculeStore":
        return cls(**d)


def _ranges(starts: Tensor, counts: Tensor, new_ptr: Tensor, total: Optional[int] = None) -> Tensor:
    """Concatenation of ``arange(starts[i], starts[i] + counts[i])`` without a Python loop (``total``: its length,
    when known on the host: no read from the device).
    """
    if total is None:
        total = int(new_ptr[-1])
    base = torch.repeat_interleave(starts - new_ptr[:-1], counts, output_size=total)
    return base + torch.arange(total, device=starts.device)


__all__ = [
    "ATOM_FEATURE_SIZES",
    "BOND_FEATURE_SIZES",
    "parse_smiles",
    "canonical_smiles",
    "smiles_to_graph",
    "morgan_fingerprints",
    "MoleculeStore",
    "MoleculeReport",
    "BOND_DIRS",
]
