"""Per-group analysis of results (per distortion for IQA): the hardest and easiest groups, and the MRKD paper's
Fig. 1-style violin plot of each group's value over evaluations."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from distill.run.atomic import write_with
from distill.run.values import UNDEFINED, as_float


def group_label(key: str, names: Mapping[str, str] | None) -> str:
    """A group as tables and figures show it: its key and, when known, its readable name (``"11 white_noise"``)."""
    return f"{key} {names[key]}" if names and key in names else key


def rank_groups(groups: Mapping[str, Mapping[str, float]], metric: str = "srcc") -> list[tuple[str, float]]:
    """Groups sorted from hardest (lowest ``metric``) to easiest; groups whose value is undefined (NaN, ``None``
    as read back from a file, or missing) are left out."""
    values = {key: as_float(vals.get(metric)) for key, vals in groups.items()}
    scored = [(key, v) for key, v in values.items() if not math.isnan(v)]
    return sorted(scored, key=lambda kv: (kv[1], kv[0]))


def hardest_and_easiest(
    groups: Mapping[str, Mapping[str, float]], metric: str = "srcc", k: int = 2
) -> tuple[list[str], list[str]]:
    """The ``k`` hardest and ``k`` easiest groups by ``metric`` (the paper's Tables 2–4 pick two of each)."""
    ranked = [key for key, _ in rank_groups(groups, metric)]
    return ranked[:k], ranked[::-1][:k]


def plot_per_distortion(
    history: Sequence[dict[str, Any]],
    split: str,
    path: str | Path,
    metric: str = "srcc",
    names: Mapping[str, str] | None = None,
    roles: Sequence[str] = ("teacher", "student"),
) -> Path | None:
    """Violin plot of per-distortion ``metric`` over evaluations, one violin per model (the paper's Fig. 1).

    Distortion types are rows (their names read horizontally); a type whose value was undefined at every evaluation
    is marked ``n/a``. Returns the PNG path, or ``None`` when matplotlib is not installed or the split was evaluated
    fewer than twice (one evaluation has no spread to show).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    records = [r for r in history if r.get("split") == split]
    if len(records) < 2:
        return None
    keys = sorted(next(iter(records[-1]["results"].values())).get("groups", {}))
    roles = [r for r in roles if r in records[-1]["results"]]
    if not keys or not roles:
        return None
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.32 * len(keys) * max(1, len(roles) / 1.5)))
    height = 0.8 / len(roles)
    for j, role in enumerate(roles):
        offset = (j - (len(roles) - 1) / 2) * height
        data, positions, empty = [], [], []
        for i, key in enumerate(keys):
            values = [as_float(r["results"].get(role, {}).get("groups", {}).get(key, {}).get(metric)) for r in records]
            finite = [v for v in values if not math.isnan(v)]
            if finite:
                data.append(finite)
                positions.append(i + offset)
            else:
                empty.append(i + offset)
        color = f"C{j}"
        if data:
            kw = {"positions": positions, "widths": height * 0.9, "showmedians": True}
            try:  # matplotlib >= 3.10 names the direction; `vert` is deprecated there
                parts = ax.violinplot(data, orientation="horizontal", **kw)
            except TypeError:
                parts = ax.violinplot(data, vert=False, **kw)
            for body in parts["bodies"]:
                body.set_facecolor(color)
                body.set_edgecolor(color)
            for line in ("cmedians", "cmins", "cmaxes", "cbars"):
                if line in parts:
                    parts[line].set_color(color)
        ax.plot([], [], color=color, lw=6, alpha=0.5, label=role)
        for y in empty:
            ax.text(0.0, y, f" {UNDEFINED}", va="center", ha="left", fontsize=7, color=color)
    labels = [group_label(k, names) for k in keys]
    ax.set_yticks(range(len(keys)), labels, fontsize=8)
    ax.set_ylim(len(keys) - 0.5, -0.5)  # the first type on top
    ax.set_xlabel(f"{metric.upper()} ({split})")
    ax.set_title(f"{metric.upper()} per distortion over {len(records)} evaluations", fontsize=10)
    ax.axvline(0.0, color="grey", lw=0.5)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the violins, never over them
    fig.tight_layout()
    path = write_with(path, lambda buf: fig.savefig(buf, dpi=120, format=Path(path).suffix[1:] or "png"))
    plt.close(fig)
    return path
