"""YAML recipes → validated :class:`~distill.config.Recipe` objects.

* YAML is read with ``yaml.safe_load``: recipes are data, never code.
* ``_base_: other.yaml`` (or a list) inherits from other recipes, resolved relative to the including file; mappings
  merge recursively, and a mapping holding ``_replace_: true`` replaces its base instead of merging.
* ``overrides`` (``--set a.b=c`` on the CLI) are parsed as YAML scalars and type-checked like file keys.
* ``vars: {scale: 4}`` names a value once; ``${scale}`` anywhere else is replaced by it after inheritance and
  overrides (a whole ``${name}`` keeps the value's type; inside a longer string it is formatted in), so
  ``--set vars.scale=2`` changes every key that uses it.
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
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from distill.config import ComponentSpec, Recipe
from distill.errors import RecipeError, RegistryError
from distill.registry import DATASETS, DISTILLERS, MODELS, WRITERS, Registry

BASE_KEY = "_base_"
REPLACE_KEY = "_replace_"
VARS_KEY = "vars"
VAR_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
Provenance = dict[str, str]


# ----------------------------------------------------------------------------------------------------------- loading
def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe file not found") from None
    except UnicodeDecodeError:
        raise RecipeError(f"{path}: not a text file (a recipe is YAML text, e.g. recipes/quickstart.yaml)") from None
    except OSError as err:
        raise RecipeError(f"{path}: cannot read recipe: {err.strerror}") from None
    if "\x00" in text:
        raise RecipeError(f"{path}: not a text file (a recipe is YAML text, e.g. recipes/quickstart.yaml)")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise RecipeError(f"{path}{where}: malformed YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of keys, got {type(data).__name__}")
    return data


def _mark(data: Any, source: str, prefix: str, prov: Provenance) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            prov[dotted] = source
            _mark(value, source, dotted, prov)


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and value.get(REPLACE_KEY):
            out[key] = {k: v for k, v in value.items() if k != REPLACE_KEY}
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_raw(path: str | Path, _chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Provenance]:
    """Read a recipe file with its ``_base_`` chain resolved; returns the merged mapping and key provenance."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, resolved))
        raise RecipeError(f"{path}: {BASE_KEY} inheritance cycle: {cycle}")
    data = _read_yaml(path)
    bases = data.pop(BASE_KEY, [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise RecipeError(f"{path}: {BASE_KEY}: expected a file name or a list of file names, got {bases!r}")
    merged: dict[str, Any] = {}
    prov: Provenance = {}
    for base in bases:
        base_data, base_prov = load_raw(path.parent / base, (*_chain, resolved))
        merged = _merge(merged, base_data)
        prov.update(base_prov)
    _mark(data, str(path), "", prov)
    return _merge(merged, data), prov


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``a.b=c`` into the dotted key and the YAML-parsed value."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise RecipeError(f"--set {item}: expected KEY=VALUE with a dotted KEY, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], prov: Provenance) -> dict[str, Any]:
    """Apply ``--set`` overrides in order (creating intermediate mappings)."""
    for item in overrides:
        key, value = parse_override(item)
        node = data
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
                prov[".".join(parts[: depth + 1])] = "--set"  # a key path the recipe lacks is --set's doing
            elif not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise RecipeError(f"--set {item}: {where} is {child!r}, not a mapping, so it has no key '{part}'")
            node = child
        node[parts[-1]] = value
        prov[key] = "--set"
        _mark(value, "--set", key, prov)
    return data


