"""Share a distilled student as others do: safetensors, a Hugging Face-style model folder, a model card.

``distill export CKPT --format safetensors`` writes one ``.safetensors`` file whose metadata holds the registry spec
(``distill-model``: name and args); ``--format hf`` writes a folder::

    model.safetensors   the state dict (same metadata)
    config.json         format, registry name and args, task, role, step, distill version
    recipe.yaml         the resolved recipe of the run (``distill run recipe.yaml`` trains it again)
    README.md           the model card: method, teacher, data, split, seeds, the final table and its caption

Both load wherever a ``student.pt`` does (``distill predict``, :func:`distill.deploy.model.load_deployable`,
``pretrained:``), rebuilt from the spec and filled with a strict ``load_state_dict``. ``hf:OWNER/NAME[@REVISION]``
names such a folder on the Hugging Face Hub: it is downloaded (through ``huggingface_hub``, the ``hub`` extra) only
because a command or recipe names it, into the Hub's own cache (``$HF_HOME``; ``$HF_ENDPOINT`` for a mirror).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from distill import __version__
from distill.errors import CheckpointError, OutputPathError
from distill.run.atomic import write_text
from distill.run.layout import RunFolder
from distill.run.model_files import CONFIG_FILE, WEIGHTS_FILE, save_safetensors
from distill.run.safe_write import run_folder_of

FOLDER_FORMAT = "distill-model-folder/1"


# -------------------------------------------------------------------------------------------------------- export


def export_safetensors(model: nn.Module, state: Mapping[str, Any], out: Path) -> Path:
    """``out`` (a ``.safetensors`` file) from a loaded deployable model."""
    save_safetensors(model.state_dict(), state.get("model"), out)
    return out


def export_folder(model: nn.Module, state: Mapping[str, Any], checkpoint: Path, out: Path, task: str | None) -> Path:
    """The model folder ``out`` (created; an existing non-empty folder is refused) from a loaded deployable model
    of ``task`` (``iqa``, ``sr``, ``recognition`` …)."""
    spec = state.get("model")
    if not spec:
        raise CheckpointError(f"{checkpoint}: the model has no registry spec (built in Python); it cannot be shared")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputPathError(f"--out {out}: exists and is not an empty folder; choose a new folder (nothing written)")
    out.mkdir(parents=True, exist_ok=True)
    save_safetensors(model.state_dict(), spec, out / WEIGHTS_FILE)
    recipe = state.get("recipe")
    config = {
        "format": FOLDER_FORMAT,
        "model": {"name": spec["name"], "args": spec["args"]},
        "task": task,
        "role": state.get("role"),
        "step": state.get("step"),
        "distill_version": __version__,
        "source": checkpoint.name,
    }
    write_text(out / CONFIG_FILE, json.dumps(config, indent=2, default=str) + "\n")
    if recipe:
        import yaml

        write_text(out / "recipe.yaml", yaml.safe_dump(dict(recipe), sort_keys=False))
    run_dir = run_folder_of(checkpoint)
    write_text(out / "README.md", model_card(config, recipe or {}, run_dir))
    return out


def _cell(value: Any) -> str:
    return "`" + json.dumps(value, default=str) + "`" if not isinstance(value, str) else f"`{value}`"


def _component(spec: Mapping[str, Any] | None) -> str:
    if not spec:
        return "n/a"
    args = {k: v for k, v in (spec.get("args") or {}).items() if v is not None}
    return f"`{spec.get('name')}`" + (f" {_cell(args)}" if args else "")


def results_markdown(results: Mapping[str, Any], captions: Mapping[str, str], labels: Mapping[str, str]) -> str:
    """One Markdown table per split (models × metrics, as ``distill run`` prints them) with its caption."""
    from distill.report.tables import metric_cell, metric_header

    parts = []
    for split, by_role in results.items():
        if not by_role:
            continue
        metrics = list(next(iter(by_role.values()))["overall"])
        head = ["model", *(metric_header(m) for m in metrics), "n"]
        lines = [f"**{captions.get(split) or f'split: {split}'}**", "", "| " + " | ".join(head) + " |",
                 "|" + "---|" * len(head)]  # fmt: skip
        for role, res in by_role.items():
            cells = [labels.get(role, role)]
            for m in metrics:
                value = metric_cell(m, res["overall"].get(m))
                cells.append(f"{value:.4f}" if isinstance(value, float) else str(value))
            lines.append("| " + " | ".join([*cells, str(res.get("n", ""))]) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def model_card(config: Mapping[str, Any], recipe: Mapping[str, Any], run_dir: Path | None) -> str:
    """The ``README.md`` of a model folder, from the run's recipe, ``results.json`` and report captions."""
    name = str(recipe.get("name") or config["model"]["name"])
    models = recipe.get("models") or {}
    role = config.get("role") or "student"
    teachers = {r: s for r, s in models.items() if r != role}
    data = recipe.get("data") or {}
    train = recipe.get("train") or {}
    ev = recipe.get("eval") or {}
    summary: dict[str, Any] = {}
    captions: dict[str, str] = {}
    report: dict[str, Any] = {}
    if run_dir is not None:
        if RunFolder(run_dir).results.is_file():
            summary = json.loads(RunFolder(run_dir).results.read_text())
        data_file = run_dir / "report" / "data.json"  # written by distill.report.data beside the results
        report = json.loads(data_file.read_text()) if data_file.is_file() else {}
        captions = {s: str(e.get("caption", "")) for s, e in (report.get("splits") or {}).items()}
    single = bool(report.get("single_model")) or len(models) == 1
    labels = {role: "model"} if single else {}
    synthetic = data.get("synthetic") is not None or any("SYNTHETIC" in c for c in captions.values())
    splits = {s: {k: v for k, v in (spec.get("args") or {}).items() if k.startswith("split") or k.endswith("fraction")}
              for s, spec in (data.get("eval") or {}).items()}  # fmt: skip
    teacher_names = ", ".join(f"`{spec.get('name')}`" for spec in teachers.values())
    tags = ["knowledge-distillation", "distill"]
    for tag in (config.get("task"), (recipe.get("distiller") or {}).get("name")):
        if tag:
            tags.append(str(tag))
    lines = [
        "---",
        "library_name: distill",
        "tags:",
        *(f"- {t}" for t in tags),
        "---",
        "",
        f"# {name}: `{config['model']['name']}`" + (f" distilled from {teacher_names}" if teachers else ""),
        "",
    ]
    if recipe.get("description"):
        lines += [str(recipe["description"]).strip(), ""]
    if synthetic:
        lines += ["> **Trained and evaluated on a SYNTHETIC stand-in dataset**: the numbers below say nothing about "
                  "real data.", ""]  # fmt: skip
    rows = [
        ("task", f"`{config.get('task')}`"),
        ("method", _component(recipe.get("distiller"))),
        ("model (this folder)", _component(config["model"])),
        *(("teacher" if r == "teacher" else f"teacher ({r})", _component(s)) for r, s in teachers.items()),
        ("training data", _component(data.get("train"))),
        *((f"evaluation split '{s}'", _component((data.get("eval") or {}).get(s))) for s in splits),
        ("split", _cell(splits) if splits else "n/a"),
        ("seeds", f"train.seed {train.get('seed')}" + "".join(
            f", {s}.split_seed {a['split_seed']}" for s, a in splits.items() if "split_seed" in a)),
        ("length", f"{summary.get('steps', config.get('step'))} steps"
                   + (f" ({train['epochs']} epochs)" if train.get("epochs") else "")),
        ("selection", f"{summary.get('selection', ev.get('selection', 'last'))}"
                      + (f", step {summary['selected_step']}" if "selected_step" in summary else "")),
    ]  # fmt: skip
    lines += ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    lines += ["## Results", ""]
    if summary.get("results"):
        lines += [results_markdown(summary["results"], captions, labels), ""]
        lines += ["Numbers from the run's `results.json`; metrics as `distill run` printed them.", ""]
    else:
        lines += ["No `results.json` beside the exported checkpoint: the run's numbers are not known here.", ""]
    lines += [
        "## Use",
        "",
        "```bash",
        "distill predict THIS_FOLDER images/            # or hf:OWNER/NAME once uploaded",
        "```",
        "",
        "In a recipe, `pretrained: THIS_FOLDER` loads these weights into the same architecture.",
        "",
        "## Reproduce",
        "",
        "```bash",
        f"distill run recipe.yaml --out runs/{name}",
        "```",
        "",
        "`recipe.yaml` in this folder is the run's resolved recipe (every default written out)."
        if recipe
        else "The checkpoint held no recipe.",
        "",
        f"Exported by distill {__version__} from `{config.get('source')}` at step {config.get('step')}.",
        "",
    ]
    return "\n".join(lines)
