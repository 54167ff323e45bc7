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


def resnet_trunk(depth: ResNetDepth, width: int = 64) -> nn.Module:
    """A torchvision ResNet of ``depth`` layers (10 = BasicBlock ×[1,1,1,1], a CPU-friendly size) with ``fc`` kept.

    ``width`` is the stem's and first stage's channel count (torchvision's is 64; later stages double it). Narrower
    trunks keep torchvision's layout and keys, so their state dicts load the same way.
    """
    tv_models = import_torchvision().models
    if depth not in DEPTHS:
        raise ValueError(f"unsupported ResNet depth {depth}; choose one of {DEPTHS}")
    if width < 1:
        raise ValueError(f"ResNet width must be at least 1, got {width}")
    if width != 64:
        return _narrow_resnet(depth, width)
    if depth == 10:
        from torchvision.models.resnet import BasicBlock, ResNet

        return ResNet(BasicBlock, [1, 1, 1, 1])
    return getattr(tv_models, f"resnet{depth}")(weights=None)


#: blocks per stage of each depth (torchvision's; 10 is one BasicBlock per stage)
_LAYERS = {
    10: [1, 1, 1, 1],
    18: [2, 2, 2, 2],
    34: [3, 4, 6, 3],
    50: [3, 4, 6, 3],
    101: [3, 4, 23, 3],
    152: [3, 8, 36, 3],
}


def _narrow_resnet(depth: int, width: int) -> nn.Module:
    """torchvision's ResNet with every stage's channels scaled by ``width / 64`` (stem included)."""
    import_torchvision()
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    block = BasicBlock if depth < 50 else Bottleneck

    class NarrowResNet(ResNet):
        def _make_layer(self, block, planes, blocks, stride=1, dilate=False):  # type: ignore[no-untyped-def]
            if planes == 64:  # the first stage: its input is the (narrowed) stem
                self.inplanes = width
            return super()._make_layer(block, planes * width // 64, blocks, stride, dilate)

    net = NarrowResNet(block, _LAYERS[depth])
    net.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.bn1 = nn.BatchNorm2d(width)
    net.fc = nn.Linear(width * 8 * block.expansion, 1000)
    return net


@MODELS.register("resnet_regressor", task="iqa")
class ResNetRegressor(IQAModel):
    """ResNet-{10,18,34,50,101,152} trunk → global pool → linear → one quality score per image.

    Inputs are RGB in [0, 1] (``[B, 3, H, W]`` or patches ``[B, P, 3, H, W]``, see :class:`IQAModel`); ImageNet
    normalisation happens inside, so the exported model takes raw images.
    ``pretrained`` is a local torchvision state dict for the trunk (its ``fc`` is ignored). ``width`` narrows the
    trunk (:func:`resnet_trunk`; 64 is torchvision's).
    """

    def __init__(
        self,
        depth: ResNetDepth = 50,
        pretrained: str | None = None,
        dropout: float = 0.0,
        width: int = 64,
    ) -> None:
        super().__init__()
        trunk = resnet_trunk(depth, width)
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
