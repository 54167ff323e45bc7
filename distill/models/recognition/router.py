"""CQD's multi-resolution model: a small quality predictor routes each image to the classifier of its quality.

Su & Maji (BMVC 2017), "Multi-resolution model": (1) train a model to predict image quality; (2) send each image
predicted high-resolution to the model trained on high-resolution images and each low-resolution one to the CQD
model. :class:`RoutedClassifier` is that whole pipeline as one module (exportable, one ``state_dict``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from distill.registry import MODELS, set_spec

__all__ = ["QualityPredictor", "RoutedClassifier", "routed_classifier"]


@MODELS.register("quality_predictor", task="recognition")
class QualityPredictor(nn.Module):
    """Small CNN predicting an image's quality class (default 2: 0 = high / clean, 1 = low / degraded).

    Three 3×3 convolutions (stride 1, 2, 2) with BatchNorm and ReLU, global average pooling, a linear layer.
    Takes RGB in [0, 1]; low resolution shows as missing high-frequency energy, which the first layers see.
    """

    def __init__(self, width: int = 16, num_qualities: int = 2) -> None:
        super().__init__()
        if width < 1 or num_qualities < 2:
            raise ValueError(f"quality_predictor: width >= 1 and num_qualities >= 2, got {width}, {num_qualities}")
        layers: list[nn.Module] = []
        c_in = 3
        for c_out, stride in ((width, 1), (2 * width, 2), (2 * width, 2)):
            layers += [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_qualities)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Quality logits ``[B, num_qualities]``."""
        return self.head(self.features(x).mean(dim=(2, 3)))


class RoutedClassifier(nn.Module):
    """``forward(x)``: logits of ``experts[argmax predictor(x)]`` for each image of the batch.

    Eagerly, each expert runs only on the images routed to it. Under tracing/export (TorchScript, ``torch.export``,
    ONNX) every expert runs on the whole batch and the routed rows are gathered, which has no data-dependent shapes;
    both paths give the same logits.
    """

    def __init__(self, predictor: nn.Module, experts: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(experts) < 2:
            raise ValueError(f"a routed classifier needs at least 2 experts, got {len(experts)}")
        self.predictor = predictor
        self.experts = nn.ModuleList(experts)
        counts = {getattr(e, "num_classes", None) for e in experts}
        if len(counts) > 1:
            raise ValueError(f"the experts of a routed classifier must share their classes, got {sorted(counts)}")
        self.num_classes: int | None = counts.pop()

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """The expert index of each image, ``[B]`` (int64)."""
        return self.predictor(x).argmax(dim=1)

    def routed(self, x: torch.Tensor, route: torch.Tensor) -> torch.Tensor:
        """Logits of ``experts[route[b]]`` for image ``b``, running each expert on its images only."""
        out: torch.Tensor | None = None
        for k, expert in enumerate(self.experts):
            chosen = (route == k).nonzero(as_tuple=True)[0]
            if chosen.numel() == 0:
                continue
            logits = expert(x[chosen])
            if out is None:
                out = logits.new_zeros((x.shape[0], logits.shape[1]))
            out[chosen] = logits
        if out is None:  # an empty batch
            return self.dense(x, route)
        return out

    def dense(self, x: torch.Tensor, route: torch.Tensor) -> torch.Tensor:
        """The same logits, computed by running every expert on every image (trace/export friendly)."""
        stacked = torch.stack([expert(x) for expert in self.experts], dim=1)  # [B, K, C]
        index = route.clamp(0, len(self.experts) - 1).view(-1, 1, 1).expand(-1, 1, stacked.shape[2])
        return stacked.gather(1, index).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        route = self.route(x)
        if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
            return self.dense(x, route)
        return self.routed(x, route)


def _spec(spec: Mapping[str, Any], what: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ValueError(f"routed_classifier: {what} must be a model spec {{name: ..., args: {{...}}}}, got {spec!r}")
    return str(spec["name"]), dict(spec.get("args") or {})


@MODELS.register("routed_classifier", task="recognition")
def routed_classifier(predictor: dict[str, Any], experts: list[dict[str, Any]]) -> RoutedClassifier:
    """Quality predictor + one classifier per quality, as one module (CQD's multi-resolution model).

    ``predictor`` and each of ``experts`` are model specs ``{name, args}`` built from the registry (expert k serves
    the images the predictor assigns quality k).
    """
    built = []
    for i, spec in enumerate([predictor, *experts]):
        name, args = _spec(spec, "predictor" if i == 0 else f"experts[{i - 1}]")
        model = MODELS.build(name, **args)
        set_spec(model, name, args)
        built.append(model)
    return RoutedClassifier(built[0], built[1:])
