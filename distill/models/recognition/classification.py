"""Image classifiers for CQD: VGG-M (Chatfield et al. 2014, the paper's model), torchvision's VGG-16 and ResNets.

Every classifier takes RGB in [0, 1] (``[B, 3, H, W]``), normalises it with the ImageNet statistics inside (so an
exported model takes raw images) and returns class logits ``[B, num_classes]``. State-dict keys are torchvision's
(``features.*``/``classifier.*`` for VGG, ``conv1.*``…``fc.*`` for ResNet), so ``pretrained: PATH`` takes
torchvision's ImageNet files as they are, and a run's exported ``student.pt`` (e.g. a CQD teacher trained by a
teacher recipe) as well. ``reset_head: true`` leaves the last layer at its fresh initialisation (the paper
re-initialises it for CUB's 200 classes). Teacher and student of a distiller may be any two of these.

``width`` scales every hidden channel count and ``fc_dim``/``pool`` size the fully connected part, for CPU-scale
stand-ins; with them at their defaults the models are the published architectures.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from distill._compat import import_torchvision
from distill.errors import CheckpointError
from distill.models.iqa.base import register_imagenet_stats
from distill.models.iqa.resnet import ResNetDepth, resnet_trunk
from distill.models.weights import WeightsError, load_local_weights, resolve_pretrained
from distill.registry import MODELS
from distill.run.layout import RunFolder

__all__ = ["ImageClassifier", "ResNetClassifier", "VGGClassifier", "resnet_classifier", "vgg16", "vgg_m"]

_log = logging.getLogger(__name__)

#: MatConvNet's ``meta.normalization.imageSize`` of imagenet-vgg-m (the ``average_image`` buffer's size)
MATCONVNET_SIZE = (224, 224)
VGG_M_HINT = "convert MatConvNet's imagenet-vgg-m.mat with `distill convert vggm imagenet-vgg-m.mat OUT.pt`"
#: torchvision's VGG-16 configuration "D" (channels, "M" = 2x2 max-pool)
VGG16_CFG: tuple[int | str, ...] = (*[64] * 2, "M", *[128] * 2, "M", *[256] * 3, "M", *[512] * 3, "M", *[512] * 3, "M")


def _channels(c: int, width: float) -> int:
    return max(1, round(c * width))


class ImageClassifier(nn.Module):
    """Base class: ImageNet normalisation inside, logits out, local pretrained weights with an optional fresh head.

    Subclasses build their layers, set :attr:`head_prefix` (the last layer's state-dict prefix) and implement
    :meth:`logits` on normalised input.
    """

    head_prefix: str = "classifier.6."
    #: how to obtain weights for a model torchvision publishes none for (see :func:`vgg_m`)
    missing_hint: str = ""
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        register_imagenet_stats(self)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of ImageNet-normalised images."""
        raise NotImplementedError

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] → the network's input: ImageNet mean/std, or MatConvNet's 0–255 minus the average image."""
        average = getattr(self, "average_image", None)
        if average is None:
            return (x - self.mean) / self.std
        if average.shape[-2:] != x.shape[-2:]:
            average = F.interpolate(average, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * 255.0 - average

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{type(self).__name__} takes RGB images [B, 3, H, W] in [0, 1], got {tuple(x.shape)}")
        return self.logits(self.normalize(x))

    @property
    def head(self) -> nn.Linear:
        """The last layer (the one ``reset_head`` leaves fresh)."""
        head = self.get_submodule(self.head_prefix.rstrip("."))
        assert isinstance(head, nn.Linear)
        return head

    def init_head(self, std: float | None) -> None:
        """Initialise the last layer as MatConvNet's ``initializeNetwork.m`` does for CQD's fc8: weights drawn
        from N(0, ``std``²), biases zero (``None``: keep PyTorch's default initialisation)."""
        if std is None:
            return
        if not std > 0:
            raise ValueError(f"head_init_std must be a positive number or null, got {std!r}")
        nn.init.normal_(self.head.weight, 0.0, float(std))
        nn.init.zeros_(self.head.bias)

    def load_pretrained(self, path: str | Path, reset_head: bool, arch: str | None = None) -> None:
        """Load a state dict (a file, a run's ``student.pt`` or a torchvision weight name of ``arch``, see
        :mod:`distill.models.weights`); ``reset_head`` skips the last layer."""
        path = resolve_pretrained(path, arch, missing_hint=self.missing_hint)
        name = type(self).__name__
        if not path.is_file():
            if path.name in (RunFolder.STUDENT, RunFolder.BEST_STUDENT):
                remedy = "it is the exported model of another run: run that recipe first"
            elif arch is None:
                remedy = self.missing_hint or "point pretrained at an existing file"
            else:
                remedy = "set pretrained: imagenet to download torchvision's ImageNet weights into the torch hub cache"
            raise WeightsError(f"{path}: {name} weights file not found; {remedy}")
        try:
            missing = load_local_weights(
                self, path, ignore_prefixes=(self.head_prefix,) if reset_head else (), what=f"{name} weights"
            )
        except CheckpointError as err:
            hint = "" if reset_head else " (to load a network trained for other classes, set reset_head: true)"
            if "average_image" in str(err):
                hint = " (a `distill convert vggm` file: set normalization: matconvnet)"
            raise WeightsError(f"{err}{hint}") from None
        if missing:
            _log.warning("%s: %d parameters not in %s keep their initialisation, e.g. %s", name, len(missing), path,
                         missing[0])  # fmt: skip


class VGGClassifier(ImageClassifier):
    """VGG-style network: ``features`` → ``avgpool`` (adaptive, ``pool``×``pool``) → three-layer ``classifier``.

    ``classifier`` is ``Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear`` — torchvision's layout and keys.
    """

    def __init__(
        self, features: nn.Sequential, channels: int, num_classes: int, fc_dim: int, pool: int, dropout: float
    ) -> None:
        super().__init__()
        self.num_classes = num_classes  # `distill predict` writes class labels for models that have it
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        self.classifier = nn.Sequential(
            nn.Linear(channels * pool * pool, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_dim, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_dim, num_classes),
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _vgg_m_features(width: float, batch_norm: bool) -> tuple[nn.Sequential, int]:
    """VGG-M's five conv layers (MatConvNet ``imagenet-vgg-m``): 96c7/2, LRN, pool; 256c5/2, LRN, pool; 3 × 512c3."""
    c1, c2, c3 = _channels(96, width), _channels(256, width), _channels(512, width)
    layers: list[nn.Module] = []

    def conv(c_in: int, c_out: int, k: int, stride: int, pad: int) -> None:
        layers.append(nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad))
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU(inplace=True))

    # MatConvNet's LRN (n=5, kappa=2, alpha=1e-4, beta=0.75) sums alpha * x²; torch divides alpha by n
    def lrn() -> None:
        if not batch_norm:
            layers.append(nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))

    conv(3, c1, 7, 2, 0)
    lrn()
    layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
    conv(c1, c2, 5, 2, 1)
    lrn()
    layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
    conv(c2, c3, 3, 1, 1)
    conv(c3, c3, 3, 1, 1)
    conv(c3, c3, 3, 1, 1)
    layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
    return nn.Sequential(*layers), c3


