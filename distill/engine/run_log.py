"""Run logging: ``metrics.jsonl`` (one JSON record per line) and optional TensorBoard event files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal


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


class RunLogger:
    """Appends records to ``<out>/metrics.jsonl`` and mirrors scalars to TensorBoard when enabled and installed."""

    def __init__(self, out_dir: Path | None, tensorboard: bool | Literal["auto"] = "auto") -> None:
        self.path = out_dir / "metrics.jsonl" if out_dir else None
        self.tb = None
        if out_dir is not None and tensorboard is not False:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out_dir / "tensorboard"))
            except Exception as err:  # tensorboard is optional
                if tensorboard is True:
                    raise RuntimeError(f"output.tensorboard is true but TensorBoard is unavailable: {err}") from err

    def truncate_after(self, step: int) -> None:
        """Drop records logged after ``step`` (they belong to the part of a killed run that is redone on resume)."""
        if self.path is None or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
        self.path.write_text("".join(f"{line}\n" for line in kept))

    def log(self, record: dict[str, Any]) -> None:
        if self.path is not None:
            with self.path.open("a") as fh:
                fh.write(json.dumps(_json_safe(record)) + "\n")
        if self.tb is not None:
            scalars: dict[str, float] = {}
            kind = record.get("kind", "log")
            prefix = f"{kind}/{record['split']}" if "split" in record else kind
            _flatten(prefix, {k: v for k, v in record.items() if k not in ("kind", "split", "step", "epoch")}, scalars)
            for tag, value in scalars.items():
                self.tb.add_scalar(tag, value, record.get("step", 0))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
