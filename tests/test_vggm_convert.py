"""`distill convert vggm`: MatConvNet's imagenet-vgg-m.mat layout → vgg_m, checked against MatConvNet's forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F

from distill.cli import main
from distill.errors import CheckpointError
from distill.models.convert import convert_vggm
from distill.models.recognition.classification import vgg_m

C1, C2, C3, FC, CLASSES = 12, 32, 64, 16, 10  # VGG-M at width 1/8 (the real file: 96, 256, 512, 4096, 1000)


def _layers(rng: np.random.Generator, old_format: bool) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Layers in the order and with the fields of imagenet-vgg-m.mat; returns them and the raw filters by name."""
    specs = [  # name, type, (k, c_in, c_out), stride, pad
        ("conv1", "conv", (7, 3, C1), 2, 0), ("relu1", "relu"), ("norm1", "lrn"), ("pool1", "pool"),
        ("conv2", "conv", (5, C1, C2), 2, 1), ("relu2", "relu"), ("norm2", "lrn"), ("pool2", "pool"),
        ("conv3", "conv", (3, C2, C3), 1, 1), ("relu3", "relu"),
        ("conv4", "conv", (3, C3, C3), 1, 1), ("relu4", "relu"),
        ("conv5", "conv", (3, C3, C3), 1, 1), ("relu5", "relu"), ("pool5", "pool"),
        ("fc6", "conv", (6, C3, FC), 1, 0), ("relu6", "relu"),
        ("fc7", "conv", (1, FC, FC), 1, 0), ("relu7", "relu"),
        ("fc8", "conv", (1, FC, CLASSES), 1, 0), ("prob", "softmax"),
    ]  # fmt: skip
    layers, raw = [], {}
    for name, kind, *rest in specs:
        layer: dict = {"name": name, "type": kind}
        if kind == "conv":
            (k, cin, cout), stride, pad = rest
            filters = (rng.standard_normal((k, k, cin, cout)) * np.sqrt(2 / (k * k * cin))).astype(np.float32)
            biases = (rng.standard_normal((1, cout)) * 0.1).astype(np.float32)
            raw[name] = (filters, biases[0])
            if old_format:
                layer.update(filters=filters, biases=biases)
            else:
                weights = np.empty(2, dtype=object)
                weights[0], weights[1] = filters, biases
                layer.update(weights=weights, size=np.array(filters.shape, float))
            layer.update(stride=np.array([stride, stride], float), pad=np.array([pad] * 4, float))
        elif kind == "lrn":
            layer["param"] = np.array([5, 2, 1e-4, 0.75])
        elif kind == "pool":
            layer.update(method="max", pool=np.array([3.0, 3.0]), stride=np.array([2.0, 2.0]),
                         pad=np.array([0.0, 1.0, 0.0, 1.0]))  # fmt: skip
        layers.append(layer)
    return layers, raw


def _write_mat(path: Path, old_format: bool, seed: int = 0) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    layers, raw = _layers(rng, old_format)
    cell = np.empty(len(layers), dtype=object)
    cell[:] = layers
    if old_format:
        average = np.array([123.68, 116.78, 103.94], np.float32)
        scipy.io.savemat(path, {"layers": cell, "normalization": {"averageImage": average}})
    else:
        average = (110 + 20 * rng.random((224, 224, 3))).astype(np.float32)
        meta = {"normalization": {"averageImage": average, "imageSize": np.array([224.0, 224, 3])},
                "classes": {"name": np.array([f"n{i:08d}" for i in range(CLASSES)], dtype=object)}}  # fmt: skip
        scipy.io.savemat(path, {"layers": cell, "meta": meta})
    return raw, average