@MODELS.register("vgg_m", task="recognition")
def vgg_m(
    num_classes: int = 200,
    width: float = 1.0,
    fc_dim: int = 4096,
    pool: int = 6,
    dropout: float = 0.5,
    batch_norm: bool = False,
    pretrained: str | None = None,
    reset_head: bool = False,
    normalization: Literal["imagenet", "matconvnet"] = "imagenet",
    head_init_std: float | None = None,
) -> VGGClassifier:
    """VGG-M (Chatfield et al., BMVC 2014), CQD's network: 5 conv (LRN after the first two) + 3 fc layers.

    At 224×224 input the last pool gives 6×6×512, as in MatConvNet's ``imagenet-vgg-m``. ``batch_norm`` replaces
    LRN by BatchNorm after every conv (a from-scratch-friendly variant, not the paper's). ``pretrained`` takes a
    state dict with this module's keys (``features.N.*``, ``classifier.{0,3,6}.*``), e.g. the output of
    ``distill convert vggm imagenet-vgg-m.mat OUT.pt``. ``normalization: matconvnet`` feeds the network what
    MatConvNet's weights were trained on — 0–255 RGB minus the average image, a 224×224 ``average_image`` buffer in
    the state dict (resized bilinearly for other input sizes) — instead of ImageNet mean/std. ``head_init_std``
    draws the last layer's weights from N(0, std²) with zero biases (CQD's code: 0.01) instead of PyTorch's default.
    """
    if normalization not in ("imagenet", "matconvnet"):
        raise ValueError(f"vgg_m: normalization must be 'imagenet' or 'matconvnet', got {normalization!r}")
    features, channels = _vgg_m_features(width, batch_norm)
    model = VGGClassifier(features, channels, num_classes, fc_dim, pool, dropout)
    model.missing_hint = VGG_M_HINT
    if normalization == "matconvnet":
        model.register_buffer("average_image", torch.zeros(1, 3, *MATCONVNET_SIZE))
    model.init_head(head_init_std)
    if pretrained:
        model.load_pretrained(pretrained, reset_head)
    return model


