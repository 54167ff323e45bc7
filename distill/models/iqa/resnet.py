"""ResNet quality regressor: a torchvision ResNet trunk, global average pooling and a linear head to one score."""

from __future__ import annotations

import typing
from typing import Literal

import torch
from torch import nn

from distill._compat import import_torchvision
from distill.models.iqa.base import IMAGENET_MEAN, IMAGENET_STD, IQAModel
from distill.models.weights import load_pretrained
from distill.registry import MODELS

__all__ = ["DEPTHS", "IMAGENET_MEAN", "IMAGENET_STD", "ResNetRegressor", "resnet_trunk"]
ResNetDepth = Literal[10, 18, 34, 50, 101, 152]
DEPTHS: tuple[int, ...] = typing.get_args(ResNetDepth)


def resnet_trunk(depth: ResNetDepth) -> nn.Module:
    """A torchvision ResNet of ``depth`` layers (10 = BasicBlock ×[1,1,1,1], a CPU-friendly size) with ``fc`` kept."""
    tv_models = import_torchvision().models
    if depth == 10:
        from torchvision.models.resnet import BasicBlock, ResNet

        return ResNet(BasicBlock, [1, 1, 1, 1])
    if depth not in DEPTHS:
        raise ValueError(f"unsupported ResNet depth {depth}; choose one of {DEPTHS}")
    return getattr(tv_models, f"resnet{depth}")(weights=None)


@MODELS.register("resnet_regressor")
class ResNetRegressor(IQAModel):
    """ResNet-{10,18,34,50,101,152} trunk → global pool → linear → one quality score per image.

    Inputs are RGB in [0, 1] (``[B, 3, H, W]`` or patches ``[B, P, 3, H, W]``, see :class:`IQAModel`); ImageNet
    normalisation happens inside, so the exported model takes raw images.
    ``pretrained`` is a local torchvision state dict for the trunk (its ``fc`` is ignored).
    """

    def __init__(
        self,
        depth: ResNetDepth = 50,
        pretrained: str | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        trunk = resnet_trunk(depth)
        if pretrained:
            arch = f"resnet{depth}" if depth != 10 else None
            load_pretrained(trunk, pretrained, arch, ignore_prefixes=("fc.",), what=f"ResNet-{depth} weights")
        features = trunk.fc.in_features
        trunk.fc = nn.Identity()
        self.trunk = trunk
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, 1)) if dropout else nn.Linear(features, 1)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[N]`` of normalised images (``forward`` normalises and averages patches)."""
        return self.head(self.trunk(x)).squeeze(-1)
