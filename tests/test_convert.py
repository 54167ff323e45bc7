"""`distill convert FORMAT FILE [OUT]`: each published layout, written by its reference architecture, converts to a
model file that ``load_deployable`` rebuilds with the reference's outputs.

BasicSR / SwinIR files come from basicsr's own EDSR, RCAN and SwinIR modules. EDSR-PyTorch, the RCAN authors' code and
DBCNN-PyTorch are not installable: small reference modules below follow their module names and forward passes
(``sub_mean``/``head``/``body``/``tail``; ``features``/``projection``/``classifier``; ``features1``/``features2``/
``fc``).
pyiqa's own classes are used when pyiqa is installed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F
from torch import nn

from distill.cli import main
from distill.deploy.model import load_deployable
from distill.errors import CheckpointError
from distill.models.convert import convert_file
from distill.models.sr.archs import edsr, rcan, swinir

MEAN = (0.4488, 0.4371, 0.4040)
IMAGENET = (torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))


def _randomize(module: nn.Module, seed: int, skip: tuple[str, ...] = ()) -> nn.Module:
    """Every parameter and BatchNorm statistic drawn at random (nothing left at a symmetric initialisation)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if not name.startswith(skip):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return module.eval()


def _convert(tmp_path: Path, fmt: str, file: Path, capsys=None) -> nn.Module:
    out = tmp_path / f"{file.stem}_converted.pt"
    assert main(["convert", fmt, str(file), str(out)]) == 0
    model, state = load_deployable(out)
    assert state["format"] == "distill-model/1" and state["source"]["format"] == fmt
    return model


def _close(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5 * max(1.0, float(want.abs().max()))), (got - want).abs().max()


# ------------------------------------------------------------------------------------------------ BasicSR / SwinIR
@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: edsr(num_feat=16, num_block=2, upscale=2, res_scale=0.1), id="edsr_x2"),
        pytest.param(lambda: edsr(num_feat=16, num_block=2, upscale=3), id="edsr_x3"),
        pytest.param(lambda: edsr(num_feat=16, num_block=3, upscale=4), id="edsr_x4"),
        pytest.param(lambda: rcan(num_feat=16, num_group=2, num_block=2, squeeze_factor=4, upscale=4), id="rcan_x4"),
        pytest.param(
            lambda: swinir(embed_dim=12, depths=[2, 2], num_heads=[2, 3], window_size=4, upscale=2, img_size=16),
            id="swinir_x2",
        ),
    ],
)
def test_basicsr_checkpoints_give_the_reference_outputs(tmp_path: Path, build) -> None:
    """A BasicSR checkpoint (params and params_ema) written by basicsr's own module: params_ema is taken."""
    ema, plain = _randomize(build(), 1), _randomize(build(), 2)
    torch.save({"params": plain.state_dict(), "params_ema": ema.state_dict()}, tmp_path / "net_g.pth")
    model = _convert(tmp_path, "basicsr", tmp_path / "net_g.pth")
    if type(ema).__name__ == "EDSR":  # res_scale is not stored: the converted file must be told
        model, _ = _rebuild_with(tmp_path, ema, res_scale=ema.body[0].res_scale)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        _close(model(x), ema(x))


def _rebuild_with(tmp_path: Path, net: nn.Module, **hints) -> tuple[nn.Module, dict]:
    out = tmp_path / "hinted.pt"
    convert_file("basicsr", tmp_path / "net_g.pth", out, hints=hints, force=True)
    return load_deployable(out)


