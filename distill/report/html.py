"""``distill report RUN_DIR [RUN_DIR …]``: one self-contained HTML page (images embedded) per set of runs.

For every run: its result table, training curves (each loss term, each model's headline metric over evaluations),
and what its task is judged on: per-distortion bars with the hardest and easiest types marked and the paper's
Fig. 1-style plot (IQA), and the sections its task draws (``Task.html_sections``: a crop grid bicubic |
student | teacher | HR for SR, per-class accuracy and the most confused classes for recognition). Several runs are
laid side by side under a table of their headline numbers. Needs matplotlib (a declared dependency).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distill.engine.run_log import format_metric, read_metrics
from distill.errors import DataError
from distill.report.data import read_mapping_file, read_report_data
from distill.report.groups import group_label, hardest_and_easiest, plot_per_distortion
from distill.run.atomic import write_text
from distill.run.layout import RunFolder
from distill.run.values import UNDEFINED, as_float

DPI = 100


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # a declared dependency; only a broken install gets here
        raise DataError("distill report needs matplotlib: pip install matplotlib") from err
    return plt


@dataclass
class RunFiles:
    """What one run folder holds, read once."""

    path: Path
    name: str
    description: str
    records: list[dict[str, Any]]
    results: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    #: How the page names this run: its recipe name, or more where several runs share one (set by :func:`render`).
    display: str = ""

    def label(self, role: str) -> str:
        """A single-model run (e.g. a teacher being trained) calls its model "model", not "student"."""
        return "model" if self.data.get("single_model") and role == self.data.get("student_role") else role

    @property
    def metric(self) -> str:
        """The headline metric (the selection's, recorded in report/data.json); an unfinished run's first one."""
        return self.data.get("headline") or _first_metric(self.results)


def _first_metric(results: Mapping[str, Any]) -> str:
    for by_role in results.values():
        for res in by_role.values():
            return next(iter(res["overall"]))
    return "loss"


def load_run(path: str | Path) -> RunFiles:
    """Read a run folder; a folder without ``metrics.jsonl`` is a one-line error naming it."""
    path = Path(path)
    folder = RunFolder(path)
    metrics = folder.metrics
    if not metrics.is_file():
        raise DataError(f"{path}: not a run folder (no metrics.jsonl); give the folder `distill run` printed")
    recipe: dict[str, Any] = (
        read_mapping_file(folder.recipe, yaml.safe_load, yaml.YAMLError) if folder.recipe.is_file() else {}
    )
    records = read_metrics(metrics)
    results: dict[str, Any] = {}
    if folder.results.is_file():
        results = read_mapping_file(folder.results, json.loads, json.JSONDecodeError).get("results", {})
        if not isinstance(results, dict):
            raise DataError(f"{folder.results}: 'results' is not a mapping; the file was edited or damaged")
    else:  # an unfinished run: its last evaluation
        for record in records:
            if record.get("kind") == "eval":
                results[record["split"]] = record["results"]
    return RunFiles(
        path=path,
        name=str(recipe.get("name") or path.name),
        description=str(recipe.get("description") or ""),
        records=records,
        results=results,
        data=read_report_data(path),
    )


# ------------------------------------------------------------------------------------------------------- figures
def embed_figure(fig: Any) -> str:
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return img_tag(buf.getvalue())


def img_tag(png: bytes, alt: str = "") -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _loss_series(train: Sequence[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """term → (step, value) points; a term equal to the total at every step is folded into the total's label
    (``total (= student)``), so that no line is hidden under another."""
    terms = list(dict.fromkeys(k for r in train for k in r.get("loss", {})))
    series = {
        t: [(r["step"], as_float(r["loss"][t])) for r in train if isinstance(r["loss"].get(t), (int, float))]
        for t in terms
    }
    total = series.get("total")
    if total is None:
        return series
    same = [t for t, pts in series.items() if t != "total" and pts == total]
    if not same:
        return series
    out = {t: pts for t, pts in series.items() if t not in same and t != "total"}
    out[f"total (= {', '.join(same)})"] = total
    return out


def curves_figure(run: RunFiles) -> tuple[str, str]:
    """Loss terms over steps (left) and each model's headline metric over evaluations (right; left out when every
    model was evaluated once: one point is not a curve). Returns the image and a caption ('' when both panels are
    drawn)."""
    plt = pyplot()
    train = [r for r in run.records if r.get("kind") == "train"]
    evals = [r for r in run.records if r.get("kind") == "eval"]
    metric = run.metric
    scale = 100.0 if metric.startswith("top") else 1.0
    curves: dict[str, list[tuple[int, float]]] = {}
    for split in dict.fromkeys(r["split"] for r in evals):
        rows = [r for r in evals if r["split"] == split]
        for role in dict.fromkeys(k for r in rows for k in r["results"]):
            curves[f"{split}: {run.label(role)}"] = [
                (r["step"], scale * as_float(r["results"][role]["overall"].get(metric)))
                for r in rows
                if role in r["results"]
            ]
    several = any(len(pts) > 1 for pts in curves.values())
    fig, axes = plt.subplots(1, 2 if several else 1, figsize=(11.0 if several else 6.0, 3.2), squeeze=False)
    ax_loss = axes[0][0]
    series = _loss_series(train)
    terms = [t for t in series if not t.startswith("total")]
    for term, pts in series.items():
        if not pts:
            continue
        if term.startswith("total"):  # on top, dashed, so the terms under it stay visible
            ax_loss.plot(*zip(*pts), label=term, color="black", lw=1.4, ls="--", zorder=3)
        else:  # each term thinner than the one before: two terms with equal values show as a line inside a line
            i = terms.index(term)
            ax_loss.plot(*zip(*pts), label=term, lw=min(6.0, 1.0 + 1.1 * (len(terms) - 1 - i)), alpha=0.85)
    values = [v for pts in series.values() for _, v in pts if math.isfinite(v)]
    if not values:  # e.g. fewer steps than train.log_every: say so rather than draw empty axes
        ax_loss.text(0.5, 0.5, "no training loss logged\n(fewer steps than train.log_every)", ha="center",
                     va="center", transform=ax_loss.transAxes, color="#666")  # fmt: skip
        ax_loss.set(xticks=[], yticks=[])
    if values and min(values) > 0:
        ax_loss.set_yscale("log")
    ax_loss.set(title="training loss per term", xlabel="step")
    if series:
        ax_loss.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the lines, never over them
    caption = ""
    if several:
        ax_eval = axes[0][1]
        for i, (label, pts) in enumerate(curves.items()):  # each thinner than the one before, as the loss terms
            width = min(6.0, 1.0 + 1.1 * (len(curves) - 1 - i))
            ax_eval.plot(*zip(*pts), marker="o", ms=3 + width, lw=width, alpha=0.85, label=label)
        ax_eval.set(title=f"{metric}{' (%)' if scale != 1 else ''} per model", xlabel="step")
        ax_eval.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    elif evals:
        steps = sorted({r["step"] for r in evals})
        caption = f"one evaluation (step {', '.join(map(str, steps))}): its {metric} is in the table above"
    fig.tight_layout()
    return embed_figure(fig), caption


def group_bars_figure(run: RunFiles, split: str, names: Mapping[str, str]) -> tuple[str, str]:
    """Per-group bars, one per model, groups as rows (their names read horizontally); the student's two hardest
    (red) and easiest (green) groups marked; a value that is undefined reads ``n/a`` at its bar."""
    plt = pyplot()
    by_role = {r: v for r, v in run.results[split].items() if v.get("groups")}
    metric = run.metric
    roles = list(by_role)
    keys = list(next(iter(by_role.values()))["groups"])
    focus = run.data.get("student_role") if run.data.get("student_role") in by_role else roles[-1]
    hard, easy = hardest_and_easiest(by_role[focus]["groups"], metric)
    fig, ax = plt.subplots(figsize=(7.0, 1.1 + 0.22 * len(keys) * len(roles)))
    height = 0.8 / len(roles)
    for j, role in enumerate(roles):
        vals = [as_float(by_role[role]["groups"].get(k, {}).get(metric)) for k in keys]
        ys = [i + (j - (len(roles) - 1) / 2) * height for i in range(len(keys))]
        ax.barh(ys, [0.0 if math.isnan(v) else v for v in vals], height, label=run.label(role), color=f"C{j}")
        for y, v in zip(ys, vals):
            if math.isnan(v):
                ax.text(0.0, y, f" {UNDEFINED}", va="center", ha="left", fontsize=7, color=f"C{j}")
    ax.set_yticks(range(len(keys)), [group_label(k, names) for k in keys], fontsize=8)
    ax.set_ylim(len(keys) - 0.5, -0.5)  # the first group on top
    for tick, key in zip(ax.get_yticklabels(), keys):
        if key in hard:
            tick.set_color("#c0392b")
            tick.set_fontweight("bold")
        elif key in easy:
            tick.set_color("#1e8449")
            tick.set_fontweight("bold")
    ax.axvline(0, color="grey", lw=0.5)
    ax.set(xlabel=f"{metric.upper()} ({split})", title=f"{metric.upper()} per {run.data.get('group_by') or 'group'}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    fig.tight_layout()
    caption = (
        f"{run.label(focus)}'s hardest (red): {', '.join(group_label(k, names) for k in hard) or UNDEFINED}; "
        f"easiest (green): {', '.join(group_label(k, names) for k in easy) or UNDEFINED} (by {metric}"
        + (
            f"; {UNDEFINED}: undefined, e.g. constant scores)"
            if any(math.isnan(as_float(by_role[r]["groups"].get(k, {}).get(metric))) for r in roles for k in keys)
            else ")"
        )
    )
    return embed_figure(fig), caption


def fig1_image(run: RunFiles, split: str, names: Mapping[str, str]) -> str:
    """The paper's Fig. 1-style violin plot over evaluations (``groups.plot_per_distortion``)."""
    written = run.path / f"per_{run.data.get('group_by')}_{split}.png"  # `distill run` drew it already
    if written.is_file() and written.stat().st_mtime >= RunFolder(run.path).metrics.stat().st_mtime:
        return img_tag(written.read_bytes(), "per-distortion violins")
    history = [r for r in run.records if r.get("kind") == "eval"]
    roles = list(run.results.get(split, {}))
    with tempfile.TemporaryDirectory() as tmp:
        path = plot_per_distortion(history, split, Path(tmp) / "fig1.png", run.metric, names or None, roles)
        return img_tag(path.read_bytes(), "per-distortion violins") if path is not None else ""


