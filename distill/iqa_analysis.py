"""Per-distortion analysis of IQA results: the hardest and easiest types and a Fig. 1-style plot (MRKD paper)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def rank_groups(groups: Mapping[str, Mapping[str, float]], metric: str = "srcc") -> list[tuple[str, float]]:
    """Groups sorted from hardest (lowest ``metric``) to easiest; groups whose value is NaN are left out."""
    scored = [(key, float(vals[metric])) for key, vals in groups.items() if not math.isnan(float(vals[metric]))]
    return sorted(scored, key=lambda kv: (kv[1], kv[0]))


def hardest_and_easiest(
    groups: Mapping[str, Mapping[str, float]], metric: str = "srcc", k: int = 2
) -> tuple[list[str], list[str]]:
    """The ``k`` hardest and ``k`` easiest groups by ``metric`` (the paper's Tables 2–4 pick two of each)."""
    ranked = [key for key, _ in rank_groups(groups, metric)]
    return ranked[:k], ranked[::-1][:k]


def _num(value: object) -> float:
    """A stored metric as a float; an undefined one (``None`` in JSON, e.g. SRCC of constant scores) is NaN."""
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def plot_per_distortion(
    history: Sequence[dict[str, Any]],
    split: str,
    path: str | Path,
    metric: str = "srcc",
    names: Mapping[str, str] | None = None,
    roles: Sequence[str] = ("teacher", "student"),
) -> Path | None:
    """Violin plot of per-distortion ``metric`` over evaluations, one violin per model (the paper's Fig. 1).

    Returns the PNG path, or ``None`` when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    records = [r for r in history if r.get("split") == split]
    if not records:
        return None
    keys = sorted(next(iter(records[-1]["results"].values())).get("groups", {}))
    roles = [r for r in roles if r in records[-1]["results"]]
    if not keys or not roles:
        return None
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(keys) * len(roles)), 4.0))
    width = 0.8 / len(roles)
    for j, role in enumerate(roles):
        data = [
            [v for v in (_num(r["results"][role]["groups"][k][metric]) for r in records) if not math.isnan(v)]
            or [math.nan]
            for k in keys
        ]
        positions = [i + (j - (len(roles) - 1) / 2) * width for i in range(len(keys))]
        parts = ax.violinplot(data, positions=positions, widths=width * 0.9, showmedians=True)
        parts["bodies"][0].set_label(role)
    labels = [f"{k} {names[k]}" if names and k in names else k for k in keys]
    ax.set_xticks(range(len(keys)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric.upper()} per distortion ({split}, over evaluations)")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
