"""Experiment trackers beside ``metrics.jsonl``: Weights & Biases and MLflow, both optional extras, offline by default.

``output.trackers: [tensorboard, wandb, mlflow]`` sends every record the run logs to ``metrics.jsonl`` (loss terms
per model, learning rates, each evaluation with its per-group metrics) to each tracker as scalars keyed like the
TensorBoard tags (``train/loss/kd``, ``eval/test/results/student/groups/01/srcc``), the resolved recipe as the
run's config, and at the end ``student.pt``, ``results.json`` and ``report.html`` as artifacts.

* Nothing leaves the machine unless the recipe (or the tracker's own environment variable) says so: W&B runs in
  ``offline`` mode under ``<run>/wandb`` (``wandb sync`` uploads it later), MLflow writes a SQLite store in the run
  folder (``mlflow ui --backend-store-uri sqlite:///<run>/mlflow.db``).
* Rank 0 alone opens trackers under torchrun (the trainer's other ranks log nowhere).
* The tracker run ids are kept in ``<run>/trackers.json``: ``--resume`` continues the same tracker runs. Records
  of the part a killed run redoes are sent again with the same step (values identical: resume is exact); the
  charts plot against the ``step`` value, not the tracker's own counter. W&B writes its offline log in blocks, so
  a SIGKILL can lose its last records: on resume it is sent ``metrics.jsonl``'s kept records again (a record that
  did reach it then appears twice at the same step, with the same values); MLflow commits every call.
* A missing extra is a one-line error before training (``pip install 'distill[wandb]'``); a tracker that fails
  while the run is under way is one warning line, after which the run goes on without it — ``metrics.jsonl`` and
  TensorBoard are written independently and stay complete.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from distill.errors import DistillError, first_line
from distill.recipe.check import check_tracker_list
from distill.recipe.config import MlflowConfig, OutputConfig, WandbConfig
from distill.run.atomic import write_text
from distill.run.layout import RunFolder

__all__ = ["IDS_FILE", "Tracker", "attach_artifacts", "check_trackers", "open_trackers", "tensorboard_setting"]

IDS_FILE = "trackers.json"
#: tracker name → (module to import, extra that installs it)
EXTRAS = {"wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow")}
#: files of a finished run folder that go to the trackers as artifacts
RUN_ARTIFACTS = (RunFolder.STUDENT, RunFolder.RESULTS, RunFolder.RECIPE)


class Tracker(Protocol):
    """What the run logger needs from a tracker; every call may raise (the caller disables a failing tracker)."""

    name: str
    #: the tracker buffers records in memory, so a killed run may lose its last ones: a resumed run sends the
    #: kept records of ``metrics.jsonl`` again (W&B's offline log is written in 32 KiB blocks)
    replays_on_resume: bool

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        """Scalars of one record at training step ``step``."""

    def log_artifact(self, path: Path) -> None:
        """A file of the run folder."""

    def close(self) -> None:
        """Flush and end the tracker's run (it can be continued later under the same id)."""


# ------------------------------------------------------------------------------------------------ recipe checks
def tensorboard_setting(output: OutputConfig) -> bool | str:
    """What ``output`` asks of TensorBoard: ``output.tensorboard``, or whether ``output.trackers`` names it."""
    if output.trackers is None:
        return output.tensorboard
    return "tensorboard" in output.trackers


def check_trackers(output: OutputConfig, installed: bool = True, where: str = "output.trackers") -> None:
    """Refuse duplicate or contradictory settings and (``installed``) trackers whose extra is not installed."""
    check_tracker_list(output, where)
    for name in output.trackers or () if installed else ():
        if name in EXTRAS and importlib.util.find_spec(EXTRAS[name][0]) is None:
            raise DistillError(
                f"{where}: {name} needs the {EXTRAS[name][1]} extra: pip install 'distill[{EXTRAS[name][1]}]' "
                f"(or leave {name} out of {where})"
            )


