"""Pretrained weights: a local state dict, or torchvision's published weights through its weights API.

``pretrained:`` takes a file path (a state dict, a ``.safetensors`` file or a model folder of ``distill export
--format hf``), ``zoo:NAME`` (a published checkpoint of :mod:`distill.models.zoo`, downloaded into the hub cache and
converted to distill's model file once), ``hf:OWNER/NAME`` (such a folder on the Hugging Face Hub, downloaded because
the recipe names it), ``imagenet`` (the architecture's ``IMAGENET1K_V1`` weights — the original release
the papers used) or a torchvision weight name (``IMAGENET1K_V2``, ``ResNet50_Weights.IMAGENET1K_V2``).  A weight name
resolves through ``torchvision.models.get_model_weights(arch)`` to its URL; the file lives in the torch hub cache,
``torch.hub.get_dir()/checkpoints/<file>`` (``$TORCH_HOME/hub/checkpoints``), exactly where torchvision itself keeps
it.  A cached file is used as it is; a missing one is downloaded (hash-checked against the prefix in its name) only
because the recipe asked for it.  When the download fails the error is one line naming the file, the folder to put
it in and its URL.  Every loaded state dict is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill._compat import import_torchvision
from distill.errors import CheckpointError, DistillError
from distill.run.model_files import read_safetensors, weights_file

__all__ = ["WeightsError", "hub_checkpoint", "load_local_weights", "load_pretrained", "resolve_pretrained"]

#: ``pretrained: imagenet`` means this torchvision weight of the architecture.
IMAGENET_ALIAS = "imagenet"
IMAGENET_DEFAULT = "IMAGENET1K_V1"
_WEIGHT_NAME = re.compile(r"^(?:[A-Za-z0-9_]+_Weights\.)?[A-Z][A-Z0-9_]*$")


class WeightsError(CheckpointError):
    """A ``pretrained``-style file is missing or unusable; ``arg`` names the constructor argument that gave it.

    :func:`distill.build.build_distiller` prefixes the message with the recipe key, ``models.<role>.args.<arg>``.
    """

    def __init__(self, message: str, arg: str = "pretrained") -> None:
        super().__init__(message)
        self.arg = arg


def is_zoo_ref(value: object) -> bool:
    """True for ``zoo:NAME``, a row of :data:`distill.models.zoo.ZOO`."""
    return isinstance(value, str) and value.startswith("zoo:") and len(value) > 4


def is_weight_name(value: str) -> bool:
    """True for ``imagenet`` and torchvision weight names (``IMAGENET1K_V2``, ``VGG16_Weights.IMAGENET1K_V1``)."""
    return value.lower() == IMAGENET_ALIAS or bool(_WEIGHT_NAME.match(value))


def torchvision_weight(arch: str, value: str) -> Any:
    """The torchvision ``WeightsEnum`` member of ``arch`` (a ``torchvision.models`` builder name) named by ``value``."""
    import_torchvision()
    from torchvision.models import get_model_weights

    try:
        enum = get_model_weights(arch)
    except ValueError:
        raise WeightsError(
            f"{value}: torchvision publishes no weights for '{arch}'; point pretrained at a local "
            "state dict or set pretrained: null"
        ) from None
    name = IMAGENET_DEFAULT if value.lower() == IMAGENET_ALIAS else value.rsplit(".", 1)[-1]
    prefix = value.rsplit(".", 1)[0] if "." in value else enum.__name__
    member = enum.__members__.get(name)
    if member is None or prefix != enum.__name__:
        have = ", ".join(enum.__members__)
        raise WeightsError(f"{value}: not a torchvision weight of '{arch}' ({enum.__name__}: {have})")
    return member


def hub_checkpoint(url: str) -> Path:
    """Where torch hub keeps the file of ``url``: ``torch.hub.get_dir()/checkpoints/<file name>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url.split("?")[0]).name


