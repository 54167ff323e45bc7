"""Models: shapes, local pretrained weights, and the promised errors for missing or mismatched files."""

from __future__ import annotations

import pytest
import torch

from distill._compat import import_torchvision
from distill.errors import CheckpointError
from distill.models import ResNetRegressor


@pytest.mark.parametrize("depth", [10, 18])
def test_resnet_regressor_scores_and_backprops(depth):
    model = ResNetRegressor(depth=depth)
    out = model(torch.rand(2, 3, 32, 32))
    assert out.shape == (2,)
    out.sum().backward()
    assert model.trunk.conv1.weight.grad is not None and model.head.weight.grad is not None


def test_pretrained_trunk_is_loaded_from_a_local_torchvision_file(tmp_path):
    tv = import_torchvision()
    reference = tv.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)  # torchvision's own format, fc included
    model = ResNetRegressor(depth=18, pretrained=str(path))
    assert torch.equal(model.trunk.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.trunk.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)


def test_missing_pretrained_file_says_what_to_do(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope.pth: ResNet-50 weights file not found; set pretrained: imagenet"):
        ResNetRegressor(depth=50, pretrained=str(tmp_path / "nope.pth"))


def test_weights_of_another_architecture_are_refused(tmp_path):
    tv = import_torchvision()
    path = tmp_path / "r34.pth"
    torch.save(tv.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError, match="do not fit this model"):
        ResNetRegressor(depth=18, pretrained=str(path))


def test_unknown_depth_is_refused():
    with pytest.raises(ValueError, match="unsupported ResNet depth 12"):
        ResNetRegressor(depth=12)