@MODELS.register("vgg16", task="recognition")
def vgg16(
    num_classes: int = 200,
    width: float = 1.0,
    fc_dim: int = 4096,
    pool: int = 7,
    dropout: float = 0.5,
    batch_norm: bool = False,
    pretrained: str | None = None,
    reset_head: bool = False,
    head_init_std: float | None = None,
    normalization: Literal["imagenet", "matconvnet"] = "imagenet",
) -> VGGClassifier:
    """VGG-16 (Simonyan & Zisserman, 2015; torchvision's ``vgg16`` / ``vgg16_bn`` layers and keys), CQD's deep model.

    ``pretrained`` takes torchvision's ``vgg16-397923af.pth`` (or ``vgg16_bn-6c64b313.pth`` with ``batch_norm``)
    with ``reset_head: true``, or a run's ``student.pt``. ``head_init_std``, ``normalization``: as :func:`vgg_m`
    (``matconvnet`` for MatConvNet's ``imagenet-vgg-verydeep-16``, ``zoo:matconvnet_vgg16``).
    """
    if normalization not in ("imagenet", "matconvnet"):
        raise ValueError(f"vgg16: normalization must be 'imagenet' or 'matconvnet', got {normalization!r}")
    import_torchvision()
    from torchvision.models.vgg import make_layers

    cfg: list[int | str] = [v if v == "M" else _channels(int(v), width) for v in VGG16_CFG]
    channels = int(next(v for v in reversed(cfg) if v != "M"))
    model = VGGClassifier(make_layers(cfg, batch_norm=batch_norm), channels, num_classes, fc_dim, pool, dropout)
    if normalization == "matconvnet":
        model.register_buffer("average_image", torch.zeros(1, 3, *MATCONVNET_SIZE))
    model.init_head(head_init_std)
    if pretrained:
        model.load_pretrained(pretrained, reset_head, "vgg16_bn" if batch_norm else "vgg16")
    return model


class ResNetClassifier(ImageClassifier):
    """A torchvision ResNet with a ``num_classes`` head; its children sit at the top level (torchvision's keys)."""

    head_prefix = "fc."

    def __init__(self, depth: ResNetDepth, num_classes: int) -> None:
        super().__init__()
        trunk = resnet_trunk(depth)
        for name, child in trunk.named_children():
            self.add_module(name, child)
        self.fc = nn.Linear(trunk.fc.in_features, num_classes)
        self.num_classes = num_classes

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@MODELS.register("resnet_classifier", task="recognition")
def resnet_classifier(
    depth: Literal[10, 18, 34, 50, 101, 152] = 18,
    num_classes: int = 200,
    pretrained: str | None = None,
    reset_head: bool = False,
    head_init_std: float | None = None,
) -> ResNetClassifier:
    """ResNet-{10,18,34,50,101,152} classifier (torchvision; 10 = one BasicBlock per stage, a CPU-friendly size).

    ``pretrained`` takes torchvision's ImageNet file (e.g. ``resnet18-f37072fd.pth``, with ``reset_head: true``)
    or a run's ``student.pt``. ``head_init_std``: as :func:`vgg_m`.
    """
    model = ResNetClassifier(depth, num_classes)
    model.init_head(head_init_std)
    if pretrained:
        model.load_pretrained(pretrained, reset_head, f"resnet{depth}" if depth != 10 else None)
    return model
