"""``resnet_regressor``'s ``width``: a narrow torchvision-layout trunk, loadable as ``pretrained`` (issue 27's CPU
pre-trained start)."""

from __future__ import annotations

import pytest
import torch

from distill.models.iqa.resnet import ResNetRegressor, resnet_trunk


def test_a_narrow_trunk_keeps_torchvision_keys_and_scales_every_stage():
    wide, narrow = resnet_trunk(10), resnet_trunk(10, width=16)
    assert wide.state_dict().keys() == narrow.state_dict().keys()
    assert narrow.conv1.out_channels == 16 and narrow.layer4[0].conv2.out_channels == 128
    assert narrow.fc.in_features == 128
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in wide.parameters()) / 8


def test_a_narrow_trunk_file_is_a_pretrained_start(tmp_path):
    torch.manual_seed(0)
    source = ResNetRegressor(depth=10, width=16)
    trunk = {k.removeprefix("trunk."): v for k, v in source.state_dict().items() if k.startswith("trunk.")}
    torch.save(trunk, tmp_path / "trunk.pt")
    loaded = ResNetRegressor(depth=10, width=16, pretrained=str(tmp_path / "trunk.pt"))
    for key, value in loaded.trunk.state_dict().items():
        assert torch.equal(value, source.trunk.state_dict()[key]), key
    assert loaded(torch.rand(2, 3, 48, 48)).shape == (2,)
    with pytest.raises(Exception, match="do not fit"):
        ResNetRegressor(depth=10, width=32, pretrained=str(tmp_path / "trunk.pt"))


def test_width_must_be_positive():
    with pytest.raises(ValueError, match="width must be at least 1"):
        resnet_trunk(10, width=0)