def substitute_vars(data: dict[str, Any], prov: Provenance, source: str = "<dict>") -> dict[str, Any]:
    """Replace every ``${name}`` by ``vars.name``; the provenance of a replaced key names the variable it came from.

    A variable is one scalar (number, string, bool or null); an undefined or malformed reference is a
    :class:`~distill.errors.RecipeError` naming the key that holds it and the variables that are defined.
    """
    checker = RecipeChecker(prov, source)
    variables = data.get(VARS_KEY)
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        checker.fail(VARS_KEY, f"expected a mapping of names to values, e.g. {{scale: 4}}, got {variables!r}")
    for name, value in variables.items():
        if not isinstance(name, str) or not VAR_REF.fullmatch(f"${{{name}}}"):
            checker.fail(f"{VARS_KEY}.{name}", "a variable name is letters, digits and _ (not first a digit)")
        if isinstance(value, (dict, list)) or (isinstance(value, str) and "${" in value):
            checker.fail(f"{VARS_KEY}.{name}", f"got {value!r}; a variable is one number, string or bool")
    defined = ", ".join(variables) or "none"

    def sub(node: Any, key: str) -> Any:
        if isinstance(node, dict):
            return {k: sub(v, f"{key}.{k}" if key else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [sub(v, key) for v in node]
        if not isinstance(node, str) or "${" not in node:
            return node
        names = VAR_REF.findall(node)
        for name in names:
            if name not in variables:
                checker.fail(key, f"${{{name}}} is not defined in {VARS_KEY} (defined: {defined})")
        if "${" in VAR_REF.sub("", node):
            checker.fail(key, f"got {node!r}: a reference is written ${{name}}, name made of letters, digits and _")
        origin = ", ".join(f"${{{n}}} = {VARS_KEY}.{n} from {checker.source(f'{VARS_KEY}.{n}')}" for n in names)
        prov[key] = f"{checker.source(key)} ({origin})"
        whole = VAR_REF.fullmatch(node)
        return variables[whole.group(1)] if whole else VAR_REF.sub(lambda m: str(variables[m.group(1)]), node)

    return {k: v if k == VARS_KEY else sub(v, str(k)) for k, v in data.items()}


# -------------------------------------------------------------------------------------------------------- checking
class RecipeChecker:
    """Coerces plain YAML data into typed values, raising errors that name file, key, value and the allowed set."""

    def __init__(self, prov: Provenance, default_source: str) -> None:
        self.prov = prov
        self.default_source = default_source

    def source(self, key: str) -> str:
        parts = key.split(".")
        for n in range(len(parts), 0, -1):
            hit = self.prov.get(".".join(parts[:n]))
            if hit:
                return hit
        return self.default_source

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
            elif fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
                self.fail(dotted, f"required key is missing ({cls.__name__} needs: {', '.join(fields)})")
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


def _check_sr_scale(recipe: Recipe, checker: RecipeChecker) -> None:
    """An SR recipe has one scale: every model ``upscale``, dataset ``scale`` and metric ``crop_border`` agree.

    Keys left out count with their constructor default (a model or dataset that takes them); the first
    disagreeing key is refused, naming the key it disagrees with.
    """

    def given_or_default(registry: Registry[Any], spec: ComponentSpec, arg: str, key: str) -> tuple[str, Any] | None:
        if arg in spec.args:
            return f"{key}.args.{arg}", spec.args[arg]
        param = signature_of(registry.get(spec.name))[0].get(arg)
        if param is None or param.default is inspect.Parameter.empty:
            return None
        return f"{key}.args.{arg} (default of {spec.name})", param.default

    models = [given_or_default(MODELS, spec, "upscale", f"models.{role}") for role, spec in recipe.models.items()]
    found = [m for m in models if m is not None]
    if not found:
        return  # not an SR recipe
    datasets = {"data.train": recipe.data.train, **{f"data.eval.{k}": v for k, v in recipe.data.eval.items()}}
    found += [d for key, spec in datasets.items() if (d := given_or_default(DATASETS, spec, "scale", key))]
    found += [
        (f"eval.metric_args.{name}.crop_border", args["crop_border"])
        for name, args in recipe.eval.metric_args.items()
        if "crop_border" in args
    ]
    first_key, first = found[0]
    for key, value in found[1:]:
        if value != first:
            checker.fail(
                key.split(" ")[0],
                f"scale {value!r} disagrees with {first_key} = {first!r}; an SR recipe has one scale (model "
                'upscale, dataset scale and metric crop_border): write it once as vars.scale and use "${scale}" '
                "for each, as recipes/_parts/sr_div2k.yaml does (--set vars.scale=N changes them together)",
            )


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
    _check_sr_scale(recipe, checker)
    return recipe


def _check_cross_fields(recipe: Recipe, checker: RecipeChecker) -> None:
    train = recipe.train
    if (train.epochs is None) == (train.iterations is None):
        checker.fail("train", "set exactly one of train.epochs or train.iterations")
    for key in ("epochs", "iterations", "batch_size", "eval_batch_size", "log_every", "eval_every", "checkpoint_every"):
        value = getattr(train, key)
        if value is not None and value <= 0:
            checker.fail(f"train.{key}", f"got {value}, expected a positive integer")
    if train.num_workers < 0:
        checker.fail("train.num_workers", f"got {train.num_workers}, expected 0 (load in the main process) or more")
    minutes = train.checkpoint_minutes
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        checker.fail("train.checkpoint_minutes", f"got {minutes}, expected a positive number of minutes or null")
    _check_device(train.device, checker)
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
    for group, cfg in recipe.optim.items():
        if not (math.isfinite(cfg.lr) and cfg.lr > 0):
            checker.fail(f"optim.{group}.lr", f"got {cfg.lr}, expected a positive, finite learning rate")
        for name in ("eta_min", "gamma", "warmup_start", "weight_decay", "momentum", "clip_grad_norm"):
            holder = cfg.schedule if hasattr(cfg.schedule, name) else cfg
            value = getattr(holder, name)
            if value is not None and not math.isfinite(value):
                where = f"optim.{group}.schedule.{name}" if holder is cfg.schedule else f"optim.{group}.{name}"
                checker.fail(where, f"got {value}, expected a finite number")
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


def _check_device(name: str, checker: RecipeChecker) -> None:
    """``train.device`` must name a device torch knows: auto, cpu, cuda, cuda:N, mps …"""
    if name == "auto":
        return
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        checker.fail("train.device", f"got {name!r}: not a device; use auto, cpu, cuda or cuda:N")
    if device.type not in ("cpu", "cuda", "mps"):
        checker.fail("train.device", f"got {name!r}: distill trains on cpu, cuda or mps; use auto, cpu or cuda:N")
    if device.type == "cuda" and device.index is not None and torch.cuda.is_available():
        count = torch.cuda.device_count()
        if device.index >= count:
            checker.fail(
                "train.device", f"got {name!r}, but this machine has {count} CUDA device(s): cuda:0..{count - 1}"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        checker.fail("train.device", f"got {name!r}, but MPS is not available here; use auto or cpu")


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
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)
