"""Dose and time from the unit strings real LINCS files carry ("10 µM", "10.0 um", "500 nM", "24 h")."""

from __future__ import annotations

import math
import re
from typing import Optional, Union

_NUM = r"([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)"
_DOSE = {"m": 1e3, "mm": 1e3, "um": 1.0, "µm": 1.0, "μm": 1.0, "nm": 1e-3, "pm": 1e-6, "umol": 1.0}
_TIME = {
    "h": 1.0,
    "hr": 1.0,
    "hrs": 1.0,
    "hour": 1.0,
    "hours": 1.0,
    "d": 24.0,
    "day": 24.0,
    "days": 24.0,
    "min": 1 / 60,
    "m": 1 / 60,
    "mins": 1 / 60,
    "minutes": 1 / 60,
}


def _parse(value, unit, table, default_unit) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return float("nan")
    if isinstance(value, (int, float)):
        num, u = float(value), unit
    else:
        s = str(value).strip().replace("\u00b5", "u").replace("\u03bc", "u")
        m = re.fullmatch(_NUM + r"\s*([A-Za-z]*)", s)
        if not m:
            return float("nan")
        num, u = float(m.group(1)), (m.group(2) or unit)
    if num == -666:
        return float("nan")
    u = (
        str(u).strip().lower().replace("\u00b5", "u").replace("\u03bc", "u")
        if u is not None and not (isinstance(u, float) and math.isnan(u))
        else default_unit
    )
    if u in ("", "-666"):
        u = default_unit
    if u not in table:
        return float("nan")
    return num * table[u]


def parse_dose_um(value: Union[str, float, None], unit: Optional[str] = None) -> float:
    """Dose in µM from a number and unit or a text: ``"10 µM"``, ``"10.0 um"`` and ``(10, "um")`` all give 10;
    ``"500 nM"`` -> 0.5. Unknown or missing (``-666``) -> NaN.
    """
    return _parse(value, unit, _DOSE, "um")


def parse_time_h(value: Union[str, float, None], unit: Optional[str] = None) -> float:
    """Time in hours: ``"24 h"``, ``(24, "h")``, ``"2 d"`` -> 48. Unknown or missing -> NaN."""
    return _parse(value, unit, _TIME, "h")


__all__ = ["parse_dose_um", "parse_time_h"]
