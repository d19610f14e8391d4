"""Name normalisation for joins, and the report every join returns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Tuple

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
            "what": self.what,
            "matched": self.matched,
            "exact": self.exact,
            "normalized": len(self.normalized),
            "unmatched": len(self.unmatched),
            "unmatched_names": sorted(self.unmatched),
            "ambiguous": sorted(self.ambiguous),
        }

    def __str__(self) -> str:
        s = (
            f"{self.what}: {self.matched} matched ({self.exact} exact, {len(self.normalized)} after "
            f"name normalisation), {len(self.unmatched)} unmatched"
        )
        if self.unmatched:
            s += f" (e.g. {', '.join(sorted(self.unmatched)[:5])})"
        return s


def match_names(
    queries: Iterable[str],
    targets: Iterable[str],
    normalize=normalize_cell_name,
    what: str = "names",
    prefixes: Tuple[str, ...] = (),
    suffixes: Tuple[str, ...] = (),
) -> Tuple[Dict[str, str], JoinReport]:
    """Map each query name to a target name: exact first, then by ``normalize``.

    ``prefixes`` / ``suffixes`` are optional affixes tried on normalised names
    when nothing else matched (GDSC writes ``NCI-H2869`` where other tables
    write ``H2869``; the DTP writes ``MDA-MB-231/ATCC`` where CellMiner writes
    ``MDA-MB-231``).

    Names are never guessed: a normalised form hitting two targets is
    ambiguous; when several queries land on one target, the one matched most
    directly (exact, then normalised, then via an affix) keeps it if it is the
    only one at that level, and all others are reported as ambiguous and left
    unmatched (GDSC's ``KM-H2`` and ``KMH-2`` are two lines with two COSMIC ids).
    """
    targets = list(dict.fromkeys(str(t) for t in targets))
    exact = set(targets)
    norm: Dict[str, List[str]] = {}
    for t in targets:
        norm.setdefault(normalize(t), []).append(t)
    out: Dict[str, str] = {}
    rank: Dict[str, int] = {}
    rep = JoinReport(what)
    for q in dict.fromkeys(str(q) for q in queries):
        if q in exact:
            out[q], rank[q] = q, 0
            continue
        nq = normalize(q)
        cands, r = norm.get(nq), 1
        if cands is None:
            alts = []
            for p in prefixes:
                p = normalize(p)
                alts.append(nq[len(p) :] if nq.startswith(p) else p + nq)
            for x in suffixes:
                x = normalize(x)
                if nq.endswith(x):
                    alts.append(nq[: -len(x)])
            cands, r = next((norm[a] for a in alts if a in norm), None), 2
        if cands is None:
            rep.unmatched.append(q)
        elif len(cands) > 1:
            rep.ambiguous.append(q)
            rep.unmatched.append(q)
        else:
            out[q], rank[q] = cands[0], r
    hits: Dict[str, List[str]] = {}
    for q, target in out.items():
        hits.setdefault(target, []).append(q)
    for qs in hits.values():
        if len(qs) == 1:
            continue
        best = min(rank[q] for q in qs)
        winners = [q for q in qs if rank[q] == best]
        keep = winners[0] if len(winners) == 1 else None
        for q in qs:
            if q != keep:
                del out[q]
                rep.ambiguous.append(q)
                rep.unmatched.append(q)
    for q, t in out.items():
        if rank[q] == 0:
            rep.exact += 1
        else:
            rep.normalized.append((q, t))
    return out, rep


__all__ = ["normalize_cell_name", "normalize_drug_name", "JoinReport", "match_names"]
