"""Run logging: ``metrics.jsonl`` (one JSON record per line) and optional TensorBoard event files."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Literal

from distill.errors import DataError
from distill.run.atomic import write_text
from distill.run.layout import RunFolder
from distill.run.values import UNDEFINED, as_float


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}/{k}" if prefix else str(k), v, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        out[prefix] = float(value)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def record_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a record keyed by tag: ``train/loss/kd``, ``eval/test/results/student/overall/srcc``."""
    scalars: dict[str, float] = {}
    kind = record.get("kind", "log")
    prefix = f"{kind}/{record['split']}" if "split" in record else kind
    _flatten(prefix, {k: v for k, v in record.items() if k not in ("kind", "split", "step", "epoch")}, scalars)
    return scalars


class RunLogger:
    """Appends records to ``<out>/metrics.jsonl`` and mirrors scalars to TensorBoard when enabled and installed,
    and to the experiment trackers of :mod:`distill.engine.trackers` (W&B, MLflow) when the run opened any."""

    def __init__(
        self, out_dir: Path | None, tensorboard: bool | Literal["auto"] = "auto", trackers: Any = None
    ) -> None:
        self.path = RunFolder(out_dir).metrics if out_dir else None
        self.out_dir = out_dir
        self.trackers = trackers  # a distill.engine.trackers.Trackers, or None
        self.tb = None
        if tensorboard not in (True, False, "auto"):
            raise ValueError(f"output.tensorboard must be true, false or auto, got {tensorboard!r}")
        if out_dir is not None and tensorboard is not False:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out_dir / "tensorboard"))
            except Exception as err:  # tensorboard is optional
                if tensorboard is True:
                    raise RuntimeError(f"output.tensorboard is true but TensorBoard is unavailable: {err}") from err

    def truncate_after(self, step: int) -> list[dict[str, Any]]:
        """Drop records logged after ``step`` (they belong to the part of a killed run that is redone on resume);
        return the records kept."""
        if self.path is None or not self.path.exists():
            return []
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
        write_text(self.path, "".join(f"{line}\n" for line in kept))  # a kill here keeps the old log whole
        records = [json.loads(line) for line in kept]
        if self.trackers and step > 0:  # a resume: trackers that may have lost the kill's last records get them again
            self.trackers.replay([(record_scalars(r), int(r.get("step", 0))) for r in records])
        return records

    def log(self, record: dict[str, Any]) -> None:
        if self.path is not None:
            with self.path.open("a") as fh:
                fh.write(json.dumps(_json_safe(record)) + "\n")
        if self.tb is not None or self.trackers:
            scalars = record_scalars(record)
            for tag, value in scalars.items() if self.tb is not None else ():
                self.tb.add_scalar(tag, value, record.get("step", 0))
            if self.trackers:
                self.trackers.log(scalars, int(record.get("step", 0)))

    def log_outputs(self) -> None:
        """Send the finished run's files (``student.pt``, ``results.json``, ``recipe.yaml``) to the trackers."""
        if self.trackers and self.out_dir is not None:
            from distill.engine.trackers import RUN_ARTIFACTS

            self.trackers.log_artifacts([self.out_dir / name for name in RUN_ARTIFACTS])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
        if self.trackers:
            self.trackers.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` file. A last line cut by a kill (no newline, not JSON) is left out, as
    ``--resume`` drops it; any other line that is not a JSON record is a DataError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file (metrics.jsonl holds one JSON record per line)") from None
    lines = text.splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) and not text.endswith("\n"):
                continue  # the line a kill cut
            raise DataError(f"{path}, line {number}: not a JSON record; the file was edited or damaged") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {number}: a {type(record).__name__}, not a record; the file is damaged")
        records.append(record)
    return records


def format_metric(name: str, value: Any) -> str:
    """A metric value as a person reads it: top-k in %, PSNR in dB, correlations with 4 digits; ``n/a`` when it is
    undefined (``None``/``nan``, see :mod:`distill.run.values`)."""
    value = as_float(value)
    if math.isnan(value):
        return UNDEFINED
    if name.startswith("top"):
        return f"{100.0 * value:.1f} %"
    if name == "psnr":
        return f"{value:.2f} dB"
    return f"{value:.4f}"


def _clock(seconds: float) -> str:
    whole = max(0, round(seconds))
    h, rest = divmod(whole, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class Console:
    """What a person watching the run sees (rank 0, unless quiet): where the run writes, which epoch the progress bar
    is in, and one line per evaluation with each model's headline metric, elapsed and remaining time.

    ``write`` is :func:`tqdm.write` while a bar is open, so lines do not tear the bar.
    """

    def __init__(
        self,
        enabled: bool,
        total_steps: int,
        steps_per_epoch: int,
        epochs: int | None,
        metric: str,
        write: Any = None,
    ) -> None:
        self.enabled = enabled
        self.total_steps = total_steps
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.epochs = epochs if epochs is not None else math.ceil(total_steps / self.steps_per_epoch)
        self.metric = metric
        self.write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self._start = time.perf_counter()
        self._start_step = 0

    def start(self, out_dir: Path | None, step: int) -> None:
        """Print the run folder (before any training) and start the clock at ``step`` (non-zero on resume)."""
        self._start, self._start_step = time.perf_counter(), step
        if self.enabled and out_dir is not None:
            self.write(f"run folder: {out_dir}")

    def epoch_label(self, epoch: int) -> str:
        """The progress bar's description, e.g. ``epoch 3/15``."""
        return f"epoch {min(epoch + 1, self.epochs)}/{self.epochs}"

    def timing(self, step: int) -> str:
        elapsed = time.perf_counter() - self._start
        done = step - self._start_step
        left = elapsed / done * (self.total_steps - step) if done > 0 else float("nan")
        return f"{_clock(elapsed)} elapsed, {_clock(left) if math.isfinite(left) else '?'} left"

    def eval_line(self, step: int, results: dict[str, Any]) -> str:
        """``eval epoch 5/15 step 130/390 | test: teacher srcc 0.3012, student srcc 0.2841 | 0:41 elapsed, …``."""
        parts = []
        for split, by_role in results.items():
            models = ", ".join(
                f"{role} {self.metric} {format_metric(self.metric, res['overall'].get(self.metric, math.nan))}"
                for role, res in by_role.items()
            )
            parts.append(f"{split}: {models}")
        shown = max(1, math.ceil(step / self.steps_per_epoch))  # the (1-based) epoch the step belongs to
        return (
            f"eval  epoch {min(shown, self.epochs)}/{self.epochs}  step {step}/{self.total_steps} | "
            f"{' | '.join(parts)} | {self.timing(step)}"
        )

    def evaluation(self, step: int, results: dict[str, Any]) -> None:
        if self.enabled and results:
            self.write(self.eval_line(step, results))