def test_swinir_release_reads_its_training_patch_size_from_the_masks(tmp_path: Path) -> None:
    """The authors' SwinIR file (``params``): img_size 48 vs 64 changes the stored attention masks; both are read."""
    for img_size in (16, 24):
        net = swinir(embed_dim=12, depths=[2], num_heads=[2], window_size=4, upscale=3, img_size=img_size)
        ref = _randomize(net, 4)
        torch.save({"params": ref.state_dict()}, tmp_path / f"swinir_{img_size}.pth")
        model = _convert(tmp_path, "swinir", tmp_path / f"swinir_{img_size}.pth")
        assert model.distill_spec["args"]["img_size"] == img_size and model.distill_spec["args"]["upscale"] == 3
        x = torch.rand(1, 3, img_size, img_size, generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            _close(model(x), ref(x))


# ------------------------------------------------------------------------------------------------ EDSR-PyTorch, RCAN
class _MeanShift(nn.Conv2d):
    """EDSR-PyTorch's fixed 1x1 conv adding sign * rgb_range * mean."""

    def __init__(self, sign: int) -> None:
        super().__init__(3, 3, 1)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.bias.data = sign * 255.0 * torch.tensor(MEAN)


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


def _upsampler(scale: int, nf: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    if scale == 3:
        layers += [_conv(nf, 9 * nf), nn.PixelShuffle(3)]
    else:
        for _ in range(int(math.log2(scale))):
            layers += [_conv(nf, 4 * nf), nn.PixelShuffle(2)]
    return nn.Sequential(*layers)


class _ResBlock(nn.Module):
    def __init__(self, nf: int, res_scale: float) -> None:
        super().__init__()
        self.body, self.res_scale = nn.Sequential(_conv(nf, nf), nn.ReLU(True), _conv(nf, nf)), res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) * self.res_scale + x


class _EDSRPyTorch(nn.Module):
    """EDSR-PyTorch's EDSR (module names and forward), input and output in 0-255."""

    def __init__(self, nf: int, nb: int, scale: int, res_scale: float) -> None:
        super().__init__()
        self.sub_mean, self.add_mean = _MeanShift(-1), _MeanShift(1)
        self.head = nn.Sequential(_conv(3, nf))
        self.body = nn.Sequential(*[_ResBlock(nf, res_scale) for _ in range(nb)], _conv(nf, nf))
        self.tail = nn.Sequential(_upsampler(scale, nf), _conv(nf, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x))
        return self.add_mean(self.tail(self.body(x) + x))


class _CALayer(nn.Module):
    def __init__(self, nf: int, r: int) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(nn.Conv2d(nf, nf // r, 1), nn.ReLU(True), nn.Conv2d(nf // r, nf, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(F.adaptive_avg_pool2d(x, 1))


class _Residual(nn.Module):
    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class _RCAN(nn.Module):
    """The RCAN authors' RCAN (EDSR-PyTorch code base), input and output in 0-255."""

    def __init__(self, nf: int, ng: int, nb: int, r: int, scale: int) -> None:
        super().__init__()
        self.sub_mean, self.add_mean = _MeanShift(-1), _MeanShift(1)
        self.head = nn.Sequential(_conv(3, nf))
        rcab = lambda: _Residual(_conv(nf, nf), nn.ReLU(True), _conv(nf, nf), _CALayer(nf, r))  # noqa: E731
        groups = [_Residual(*[rcab() for _ in range(nb)], _conv(nf, nf)) for _ in range(ng)]
        self.body = nn.Sequential(*groups, _conv(nf, nf))
        self.tail = nn.Sequential(_upsampler(scale, nf), _conv(nf, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x))
        return self.add_mean(self.tail(self.body(x) + x))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_pytorch_release_layout_gives_the_reference_outputs(tmp_path: Path, scale: int, capsys) -> None:
    ref = _randomize(_EDSRPyTorch(16, 2, scale, 1.0), scale, skip=("sub_mean", "add_mean"))
    torch.save(ref.state_dict(), tmp_path / f"edsr_baseline_x{scale}.pt")  # the release: a bare state dict
    model = _convert(tmp_path, "edsr-pytorch", tmp_path / f"edsr_baseline_x{scale}.pt")
    assert "note: res_scale 1.0 (not stored in the file" in capsys.readouterr().out
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        _close(model(x) * 255, ref(x * 255))


def test_rcan_authors_layout_gives_the_reference_outputs(tmp_path: Path) -> None:
    ref = _randomize(_RCAN(16, 2, 3, 4, 4), 7, skip=("sub_mean", "add_mean"))
    torch.save(ref.state_dict(), tmp_path / "RCAN_BIX4.pt")
    model = _convert(tmp_path, "rcan", tmp_path / "RCAN_BIX4.pt")
    assert model.distill_spec["args"] | {"rgb_mean": None} == {
        "num_feat": 16, "num_group": 2, "num_block": 3, "squeeze_factor": 4, "upscale": 4, "rgb_mean": None
    }  # fmt: skip
    x = torch.rand(2, 3, 10, 10, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        _close(model(x) * 255, ref(x * 255))


# ------------------------------------------------------------------------------------------------ SCNN, DBCNN
class _SCNNRef(nn.Module):
    """DBCNN-PyTorch's SCNN (pyiqa copies it): features, global pool, projection (1x1 convs), classifier."""

    def __init__(self) -> None:
        super().__init__()
        spec = ((3, 48, 1), (48, 48, 2), (48, 64, 1), (64, 64, 2), (64, 64, 1), (64, 64, 2), (64, 128, 1),
                (128, 128, 1), (128, 128, 2))  # fmt: skip
        layers: list[nn.Module] = []
        for cin, cout, stride in spec:
            layers += [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU(True)]
        self.features = nn.Sequential(*layers)
        self.projection = nn.Sequential(nn.Conv2d(128, 256, 1), nn.BatchNorm2d(256), nn.ReLU(True),
                                        nn.Conv2d(256, 256, 1), nn.BatchNorm2d(256), nn.ReLU(True))  # fmt: skip
        self.classifier = nn.Linear(256, 39)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.projection(F.adaptive_avg_pool2d(self.features(x), 1)).flatten(1))


def _normalized(x: torch.Tensor) -> torch.Tensor:
    return (x - IMAGENET[0]) / IMAGENET[1]


def test_dbcnn_pytorch_scnn_pickle_gives_the_reference_logits(tmp_path: Path) -> None:
    """scnn.pkl's layout: a DataParallel state dict ("module." keys) saved before BN counted batches."""
    ref = _randomize(_SCNNRef(), 9)
    state = {f"module.{k}": v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "scnn.pkl")
    model = _convert(tmp_path, "scnn", tmp_path / "scnn.pkl")
    assert model.distill_spec == {"name": "scnn", "args": {"num_classes": 39}}
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        _close(model(x), ref(_normalized(x)))


class _DBCNNRef(nn.Module):
    """DBCNN-PyTorch's / pyiqa's DBCNN: VGG-16 conv5_3 and SCNN maps, bilinear pool, sqrt, L2, fc."""

    def __init__(self, arch: str = "vgg16") -> None:
        super().__init__()
        from distill._compat import import_torchvision

        import_torchvision()
        import torchvision.models

        self.features1 = nn.Sequential(*list(getattr(torchvision.models, arch)().features.children())[:-1])
        self.features2 = _SCNNRef().features
        self.fc = nn.Linear(512 * 128, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.features1(x), self.features2(x)
        n, _, h, w = a.shape
        if b.shape[-2:] != a.shape[-2:]:
            b = F.interpolate(b, (h, w), mode="bilinear", align_corners=True)
        z = torch.bmm(a.view(n, 512, h * w), b.view(n, 128, h * w).transpose(1, 2)) / (h * w)
        return self.fc(F.normalize(torch.sqrt(z.view(n, -1) + 1e-8)))


@pytest.mark.parametrize(
    "layout, arch",
    [("dbcnn-pytorch", "vgg11"), ("pyiqa-dbcnn", "vgg16")],
)
@pytest.mark.slow  # 25-30 s each on the shared 2-core machine: VGG branches and their 40-60 MB files
def test_dbcnn_files_give_the_reference_scores(tmp_path: Path, layout: str, arch: str) -> None:
    ref = _randomize(_DBCNNRef(arch), 11)
    with torch.no_grad():
        ref.features1.apply(lambda m: isinstance(m, nn.Conv2d) and m.weight.mul_(3.0))  # keep activations alive
    sd = ref.state_dict()
    if layout == "pyiqa-dbcnn":
        torch.save({"params": sd}, tmp_path / "DBCNN_TID2013.pth")
    else:  # DBCNN-PyTorch saves the DataParallel-wrapped net
        torch.save({f"module.{k}": v for k, v in sd.items()}, tmp_path / "DBCNN_TID2013.pth")
    model = _convert(tmp_path, layout, tmp_path / "DBCNN_TID2013.pth")
    assert model.distill_spec == {"name": "dbcnn", "args": {"backbone": arch}}
    x = torch.rand(2, 3, 72, 72, generator=torch.Generator().manual_seed(12))  # 4x4 VGG map vs 5x5 SCNN map
    with torch.no_grad():
        _close(model(x), ref(_normalized(x)).squeeze(1))


def test_pyiqa_dbcnn_and_hyperiqa_classes_when_installed(tmp_path: Path, monkeypatch) -> None:
    """pyiqa's own DBCNN/HyperNet (no downloads: their weights loaders are patched out)."""
    pyiqa_dbcnn = pytest.importorskip("pyiqa.archs.dbcnn_arch", reason="pyiqa is not installed (optional test dep)")
    pyiqa_hyper = pytest.importorskip("pyiqa.archs.hypernet_arch", reason="pyiqa is not installed (optional test dep)")
    import timm
    import torchvision

    monkeypatch.setattr(pyiqa_dbcnn, "load_pretrained_network", lambda *a, **k: None)
    monkeypatch.setattr(pyiqa_hyper, "load_pretrained_network", lambda *a, **k: None)
    monkeypatch.setattr(torchvision.models, "vgg16", lambda *a, **k: torchvision.models.vgg.vgg16(weights=None))
    create = timm.create_model
    monkeypatch.setattr(pyiqa_hyper.timm, "create_model", lambda name, **k: create(name, **{**k, "pretrained": False}))
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(13))
    ref = _randomize(pyiqa_dbcnn.DBCNN(pretrained=False), 14)
    torch.save({"params": ref.state_dict()}, tmp_path / "dbcnn.pth")
    with torch.no_grad():
        _close(_convert(tmp_path, "pyiqa-dbcnn", tmp_path / "dbcnn.pth")(x), ref(x).flatten())
    ref = _randomize(pyiqa_hyper.HyperNet(pretrained=False), 15)
    torch.save({"params": ref.state_dict()}, tmp_path / "hyper.pth")
    with torch.no_grad():
        _close(_convert(tmp_path, "pyiqa-hyperiqa", tmp_path / "hyper.pth")(x), ref.forward_patch(x).flatten())


# ------------------------------------------------------------------------------------------------ MatConvNet VGG-16
CH = (4, 8, 16, 32, 32)  # VGG-16 at width 1/16
FC, CLASSES = 16, 10


def _vgg16_mat(path: Path) -> tuple[dict, np.ndarray]:
    """imagenet-vgg-verydeep-16.mat's layout (beta-17 'weights' cells, meta.normalization) at width 1/16."""
    rng = np.random.default_rng(0)
    layers, raw, cin = [], {}, 3
    for block, (c, n) in enumerate(zip(CH, (2, 2, 3, 3, 3)), 1):
        for i in range(1, n + 1):
            name = f"conv{block}_{i}"
            f = (rng.standard_normal((3, 3, cin, c)) * np.sqrt(2 / (9 * cin))).astype(np.float32)
            b = (rng.standard_normal(c) * 0.1).astype(np.float32)
            raw[name], cin = (f, b), c
            w = np.empty(2, dtype=object)
            w[0], w[1] = f, b.reshape(1, -1)
            layers += [{"name": name, "type": "conv", "weights": w, "stride": np.array([1.0, 1]), "pad": np.ones(4)},
                       {"name": f"relu{block}_{i}", "type": "relu"}]  # fmt: skip
        layers.append({"name": f"pool{block}", "type": "pool", "method": "max", "pool": np.array([2.0, 2]),
                       "stride": np.array([2.0, 2]), "pad": np.zeros(4)})  # fmt: skip
    for name, (k, a, c) in {"fc6": (7, CH[-1], FC), "fc7": (1, FC, FC), "fc8": (1, FC, CLASSES)}.items():
        f = (rng.standard_normal((k, k, a, c)) * np.sqrt(2 / (k * k * a))).astype(np.float32)
        b = (rng.standard_normal(c) * 0.1).astype(np.float32)
        raw[name] = (f, b)
        w = np.empty(2, dtype=object)
        w[0], w[1] = f, b.reshape(1, -1)
        layers += [{"name": name, "type": "conv", "weights": w, "stride": np.array([1.0, 1]), "pad": np.zeros(4)},
                   {"name": f"relu{name[2:]}", "type": "relu"}]  # fmt: skip
    layers[-1] = {"name": "prob", "type": "softmax"}
    cell = np.empty(len(layers), dtype=object)
    cell[:] = layers
    average = np.array([123.68, 116.779, 103.939], np.float32)
    scipy.io.savemat(path, {"layers": cell, "meta": {"normalization": {"averageImage": average}}})
    return raw, average


def test_matconvnet_vgg16_gives_matconvnets_forward_pass(tmp_path: Path) -> None:
    raw, average = _vgg16_mat(tmp_path / "imagenet-vgg-verydeep-16.mat")
    model = _convert(tmp_path, "matconvnet", tmp_path / "imagenet-vgg-verydeep-16.mat")
    assert model.distill_spec["name"] == "vgg16"
    assert model.distill_spec["args"] == {"num_classes": CLASSES, "width": 1 / 16, "fc_dim": FC, "pool": 7,
                                          "normalization": "matconvnet"}  # fmt: skip
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(16))
    h = x * 255 - torch.from_numpy(average).view(1, 3, 1, 1)
    names = [n for n in raw if n.startswith("conv")]
    for name in names:
        f, b = raw[name]
        h = F.conv2d(h, torch.from_numpy(f).permute(3, 2, 0, 1), torch.from_numpy(b), padding=1).relu()
        if name.endswith(("1_2", "2_2", "3_3", "4_3", "5_3")):
            h = F.max_pool2d(h, 2, 2)
    for name in ("fc6", "fc7", "fc8"):
        f, b = raw[name]
        h = F.conv2d(h, torch.from_numpy(f).permute(3, 2, 0, 1), torch.from_numpy(b))
        h = h.relu() if name != "fc8" else h
    with torch.no_grad():
        _close(model(x), h.flatten(1))


# ------------------------------------------------------------------------------------------------ errors
def test_wrong_or_truncated_files_and_existing_out_are_one_line_errors(tmp_path: Path, capsys) -> None:
    ref = _randomize(_EDSRPyTorch(8, 1, 2, 1.0), 17, skip=("sub_mean", "add_mean"))
    torch.save(ref.state_dict(), tmp_path / "edsr.pt")
    data = (tmp_path / "edsr.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    cases = [
        (["convert", "edsr-pytorch", str(tmp_path / "cut.pt"), str(tmp_path / "a.pt")],
         r"cut\.pt: cannot read as a PyTorch file .* truncated"),
        (["convert", "scnn", str(tmp_path / "edsr.pt"), str(tmp_path / "b.pt")],
         r"edsr\.pt: not a scnn checkpoint: keys \['features\.0\.weight'"),
        (["convert", "basicsr", str(tmp_path / "edsr.pt"), str(tmp_path / "c.pt")],
         r"edsr\.pt: not a basicsr checkpoint: not BasicSR's EDSR, RCAN or SwinIR"),
        (["convert", "edsr-pytorch", str(tmp_path / "missing.pt"), str(tmp_path / "d.pt")],
         r"missing\.pt: file not found"),
    ]  # fmt: skip
    for argv, pattern in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and __import__("re").search(pattern, err), err
        assert not Path(argv[-1]).exists()
    # a state dict whose shapes disagree with what its other keys imply: the converted model does not fit
    bad = dict(ref.state_dict())
    bad["body.0.body.2.weight"] = torch.zeros(8, 8, 5, 5)
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad\.pt: does not fit edsr\(.*shape \(file, model\).*body\.0\.conv2"):
        convert_file("edsr-pytorch", tmp_path / "bad.pt", tmp_path / "e.pt")
    out = tmp_path / "out.pt"
    out.write_bytes(b"mine")
    assert main(["convert", "edsr-pytorch", str(tmp_path / "edsr.pt"), str(out)]) == 2
    assert "out.pt: the file already exists; nothing was written" in capsys.readouterr().err
    assert out.read_bytes() == b"mine"
    assert main(["convert", "edsr-pytorch", str(tmp_path / "edsr.pt"), str(out), "--force"]) == 0
    assert load_deployable(out)[1]["model"]["name"] == "edsr"
