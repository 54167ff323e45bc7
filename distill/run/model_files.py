"""Model files other than ``student.pt``: a ``.safetensors`` file whose metadata holds the registry spec, a model
folder (``model.safetensors``, ``config.json``, ``README.md``, ``recipe.yaml``; written by
:mod:`distill.deploy.share`), and ``hf:OWNER/NAME[@REVISION]`` ids of such folders on the Hugging Face Hub, downloaded
(through ``huggingface_hub``, the ``hub`` extra) only because a command or recipe names one."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from distill.errors import CheckpointError, DistillError, first_line
from distill.run.atomic import write_bytes
from distill.run.checkpoint import MODEL_FORMAT

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
META_KEY = "distill-model"  # safetensors metadata: JSON {"name", "args"}
HUB_PREFIX = "hf:"
HUB_FILES = [WEIGHTS_FILE, CONFIG_FILE, "README.md", "recipe.yaml"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def _safetensors() -> Any:
    try:
        import safetensors.torch
    except ImportError:
        raise DistillError("safetensors files need the safetensors package: pip install safetensors") from None
    return safetensors.torch


def save_safetensors(state_dict: Mapping[str, torch.Tensor], spec: Mapping[str, Any] | None, path: Path) -> None:
    """The state dict (contiguous CPU copies: shared storage is not allowed) with the spec as metadata."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    metadata = {"format": "pt", META_KEY: json.dumps(spec)} if spec else {"format": "pt"}
    write_bytes(path, _safetensors().save(tensors, metadata=metadata))


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """State dict and metadata of a ``.safetensors`` file; an unreadable file is a :class:`CheckpointError`."""
    st = _safetensors()
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            metadata = dict(fh.metadata() or {})
        return st.load_file(str(path)), metadata
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({first_line(err)})") from None


def weights_file(path: str | Path) -> Path | None:
    """The ``.safetensors`` file that ``path`` names (a file, or a model folder holding ``model.safetensors``)."""
    path = Path(path)
    if path.is_dir() and (path / WEIGHTS_FILE).is_file():
        return path / WEIGHTS_FILE
    if path.suffix == ".safetensors" and path.is_file():
        return path
    return None


def read_model(path: str | Path) -> dict[str, Any] | None:
    """A ``student.pt``-like state (format, model spec, state dict, recipe, step) from a ``.safetensors`` file or a
    model folder; ``None`` when ``path`` is neither (the caller tries the other formats)."""
    path = Path(path)
    weights = weights_file(path)
    if weights is None:
        if path.is_dir():
            raise CheckpointError(
                f"{path}: a folder without {WEIGHTS_FILE}; give a model folder written by "
                "`distill export --format hf`, a student.pt or a checkpoint"
            )
        return None
    state_dict, metadata = read_safetensors(weights)
    spec = None
    recipe = None
    step = None
    config_path = weights.parent / CONFIG_FILE
    if weights.name == WEIGHTS_FILE and config_path.is_file():
        try:
            config = json.loads(config_path.read_text())
            spec, step = config.get("model"), config.get("step")
        except ValueError as err:
            raise CheckpointError(f"{config_path}: not valid JSON ({first_line(err)})") from None
        if (weights.parent / "recipe.yaml").is_file():
            import yaml

            recipe = yaml.safe_load((weights.parent / "recipe.yaml").read_text())
    if spec is None and META_KEY in metadata:
        spec = json.loads(metadata[META_KEY])
    if not isinstance(spec, dict) or "name" not in spec:
        spec = None
    return {"format": MODEL_FORMAT, "model": spec, "state_dict": state_dict, "recipe": recipe, "step": step}


def is_hub_ref(value: object) -> bool:
    return isinstance(value, str) and value.startswith(HUB_PREFIX)


def fetch_hub(ref: str) -> Path:
    """The local folder of ``hf:OWNER/NAME[@REVISION]``, downloaded into the Hub cache when not there yet."""
    repo, _, revision = ref[len(HUB_PREFIX) :].partition("@")
    if not _REPO_ID.match(repo):
        raise DistillError(f"{ref}: expected hf:OWNER/NAME or hf:OWNER/NAME@REVISION")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DistillError(f"{ref}: Hugging Face Hub ids need the hub extra: pip install 'distill[hub]'") from None
    try:
        folder = snapshot_download(repo_id=repo, revision=revision or None, allow_patterns=HUB_FILES)
    except Exception as err:
        from huggingface_hub import constants

        raise DistillError(
            f"{ref}: cannot download from {constants.ENDPOINT} ({type(err).__name__}: {first_line(err)}); "
            "download the folder yourself and give its path"
        ) from None
    folder = Path(folder)
    if not (folder / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{ref}: the repository has no {WEIGHTS_FILE}; it is not a model folder distill wrote")
    return folder


def resolve(path: str | Path) -> Path:
    """``path``, or the downloaded folder of an ``hf:`` id."""
    return fetch_hub(path) if is_hub_ref(path) else Path(path)
