"""Recipe files → one merged mapping: YAML reading, ``_base_`` inheritance, ``--set`` overrides and ``vars``.

* YAML is read with ``yaml.safe_load``: recipes are data, never code.
* ``_base_: other.yaml`` (or a list) inherits from other recipes, resolved relative to the including file; mappings
  merge recursively, and a mapping holding ``_replace_: true`` replaces its base instead of merging.
* ``overrides`` (``--set a.b=c`` on the CLI) are parsed as YAML scalars.
* ``vars: {scale: 4}`` names a value once; ``${scale}`` anywhere else is replaced by it after inheritance and
  overrides (a whole ``${name}`` keeps the value's type; inside a longer string it is formatted in), so
  ``--set vars.scale=2`` changes every key that uses it.

Every mapping comes with its :data:`Provenance` (dotted key → the file or ``--set`` it came from), which the checker
(:mod:`distill.recipe.check`) puts in front of each error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import yaml

from distill.errors import RecipeError

SHIPPED_RECIPES = Path(__file__).resolve().parents[2] / "recipes"
"""The project's own ``recipes/`` folder (a source checkout), where hints look for a recipe the user copied."""

BASE_KEY = "_base_"
REPLACE_KEY = "_replace_"
VARS_KEY = "vars"
VAR_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
Provenance = dict[str, str]


def source_of(prov: Provenance, key: str, default: str) -> str:
    """Where ``key`` (or the nearest mapping above it) was written: a file, ``--set``, or ``default``."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        hit = prov.get(".".join(parts[:n]))
        if hit:
            return hit
    return default


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
        data = _safe_yaml(text, path)
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


#: The most values a recipe (or one ``--set`` value) may hold once its YAML aliases are expanded: recipes hold a few
#: hundred, while aliases nested in aliases ("billion laughs") reach 10**9 from a few hundred bytes.
MAX_VALUES = 100_000


def _safe_yaml(text: str, where: Path | str, prefix: str = "") -> Any:
    """``yaml.safe_load`` of a recipe text after checks on its composed nodes (which run no code): no key twice in
    one mapping, no alias inside the node it names, at most :data:`MAX_VALUES` values with aliases expanded. Every
    alias becomes its own copy, so a ``--set`` on one use of an anchor changes that use only."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_aliases(root, where)
        _refuse_duplicate_keys(root, where, prefix)
        return _unshared(yaml.safe_load(text))
    except RecursionError:
        raise RecipeError(f"{where}: the YAML is nested too deeply to be a recipe") from None