def _matconvnet_forward(x: torch.Tensor, raw: dict, average: np.ndarray) -> torch.Tensor:
    """MatConvNet's SimpleNN forward of VGG-M on RGB [0, 1] input: 0-255 minus the average image, then the layers."""
    avg = torch.from_numpy(np.broadcast_to(average.reshape(-1, *average.shape[-2:]) if average.ndim == 3 else
                                           average.reshape(1, 1, 3), (224, 224, 3)).copy())  # fmt: skip
    h = x * 255 - avg.permute(2, 0, 1)[None]

    def conv(h, name, stride, pad):
        f, b = raw[name]
        return F.conv2d(h, torch.from_numpy(f).permute(3, 2, 0, 1), torch.from_numpy(b), stride, pad)

    def lrn(h):  # y = x / (kappa + alpha * sum over 5 neighbouring channels of x^2)^beta
        sq = F.pad(h.pow(2)[:, None], (0, 0, 0, 0, 2, 2))
        return h / (2 + 1e-4 * F.avg_pool3d(sq, (5, 1, 1), stride=1)[:, 0] * 5).pow(0.75)

    def pool(h):  # 3x3 stride 2, pad [top bottom left right] = [0 1 0 1]
        return F.max_pool2d(F.pad(h, (0, 1, 0, 1), value=float("-inf")), 3, 2)

    h = pool(lrn(conv(h, "conv1", 2, 0).relu()))
    h = pool(lrn(conv(h, "conv2", 2, 1).relu()))
    h = conv(conv(conv(h, "conv3", 1, 1).relu(), "conv4", 1, 1).relu(), "conv5", 1, 1).relu()
    h = conv(conv(pool(h), "fc6", 1, 0).relu(), "fc7", 1, 0).relu()
    return conv(h, "fc8", 1, 0).flatten(1)


@pytest.mark.parametrize("old_format", [False, True], ids=["meta", "old"])
def test_converted_vgg_m_matches_matconvnet(tmp_path: Path, old_format: bool, capsys) -> None:
    raw, average = _write_mat(tmp_path / "imagenet-vgg-m.mat", old_format)
    assert main(["convert", "vggm", str(tmp_path / "imagenet-vgg-m.mat"), str(tmp_path / "vggm.pth")]) == 0
    assert "normalization': 'matconvnet'" in capsys.readouterr().out
    model = vgg_m(num_classes=CLASSES, width=C1 / 96, fc_dim=FC, normalization="matconvnet",
                  pretrained=str(tmp_path / "vggm.pth")).eval()  # fmt: skip
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = _matconvnet_forward(x, raw, average)
        got = model(x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def test_a_cub_model_takes_the_converted_trunk_with_a_fresh_head(tmp_path: Path) -> None:
    raw, _ = _write_mat(tmp_path / "m.mat", False)
    args = convert_vggm(tmp_path / "m.mat", tmp_path / "vggm.pth")
    assert args == {"num_classes": CLASSES, "width": C1 / 96, "fc_dim": FC, "pool": 6, "normalization": "matconvnet"}
    model = vgg_m(num_classes=200, width=C1 / 96, fc_dim=FC, normalization="matconvnet", reset_head=True,
                  pretrained=str(tmp_path / "vggm.pth"))  # fmt: skip
    assert torch.equal(model.features[0].weight, torch.from_numpy(raw["conv1"][0]).permute(3, 2, 0, 1))
    assert model.classifier[6].out_features == 200 and float(model.average_image.std()) > 0
    with pytest.raises(CheckpointError, match="set normalization: matconvnet"):
        vgg_m(num_classes=200, width=C1 / 96, fc_dim=FC, reset_head=True, pretrained=str(tmp_path / "vggm.pth"))


def test_files_that_are_not_vgg_m_are_one_line_errors(tmp_path: Path, capsys) -> None:
    assert main(["convert", "vggm", str(tmp_path / "none.mat"), str(tmp_path / "o.pth")]) == 2
    assert "www.vlfeat.org/matconvnet/pretrained" in capsys.readouterr().err
    scipy.io.savemat(tmp_path / "x.mat", {"something": np.zeros(3)})
    with pytest.raises(CheckpointError, match=r"x\.mat: not MatConvNet's imagenet-vgg-m layout: no 'layers'"):
        convert_vggm(tmp_path / "x.mat", tmp_path / "o.pth")
    (tmp_path / "bad.mat").write_bytes(b"not a mat file")
    with pytest.raises(CheckpointError, match=r"bad\.mat: cannot read as a MATLAB file"):
        convert_vggm(tmp_path / "bad.mat", tmp_path / "o.pth")
    assert not (tmp_path / "o.pth").exists()
