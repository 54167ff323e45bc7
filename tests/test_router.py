"""The multi-resolution model: the router sends each image to the right expert, trains, and deploys as one module."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from distill.build import build_model
from distill.data.base import SeededDataset
from distill.deploy.model import load_deployable
from distill.distillers.cqd import QualityRouter
from distill.engine import Trainer
from distill.models.recognition.router import QualityPredictor, RoutedClassifier, routed_classifier
from distill.recipe.config import ComponentSpec, EvalConfig, OptimConfig, TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")


class ByBrightness(nn.Module):
    """A stand-in predictor: quality 1 ('low') when the image's mean is above 0.5, else 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = (x.mean(dim=(1, 2, 3)) > 0.5).float()
        return torch.stack([1 - low, low], dim=1)


class Constant(nn.Module):
    """An expert answering ``value`` for every class; records the batch sizes it was called with."""

    def __init__(self, value: float, classes: int = 4) -> None:
        super().__init__()
        self.value, self.classes, self.seen = value, classes, []
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.shape[0])
        return self.scale * torch.full((x.shape[0], self.classes), self.value) + x.mean(dim=(1, 2, 3))[:, None]


def test_each_image_goes_to_the_expert_of_its_predicted_quality():
    high, low = Constant(10.0), Constant(-10.0)
    model = RoutedClassifier(ByBrightness(), [high, low])
    x = torch.rand(6, 3, 4, 4) * 0.4
    x[[1, 4]] += 0.5  # images 1 and 4 are 'low quality'
    route = model.route(x)
    assert route.tolist() == [0, 1, 0, 0, 1, 0]
    out = model(x)
    means = x.mean(dim=(1, 2, 3))[:, None]
    assert torch.allclose(out[[0, 2, 3, 5]], 10.0 + means[[0, 2, 3, 5]].expand(-1, 4))
    assert torch.allclose(out[[1, 4]], -10.0 + means[[1, 4]].expand(-1, 4))
    assert high.seen == [4] and low.seen == [2]  # eagerly, an expert sees only its own images
    assert torch.equal(model.dense(x, route), out)  # the trace/export path gives the same logits
    all_low = torch.full((3, 3, 4, 4), 0.9)
    assert torch.allclose(model(all_low), -10.0 + 0.9 * torch.ones(3, 4)) and high.seen == [4, 6]


def mixed_batch() -> tuple[RoutedClassifier, torch.Tensor]:
    model = RoutedClassifier(ByBrightness(), [Constant(1.0), Constant(-1.0)]).eval()
    x = torch.rand(5, 3, 4, 4) * 0.4
    x[:2] += 0.5
    return model, x


def test_the_routed_model_traces_with_the_same_outputs():
    model, x = mixed_batch()
    with pytest.warns(DeprecationWarning):  # torch.jit is deprecated, still what many deployments use
        traced = torch.jit.trace(model, x)
    assert torch.allclose(traced(x), model(x))
    y = x.flip(0)  # another routing pattern through the same trace: routing is data, not baked in
    assert torch.allclose(traced(y), model(y))


@pytest.mark.slow
def test_the_routed_model_exports_with_the_same_outputs():
    model, x = mixed_batch()
    exported = torch.export.export(model, (x,)).module()
    assert torch.allclose(exported(x), model(x)) and torch.allclose(exported(x.flip(0)), model(x.flip(0)))


class QualityPairs(SeededDataset):
    """Smooth random images (class = brightest channel) in high quality and blocky 4x-low-resolution copies."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        base = torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=16, mode="bilinear")
        base = base + 0.15 * torch.rand(n, 3, 16, 16, generator=g)  # fine detail that low resolution removes
        low = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(base, 4), scale_factor=4, mode="nearest")
        self.images = torch.cat([base, low]).clamp(0, 1)
        self.quality = torch.cat([torch.zeros(n), torch.ones(n)]).long()
        self.labels = torch.cat([base.mean(dim=(2, 3)).argmax(1)] * 2)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        q = int(self.quality[i])
        return {"input": self.images[i], "target": self.labels[i], "quality": q, "index": i,
                "meta": {"name": str(i), "quality": ["clean", "low_resolution"][q]}}  # fmt: skip


def test_the_quality_router_learns_to_route_and_deploys_as_one_module(tmp_path: Path):
    specs = {
        "predictor": ComponentSpec("quality_predictor", {"width": 8}),
        "high": ComponentSpec("resnet_classifier", {"depth": 10, "num_classes": 3}),
        "low": ComponentSpec("resnet_classifier", {"depth": 10, "num_classes": 3}),
    }
    torch.manual_seed(0)
    models = {role: build_model(spec) for role, spec in specs.items()}
    router = QualityRouter(models)
    assert router.param_groups().keys() == {"predictor"}  # the experts stay frozen
    trainer = Trainer(
        router,
        QualityPairs(48, 0),
        {"test": QualityPairs(24, 1)},
        optim={"predictor": OptimConfig(optimizer="adam", lr=0.01)},
        config=TrainConfig(iterations=60, batch_size=16, eval_every=60, device="cpu", progress=False),
        evaluation=EvalConfig(metrics=["top1"], group_by="quality"),
        out_dir=tmp_path / "run",
        tensorboard=False,
    )
    before = {k: v.clone() for k, v in models["high"].state_dict().items()}
    result = trainer.fit()
    assert all(torch.equal(v, models["high"].state_dict()[k]) for k, v in before.items())
    test = QualityPairs(24, 1)
    routed = router.router().eval()
    with torch.no_grad():
        accuracy = (routed.route(test.images) == test.quality).float().mean()
    assert accuracy > 0.9  # high vs low resolution is easy to see
    res = result.results["test"]
    assert set(res) == {"routed", "oracle_routed", "high", "low"}
    assert set(res["routed"]["groups"]) == {"clean", "low_resolution"}
    # the oracle route is the high expert on clean images and the low expert on low-resolution ones
    assert res["oracle_routed"]["groups"]["clean"]["top1"] == res["high"]["groups"]["clean"]["top1"]
    assert res["oracle_routed"]["groups"]["low_resolution"]["top1"] == res["low"]["groups"]["low_resolution"]["top1"]
    # student.pt holds predictor + both experts and rebuilds from its registry spec alone
    deployed, state = load_deployable(tmp_path / "run" / "student.pt")
    assert state["model"]["name"] == "routed_classifier" and isinstance(deployed, RoutedClassifier)
    with torch.no_grad():
        assert torch.allclose(deployed(test.images), routed(test.images), atol=1e-5)


def test_routed_classifier_builds_from_specs():
    model = routed_classifier(
        {"name": "quality_predictor", "args": {"width": 4}},
        [{"name": "vgg_m", "args": {"num_classes": 5, "width": 0.1, "fc_dim": 16, "pool": 1}}] * 2,
    )
    assert isinstance(model.predictor, QualityPredictor) and len(model.experts) == 2
    assert model.eval()(torch.rand(3, 3, 64, 64)).shape == (3, 5)
    with pytest.raises(ValueError, match="model spec"):
        routed_classifier({"width": 4}, [])