def resolve_pretrained(value: str | Path, arch: str | None, *, arg: str = "pretrained", missing_hint: str = "") -> Path:
    """The local file of a ``pretrained`` value: a path as given, or a torchvision weight in the hub cache.

    A weight not yet cached is downloaded into the cache (torch hub's hash check on the name's hash prefix). ``arch``
    is the torchvision builder name the weight names refer to (``None`` when the model has no torchvision weights;
    ``missing_hint`` then says where its weights come from).
    """
    text = str(value)
    if is_zoo_ref(text):  # a published checkpoint by name: downloaded, checked and converted once (models/zoo.py)
        from distill.models.zoo import resolve_zoo

        try:
            return resolve_zoo(text)
        except DistillError as err:
            raise WeightsError(str(err), arg) from None
    if text.startswith("hf:"):  # a model folder on the Hugging Face Hub (distill export --format hf), fetched now
        from distill.run.model_files import fetch_hub

        return fetch_hub(text)
    if not is_weight_name(text) or Path(text).exists():
        return Path(text).expanduser()
    if arch is None:
        hint = missing_hint or f"point {arg} at a local state dict (or null)"
        raise WeightsError(f"{text}: torchvision publishes no weights for this model; {hint}", arg)
    weight = torchvision_weight(arch, text)
    target = hub_checkpoint(weight.url)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    match = torch.hub.HASH_REGEX.search(target.name)
    try:
        torch.hub.download_url_to_file(weight.url, str(target), hash_prefix=match.group(1) if match else None)
    except Exception as err:  # offline, HTTP error, hash mismatch: one line with the manual remedy
        target.unlink(missing_ok=True)
        reason = " ".join(str(err).split()) or type(err).__name__
        raise WeightsError(
            f"{text} ({type(weight).__name__}.{weight.name}): cannot download {weight.url} ({reason}); "
            f"put {target.name} in {target.parent}/ (or point {arg} at a local copy)",
            arg,
        ) from None
    return target


def load_pretrained(
    module: nn.Module,
    value: str | Path,
    arch: str | None,
    *,
    arg: str = "pretrained",
    ignore_prefixes: Iterable[str] = (),
    what: str = "pretrained weights",
    missing_hint: str = "",
) -> list[str]:
    """:func:`resolve_pretrained` then :func:`load_local_weights`; a missing local file names ``missing_hint``."""
    path = resolve_pretrained(value, arch, arg=arg, missing_hint=missing_hint)
    if not path.is_file() and weights_file(path) is None:
        hint = missing_hint or (
            f"set {arg}: imagenet to download torchvision's ImageNet weights into the torch hub cache"
            if arch is not None
            else f"point {arg} at an existing file, or set {arg}: null"
        )
        raise WeightsError(f"{path}: {what} file not found; {hint}", arg)
    try:
        return load_local_weights(module, path, ignore_prefixes=ignore_prefixes, what=what)
    except WeightsError:
        raise
    except CheckpointError as err:
        raise WeightsError(str(err), arg) from None


def load_local_weights(
    module: nn.Module, path: str | Path, *, ignore_prefixes: Iterable[str] = (), what: str = "pretrained weights"
) -> list[str]:
    """Load a local state dict into ``module`` (``weights_only=True``), ignoring keys under ``ignore_prefixes``.

    Accepts a raw state dict or a dict holding one under ``state_dict``/``model``, a ``.safetensors`` file or a model
    folder written by ``distill export --format hf``. Shape mismatches and keys the module lacks are errors; keys the
    module has but the file lacks are returned (for the caller to report).
    """
    path = Path(path)
    safetensors = weights_file(path)
    if not path.is_file() and safetensors is None:
        raise WeightsError(
            f"{path}: {what} file not found; point `pretrained:` at an existing file, `pretrained: imagenet` for "
            "torchvision's ImageNet weights, or `pretrained: null` to train from scratch"
        )
    try:
        if safetensors is not None:
            state = read_safetensors(safetensors)[0]
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(
            f"{path}: cannot read {what} ({type(err).__name__}); is it a PyTorch state dict?"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: {what} is not a state dict")
    prefixes = tuple(ignore_prefixes)
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith(prefixes)}
    own = module.state_dict()
    unexpected = sorted(k for k in state if k not in own)
    bad_shape = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    if unexpected or bad_shape:
        detail = "; ".join(
            part
            for part in (
                f"keys the model lacks: {unexpected[:5]}" if unexpected else "",
                f"shape mismatch: {[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in bad_shape[:3]]}"
                if bad_shape
                else "",
            )
            if part
        )
        raise CheckpointError(f"{path}: {what} do not fit this model ({detail})")
    module.load_state_dict(state, strict=False)
    return sorted(k for k in own if k not in state and not k.startswith(prefixes))
