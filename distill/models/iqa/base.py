"""The shared shape of every IQA model: RGB in [0, 1] → one score per image, optionally averaged over patches."""

from __future__ import annotations

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def register_imagenet_stats(module: nn.Module) -> None:
    """Give ``module`` non-persistent ``mean``/``std`` buffers (not in its state dict, moved with it)."""
    module.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
    module.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)


class IQAModel(nn.Module):
    """Base class of the IQA models: ImageNet normalisation and patch averaging, done once here.

    ``forward`` takes RGB in [0, 1], either ``[B, 3, H, W]`` (one score per image) or ``[B, P, 3, H, W]`` (P patches
    per image, the HyperIQA protocol: the score is the mean of the P patch scores). Subclasses implement
    :meth:`score` on ImageNet-normalised ``[N, 3, H, W]`` input, returning ``[N]``.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        register_imagenet_stats(self)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] → ImageNet-normalised input."""
        return (x - self.mean) / self.std

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N]`` of normalised images ``[N, 3, H, W]``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[B]`` of ``[B, 3, H, W]`` images, or patch-mean scores of ``[B, P, 3, H, W]`` patches."""
        if x.ndim == 4 and x.shape[1] == 3:
            return self.score(self.normalize(x)).reshape(x.shape[0])
        if x.ndim == 5 and x.shape[2] == 3:
            b, p = x.shape[:2]
            return self.score(self.normalize(x.flatten(0, 1))).reshape(b, p).mean(dim=1)
        raise ValueError(
            f"{type(self).__name__} takes RGB images [B, 3, H, W] or patches [B, P, 3, H, W], got {tuple(x.shape)}"
        )
