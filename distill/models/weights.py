"""Loading local pretrained weights (no downloads at run time)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from distill.errors import CheckpointError


def load_local_weights(
    module: nn.Module, path: str | Path, *, ignore_prefixes: Iterable[str] = (), what: str = "pretrained weights"
) -> list[str]:
    """Load a local state dict into ``module`` (``weights_only=True``), ignoring keys under ``ignore_prefixes``.

    Accepts a raw state dict or a dict holding one under ``state_dict``/``model``. Shape mismatches and keys the
    module lacks are errors; keys the module has but the file lacks are returned (for the caller to report).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: {what} file not found. No weights are downloaded at run time: fetch the file on a machine "
            f"with internet access (e.g. torchvision's ImageNet weights) and point `pretrained:` at it, "
            f"or set `pretrained: null` to train from scratch"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
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
