"""CNNIQA (Kang et al., CVPR 2014): local contrast normalisation, one convolution, max-min pooling, two FC layers.

Kang, Ye, Li, Doermann, "Convolutional Neural Networks for No-Reference Image Quality Assessment", CVPR 2014: the
grey image is locally normalised, ``(I - mu) / (sigma + C)`` with mean and deviation over a P x Q window (P = Q = 3);
50 kernels of 7 x 7; each feature map is pooled to its maximum and its minimum (100 numbers); two fully connected
layers of 800 units with ReLU, dropout after the first; one output; an L1 loss on 32 x 32 patches that carry their
image's score. The defaults follow that paper and the PyTorch release of Li Dingquan (github.com/lidq92/CNNIQA,
``IQADataset.py`` ``LocalNormalization(patch, P=3, Q=3, C=1)`` on grey values in [0, 1]; ``main.py`` ``CNNIQAnet``).

A shallow model with a content-normalised input: in the photo-disjoint synthetic sets it carries the distortion level
to unseen photos where deeper ResNets trained from scratch fit the training photos instead (docs/quickstarts.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distill.models.iqa.base import IQAModel
from distill.models.weights import WeightsError, load_pretrained
from distill.registry import MODELS

__all__ = ["CNNIQA", "check_lcn", "local_contrast_normalise", "symmetric_pad"]

#: ITU-R BT.601 luma weights (what Pillow's ``convert("L")`` uses, the grey image of the CNNIQA release)
LUMA = (0.299, 0.587, 0.114)


def local_contrast_normalise(grey: torch.Tensor, window: int = 3, c: float = 1.0) -> torch.Tensor:
    """``(I - mu) / (sigma + c)`` with mean ``mu`` and deviation ``sigma`` over a ``window`` x ``window`` box.

    ``grey`` is ``[N, 1, H, W]``; borders are extended symmetrically (the edge pixel repeated, as
    ``scipy.signal.convolve2d(..., boundary="symm")`` in the CNNIQA release), so the output has the input's size.
    """
    check_lcn(window, c)
    padded = symmetric_pad(grey, window // 2)
    mu = F.avg_pool2d(padded, window, stride=1)
    var = F.avg_pool2d(padded * padded, window, stride=1) - mu * mu
    return (grey - mu) / (var.clamp_min(0).sqrt() + c)


def symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last two dims by ``pad`` on every side, mirroring with the edge repeated (``numpy.pad`` symmetric)."""
    if pad == 0:
        return x
    if pad > min(x.shape[-2:]):
        raise ValueError(f"cannot pad {x.shape[-2]}x{x.shape[-1]} symmetrically by {pad}")
    x = torch.cat([x[..., :pad, :].flip(-2), x, x[..., -pad:, :].flip(-2)], dim=-2)
    return torch.cat([x[..., :pad].flip(-1), x, x[..., -pad:].flip(-1)], dim=-1)


def check_lcn(window: int, c: float, names: tuple[str, str] = ("window", "c")) -> None:
    """Raise ``ValueError`` unless ``window`` is a positive odd integer and ``c`` a positive number; the message
    calls them by ``names`` (the caller's argument names)."""
    if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"{names[0]} (the normalisation window) must be a positive odd integer, got {window!r}")
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
        raise ValueError(f"{names[1]} (the normalisation constant) must be a positive number, got {c!r}")


@MODELS.register("cnniqa", task="iqa")
class CNNIQA(IQAModel):
    """CNNIQA: grey image → local contrast normalisation → conv → max-min pooling → FC → one score.

    Inputs are RGB in [0, 1] like every :class:`IQAModel`; any size of at least ``kernel_size`` (the pooling is
    global, so a model trained on 32 x 32 patches scores whole images or patch stacks ``[B, P, 3, h, w]``).
    ``lcn_window`` / ``lcn_c`` are the normalisation's P = Q and C (defaults: the paper and its release).
    ``pretrained`` is a local file holding a whole CNNIQA of the same shape (a ``student.pt`` of an earlier run, a
    state dict, ``.safetensors``); there are no published weights to download.
    """

    luma: torch.Tensor

    def __init__(
        self,
        kernels: int = 50,
        kernel_size: int = 7,
        hidden: int = 800,
        dropout: float = 0.5,
        lcn_window: int = 3,
        lcn_c: float = 1.0,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("kernels", kernels), ("kernel_size", kernel_size), ("hidden", hidden)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"CNNIQA {name} must be a positive integer, got {value!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"CNNIQA dropout must be in [0, 1), got {dropout!r}")
        check_lcn(lcn_window, lcn_c, ("lcn_window", "lcn_c"))
        self.lcn_window, self.lcn_c, self.kernel_size = int(lcn_window), float(lcn_c), int(kernel_size)
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)
        self.conv = nn.Conv2d(1, int(kernels), self.kernel_size)
        self.fc1 = nn.Linear(2 * int(kernels), int(hidden))
        self.fc2 = nn.Linear(int(hidden), int(hidden))
        self.out = nn.Linear(int(hidden), 1)
        self.dropout = nn.Dropout(dropout)
        if pretrained:
            missing = load_pretrained(self, pretrained, None, what="CNNIQA weights")
            if missing:
                raise WeightsError(f"{pretrained}: CNNIQA weights lack {', '.join(missing)}")

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] → the locally normalised grey image ``[N, 1, H, W]`` (this model's input normalisation)."""
        least = max(self.kernel_size, self.lcn_window // 2)
        if min(x.shape[-2:]) < least:
            raise ValueError(f"CNNIQA needs images of at least {least}x{least} pixels, got {x.shape[-2]}x{x.shape[-1]}")
        grey = (x * self.luma).sum(dim=1, keepdim=True)
        return local_contrast_normalise(grey, self.lcn_window, self.lcn_c)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N]`` of normalised grey images ``[N, 1, H, W]``."""
        h = self.conv(x)
        pooled = torch.cat([h.amax(dim=(2, 3)), h.amin(dim=(2, 3))], dim=1)
        h = self.dropout(F.relu(self.fc1(pooled)))
        return self.out(F.relu(self.fc2(h))).squeeze(-1)