def _check_aliases(root: yaml.Node | None, where: Path | str) -> None:
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise RecipeError(f"{where}: a YAML alias (*name) is used inside the value it names; write the value out")
        open_nodes.add(key)
        if isinstance(node, yaml.SequenceNode):
            n = 1 + sum(size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            n = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            n = 1
        open_nodes.discard(key)
        if n > MAX_VALUES:
            raise RecipeError(
                f"{where}: the YAML expands to more than {MAX_VALUES} values (aliases repeated inside aliases); "
                "a recipe holds a few hundred: write the values out"
            )
        sizes[key] = n
        return n

    if root is not None:
        size(root)


def _unshared(data: Any) -> Any:
    """``data`` with every mapping and list its own object (YAML aliases load as one shared object)."""
    if isinstance(data, dict):
        return {k: _unshared(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_unshared(v) for v in data]
    return data


def _refuse_duplicate_keys(node: yaml.Node | None, path: Path | str, prefix: str = "") -> None:
    """A key written twice in one mapping is an error naming the file, the line and the dotted key
    (``yaml.safe_load`` would keep the last one silently, so the recipe would say two things)."""
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, path, f"{prefix}[{i}]")
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    for key, value in node.value:
        name = str(key.value) if isinstance(key, yaml.ScalarNode) else None
        dotted = f"{prefix}.{name}" if prefix else str(name)
        if name is not None and name != "<<":  # merge keys (<<: *anchor) may repeat
            if name in seen:
                mark = key.start_mark  # a --set value is shown whole: no position
                where = f"{path} (line {mark.line + 1}, column {mark.column + 1})" if isinstance(path, Path) else path
                raise RecipeError(
                    f"{where}: '{dotted}' appears twice in one mapping (YAML would keep the last silently); "
                    "keep one of them"
                )
            seen.add(name)
        _refuse_duplicate_keys(value, path, dotted)


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
        _check_base(path, base)
        base_data, base_prov = load_raw(path.parent / base, (*_chain, resolved))
        merged = _merge(merged, base_data)
        prov.update(base_prov)
    _mark(data, str(path), "", prov)
    return _merge(merged, data), prov


def _check_base(path: Path, base: str) -> None:
    """A ``_base_`` entry of ``path`` names an existing file; else one line saying where it was looked for."""
    target = path.parent / base
    if target.is_file():
        return
    folder = path.parent if str(path.parent) not in ("", ".") else Path(".")
    hint = ""
    shipped = SHIPPED_RECIPES  # a recipe copied out of the project's recipes/
    for candidate in (shipped / base, shipped / Path(base).name):
        if candidate.is_file():
            rel = os.path.relpath(candidate, folder.resolve())
            hint = f"; the project's {candidate.relative_to(shipped.parent)} is {rel!r} from there"
            break
    if Path(base).is_absolute():
        raise RecipeError(f"{path}: {BASE_KEY}: recipe file {base!r} not found")
    raise RecipeError(
        f"{path}: {BASE_KEY}: recipe file {base!r} not found (looked for {target}): a relative {BASE_KEY} is resolved "
        f"against the folder of the file that names it ({folder}/), not the current folder{hint}"
    )


def recipe_that_writes(target: str | Path, folders: Iterable[str | Path]) -> Path | None:
    """The recipe file in ``folders`` whose run folder (``output.dir``, default ``runs/{name}``) holds ``target``
    (e.g. the teacher recipe behind a ``pretrained: runs/<name>/student.pt``), or None."""
    want = os.path.abspath(Path(target).parent)
    seen: set[Path] = set()
    for folder in map(Path, folders):
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                data, _ = load_raw(path)
            except RecipeError:
                continue
            output = data.get("output") if isinstance(data.get("output"), dict) else {}
            name, out = data.get("name"), output.get("dir", "runs/{name}")
            if isinstance(name, str) and isinstance(out, str) and os.path.abspath(out.replace("{name}", name)) == want:
                return path
    return None


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``a.b=c`` into the dotted key and the YAML-parsed value."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise RecipeError(f"--set {item}: expected KEY=VALUE with a dotted KEY, e.g. train.epochs=3")
    if any(not part.strip() for part in key.split(".")):
        raise RecipeError(
            f"--set {item}: the key {key!r} has an empty segment (two dots in a row, or a dot at its start or end); "
            "write it as dotted names, e.g. train.epochs=3"
        )
    try:
        value = _safe_yaml(text, f"--set {item}", key) if text.strip() else None
    except yaml.YAMLError:
        return key, text
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
                raise RecipeError(
                    f"--set {item}: {where} is {child!r}, not a mapping, so it has no key '{parts[depth + 1]}'"
                )
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

    def where(key: str) -> str:
        return source_of(prov, key, source)

    def fail(key: str, message: str) -> NoReturn:
        raise RecipeError(f"{where(key)}: {key}: {message}")

    variables = data.get(VARS_KEY)
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        fail(VARS_KEY, f"expected a mapping of names to values, e.g. {{scale: 4}}, got {variables!r}")
    for name, value in variables.items():
        if not isinstance(name, str) or not VAR_REF.fullmatch(f"${{{name}}}"):
            fail(f"{VARS_KEY}.{name}", "a variable name is letters, digits and _ (not first a digit)")
        if isinstance(value, (dict, list)) or (isinstance(value, str) and "${" in value):
            fail(f"{VARS_KEY}.{name}", f"got {value!r}; a variable is one number, string or bool")
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
                fail(key, f"${{{name}}} is not defined in {VARS_KEY} (defined: {defined})")
        if "${" in VAR_REF.sub("", node):
            fail(key, f"got {node!r}: a reference is written ${{name}}, name made of letters, digits and _")
        origin = ", ".join(f"${{{n}}} = {VARS_KEY}.{n} from {where(f'{VARS_KEY}.{n}')}" for n in names)
        prov[key] = f"{where(key)} ({origin})"
        whole = VAR_REF.fullmatch(node)
        return variables[whole.group(1)] if whole else VAR_REF.sub(lambda m: str(variables[m.group(1)]), node)

    return {k: v if k == VARS_KEY else sub(v, str(k)) for k, v in data.items()}
