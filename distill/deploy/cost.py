"""What a distilled model costs: parameters, FLOPs, latency and peak memory, teacher beside student.

Conventions (stated in every table this module prints):

* **params** — number of parameter elements (``numel``), all and trainable; buffers are not counted.
* **FLOPs** — one forward pass on the stated input, counted by torch's own
  :class:`torch.utils.flop_counter.FlopCounterMode`, which counts a multiply-add as **2** FLOPs and counts only the
  operators it knows (convolutions, matmuls, attention); element-wise ops are not counted.
* **latency** — median wall time of a forward pass under ``torch.inference_mode`` after warm-up, on the stated
  device and thread count (CUDA is synchronised around each pass), ± half the interquartile range. The models are
  timed **interleaved**: after every model's warm-up, each round times every model once, starting with a different
  model each round, so drifting machine load, thread-pool wake-up and allocator growth hit all models alike (timed
  one after another, the same model measured as teacher and as student came out 1.03–2.21× apart). Speed-ups are
  the median of the per-round ratios.
* **peak memory** — on CUDA, ``torch.cuda.max_memory_allocated`` during one forward pass; on CPU, the peak of
  the bytes held by tensors the forward pass allocates (tracked per storage with a dispatch mode), plus the
  parameters, buffers and input. Allocator caching and the Python heap are not included.
"""

from __future__ import annotations

import statistics
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from distill.errors import DistillError, first_line
from distill.registry import DISTILLERS

#: The conventions above in one line, for table captions.
CONVENTIONS = (
    "FLOPs: torch.utils.flop_counter, 1 multiply-add = 2 FLOPs, conv/matmul/attention only; latency: median "
    "(± half IQR) of interleaved rounds under inference_mode after warm-up, speed-up = median per-round ratio; "
    "peak memory: CUDA max_memory_allocated, or on CPU the peak of "
    "live tensor storages + parameters + input"
)


@dataclass(frozen=True)
class ModelProfile:
    """The cost of one forward pass of one model on one input shape."""

    name: str
    params: int
    trainable_params: int
    input_shape: tuple[int, ...]
    flops: int
    latency_ms: float
    latency_min_ms: float
    peak_memory_bytes: int
    device: str
    threads: int
    latency_spread_ms: float = 0.0  # half the interquartile range of the timed passes
    latency_rounds_ms: tuple[float, ...] = ()  # each timed pass, in round order (paired across models)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Parameter elements of ``model`` (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of ``model(example)`` as counted by :class:`~torch.utils.flop_counter.FlopCounterMode`."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(example)
    return int(counter.get_total_flops())


class LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of the CPU tensor storages created inside the mode (``with LiveTensorBytes(resident) as t: …``).

    Every storage an operator returns is counted from its creation until it is freed; ``resident`` tensors (weights,
    inputs) and storages that existed before are not counted. ``t.peak`` is the high-water mark, ``t.live`` what is
    still alive. Works for forward passes and whole training steps (autograd's saved tensors included).
    """

    def __init__(self, resident: Sequence[Tensor] = ()) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._sizes: dict[int, int] = {}
        self._resident = {t.untyped_storage().data_ptr() for t in resident}

    def _release(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key, size = storage.data_ptr(), storage.nbytes()
                if size and key not in self._sizes and key not in self._resident:
                    self._sizes[key] = size
                    self.live += size
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._release, key)
        return out


def _tensor_bytes(tensors: Any) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


def peak_forward_memory(model: nn.Module, example: torch.Tensor) -> int:
    """Peak bytes during one forward pass (see the module docstring for what is counted on each device)."""
    if example.device.type == "cuda":
        torch.cuda.synchronize(example.device)
        torch.cuda.reset_peak_memory_stats(example.device)
        with torch.inference_mode():
            model(example)
        torch.cuda.synchronize(example.device)
        return int(torch.cuda.max_memory_allocated(example.device))
    tensors = [*model.parameters(), *model.buffers(), example]
    tracker = LiveTensorBytes(tensors)
    with torch.inference_mode(), tracker:
        out = model(example)
    del out
    return _tensor_bytes(tensors) + tracker.peak


def time_forward(model: nn.Module, example: torch.Tensor, warmup: int = 2, repeats: int = 10) -> list[float]:
    """Seconds of each of ``repeats`` forward passes after ``warmup`` untimed ones."""
    cuda = example.device.type == "cuda"
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if cuda:
                torch.cuda.synchronize(example.device)
            start = time.perf_counter()
            model(example)
            if cuda:
                torch.cuda.synchronize(example.device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return times


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        v = values[0] if values else float("nan")
        return v, v, v
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def time_interleaved(
    models: Mapping[str, nn.Module],
    example: torch.Tensor,
    warmup: int = 2,
    repeats: int = 10,
    progress: Any = None,
) -> dict[str, list[float]]:
    """Seconds of one forward pass of each model in each of ``repeats`` rounds, after ``warmup`` passes of each.

    Round ``r`` times the models starting from model ``r mod M``, so no model is always first (or last) after
    another one. ``progress(done, total)`` is called after each round.
    """
    names = list(models)
    times: dict[str, list[float]] = {n: [] for n in names}
    for name in names:
        time_forward(models[name], example, warmup, 0)
    for r in range(repeats):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            times[name].extend(time_forward(models[name], example, 0, 1))
        if progress is not None:
            progress(r + 1, repeats)
    return times


def _profile(model: nn.Module, example: torch.Tensor, name: str, times: Sequence[float]) -> ModelProfile:
    q1, median, q3 = _quartiles(times)
    return ModelProfile(
        name=name,
        params=count_parameters(model),
        trainable_params=count_parameters(model, trainable_only=True),
        input_shape=tuple(example.shape),
        flops=count_flops(model, example),
        latency_ms=1e3 * median,
        latency_min_ms=1e3 * min(times),
        peak_memory_bytes=peak_forward_memory(model, example),
        device=str(example.device),
        threads=torch.get_num_threads(),
        latency_spread_ms=1e3 * (q3 - q1) / 2,
        latency_rounds_ms=tuple(1e3 * t for t in times),
    )


def profile_model(
    model: nn.Module,
    example: torch.Tensor,
    name: str = "model",
    warmup: int = 2,
    repeats: int = 10,
) -> ModelProfile:
    """Parameters, FLOPs, latency and peak memory of ``model`` on ``example`` (model left in eval mode)."""
    return profile_models({name: model}, example, warmup, repeats)[0]


def profile_models(
    models: Mapping[str, nn.Module],
    example: torch.Tensor,
    warmup: int = 2,
    repeats: int = 10,
    progress: Any = None,
) -> list[ModelProfile]:
    """Every named model on the same input, timed interleaved (:func:`time_interleaved`)."""
    models = {name: m.eval().to(example.device) for name, m in models.items()}
    for name, model in models.items():  # one untimed call each: a shape the model cannot take is the user's input
        try:
            with torch.no_grad():
                model(example)
        except (RuntimeError, ValueError) as err:
            reason = first_line(err)
            raise DistillError(
                f"profile: model '{name}' does not run on an input of shape {tuple(example.shape)} ({reason}); "
                "pass --shape C,H,W with a larger H and W"
            ) from None
    times = time_interleaved(models, example, warmup, repeats, progress)
    return [_profile(m, example, name, times[name]) for name, m in models.items()]


def speedup(reference: ModelProfile, model: ModelProfile) -> tuple[float, float]:
    """Median and half-IQR of the per-round latency ratios ``reference / model`` (paired by round)."""
    pairs = [a / b for a, b in zip(reference.latency_rounds_ms, model.latency_rounds_ms) if b > 0]
    if not pairs:
        ratio = reference.latency_ms / model.latency_ms if model.latency_ms else float("nan")
        return ratio, float("nan")
    q1, median, q3 = _quartiles(pairs)
    return median, (q3 - q1) / 2


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}"


def profile_table(profiles: Sequence[ModelProfile], reference: str | None = None) -> str:
    """Side-by-side table; ratios are ``reference / model`` (compression and speed-up, >1 means smaller/faster)."""
    if not profiles:
        return "(no models profiled)"
    ref = next((p for p in profiles if p.name == reference), profiles[0])
    first = profiles[0]
    header = ["model", "params", "FLOPs", "latency ms", "peak mem", f"params ×↓ vs {ref.name}", "FLOPs ×↓", "speed-up"]
    rows = [header]
    for p in profiles:
        rows.append(
            [
                p.name,
                _si(p.params, ""),
                _si(p.flops, "FLOP"),
                f"{p.latency_ms:.2f} ±{p.latency_spread_ms:.2f}",
                _si(p.peak_memory_bytes, "B"),
                f"{ref.params / p.params:.2f}" if p.params else "n/a",
                f"{ref.flops / p.flops:.2f}" if p.flops else "n/a",
                "{:.2f} ±{:.2f}".format(*speedup(ref, p)) if p.latency_ms else "n/a",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        f"input {tuple(first.input_shape)} on {first.device}, {first.threads} thread{'s' * (first.threads > 1)}, "
        f"median of {len(first.latency_rounds_ms)} interleaved rounds",
        CONVENTIONS,
        *("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows),
    ]
    lines.insert(3, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


#: Input used when neither the command line nor the model (``profile_input_shape``) says otherwise.
DEFAULT_INPUT_SHAPE = (3, 224, 224)


def models_of(target: str | Path) -> tuple[dict[str, nn.Module], str | None]:
    """The models of a recipe file, a training checkpoint or a ``student.pt`` export, by role, reference first.

    A recipe's models are built untrained and without their ``pretrained`` files (cost does not depend on the
    weights). A ``student.pt`` gives the trained student; its recorded recipe supplies the other roles.
    """
    from distill.deploy.model import load_deployable, models_without_weights
    from distill.recipe.check import load_recipe, recipe_from_dict

    path = Path(target)
    if path.suffix.lower() in (".yaml", ".yml"):
        recipe, _ = load_recipe(path)
        models = models_without_weights(recipe)
        student_role = DISTILLERS.get(recipe.distiller.name).student_role
    else:
        student, state = load_deployable(path)
        student_role = state.get("role", "student")
        models = {}
        if state.get("recipe"):
            recipe = recipe_from_dict(dict(state["recipe"]), source=str(path))
            models = {r: m for r, m in models_without_weights(recipe).items() if r != student_role}
        models[student_role] = student
    order = sorted(models, key=lambda role: (role == student_role, role != "teacher", role))
    reference = "teacher" if "teacher" in models else order[0]
    return {role: models[role] for role in order}, reference


def example_input(model: nn.Module, shape: Sequence[int] | None = None, batch: int = 1, device: str = "cpu") -> Tensor:
    """A seeded random input of ``(batch, *shape)``; ``shape`` defaults to the model's ``profile_input_shape``."""
    shape = tuple(shape or getattr(model, "profile_input_shape", DEFAULT_INPUT_SHAPE))
    gen = torch.Generator().manual_seed(0)
    return torch.rand((batch, *shape), generator=gen).to(device)
