"""DBCNN: a deep bilinear CNN for blind IQA, and SCNN, its small CNN pre-trained on synthetic distortions.

Zhang, Ma, Yan, Deng & Wang, "Blind image quality assessment using a deep bilinear convolutional neural network",
IEEE TCSVT 30(1), 2020.

Faithful to the paper: the SCNN trunk (nine 3×3 conv–BN–ReLU layers, 48-48-64-64-64-64-128-128-128 channels, four
of them with stride 2, so a 224² input gives a 14×14×128 map) and its pre-training as a classifier of synthetic
distortion type × level; VGG16's conv features up to conv5_3 + ReLU (14×14×512 at 224²); bilinear pooling (the outer
product of the two maps averaged over positions, the SCNN map first resized bilinearly to the VGG map's size when
they differ); square root; L2 normalisation; one linear layer 512·128 → 1; the two-stage schedule (train the head on
frozen features, then everything) via ``freeze_backbones``.

As the authors' released code (github.com/zwx8981/DBCNN-PyTorch, ``DBCNN.forward``) computes it: the root is
``sqrt(z + 1e-8)`` of the pooled features, which are non-negative (ReLU × ReLU), not a signed root; it differs from
``sign(z)·sqrt(|z| + 1e-8)`` wherever a channel is zero over the whole image (there it is 1e-4, not 0). The SCNN map
is resized with ``F.upsample_bilinear``, i.e. ``align_corners=True``; that differs from ``align_corners=False``
whenever the two maps differ in size (H or W not divisible by 16, e.g. LIVEC's 500×500 images).

SCNN pre-training: ``recipes/scnn_pretrain.yaml`` trains ``SCNN(num_classes=39)`` on DBCNN's own classes — the nine
types of its MATLAB generator (:mod:`distill.data.iqa.distortions_dbcnn`), 7 types × 5 levels plus over- and
under-exposure × 2 levels (the author in zwx8981/DBCNN issue #9; which two levels is our reading) — of the Waterloo
Exploration and PASCAL VOC 2012 images (:mod:`distill.data.iqa.pristine`). The quickstart-scale
``recipes/scnn_pretrain_quickstart.yaml`` classifies distill's KADID-10k distortions instead (every implemented type
× 5 levels, :mod:`distill.data.iqa.distortion_classes`), which is also ``SCNN``'s default ``num_classes``.

Not faithful: SCNN's head (global average pool → FC 256 → FC 256 → classes, BN + ReLU after the hidden FCs) follows
the paper's table but its details are our reading; He-normal initialisation; ``backbone: vgg11`` (a CPU-scale
option) is not in the paper.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from distill._compat import import_torchvision
from distill.data.iqa.distortions import IMPLEMENTED_CODES
from distill.models.iqa.base import IQAModel, register_imagenet_stats
from distill.models.weights import WeightsError, load_pretrained
from distill.registry import MODELS

__all__ = ["DBCNN", "SCNN", "SCNN_CHANNELS", "bilinear_pool", "vgg_features"]

#: (out channels, stride) of SCNN's conv layers (DBCNN paper, Table I).
SCNN_LAYERS: tuple[tuple[int, int], ...] = (
    (48, 1),
    (48, 2),
    (64, 1),
    (64, 2),
    (64, 1),
    (64, 2),
    (128, 1),
    (128, 1),
    (128, 2),
)
SCNN_CHANNELS = SCNN_LAYERS[-1][0]
VGG_CHANNELS = 512
#: KADID types implemented by distill × 5 levels: the default SCNN pre-training classes.
DEFAULT_CLASSES = 5 * len(IMPLEMENTED_CODES)
_VGG_CFG = {"vgg16": "D", "vgg11": "A"}
#: How to produce the file ``scnn_pretrained`` names.
SCNN_HINT = "produce it with `distill run recipes/scnn_pretrain.yaml` (it writes runs/scnn_pretrain/student.pt)"


def _init_weights(module: nn.Module, conv_mode: Literal["fan_in", "fan_out"]) -> None:
    """He-normal conv/linear weights (convs by ``conv_mode``, linears by fan-in), zero biases, unit BN."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode=conv_mode if isinstance(m, nn.Conv2d) else "fan_in")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@MODELS.register("scnn", task="recognition")
