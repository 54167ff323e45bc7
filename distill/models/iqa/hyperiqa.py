"""HyperIQA: a hyper network emits, per image, the weights of a small target network that maps multi-scale
content features to a quality score.

Su, Yan, Zhu, Zhang, Ge, Sun & Zhang, "Blindly assess image quality in the wild guided by a self-adaptive hyper
network", CVPR 2020.

Faithful to the paper: ResNet-50 backbone; local distortion-aware (LDA) modules on layers 1–3 (1×1 conv to 16/32/64
channels, average pooling to 8×8/4×4/2×2, FC to 16 each) and on layer 4 (global pooling, FC to 176), concatenated
into the 224-d target input; the hyper network (1×1 convs on the layer-4 map down to 112 channels at 7×7, 3×3 convs
producing each target FC weight matrix from the 7×7 map, global pooling + FC for the biases and the last layer);
the target network FC 224→112→56→28→14→1 with a sigmoid after every layer but the last, applied per image with
batched matrix products; several 224² patches per image averaged at test time (:class:`IQAModel` does that for
``[B, P, 3, H, W]`` input; the patch protocol is the dataset's ``patches``, see :mod:`distill.data.iqa.dataset`).

As the authors' released code (github.com/SSL92/hyperIQA, ``models.py``) builds it: a ReLU after each of the three
1×1 convs that feed the hyper network (the last one included, so the hyper features are non-negative), and Kaiming
(He-normal, fan-in) initialisation of the weights of every layer new to the backbone (the LDA convs and FCs, the
hyper network's weight convs and weight/bias FCs); the three 1×1 convs and all biases keep PyTorch's default.

Beyond the paper: any input size works because the fixed pools are adaptive (at 224² they are exactly the paper's
7×7 windows and the layer-4 map is already 7×7; smaller maps are stretched to 7×7); ``depth`` 18/34 (CPU options)
scale the hyper network's 1×1 convs to the backbone's 512 channels (512→256→128→112); the target widths do not
change because the LDA modules always emit 224 values.
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from distill.models.iqa.base import IQAModel
from distill.models.iqa.resnet import resnet_trunk
from distill.models.lr_ratio import LRRatios
from distill.models.weights import load_pretrained
from distill.registry import MODELS

__all__ = ["TARGET_WIDTHS", "HyperIQA"]

#: Widths of the target network, input first.
TARGET_WIDTHS: tuple[int, ...] = (224, 112, 56, 28, 14, 1)
LDA_OUT = 16  # features per LDA module on layers 1-3
LDA_CHANNELS = (16, 32, 64)  # 1x1 conv widths of the LDA modules on layers 1-3
LDA_GRIDS = (8, 4, 2)  # their pooled grids (7x7 windows of a 224x224 input)
HYPER_CHANNELS = 112
HYPER_GRID = 7


class _LDA(nn.Module):
    """Local distortion-aware module: 1×1 conv → average pool to a ``grid``² map → flatten → FC."""

    def __init__(self, cin: int, mid: int, grid: int, out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, mid, 1, bias=False)
        self.grid = grid
        self.fc = nn.Linear(mid * grid * grid, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(self.conv(x), self.grid).flatten(1))


@MODELS.register("hyperiqa", task="iqa")
class HyperIQA(IQAModel, LRRatios):
    """HyperIQA (Su et al., CVPR 2020): ResNet + LDA features, a hyper network and a per-image target MLP.

    ``pretrained`` is a local torchvision ResNet state dict for the backbone (its ``fc`` is ignored). Train and test
    on several random 224² patches per image (``[B, P, 3, H, W]`` input averages the patch scores).
    ``lr_ratio``: the hyper network (``hyper_in`` and the target-weight/bias heads; not the backbone or its LDA
    modules, which SSL92's ``model_hyper.res`` holds) trains at ``lr_ratio x`` the model's learning rate, as its own
    optimizer parameter group. The authors' code uses 10 (SSL92/hyperIQA train_test_IQA.py line 63,
    HyerIQASolver.py lines 19-26); 1 (the default) is one rate per model, as MRKD gives it.
    """

    def __init__(self, depth: Literal[18, 34, 50] = 50, pretrained: str | None = None, lr_ratio: float = 1.0) -> None:
        super().__init__()
        if not lr_ratio > 0:
            raise ValueError(f"lr_ratio must be positive, got {lr_ratio}")
        self.lr_ratio = float(lr_ratio)
        if depth not in (18, 34, 50):
            raise ValueError(f"unsupported HyperIQA depth {depth}; choose 18, 34 or 50")
        trunk = resnet_trunk(depth)
        if pretrained:
            arch = f"resnet{depth}" if depth != 10 else None
            load_pretrained(trunk, pretrained, arch, ignore_prefixes=("fc.",), what=f"ResNet-{depth} weights")
        trunk.fc = nn.Identity()
        self.backbone = trunk
        ch = tuple(c * (4 if depth >= 50 else 1) for c in (64, 128, 256, 512))
        self.lda = nn.ModuleList(
            [_LDA(c, m, g, LDA_OUT) for c, m, g in zip(ch[:3], LDA_CHANNELS, LDA_GRIDS, strict=True)]
        )
        self.lda4 = nn.Linear(ch[3], TARGET_WIDTHS[0] - len(LDA_CHANNELS) * LDA_OUT)
        c4 = ch[3]
        self.hyper_in = nn.Sequential(
            nn.Conv2d(c4, c4 // 2, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4 // 2, c4 // 4, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4 // 4, HYPER_CHANNELS, 1),
            nn.ReLU(inplace=True),
        )
        cells = HYPER_GRID * HYPER_GRID
        pairs = list(itertools.pairwise(TARGET_WIDTHS))
        # weights of target layers 1-4 from the 7x7 map (in*out/49 channels each), of layer 5 and all biases by FC
        self.weight_convs = nn.ModuleList(
            [nn.Conv2d(HYPER_CHANNELS, fin * fout // cells, 3, padding=1) for fin, fout in pairs[:-1]]
        )
        self.weight_last = nn.Linear(HYPER_CHANNELS, pairs[-1][0] * pairs[-1][1])
        self.bias_fcs = nn.ModuleList([nn.Linear(HYPER_CHANNELS, fout) for _, fout in pairs])
        for layer in self.new_layers():
            nn.init.kaiming_normal_(layer.weight)

    def hyper_network(self) -> list[nn.Module]:
        """The hyper network: SSL92's ``conv1``, ``fc{1-4}w_conv``, ``fc5w_fc`` and ``fc{1-5}b_fc``."""
        return [self.hyper_in, self.weight_convs, self.weight_last, self.bias_fcs]

    def lr_ratios(self) -> dict[nn.Parameter, float]:
        if self.lr_ratio == 1.0:
            return {}
        return {p: self.lr_ratio for m in self.hyper_network() for p in m.parameters()}

    def new_layers(self) -> list[nn.Conv2d | nn.Linear]:
        """The layers the authors initialise He-normal: LDA convs/FCs and the hyper network's weight/bias heads."""
        lda = [m for m in self.lda.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        return [*lda, self.lda4, *self.weight_convs, self.weight_last, *self.bias_fcs]

    def target_params(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Target input ``[N, 224]`` and per-image ``(weight [N, out, in], bias [N, out])`` of its five layers."""
        b = self.backbone
        f = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        feats = []
        for layer in (b.layer1, b.layer2, b.layer3, b.layer4):
            f = layer(f)
            feats.append(f)
        lda = [m(t) for m, t in zip(self.lda, feats[:3], strict=True)]
        vec = torch.cat([*lda, self.lda4(feats[3].mean(dim=(2, 3)))], dim=1)
        hyper = self.hyper_in(F.adaptive_avg_pool2d(feats[3], HYPER_GRID))
        pooled = hyper.mean(dim=(2, 3))
        n = x.shape[0]
        widths = TARGET_WIDTHS
        weights = [conv(hyper).reshape(n, widths[i + 1], widths[i]) for i, conv in enumerate(self.weight_convs)]
        weights.append(self.weight_last(pooled).reshape(n, widths[-1], widths[-2]))
        biases = [fc(pooled) for fc in self.bias_fcs]
        return vec, list(zip(weights, biases, strict=True))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        h, layers = self.target_params(x)
        for i, (w, bias) in enumerate(layers):
            h = torch.bmm(w, h.unsqueeze(-1)).squeeze(-1) + bias
            if i < len(layers) - 1:
                h = torch.sigmoid(h)
        return h.squeeze(-1)
