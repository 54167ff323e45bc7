"""Name → object registries, so recipes can name every building block and plugins can add their own.

Usage::

    from distill.registry import DISTILLERS

    @DISTILLERS.register              # registered as "mykd" (the class name, lower-cased)
    class MyKD(Distiller): ...

    @DISTILLERS.register("my_kd")     # or under an explicit name
    class MyKD(Distiller): ...

Third-party packages add entries without editing this project by declaring an entry point in the
``distill.plugins`` group that points at a module (importing it registers its objects)::

    [project.entry-points."distill.plugins"]
    my_package = "my_package.distill_plugin"
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from typing import Any, Generic, TypeVar, overload

from distill.errors import RecipeError, RegistryError

T = TypeVar("T")
PLUGIN_GROUP = "distill.plugins"
_log = logging.getLogger(__name__)


def first_doc_line(obj: Any) -> str:
    """The first line of ``obj``'s docstring, or ``""``."""
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry(Generic[T]):
    """A named collection of classes or functions of one kind (``"distiller"``, ``"model"`` …)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._descriptions: dict[str, str] = {}

    @overload
    def register(self, obj: T, *, name: str | None = None, description: str | None = None) -> T: ...

    @overload
    def register(
        self, obj: str | None = None, *, name: str | None = None, description: str | None = None
    ) -> Callable[[T], T]: ...

    def register(self, obj: Any = None, *, name: str | None = None, description: str | None = None) -> Any:
        """Register ``obj`` (decorator with or without arguments). The name defaults to ``obj.__name__.lower()``."""
        if isinstance(obj, str):
            name, obj = obj, None

        def add(target: T) -> T:
            self._add(target, name, description)
            return target

        return add if obj is None else add(obj)

    def _add(self, target: T, name: str | None, description: str | None) -> str:
        key = name or getattr(target, "__name__", "").lower()
        if not key:
            raise ValueError(f"cannot infer a {self.kind} name for {target!r}; pass name=")
        if key in self._entries and self._entries[key] is not target:
            raise ValueError(f"{self.kind} '{key}' is already registered by {self._entries[key]!r}")
        self._entries[key] = target
        self._descriptions[key] = description or first_doc_line(target)
        return key

    def get(self, name: str) -> T:
        """Look ``name`` up; an unknown name raises :class:`RegistryError` listing the valid ones."""
        load_plugins()
        if name in self._entries:
            return self._entries[name]
        raise RegistryError(self.unknown_message(name))

    def unknown_message(self, name: object) -> str:
        valid = sorted(self._entries)
        close = difflib.get_close_matches(str(name), valid, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return f"unknown {self.kind} '{name}'.{hint} Valid: {', '.join(valid) or '(none registered)'}"

    def build(self, name: str, /, **kwargs: Any) -> Any:
        """Call the registered object with ``kwargs`` (construct a class, call a factory).

        Arguments that do not fit its signature are one :class:`RecipeError` naming the argument and the allowed
        ones (what a recipe's ``args`` get from :mod:`distill.recipe.check`); errors the call raises are its own.
        """
        target = self.get(name)
        self._check_arguments(name, target, kwargs)
        return target(**kwargs)  # type: ignore[operator]

    def _check_arguments(self, name: str, target: Any, kwargs: Mapping[str, Any]) -> None:
        try:
            sig = inspect.signature(target)
        except (TypeError, ValueError):  # no signature to check against (a builtin)
            return
        try:
            sig.bind(**kwargs)
        except TypeError as err:
            allowed = [n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            unknown = [k for k in kwargs if k not in sig.parameters]
            if unknown:
                close = difflib.get_close_matches(unknown[0], allowed, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                problem = f"unknown argument '{unknown[0]}'.{hint}"
            else:
                problem = f"{err}."
            raise RecipeError(f"{self.kind} '{name}': {problem} Allowed: {', '.join(allowed) or '(none)'}") from None

    def describe(self, name: str) -> str:
        self.get(name)
        return self._descriptions[name]

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"


class ModelRegistry(Registry[Any]):
    """The model registry: each entry may also name its task (``@MODELS.register("edsr", task="sr")``), the one fact
    that tells what a model does — its default metrics, recipe checks, reports and ``distill predict``/``eval``
    (:func:`distill.tasks.task_of`). A model registered without ``task=`` gets the generic task: overall and
    per-group tables only, metrics named by the recipe, no predictions."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self._tasks: dict[str, str] = {}

    def register(  # type: ignore[override]
        self, obj: Any = None, *, name: str | None = None, description: str | None = None, task: str | None = None
    ) -> Any:
        """Register ``obj`` as :meth:`Registry.register` does; ``task``: the ``TASKS`` key of what it does."""
        if isinstance(obj, str):
            name, obj = obj, None

        def add(target: Any) -> Any:
            key = self._add(target, name, description)
            if task is not None:
                self._tasks[key] = task
            else:
                self._tasks.pop(key, None)
            return target

        return add if obj is None else add(obj)

    def task(self, name: str) -> str | None:
        """The task the model ``name`` was registered with (None: none; an unknown name is a RegistryError)."""
        self.get(name)
        return self._tasks.get(name)

    def name_of(self, model: object) -> str | None:
        """The registry name ``model`` was built under: its spec's (``spec_of``), else the entry of its class (or a
        base class) when it was constructed by hand; None for a model of no registered class."""
        spec = spec_of(model)
        if spec is not None:
            return str(spec["name"])
        load_plugins()
        by_class = {target: key for key, target in self._entries.items() if inspect.isclass(target)}
        return next((by_class[cls] for cls in type(model).__mro__ if cls in by_class), None)


DISTILLERS: Registry[Any] = Registry("distiller")
MODELS = ModelRegistry("model")
DATASETS: Registry[Any] = Registry("dataset")
LOSSES: Registry[Any] = Registry("loss")
METRICS: Registry[Any] = Registry("metric")
DISTORTIONS: Registry[Any] = Registry("distortion")
WRITERS: Registry[Any] = Registry("synthetic dataset writer")
DEGRADATIONS: Registry[Any] = Registry("degradation")
TASKS: Registry[Any] = Registry("task")

REGISTRIES: dict[str, Registry[Any]] = {
    "distillers": DISTILLERS,
    "models": MODELS,
    "datasets": DATASETS,
    "losses": LOSSES,
    "metrics": METRICS,
    "distortions": DISTORTIONS,
    "writers": WRITERS,
    "degradations": DEGRADATIONS,
    "tasks": TASKS,
}

_BUILTIN_MODULES = (
    "distill.losses",
    "distill.metrics",
    "distill.models",
    "distill.data",
    "distill.distillers",
    "distill.tasks",
)
_loaded = False
_loading = False


def load_plugins() -> None:
    """Import the built-in modules and every ``distill.plugins`` entry point once (idempotent)."""
    global _loaded, _loading
    if _loaded or _loading:
        return
    _loading = True
    try:
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        for ep in metadata.entry_points(group=PLUGIN_GROUP):
            try:
                target = ep.load()
            except Exception as err:  # a broken plugin must not break the toolkit
                _log.warning("distill plugin %r (%s) failed to load: %s", ep.name, ep.value, err)
                continue
            if callable(target) and not inspect.isclass(target) and not inspect.ismodule(target):
                target()
        _loaded = True
    finally:
        _loading = False


#: attribute under which a built model keeps the registry spec it was built from
SPEC_ATTR = "distill_spec"


def spec_of(model: object) -> dict[str, Any] | None:
    """The ``{"name", "args"}`` registry spec ``model`` was built from (``None`` when built by hand)."""
    return vars(model).get(SPEC_ATTR)


def set_spec(model: object, name: str, args: Mapping[str, Any]) -> None:
    """Record on ``model`` the registry spec that rebuilds it (``MODELS.build(name, **args)``), read by spec_of."""
    setattr(model, SPEC_ATTR, {"name": name, "args": dict(args)})
