"""Recipes → validated :class:`~distill.recipe.config.Recipe` objects (files are read and merged by
:mod:`distill.recipe.files`: ``_base_`` inheritance, ``--set`` overrides, ``vars``).

* Overrides are type-checked like file keys.
* Every error is a :class:`~distill.errors.RecipeError` naming the file the key came from, the dotted key, the
  value given and what is allowed.
* Component ``args`` are checked against the registered constructor's signature and type hints.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import itertools
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from distill.errors import RecipeError, RegistryError
from distill.recipe.config import ComponentSpec, OptimConfig, OutputConfig, Recipe, ScheduleConfig, TrainConfig
from distill.recipe.files import Provenance, apply_overrides, load_raw, source_of, substitute_vars
from distill.registry import DATASETS, DISTILLERS, MODELS, WRITERS, Registry
from distill.run.atomic import write_text


# -------------------------------------------------------------------------------------------------------- checking
def _required(field: dataclasses.Field[Any]) -> bool:
    """A config field without a default: a recipe must give it."""
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


class RecipeChecker:
    """Coerces plain YAML data into typed values, raising errors that name file, key, value and the allowed set."""

    def __init__(self, prov: Provenance, default_source: str) -> None:
        self.prov = prov
        self.default_source = default_source

    def source(self, key: str) -> str:
        return source_of(self.prov, key, self.default_source)

    def fail(self, key: str, message: str) -> typing.NoReturn:
        raise RecipeError(f"{self.source(key)}: {key}: {message}")

    def unknown_keys(self, key: str, given: Iterable[str], allowed: Iterable[str], what: str) -> None:
        allowed = list(allowed)
        for name in given:
            if name not in allowed:
                dotted = f"{key}.{name}" if key else str(name)
                close = difflib.get_close_matches(str(name), allowed, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                self.fail(dotted, f"unknown key for {what}.{hint} Allowed: {', '.join(allowed) or '(none)'}")

    def coerce(self, value: Any, hint: Any, key: str) -> Any:
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if hint is Any or hint is inspect.Parameter.empty:
            return value
        if origin in (Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            options = [a for a in args if a is not type(None)]
            errors = []
            for option in options:
                try:
                    return self.coerce(value, option, key)
                except RecipeError as err:
                    errors.append(err)
            if len(options) == 1:
                raise errors[0]
            self.fail(key, f"got {value!r}, expected {self._describe(hint)}")
        if origin is Literal:
            if value in args:
                return value
            strings = [a for a in args if isinstance(a, str)]
            close = difflib.get_close_matches(value, strings, n=1) if isinstance(value, str) else []
            hint_text = f" Did you mean '{close[0]}'?" if close else ""
            self.fail(key, f"got {value!r}.{hint_text} Allowed: {', '.join(map(str, args))}")
        if dataclasses.is_dataclass(hint):
            return self.dataclass(hint, value, key)
        if origin in (list, tuple, typing.Sequence, Iterable) or hint in (list, tuple):
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
                self.fail(key, f"got {value!r}, expected a list")
            item = args[0] if args else Any
            # tuples stay lists so the resolved recipe round-trips through yaml.safe_dump
            return [self.coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        if origin in (dict, Mapping) or hint is dict:
            if not isinstance(value, dict):
                self.fail(key, f"got {value!r}, expected a mapping")
            item = args[1] if len(args) == 2 else Any
            return {str(k): self.coerce(v, item, f"{key}.{k}") for k, v in value.items()}
        if hint is bool:
            if isinstance(value, bool):
                return value
            self.fail(key, f"got {value!r}, expected true or false")
        if hint is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            self.fail(key, f"got {value!r}, expected an integer")
        if hint is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):  # YAML 1.1 reads "1e-2" as a string
                try:
                    return float(value)
                except ValueError:
                    pass
            self.fail(key, f"got {value!r}, expected a number")
        if hint is str:
            if isinstance(value, str):
                return value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            self.fail(key, f"got {value!r}, expected a string")
        if isinstance(hint, type) and not isinstance(value, hint):
            self.fail(key, f"got {value!r}, expected {hint.__name__}")
        return value

    @staticmethod
    def _describe(hint: Any) -> str:
        return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")

    def dataclass(self, cls: Any, value: Any, key: str) -> Any:
        if not isinstance(value, dict):
            self.fail(key or "(top level)", f"got {value!r}, expected a mapping of {cls.__name__} keys")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        self.unknown_keys(key, value, fields, cls.__name__)
        kwargs = {}
        for name, fld in fields.items():
            dotted = f"{key}.{name}" if key else name
            if name in value:
                kwargs[name] = self.coerce(value[name], hints[name], dotted)
            elif _required(fld):
                needed = [n for n, f in fields.items() if _required(f)]
                optional = [n for n, f in fields.items() if not _required(f)]
                more = f"; optional: {', '.join(optional)}" if optional else ""
                self.fail(dotted, f"required key is missing ({cls.__name__} needs: {', '.join(needed)}{more})")
        return cls(**kwargs)

    def component(self, registry: Registry[Any], spec: ComponentSpec, key: str, skip: Iterable[str] = ()) -> None:
        """Check ``spec.name`` exists in ``registry`` and ``spec.args`` fit its constructor's signature."""
        try:
            target = registry.get(spec.name)
        except RegistryError as err:
            self.fail(f"{key}.name", str(err))
        params, hints, takes_kwargs = signature_of(target)
        allowed = [p for p in params if p not in skip]
        if not takes_kwargs:
            self.unknown_keys(f"{key}.args", spec.args, allowed, f"{registry.kind} '{spec.name}'")
        for name, value in list(spec.args.items()):
            if name in hints:
                spec.args[name] = self.coerce(value, hints[name], f"{key}.args.{name}")
            default = params[name].default if name in params else None
            if _non_finite(spec.args[name]) and not _non_finite(default):  # nan never; inf where the default is
                self.fail(f"{key}.args.{name}", f"got {spec.args[name]!r}, expected finite numbers")


