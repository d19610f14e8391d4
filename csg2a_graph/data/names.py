"""Name normalisation for joins, and the report every join returns."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

_NON_ALNUM = re.compile(r"[^A-Z0-9]")


def normalize_cell_name(name: str) -> str:
    """Upper-case, punctuation and spaces removed: ``"NCI-H23" -> "NCIH23"``, ``"HL-60(TB)" -> "HL60TB"``."""
    return _NON_ALNUM.sub("", str(name).upper())


def normalize_drug_name(name: str) -> str:
    """Lower-case alphanumerics only: ``"5-Fluorouracil" -> "5fluorouracil"``."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


@dataclass
class JoinReport:
    """How many distinct keys of a join matched, how, and which were dropped."""

    what: str
    exact: int = 0
    normalized: List[Tuple[str, str]] = field(default_factory=list)
    unmatched: List[str] = field(default_factory=list)
    ambiguous: List[str] = field(default_factory=list)

    @property
    def matched(self) -> int:
        return self.exact + len(self.normalized)

    def to_dict(self) -> dict:
        return {
            "what": self.what, "matched": self.matched, "exact": self.exact,
            "normalized": len(self.normalized), "unmatched": len(self.unmatched),
            "unmatched_names": sorted(self.unmatched), "ambiguous": sorted(self.ambiguous),
        }

    def __str__(self) -> str:
        s = (f"{self.what}: {self.matched} matched ({self.exact} exact, {len(self.normalized)} after "
             f"name normalisation), {len(self.unmatched)} unmatched")
        if self.unmatched:
            s += f" (e.g. {', '.join(sorted(self.unmatched)[:5])})"
        return s


def match_names(
    queries: Iterable[str],
    targets: Iterable[str],
    normalize=normalize_cell_name,
    what: str = "names",
    prefixes: Tuple[str, ...] = (),
) -> Tuple[Dict[str, str], JoinReport]:
    """Map each query name to a target name: exact first, then by ``normalize``.

    ``prefixes`` are optional prefixes tried on normalised names when nothing else
    matched (GDSC writes ``NCI-H2869`` where other tables write ``H2869``).
    Names whose normalised form hits two targets, or that share a target with
    another query name, are reported as ambiguous and left unmatched rather
    than guessed (an exact match keeps its target).
    """
    targets = list(dict.fromkeys(str(t) for t in targets))
    exact = set(targets)
    norm: Dict[str, List[str]] = {}
    for t in targets:
        norm.setdefault(normalize(t), []).append(t)
    out: Dict[str, str] = {}
    rep = JoinReport(what)
    for q in dict.fromkeys(str(q) for q in queries):
        if q in exact:
            out[q] = q
            rep.exact += 1
            continue
        nq = normalize(q)
        cands = norm.get(nq)
        if cands is None:
            for p in prefixes:
                p = normalize(p)
                alt = nq[len(p):] if nq.startswith(p) else p + nq
                if alt in norm:
                    cands = norm[alt]
                    break
        if cands is None:
            rep.unmatched.append(q)
        elif len(cands) > 1:
            rep.ambiguous.append(q)
            rep.unmatched.append(q)
        else:
            out[q] = cands[0]
            rep.normalized.append((q, cands[0]))
    # Two query names landing on one target ("KM-H2" and "KMH-2" -> "KMH2") are usually
    # two different entities (in GDSC they have different COSMIC ids): an exact match
    # keeps the target, the others are ambiguous and dropped, never merged.
    hits: Dict[str, List[str]] = {}
    for q, t in out.items():
        hits.setdefault(t, []).append(q)
    for t, qs in hits.items():
        if len(qs) > 1:
            for q in qs:
                if q != t:
                    del out[q]
                    rep.normalized.remove((q, t))
                    rep.ambiguous.append(q)
                    rep.unmatched.append(q)
    return out, rep


__all__ = ["normalize_cell_name", "normalize_drug_name", "JoinReport", "match_names"]
