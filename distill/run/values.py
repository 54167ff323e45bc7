"""Metric values as they come back from files: a number, or undefined.

An evaluation can leave a metric undefined (SRCC of a group whose scores are constant, a group with one image).
In memory that is ``nan``; ``metrics.jsonl``, ``results.json`` and ``report/data.json`` store it as ``null`` (and
infinities as ``"inf"``/``"-inf"``). Every table, figure and report reads values through :func:`as_float` and shows
an undefined one as :data:`UNDEFINED`, so an undefined metric never breaks a report.
"""

from __future__ import annotations

import math
from typing import Any

#: How tables, figures and report pages show an undefined metric.
UNDEFINED = "n/a"


def as_float(value: Any) -> float:
    """``value`` as a float: ``None``, a non-number or an unparsable string is ``nan``; ``"inf"`` is ``inf``."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def is_defined(value: Any) -> bool:
    """Whether ``value`` is a finite number (not ``None``, ``nan`` or infinite)."""
    return math.isfinite(as_float(value))
