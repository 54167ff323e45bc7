"""MatConvNet ``imagenet-vgg-m.mat`` / ``imagenet-vgg-verydeep-16.mat`` → ``vgg_m`` / ``vgg16`` model files.

MatConvNet's SimpleNN file (read with ``scipy.io.loadmat``) holds ``layers``, a cell array of structs with ``name``,
``type`` (``conv``, ``relu``, ``lrn``, ``pool``, ``softmax``), ``stride``, ``pad`` and the parameters — ``weights``
(a cell ``{filters, biases}``) in the files of MatConvNet beta ≥ 17, ``filters``/``biases`` fields in older ones —
and the input normalisation, ``meta.normalization.averageImage`` (older files: ``normalization.averageImage``), an
H×W×3 image or a 3-vector in 0–255 RGB.  Filters are ``[H, W, C_in, C_out]``; the fully connected layers are
convolutions (fc6 ``6×6×512×4096``), so fc weights flatten in PyTorch's ``C, H, W`` order.

The converted file is distill's self-describing model file (:mod:`distill.models.convert`): ``state_dict``
(``features.*``, ``classifier.{0,3,6}.*`` and ``average_image``, the average image at 224×224) and ``model``, the
``vgg_m``/``vgg16`` arguments to build it with (``normalization: matconvnet``, the widths read from the file). VGG-16's
13 convs (3×3, pad 1) map to torchvision's ``features`` indices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from distill.errors import CheckpointError

__all__ = ["matconvnet_state"]

#: VGG-M's conv layers: (kernel, stride, pad) and the index of the conv in ``vgg_m(...).features``.
_CONVS = ((7, 2, 0, 0), (5, 2, 1, 4), (3, 1, 1, 8), (3, 1, 1, 10), (3, 1, 1, 12))
_FCS = (0, 3, 6)  # classifier indices of fc6, fc7, fc8


def _field(obj: Any, name: str) -> Any:
    return getattr(obj, name, None) if not isinstance(obj, dict) else obj.get(name)


def _params(layer: Any) -> tuple[np.ndarray, np.ndarray]:
    weights = _field(layer, "weights")
    if weights is not None and len(weights) == 2:
        filters, biases = weights
    else:
        filters, biases = _field(layer, "filters"), _field(layer, "biases")
    if filters is None or biases is None:
        raise CheckpointError(f"conv layer '{_field(layer, 'name')}' has no weights/filters")
    return np.asarray(filters, dtype=np.float32), np.asarray(biases, dtype=np.float32).reshape(-1)


def _ints(value: Any, n: int) -> tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(value)).astype(int).reshape(-1)
    return tuple(int(arr[0]) for _ in range(n)) if arr.size == 1 else tuple(int(v) for v in arr)


def _average_image(mat: dict[str, Any]) -> np.ndarray:
    meta = mat.get("meta")
    norm = _field(meta, "normalization") if meta is not None else mat.get("normalization")
    avg = _field(norm, "averageImage") if norm is not None else None
    if avg is None:
        raise CheckpointError("no meta.normalization.averageImage (or normalization.averageImage)")
    avg = np.asarray(avg, dtype=np.float32)
    if avg.size == 3:
        avg = avg.reshape(1, 1, 3)
    if avg.ndim != 3 or avg.shape[2] != 3:
        raise CheckpointError(f"averageImage has shape {avg.shape}; expected H×W×3 or 3 values")
    return avg


def matconvnet_state(mat: dict[str, Any], where: str = "") -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """(model name, its arguments, state dict) of a loaded MatConvNet VGG-M (8 conv layers) or VGG-16 (16) file."""
    try:
        layers = mat.get("layers")
        if layers is None:
            raise CheckpointError("no 'layers' cell array")
        convs = [layer for layer in np.atleast_1d(layers) if str(_field(layer, "type")) == "conv"]
        if len(convs) == len(_VGG16_CONVS) + len(_FCS):
            return "vgg16", *_vgg16(mat, convs)
        return "vgg_m", *_convert(mat, convs)
    except CheckpointError as err:
        prefix = f"{where}: " if where else ""
        raise CheckpointError(f"{prefix}not MatConvNet's imagenet-vgg-m layout: {err}") from None


#: torchvision VGG-16 ``features`` indices of its 13 convs (3×3, stride 1, pad 1)
_VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def _fc_state(state: dict[str, torch.Tensor], fcs: list[Any], channels: int) -> int:
    """fc6-8 (convolutions in MatConvNet) → ``classifier.{0,3,6}``; returns fc6's spatial size (the pool)."""
    pool = 0
    for layer, index in zip(fcs, _FCS, strict=True):
        filters, biases = _params(layer)
        if filters.ndim == 2:  # loadmat(squeeze_me=True) drops fc7/fc8's 1×1 spatial dimensions
            filters = filters.reshape(1, 1, *filters.shape)
        if filters.ndim != 4:
            raise CheckpointError(f"layer '{_field(layer, 'name')}': filters {filters.shape} are not 4-D")
        if index == 0:
            pool = int(filters.shape[0])
            if filters.shape[2] != channels:
                raise CheckpointError(f"fc6 takes {filters.shape[2]} channels, the last conv gives {channels}")
        weight = filters.transpose(3, 2, 0, 1).reshape(filters.shape[3], -1)
        state[f"classifier.{index}.weight"] = torch.from_numpy(weight.copy())
        state[f"classifier.{index}.bias"] = torch.from_numpy(biases.copy())
    return pool