class SCNN(nn.Module):
    """DBCNN's SCNN: nine conv–BN–ReLU layers to a 128-channel map (stride 16) + a distortion-class head.

    ``forward`` takes RGB in [0, 1] and returns class logits ``[N, num_classes]`` for pre-training. DBCNN's classes
    (``num_classes=39``, ``recipes/scnn_pretrain.yaml``): 7 distortion types × 5 levels and over-/under-exposure × 2
    levels, as the DBCNN author states in zwx8981/DBCNN issue #9 (which two levels of those types is our reading;
    order: :data:`distill.data.iqa.distortions_dbcnn.DBCNN_CLASSES`). The default ``num_classes`` is the
    quickstart's KADID-type classes (class index ``type_index * 5 + level - 1``, see
    :mod:`distill.data.iqa.distortion_classes`). :meth:`features` takes
    ImageNet-normalised input and returns the ``[N, 128, H/16, W/16]`` map that DBCNN pools. ``num_classes=None``
    builds the trunk alone (as inside DBCNN).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, num_classes: int | None = DEFAULT_CLASSES) -> None:
        super().__init__()
        if num_classes is not None and num_classes < 2:
            raise ValueError(f"SCNN: num_classes must be >= 2 (or None for no head), got {num_classes}")
        layers: list[nn.Module] = []
        cin = 3
        for cout, stride in SCNN_LAYERS:
            layers += [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.trunk = nn.Sequential(*layers)
        self.num_classes = num_classes
        self.head: nn.Sequential | None = None
        if num_classes is not None:
            self.head = nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(SCNN_CHANNELS, 256),
                nn.BatchNorm1d(256),
                nn.ReLU(inplace=True),
                nn.Linear(256, 256),
                nn.BatchNorm1d(256),
                nn.ReLU(inplace=True),
                nn.Linear(256, num_classes),
            )
        register_imagenet_stats(self)
        # fan-in: with BN after every conv, fan-out's small first-layer weights made SGD steps ~100 % of the weights
        _init_weights(self, "fan_in")
        if self.head is not None:  # start near uniform class probabilities (loss ≈ ln C)
            nn.init.normal_(self.head[-1].weight, std=0.01)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The ``[N, 128, H/16, W/16]`` feature map of ImageNet-normalised images ``[N, 3, H, W]``."""
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Distortion-class logits ``[N, num_classes]`` of RGB images in [0, 1]."""
        if self.head is None:
            raise RuntimeError("this SCNN has no classification head (num_classes=None); use .features()")
        return self.head(self.features((x - self.mean) / self.std))


def vgg_features(backbone: Literal["vgg16", "vgg11"] = "vgg16", pretrained: str | None = None) -> nn.Sequential:
    """torchvision ``vggXX().features`` up to the last conv's ReLU (512 ch, stride 16), optionally from a local file.

    ``pretrained`` is a torchvision ``vgg16``/``vgg11`` state dict (its ``classifier`` is ignored).
    """
    if backbone not in _VGG_CFG:
        raise ValueError(f"unsupported DBCNN backbone '{backbone}'; choose one of {', '.join(_VGG_CFG)}")
    import_torchvision()
    from torchvision.models.vgg import cfgs, make_layers

    holder = nn.Module()
    holder.features = make_layers(cfgs[_VGG_CFG[backbone]], batch_norm=False)
    _init_weights(holder, "fan_out")  # as torchvision initialises VGG
    if pretrained:
        missing = load_pretrained(
            holder, pretrained, backbone, ignore_prefixes=("classifier.",), what=f"{backbone} weights"
        )
        if missing:
            raise WeightsError(f"{pretrained}: {backbone} weights lack {missing[:5]}; is it a {backbone} file?")
    return holder.features[:-1]  # type: ignore[index]  # drop the last max-pool


def bilinear_pool(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """DBCNN's pooled feature of maps ``a [N, Ca, H, W]`` and ``b [N, Cb, h, w]``: ``[N, Ca·Cb]``.

    ``b`` is resized to ``a``'s size with ``align_corners=True`` (the authors' ``F.upsample_bilinear``), the outer
    products are averaged over positions, square-rooted as ``sqrt(z + 1e-8)`` (both maps follow a ReLU, so
    ``z >= 0``) and L2-normalised.
    """
    if b.shape[-2:] != a.shape[-2:]:
        b = F.interpolate(b, size=a.shape[-2:], mode="bilinear", align_corners=True)
    h, w = a.shape[-2:]
    z = torch.bmm(a.flatten(2), b.flatten(2).transpose(1, 2)).flatten(1) / (h * w)
    return F.normalize(torch.sqrt(z + 1e-8), dim=1)


@MODELS.register("dbcnn", task="iqa")
class DBCNN(IQAModel):
    """DBCNN (Zhang et al., TCSVT 2020): bilinear pooling of VGG16 and SCNN features → linear → one score.

    ``pretrained``: local torchvision VGG state dict; ``scnn_pretrained``: an SCNN pre-training result, a distill
    ``student.pt`` export or a raw SCNN state dict (its head is ignored); ``backbone: vgg11`` is a cheaper CPU
    option; ``freeze_backbones`` trains only the linear head (the paper's first stage) and keeps both branches in
    eval mode.
    """

    def __init__(
        self,
        backbone: Literal["vgg16", "vgg11"] = "vgg16",
        pretrained: str | None = None,
        scnn_pretrained: str | None = None,
        freeze_backbones: bool = False,
    ) -> None:
        super().__init__()
        self.vgg = vgg_features(backbone, pretrained)
        self.scnn = SCNN(num_classes=None)
        if scnn_pretrained:
            missing = load_pretrained(
                self.scnn,
                scnn_pretrained,
                None,
                arg="scnn_pretrained",
                ignore_prefixes=("head.",),
                what="SCNN weights",
                missing_hint=SCNN_HINT,
            )
            if missing:
                raise WeightsError(
                    f"{scnn_pretrained}: SCNN weights lack {missing[:5]}; is it an SCNN export?", "scnn_pretrained"
                )
        self.fc = nn.Linear(VGG_CHANNELS * SCNN_CHANNELS, 1)
        nn.init.kaiming_normal_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        self.freeze_backbones = freeze_backbones
        if freeze_backbones:
            for p in (*self.vgg.parameters(), *self.scnn.parameters()):
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> DBCNN:
        super().train(mode)
        if self.freeze_backbones:  # frozen branches keep their BN statistics
            self.vgg.eval()
            self.scnn.eval()
        return self

    def bilinear(self, x: torch.Tensor) -> torch.Tensor:
        """The L2-normalised, square-rooted bilinear feature ``[N, 512·128]`` of normalised images."""
        return bilinear_pool(self.vgg(x), self.scnn.features(x))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bilinear(x)).squeeze(-1)