# ------------------------------------------------------------------------------------------------ tracker runs
def _read_ids(out_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((out_dir / IDS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_ids(out_dir: Path, ids: Mapping[str, Any]) -> None:
    write_text(out_dir / IDS_FILE, json.dumps(ids, indent=2) + "\n")


def _flat_config(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(_flat_config(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: json.dumps(value) if not isinstance(value, str) else value} if prefix else {}


class WandbTracker:
    """A W&B run (``offline`` unless ``output.wandb.mode`` or ``$WANDB_MODE`` says otherwise) under ``<run>/wandb``."""

    name = "wandb"
    replays_on_resume = True

    def __init__(self, cfg: WandbConfig, out_dir: Path, recipe: Mapping[str, Any], run_id: str | None) -> None:
        import wandb

        self.wandb = wandb
        mode = cfg.mode or os.environ.get("WANDB_MODE") or "offline"
        self.run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            name=cfg.name or str(recipe.get("name") or out_dir.name),
            group=cfg.group,
            tags=list(cfg.tags) or None,
            mode=mode,
            dir=str(out_dir),
            id=run_id,
            resume="allow" if run_id else None,
            config=dict(recipe),
            settings=wandb.Settings(console="off", quiet=True, silent=True),
            reinit="create_new",
        )
        self.run.define_metric("step", hidden=True)
        self.run.define_metric("*", step_metric="step")
        self.id: str = self.run.id
        self.mode = mode

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        self.run.log({"step": step, **scalars})

    def log_artifact(self, path: Path) -> None:
        kind = {".pt": "model", ".html": "report"}.get(path.suffix, "file")
        artifact = self.wandb.Artifact(f"{self.id}-{path.stem}", type=kind)
        artifact.add_file(str(path), policy="immutable")  # referenced in place, not copied to W&B's staging cache
        self.run.log_artifact(artifact)

    def close(self) -> None:
        self.run.finish()


_MLFLOW_KEY = re.compile(r"[^A-Za-z0-9_\-. /:]")


class MlflowTracker:
    """An MLflow run through ``MlflowClient`` (no global active run), in a SQLite store in the run folder unless
    ``output.mlflow.tracking_uri`` or ``$MLFLOW_TRACKING_URI`` names another store or server."""

    name = "mlflow"
    replays_on_resume = False  # every call is a committed write to the store

    def __init__(
        self, cfg: MlflowConfig, out_dir: Path, recipe: Mapping[str, Any], run_id: str | None, uri: str | None
    ) -> None:
        import logging

        import mlflow  # noqa: F401  (the extra; MlflowClient below)
        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # not its INFO lines about creating database tables
        logging.getLogger("alembic").setLevel(logging.WARNING)

        out = out_dir.resolve()
        self.uri = uri or cfg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{out / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=self.uri)
        if run_id is None:
            experiment = cfg.experiment or str(recipe.get("name") or "distill")
            found = self.client.get_experiment_by_name(experiment)
            if found is not None:
                exp_id = found.experiment_id
            elif self.uri.startswith("sqlite:") and str(out) in self.uri:
                exp_id = self.client.create_experiment(experiment, artifact_location=(out / "mlartifacts").as_uri())
            else:
                exp_id = self.client.create_experiment(experiment)
            run = self.client.create_run(exp_id, run_name=cfg.run_name or out_dir.name)
            self.id: str = run.info.run_id
            params = _flat_config(recipe)
            from mlflow.entities import Param

            items = [Param(k[:250], v[:6000]) for k, v in params.items()]
            for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.id, params=items[i : i + 100])
        else:
            self.id = run_id
            self.client.update_run(run_id, status="RUNNING")
        self._finished = False

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(_MLFLOW_KEY.sub("_", k), v, now, step) for k, v in scalars.items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.id, metrics=metrics[i : i + 1000])

    def log_artifact(self, path: Path) -> None:
        self.client.log_artifact(self.id, str(path))

    def close(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.id, status=status)


class Trackers:
    """The open trackers of a run; a tracker that raises is reported in one line and left out from then on."""

    def __init__(self, trackers: Sequence[Tracker]) -> None:
        self.trackers = list(trackers)

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def _each(self, what: str, call: Any) -> None:
        self._each_of(list(self.trackers), what, call)

    def _each_of(self, trackers: Sequence[Tracker], what: str, call: Any) -> None:
        for tracker in trackers:
            try:
                call(tracker)
            except Exception as err:
                self.trackers.remove(tracker)
                warn(f"{tracker.name} tracker failed while {what} ({type(err).__name__}: {first_line(err)}); "
                     "the run goes on without it (metrics.jsonl is complete)")  # fmt: skip

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        if scalars:
            self._each("logging", lambda t: t.log(scalars, step))

    def replay(self, records: Sequence[tuple[Mapping[str, float], int]]) -> None:
        """Send a resumed run's earlier records again to the trackers that may have lost them in the kill."""
        for tracker in [t for t in self.trackers if getattr(t, "replays_on_resume", False)]:
            self._each_of([tracker], "replaying", lambda t: [t.log(s, step) for s, step in records if s])

    def log_artifacts(self, paths: Sequence[Path]) -> None:
        for path in paths:
            if path.is_file():
                self._each(f"saving {path.name}", lambda t, p=path: t.log_artifact(p))

    def close(self) -> None:
        self._each("closing", lambda t: t.close())
        self.trackers = []


def warn(message: str) -> None:
    """One line on stderr, as the CLI prints its errors."""
    print(f"distill: warning: {message}", file=sys.stderr, flush=True)


def open_trackers(
    output: OutputConfig | None, out_dir: Path | None, recipe: Mapping[str, Any] | None, resume: bool
) -> Trackers:
    """The W&B/MLflow runs that ``output.trackers`` asks for (none without a run folder), continuing the runs of
    ``<out_dir>/trackers.json`` when ``resume``. A tracker that cannot start is one warning line, not an error."""
    names = [n for n in (output.trackers or []) if n in EXTRAS] if output is not None else []
    if not names or out_dir is None:
        return Trackers([])
    assert output is not None
    recipe = recipe or {}
    ids = _read_ids(out_dir) if resume else {}
    opened: list[Tracker] = []
    for name in names:
        known = ids.get(name) or {}
        try:
            if name == "wandb":
                tracker: Any = WandbTracker(output.wandb, out_dir, recipe, known.get("id"))
                ids[name] = {"id": tracker.id, "mode": tracker.mode, "project": output.wandb.project}
            else:
                tracker = MlflowTracker(output.mlflow, out_dir, recipe, known.get("id"), known.get("tracking_uri"))
                ids[name] = {"id": tracker.id, "tracking_uri": tracker.uri}
        except ImportError:
            extra = EXTRAS[name][1]
            raise DistillError(
                f"output.trackers: {name} needs the {extra} extra: pip install 'distill[{extra}]'"
            ) from None
        except Exception as err:
            warn(f"{name} tracker could not start ({type(err).__name__}: {first_line(err)}); "
                 "the run goes on without it (metrics.jsonl is complete)")  # fmt: skip
            continue
        opened.append(tracker)
    _write_ids(out_dir, ids)
    return Trackers(opened)


def attach_artifacts(out_dir: Path, output: OutputConfig | None, paths: Sequence[Path]) -> None:
    """Add files written after training (``report.html``) to the run's finished tracker runs, reopened by id."""
    if output is None or not any(n in EXTRAS for n in output.trackers or []):
        return
    present = [p for p in paths if Path(p).is_file()]
    known = [n for n in output.trackers or [] if n in EXTRAS and n in _read_ids(out_dir)]
    if not present or not known:  # only the runs that training opened (never a new run for one file)
        return
    only = OutputConfig(trackers=known, wandb=output.wandb, mlflow=output.mlflow)
    trackers = open_trackers(only, out_dir, _recipe_of(out_dir), resume=True)
    trackers.log_artifacts([Path(p) for p in present])
    trackers.close()


def _recipe_of(out_dir: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(RunFolder(out_dir).recipe.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}