def _average(mat: dict[str, Any]) -> torch.Tensor:
    """MatConvNet's average image (H×W×3 or 3 values) as a ``[1, 3, 224, 224]`` tensor."""
    avg = torch.from_numpy(_average_image(mat).transpose(2, 0, 1).copy())[None]
    return F.interpolate(avg, size=(224, 224), mode="bilinear", align_corners=False)


def _vgg16(mat: dict[str, Any], convs: list[Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    state: dict[str, torch.Tensor] = {}
    for layer, index in zip(convs[:13], _VGG16_CONVS, strict=True):
        filters, biases = _params(layer)
        name = _field(layer, "name")
        if filters.ndim != 4 or filters.shape[:2] != (3, 3):
            raise CheckpointError(f"layer '{name}': filters {filters.shape}, expected 3×3×C_in×C_out")
        if _ints(_field(layer, "stride"), 2) != (1, 1) or set(_ints(_field(layer, "pad"), 4)) != {1}:
            raise CheckpointError(f"layer '{name}': stride/pad differ from VGG-16's (1, 1)")
        state[f"features.{index}.weight"] = torch.from_numpy(filters.transpose(3, 2, 0, 1).copy())
        state[f"features.{index}.bias"] = torch.from_numpy(biases.copy())
    channels = int(state["features.28.weight"].shape[0])
    pool = _fc_state(state, convs[13:], channels)
    state["average_image"] = _average(mat)
    args = {
        "num_classes": int(state["classifier.6.weight"].shape[0]),
        "width": channels / 512,
        "fc_dim": int(state["classifier.0.weight"].shape[0]),
        "pool": pool,
        "normalization": "matconvnet",
    }
    return args, state


def _convert(mat: dict[str, Any], convs: list[Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    if len(convs) != len(_CONVS) + len(_FCS):
        names = [str(_field(layer, "name")) for layer in convs]
        raise CheckpointError(f"expected 8 conv layers (conv1-5, fc6-8; VGG-16: 16), found {len(convs)}: {names}")
    state: dict[str, torch.Tensor] = {}
    for layer, (k, stride, pad, index) in zip(convs[:5], _CONVS, strict=True):
        filters, biases = _params(layer)
        name = _field(layer, "name")
        if filters.ndim != 4 or filters.shape[:2] != (k, k):
            raise CheckpointError(f"layer '{name}': filters {filters.shape}, expected {k}×{k}×C_in×C_out")
        if _ints(_field(layer, "stride"), 2) != (stride, stride) or set(_ints(_field(layer, "pad"), 4)) != {pad}:
            raise CheckpointError(f"layer '{name}': stride/pad differ from VGG-M's ({stride}, {pad})")
        state[f"features.{index}.weight"] = torch.from_numpy(filters.transpose(3, 2, 0, 1).copy())
        state[f"features.{index}.bias"] = torch.from_numpy(biases.copy())
    channels = int(state["features.12.weight"].shape[0])
    pool = _fc_state(state, convs[5:], channels)
    state["average_image"] = _average(mat)
    c1 = int(state["features.0.weight"].shape[0])
    args = {
        "num_classes": int(state["classifier.6.weight"].shape[0]),
        "width": c1 / 96,
        "fc_dim": int(state["classifier.0.weight"].shape[0]),
        "pool": pool,
        "normalization": "matconvnet",
    }
    from distill.registry import MODELS

    model = MODELS.build("vgg_m", **args)  # the target layout: every key and shape must match
    own = model.state_dict()
    bad = [k for k in own if k not in state or own[k].shape != state[k].shape]
    if bad or len(state) != len(own):
        raise CheckpointError(f"converted weights do not fit vgg_m({args}): {bad[:4]}")
    return args, state
