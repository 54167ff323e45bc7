"""Plain-text tables for run summaries and benchmark reports."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from distill.run.values import UNDEFINED, as_float


def fmt(value: Any, digits: int = 4) -> str:
    """A number with fixed digits; ``n/a`` for missing or NaN values."""
    if value is None:
        return UNDEFINED
    if isinstance(value, float):
        if math.isnan(value):
            return UNDEFINED
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "", digits: int = 4) -> str:
    """A monospace table with a caption line above it."""
    cells = [[fmt(c, digits) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h)) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    out = [caption] if caption else []
    out.append("  ".join(str(h).ljust(w) for h, w in zip(headers, widths)))
    out.append(line)
    out.extend("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells)
    return "\n".join(out)


def percent(metric: str) -> bool:
    """Top-k accuracies are printed in %, as the README and the papers do."""
    return metric.startswith("top")


def metric_header(metric: str) -> str:
    return f"{metric} %" if percent(metric) else metric


def metric_cell(metric: str, value: Any) -> Any:
    """The value as printed in tables: top-k in % with 2 decimals, anything else unchanged."""
    if value is None or (isinstance(value, str) and math.isnan(as_float(value))):
        return UNDEFINED
    if percent(metric) and isinstance(value, (int, float)) and not math.isnan(value):
        return f"{100.0 * value:.2f}"
    return value


def overall_table(results: Mapping[str, Mapping[str, Any]], split: str, caption: str = "") -> str:
    """Rows = evaluated models, columns = metrics, for one split's results."""
    roles = list(results)
    metrics = list(next(iter(results.values()))["overall"]) if roles else []
    rows = [
        [role, *(metric_cell(m, results[role]["overall"][m]) for m in metrics), results[role]["n"]] for role in roles
    ]
    return table(["model", *(metric_header(m) for m in metrics), "n"], rows, caption or f"split: {split}")


def group_table(
    results: Mapping[str, Mapping[str, Any]],
    metrics: Sequence[str],
    names: Mapping[str, str] | None = None,
    caption: str = "",
) -> str:
    """Rows = groups (e.g. distortion types), columns = metric per model."""
    roles = [r for r in results if "groups" in results[r]]
    if not roles:
        return ""
    keys = list(results[roles[0]]["groups"])
    headers = ["group", *(f"{role}:{metric_header(m)}" for role in roles for m in metrics), "n"]
    rows = []
    for key in keys:
        label = f"{key} {names[key]}" if names and key in names else key
        values = [metric_cell(m, results[role]["groups"][key][m]) for role in roles for m in metrics]
        rows.append([label, *values, results[roles[0]]["groups"][key]["n"]])
    return table(headers, rows, caption)