def _non_finite(value: Any) -> bool:
    """A float that is NaN or infinite, alone or inside a list or mapping."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


def signature_of(target: Callable[..., Any]) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """Keyword parameters, their resolved type hints, and whether ``**kwargs`` is accepted.

    For a class whose ``__init__`` takes ``**kwargs``, the parameters of the next ``__init__`` up the class chain
    are added (a subclass need not restate its parent's signature); ``**kwargs`` counts as accepted only when the
    last ``__init__`` reached takes it too.
    """
    if inspect.isclass(target):
        fns = [cls.__init__ for cls in inspect.getmro(target) if "__init__" in vars(cls)]  # type: ignore[misc]
    else:
        fns = [target]
    params: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    for fn in fns:
        sig = inspect.signature(fn)
        try:
            fn_hints = typing.get_type_hints(fn)
        except Exception:
            fn_hints = {}
        for n, p in sig.parameters.items():
            if n != "self" and n not in params and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                params[n] = p
                if n in fn_hints:
                    hints[n] = fn_hints[n]
        if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            return params, hints, False
    return params, hints, True


# --------------------------------------------------------------------------------------------------------- public
def recipe_from_dict(data: dict[str, Any], prov: Provenance | None = None, source: str = "<dict>") -> Recipe:
    """Validate a plain mapping into a :class:`Recipe` (types, names, component args)."""
    prov = prov if prov is not None else {}
    data = substitute_vars(data, prov, source)
    checker = RecipeChecker(prov, source)
    recipe: Recipe = checker.dataclass(Recipe, data, "")
    recipe.source = recipe.source or source
    for role, spec in recipe.models.items():
        checker.component(MODELS, spec, f"models.{role}")
    checker.component(DISTILLERS, recipe.distiller, "distiller", skip=("models",))
    checker.component(DATASETS, recipe.data.train, "data.train")
    for split, spec in recipe.data.eval.items():
        checker.component(DATASETS, spec, f"data.eval.{split}")
    if recipe.data.synthetic is not None:
        checker.component(WRITERS, recipe.data.synthetic, "data.synthetic", skip=("out",))
        if not recipe.data.root:
            checker.fail("data.synthetic", "needs data.root: the folder the synthetic set is written to")
    _check_cross_fields(recipe, checker)
    task = recipe_task(recipe)
    if task is not None:  # the student's task's own rules across keys (SR: one scale), reached through the registry
        from distill.registry import TASKS

        TASKS.get(task)().check_recipe(recipe, checker)
    return recipe


def recipe_task(recipe: Recipe) -> str | None:
    """The task of a recipe: the one its student model (the distiller's ``student_role``) is registered with
    (``@MODELS.register(name, task=...)``); None when that registration names none."""
    student = recipe.models.get(DISTILLERS.get(recipe.distiller.name).student_role)
    return MODELS.task(student.name) if student is not None else None


def check_training_numbers(
    train: TrainConfig, optim: Mapping[str, OptimConfig], checker: RecipeChecker | None = None
) -> None:
    """The numbers of ``train`` and every ``optim`` group in their ranges (lengths, batch sizes, learning rates,
    optimizer hyperparameters, schedules, device): one :class:`RecipeError` naming the key. A recipe runs it with
    its provenance; the :class:`~distill.engine.trainer.Trainer` of the Python API runs it on the configs it is
    given (``source`` "Trainer"), so both refuse the same values before anything is built."""
    checker = checker or RecipeChecker({}, "Trainer")
    if (length_error := train.length_error()) is not None:
        checker.fail("train", length_error)
    for key in ("epochs", "iterations", "batch_size", "eval_batch_size", "log_every", "eval_every", "checkpoint_every"):
        value = getattr(train, key)
        if value is not None and value <= 0:
            checker.fail(f"train.{key}", f"got {value}, expected a positive integer")
    if train.num_workers < 0:
        checker.fail("train.num_workers", f"got {train.num_workers}, expected 0 (load in the main process) or more")
    minutes = train.checkpoint_minutes
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        checker.fail("train.checkpoint_minutes", f"got {minutes}, expected a positive number of minutes or null")
    if train.ema is not None and not (math.isfinite(train.ema.decay) and 0.0 <= train.ema.decay < 1.0):
        checker.fail("train.ema.decay", f"got {train.ema.decay}, expected a number in [0, 1) (e.g. 0.999)")
    _check_device(train.device, checker)
    for group, cfg in optim.items():
        if not (math.isfinite(cfg.lr) and cfg.lr >= 0):  # torch's own rule: 0 is allowed (the group does not move)
            checker.fail(f"optim.{group}.lr", f"got {cfg.lr}, expected a finite learning rate >= 0")
        for name in ("eta_min", "gamma", "warmup_start", "weight_decay", "momentum", "clip_grad_norm"):
            holder = cfg.schedule if hasattr(cfg.schedule, name) else cfg
            value = getattr(holder, name)
            if value is not None and not math.isfinite(value):
                where = f"optim.{group}.schedule.{name}" if holder is cfg.schedule else f"optim.{group}.{name}"
                checker.fail(where, f"got {value}, expected a finite number")
        _check_optimizer_numbers(group, cfg, checker)
        _check_schedule_numbers(group, cfg.schedule, checker)
        points = cfg.schedule.points
        if cfg.schedule.name == "piecewise" and (
            not points
            or any(len(p) != 2 or p[1] < 0 for p in points)
            or any(b[0] < a[0] for a, b in itertools.pairwise(points))
        ):
            checker.fail(
                f"optim.{group}.schedule.points",
                f"got {points}; piecewise needs [[at, factor], ...] with at ascending and factors >= 0",
            )


def _check_schedule_numbers(group: str, schedule: ScheduleConfig, checker: RecipeChecker) -> None:
    """A schedule's own numbers in the ranges that keep the learning rate >= 0 and the schedule well defined."""
    key = f"optim.{group}.schedule"
    for name in ("eta_min", "gamma", "warmup_start"):  # factors and floors of a learning rate: never negative
        if getattr(schedule, name) < 0:
            checker.fail(f"{key}.{name}", f"got {getattr(schedule, name)}, expected a number >= 0")
    for name, least in (("warmup", 0), ("step_size", 1)):
        if getattr(schedule, name) < least:
            checker.fail(f"{key}.{name}", f"got {getattr(schedule, name)}, expected an integer >= {least}")
    if schedule.t_max is not None and schedule.t_max < 1:
        checker.fail(f"{key}.t_max", f"got {schedule.t_max}, expected a positive integer or null (all iterations)")
    marks = schedule.milestones
    if any(m < 0 for m in marks) or any(b <= a for a, b in itertools.pairwise(marks)):
        checker.fail(f"{key}.milestones", f"got {marks}, expected integers >= 0 in increasing order")


def _check_cross_fields(recipe: Recipe, checker: RecipeChecker) -> None:
    check_training_numbers(recipe.train, recipe.optim, checker)
    check_tracker_list(recipe.output, where=f"{checker.source('output.trackers')}: output.trackers")
    from distill.registry import METRICS

    metrics = recipe.eval.metrics
    for i, metric in enumerate(metrics or ()):
        if metric not in METRICS:
            checker.fail(f"eval.metrics[{i}]", METRICS.unknown_message(metric))
    if metrics is not None and not metrics:
        checker.fail("eval.metrics", "is empty; name at least one metric, or leave it out for the task's default")
    # metrics null: the task's default, known once the student is built (distill.tasks.resolve_metrics)
    checker.unknown_keys("eval.metric_args", recipe.eval.metric_args, metrics or METRICS.names(), "eval.metrics")
    if recipe.eval.selection == "best_val" and recipe.eval.select_split not in recipe.data.eval:
        checker.fail(
            "eval.select_split",
            f"selection best_val needs a '{recipe.eval.select_split}' split in data.eval "
            f"(have: {', '.join(recipe.data.eval) or 'none'}); carve it from train with val_fraction",
        )


def _check_optimizer_numbers(group: str, cfg: OptimConfig, checker: RecipeChecker) -> None:
    """The ranges torch's optimizers accept (or that mean anything), checked here so that a bad value is a recipe
    error naming its key rather than torch's ValueError when the optimizer is built."""
    key = f"optim.{group}"
    if not 0.0 <= cfg.momentum < 1.0:
        checker.fail(f"{key}.momentum", f"got {cfg.momentum}, expected a number in [0, 1) (e.g. 0.9)")
    if cfg.optimizer == "sgd" and cfg.nesterov and cfg.momentum == 0:
        checker.fail(f"{key}.nesterov", "true needs a momentum above 0 (SGD's Nesterov momentum)")
    if cfg.weight_decay < 0:
        checker.fail(f"{key}.weight_decay", f"got {cfg.weight_decay}, expected 0 or more")
    betas = cfg.betas
    if len(betas) != 2 or not all(math.isfinite(b) and 0.0 <= b < 1.0 for b in betas):
        checker.fail(f"{key}.betas", f"got {betas}, expected two numbers in [0, 1) (e.g. [0.9, 0.999])")
    if cfg.clip_grad_norm is not None and cfg.clip_grad_norm <= 0:
        checker.fail(f"{key}.clip_grad_norm", f"got {cfg.clip_grad_norm}, expected a positive number or null")


def device_error(name: str, here: bool = False) -> str | None:
    """Why ``name`` is not a device distill runs on (auto, cpu, cuda, cuda:N, mps), or ``None``. With ``here``,
    also when this machine lacks it (a recipe is checked without: it may be meant for another machine)."""
    if name == "auto":
        return None
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        return f"got {name!r}: not a device; use auto, cpu, cuda or cuda:N"
    if device.type not in ("cpu", "cuda", "mps"):
        return f"got {name!r}: distill trains on cpu, cuda or mps; use auto, cpu or cuda:N"
    if device.type == "cuda" and here and not torch.cuda.is_available():
        return f"got {name!r}, but CUDA is not available here; use cpu or auto"
    if device.type == "cuda" and device.index is not None and torch.cuda.is_available():
        count = torch.cuda.device_count()
        if device.index >= count:
            return f"got {name!r}, but this machine has {count} CUDA device(s): cuda:0..{count - 1}"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return f"got {name!r}, but MPS is not available here; use auto or cpu"
    return None


def _check_device(name: str, checker: RecipeChecker) -> None:
    """``train.device`` must name a device torch knows: auto, cpu, cuda, cuda:N, mps …"""
    if (problem := device_error(name)) is not None:
        checker.fail("train.device", problem)


def load_recipe(path: str | Path, overrides: Iterable[str] = ()) -> tuple[Recipe, dict[str, Any]]:
    """Load, merge, override and validate a recipe file; returns the recipe and its resolved plain mapping."""
    data, prov = load_raw(path)
    data = apply_overrides(data, overrides, prov)
    data.setdefault("source", str(path))
    recipe = recipe_from_dict(data, prov, str(path))
    return recipe, recipe_to_dict(recipe)


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """The fully resolved recipe as plain data (what is saved as ``recipe.yaml`` beside every run)."""
    return dataclasses.asdict(recipe)


def dump_recipe(recipe: Recipe | dict[str, Any], path: str | Path) -> None:
    """Write the resolved recipe as YAML (through a temporary file, so a killed run never leaves half of it)."""
    data = recipe_to_dict(recipe) if isinstance(recipe, Recipe) else recipe
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def check_tracker_list(output: OutputConfig, where: str = "output.trackers") -> None:
    """Refuse a tracker listed twice, or a list that contradicts ``output.tensorboard``."""
    names = output.trackers
    if names is None:
        return
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RecipeError(f"{where}: {', '.join(dupes)} listed twice; list each tracker once")
    if isinstance(output.tensorboard, bool) and output.tensorboard != ("tensorboard" in names):
        raise RecipeError(
            f"{where} {names} and output.tensorboard: {str(output.tensorboard).lower()} disagree; "
            "say it in output.trackers alone (list tensorboard, or leave it out)"
        )