# ---------------------------------------------------------------------------------------------------------- HTML
def results_table(run: RunFiles, split: str) -> str:
    by_role = run.results[split]
    metrics = list(next(iter(by_role.values()))["overall"]) if by_role else []
    head = "".join(f"<th>{html.escape(m)}</th>" for m in ["model", *metrics, "n"])
    rows = "".join(
        f"<tr><td>{html.escape(run.label(role))}</td>"
        + "".join(f"<td>{format_metric(m, res['overall'][m])}</td>" for m in metrics)
        + f"<td>{res.get('n', '')}</td></tr>"
        for role, res in by_role.items()
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _task(name: str | None) -> Any:
    """The registered task ``name`` (report/data.json records it), reached through the registry; None if unknown."""
    from distill.registry import TASKS

    return TASKS.get(name)() if name and name in TASKS else None


def run_section(run: RunFiles, heading: bool = True) -> str:
    """One run's tables and figures; ``heading=False`` when the page's title already names the run."""
    parts = [f"<h2>{html.escape(run.display or run.name)}</h2>"] if heading else []
    parts.append(f"<p class='muted'>{html.escape(run.description)}<br>{html.escape(str(run.path))}</p>")
    splits = run.data.get("splits", {})
    task = _task(run.data.get("task"))
    for split in run.results:
        entry = splits.get(split, {})
        caption = entry.get("caption") or f"split {split}"
        parts.append(f"<h3>{html.escape(split)}</h3><p class='caption'>{html.escape(caption)}</p>")
        parts.append(results_table(run, split))
    curves, note = curves_figure(run)
    parts.append("<h3>training</h3>" + curves + (f"<p class='caption'>{html.escape(note)}</p>" if note else ""))
    for split in run.results:
        entry = splits.get(split, {})
        names = entry.get("group_names", {})
        if any(res.get("groups") for res in run.results[split].values()):
            bars, caption = group_bars_figure(run, split, names)
            parts.append(f"<h3>per {html.escape(run.data.get('group_by') or 'group')}: {html.escape(split)}</h3>")
            parts.append(bars + f"<p class='caption'>{html.escape(caption)}</p>")
            fig1 = fig1_image(run, split, names)
            if fig1:
                parts.append(fig1 + "<p class='caption'>spread of each type's value over the evaluations (Fig. 1)</p>")
            else:
                parts.append(
                    f"<p class='caption'>Fig. 1 (spread of each type over evaluations) needs several evaluations of "
                    f"'{html.escape(split)}'; this run evaluated it once (lower train.eval_every for more)</p>"
                )
        if task is not None:  # what the run's task draws of it (SR crops, per-class accuracy …)
            parts.extend(task.html_sections(run, split, entry))
    return "<section>" + "\n".join(parts) + "</section>"


def comparison_table(runs: Sequence[RunFiles]) -> str:
    """Runs as rows, each split × model's headline metric as columns."""
    columns = list(dict.fromkeys((s, run.label(r)) for run in runs for s, by in run.results.items() for r in by))
    head = "".join(f"<th>{html.escape(f'{s}: {r}')}</th>" for s, r in columns)
    rows = []
    for run in runs:
        cells = []
        for split, label in columns:
            role = next((r for r in run.results.get(split, {}) if run.label(r) == label), None)
            value = format_metric(run.metric, run.results[split][role]["overall"].get(run.metric)) if role else "–"
            cells.append(f"<td>{value}</td>")
        rows.append(f"<tr><td>{html.escape(run.display or run.name)} ({run.metric})</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>run</th>{head}</tr>{''.join(rows)}</table>"


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
.runs{display:grid;gap:1.5em;grid-template-columns:repeat(var(--n),minmax(0,1fr))}
section{min-width:0} img{max-width:100%;height:auto} h2{margin-bottom:.2em}
table{border-collapse:collapse;margin:.4em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}
td:first-child,th:first-child{text-align:left} .muted,.caption{color:#666;font-size:.85em}
.grid td.crop,.grid th{text-align:center} .grid td.crop{font-size:.8em} .grid img{width:160px;image-rendering:pixelated}
"""


def _folder_labels(paths: Sequence[Path]) -> list[str]:
    """The shortest trailing parts of ``paths`` that tell them apart (``seed0``, ``a/run`` vs ``b/run``)."""
    parts = [p.resolve().parts for p in paths]
    for n in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-n:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]


def name_runs(runs: Sequence[RunFiles]) -> str:
    """Set each run's ``display`` name and return the page title: ``a vs b`` for different recipes; runs of one
    recipe are told apart by their folders (``mrkd_tid: seed0, seed1``), never ``mrkd_tid vs mrkd_tid``."""
    names = [r.name for r in runs]
    if len(runs) == 1:
        runs[0].display = names[0]
        return names[0]
    folders = _folder_labels([r.path for r in runs])
    if len(set(names)) == 1:
        for run, folder in zip(runs, folders):
            run.display = folder
        return f"{names[0]}: {', '.join(folders)}"
    repeated = {n for n in names if names.count(n) > 1}
    for run, folder in zip(runs, folders):
        run.display = f"{run.name} ({folder})" if run.name in repeated else run.name
    return " vs ".join(r.display for r in runs)


def render(run_dirs: Sequence[str | Path]) -> str:
    """The HTML page for these run folders."""
    runs = [load_run(p) for p in run_dirs]
    title = name_runs(runs)
    body = [f"<h1>{html.escape(title)}</h1>"]
    if len(runs) > 1:
        body.append(comparison_table(runs))
    sections = "".join(run_section(r, heading=len(runs) > 1) for r in runs)
    body.append(f'<div class="runs" style="--n:{len(runs)}">{sections}</div>')
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )


def write_report(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Write the report of ``run_dirs`` to ``out`` (atomically) and return its path."""
    return write_text(out, render(run_dirs))
