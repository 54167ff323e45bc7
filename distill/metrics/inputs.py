"""Input checks at the entry of the image metrics: [0, 1] images, or a clear error — never a wrong number."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

#: Largest target value accepted as the [0, 1] scale (restored outputs may overshoot a little; targets do not).
_MAX_UNIT = 1.5


def unit_images(name: str, pred: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``pred`` and ``target`` as floating tensors in [0, 1]: uint8 images (0–255) are divided by 255.

    Raises ``TypeError`` for other integer or boolean dtypes and ``ValueError`` for a floating target beyond
    [0, 1] (an image on the 0–255 scale), naming the metric and the fix.
    """
    out = []
    for role, img in (("pred", pred), ("target", target)):
        if isinstance(img, np.ndarray):
            img = torch.from_numpy(img)
        if not isinstance(img, torch.Tensor):
            raise TypeError(f"{name}: {role} must be a tensor of images, got {type(img).__name__}")
        if img.dtype == torch.uint8:
            img = img.to(torch.float64 if img.device.type != "mps" else torch.float32) / 255.0
        elif not img.is_floating_point():
            raise TypeError(
                f"{name}: {role} has dtype {img.dtype}; give float images in [0, 1] or uint8 images in [0, 255]"
            )
        out.append(img)
    top = float(out[1].detach().amax()) if out[1].numel() else 0.0
    if top > _MAX_UNIT:
        raise ValueError(
            f"{name}: target values reach {top:g}, so it is not on the [0, 1] scale; divide float images by 255 "
            "(or pass uint8 images)"
        )
    return out[0], out[1]
