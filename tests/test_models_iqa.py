"""IQA models (DBCNN + SCNN, HyperIQA, the shared base) and SCNN's distortion-class pre-training data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distill._compat import import_torchvision
from distill.data.images import save_rgb
from distill.data.iqa.distortion_classes import LEVELS, DistortionClasses
from distill.data.iqa.distortions import apply_distortion
from distill.errors import CheckpointError, DataError
from distill.models import DBCNN, SCNN, HyperIQA, IQAModel, ResNetRegressor
from distill.recipe.check import load_recipe
from distill.registry import DATASETS, MODELS
from distill.run.checkpoint import MODEL_FORMAT

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dbcnn() -> DBCNN:
    torch.manual_seed(0)
    return DBCNN(backbone="vgg11")


@pytest.fixture(scope="module")
def hyperiqa() -> HyperIQA:
    torch.manual_seed(0)
    return HyperIQA(depth=18)


def _grads_everywhere(model: torch.nn.Module, x: torch.Tensor) -> None:
    model.train()
    model.zero_grad(set_to_none=True)
    model(x).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached {missing[:5]}"


# ----------------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", ["dbcnn", "hyperiqa", "resnet"])
def test_scores_for_images_and_patch_means(name: str, dbcnn: DBCNN, hyperiqa: HyperIQA) -> None:
    model: IQAModel = {"dbcnn": dbcnn, "hyperiqa": hyperiqa, "resnet": ResNetRegressor(depth=10)}[name]
    assert MODELS.get(name if name != "resnet" else "resnet_regressor") is type(model)
    model.eval()  # BN on running statistics, so a patch's score does not depend on its batch
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2,)
        assert model(torch.rand(1, 3, 64, 80)).shape == (1,)  # any size, not only square
        patches = torch.rand(2, 3, 3, 64, 64)
        per_patch = model(patches.flatten(0, 1)).view(2, 3)
        torch.testing.assert_close(model(patches), per_patch.mean(dim=1))
    with pytest.raises(ValueError, match=r"\[B, P, 3, H, W\]"):
        model(torch.rand(3, 64, 64))


def test_hyperiqa_target_network_is_per_image(hyperiqa: HyperIQA) -> None:
    hyperiqa.eval()
    with torch.no_grad():
        vec, layers = hyperiqa.target_params(hyperiqa.normalize(torch.rand(2, 3, 64, 64)))
    assert vec.shape == (2, 224)
    widths = [(w.shape[1:], b.shape[1:]) for w, b in layers]
    assert widths == [((112, 224), (112,)), ((56, 112), (56,)), ((28, 56), (28,)), ((14, 28), (14,)), ((1, 14), (1,))]
    assert not torch.allclose(layers[0][0][0], layers[0][0][1])  # each image gets its own target weights


def test_hyperiqa_hyper_network_input_is_rectified_like_the_authors(hyperiqa: HyperIQA) -> None:
    """SSL92/hyperIQA's ``conv1`` ends in a ReLU: the features the hyper network reads are non-negative."""
    with torch.no_grad():
        feats = hyperiqa.hyper_in(torch.randn(2, 512, 7, 7))
    assert float(feats.min()) == 0.0 and float(feats.max()) > 0.0


def test_hyperiqa_new_layers_are_he_normal_like_the_authors() -> None:
    torch.manual_seed(0)
    model = HyperIQA(depth=18)
    new = [
        *(m for m in model.lda.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))),
        model.lda4,
        *model.weight_convs,
        model.weight_last,
        *model.bias_fcs,
    ]
    for layer in new:  # kaiming_normal_: std sqrt(2 / fan_in); PyTorch's default would be sqrt(1 / (3 fan_in))
        fan_in = layer.weight[0].numel()
        assert float(layer.weight.std()) == pytest.approx((2 / fan_in) ** 0.5, rel=0.3), layer
    for conv in (m for m in model.hyper_in if isinstance(m, torch.nn.Conv2d)):  # the authors keep the default here
        fan_in = conv.weight[0].numel()
        assert float(conv.weight.std()) == pytest.approx((1 / (3 * fan_in)) ** 0.5, rel=0.3)


def test_scnn_logits_and_features() -> None:
    scnn = SCNN(num_classes=10).eval()
    x = torch.rand(2, 3, 64, 48)
    assert scnn(x).shape == (2, 10)
    assert scnn.features(x).shape == (2, 128, 4, 3)
    with pytest.raises(RuntimeError, match="no classification head"):
        SCNN(num_classes=None)(x)


# --------------------------------------------------------------------------------------------------- training
def test_dbcnn_backward_reaches_scnn_vgg_and_head(dbcnn: DBCNN) -> None:
    _grads_everywhere(dbcnn, torch.rand(2, 3, 64, 64))
    for part in (dbcnn.scnn.trunk[0].weight, dbcnn.vgg[0].weight, dbcnn.fc.weight):
        assert part.grad is not None and part.grad.abs().sum() > 0


def test_hyperiqa_backward_reaches_backbone_lda_and_hyper_network(hyperiqa: HyperIQA) -> None:
    _grads_everywhere(hyperiqa, torch.rand(2, 3, 64, 64))
    for part in (
        hyperiqa.backbone.conv1.weight,
        hyperiqa.lda[0].conv.weight,
        hyperiqa.hyper_in[0].weight,
        hyperiqa.weight_convs[0].weight,
        hyperiqa.bias_fcs[-1].weight,
    ):
        assert part.grad is not None and part.grad.abs().sum() > 0


def test_freeze_backbones_trains_the_head_only() -> None:
    model = DBCNN(backbone="vgg11", freeze_backbones=True)
    model.train()
    assert not model.vgg.training and not model.scnn.training and model.training  # frozen BN statistics
    model(torch.rand(2, 3, 64, 64)).sum().backward()
    assert all(p.grad is None for p in (*model.vgg.parameters(), *model.scnn.parameters()))
    assert model.fc.weight.grad is not None
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]


def test_dbcnn_bilinear_feature_is_l2_normalised(dbcnn: DBCNN) -> None:
    dbcnn.eval()
    with torch.no_grad():
        z = dbcnn.bilinear(dbcnn.normalize(torch.rand(3, 3, 64, 96)))
    assert z.shape == (3, 512 * 128)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))


def test_dbcnn_roots_zero_channels_as_sqrt_of_epsilon_like_the_authors(dbcnn: DBCNN) -> None:
    """DBCNN-PyTorch takes ``sqrt(z + 1e-8)``: a VGG channel that is zero over the image gives 1e-4, not 0."""
    model = DBCNN(backbone="vgg11").eval()
    model.load_state_dict(dbcnn.state_dict())
    last = [m for m in model.vgg if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight[0].zero_()
        last.bias[0] = 0.0  # VGG channel 0 is ReLU(0) = 0 everywhere
        x = model.normalize(torch.rand(2, 3, 64, 64))
        z = model.bilinear(x)
        a, b = model.vgg(x), model.scnn.features(x)
    assert float(a[:, 0].abs().max()) == 0.0
    pooled = torch.einsum("nchw,ndhw->ncd", a, b).flatten(1) / (a.shape[-1] * a.shape[-2])
    unnormalised_norm = torch.sqrt(pooled + 1e-8).norm(dim=1)
    zero_row = z[:, :128]  # the 128 products of VGG channel 0 with every SCNN channel
    expected = (1e-4 / unnormalised_norm)[:, None].expand(2, 128)
    torch.testing.assert_close(zero_row, expected, rtol=1e-4, atol=0.0)  # tiny values: compare relatively


def test_dbcnn_resizes_the_scnn_map_with_aligned_corners() -> None:
    """``F.upsample_bilinear`` (align_corners=True) as in the authors' code: a 2×2 map → 4×4 is exactly x + 2y."""
    from distill.models.iqa.dbcnn import bilinear_pool

    b = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).view(1, 1, 2, 2)
    a = torch.eye(16).view(1, 16, 4, 4)  # channel k is the indicator of position k: pooling reads the resized map
    feature = bilinear_pool(a, b)
    y, x = torch.meshgrid(torch.arange(4) / 3, torch.arange(4) / 3, indexing="ij")
    expected = (x + 2 * y).flatten() / 16 + 1e-8  # corners keep 0, 1, 2, 3; align_corners=False would not
    torch.testing.assert_close(feature.flatten() ** 2, expected / expected.sum())


def test_dbcnn_on_sizes_not_divisible_by_16_pools_the_resized_scnn_map(dbcnn: DBCNN) -> None:
    dbcnn.eval()
    with torch.no_grad():
        x = dbcnn.normalize(torch.rand(1, 3, 40, 56))  # VGG map 2×3, SCNN map 3×4 (a 500×500 LIVEC image: 31 vs 32)
        a, b = dbcnn.vgg(x), dbcnn.scnn.features(x)
        assert a.shape[-2:] == (2, 3) and b.shape[-2:] == (3, 4)
        assert dbcnn.bilinear(x).shape == (1, 512 * 128)


# ---------------------------------------------------------------------------------------------------- weights
def test_local_vgg_and_scnn_export_are_loaded(tmp_path: Path) -> None:
    import_torchvision()
    from torchvision.models.vgg import cfgs, make_layers

    reference = make_layers(cfgs["A"])  # vgg11().features, saved under torchvision's key names
    vgg_file = tmp_path / "vgg11.pth"
    state = {f"features.{k}": v for k, v in reference.state_dict().items()}
    torch.save({**state, "classifier.6.weight": torch.zeros(1000, 4096)}, vgg_file)  # classifier is ignored

    scnn = SCNN(num_classes=5 * LEVELS)
    with torch.no_grad():
        scnn.trunk[4].running_mean.fill_(0.25)
    export = tmp_path / "student.pt"
    torch.save({"format": MODEL_FORMAT, "model": {"name": "scnn", "args": {}}, "state_dict": scnn.state_dict()}, export)
    raw = tmp_path / "scnn_raw.pt"
    torch.save(scnn.state_dict(), raw)

    for scnn_file in (export, raw):
        model = DBCNN(backbone="vgg11", pretrained=str(vgg_file), scnn_pretrained=str(scnn_file))
        assert torch.equal(model.vgg[0].weight, reference[0].weight)
        assert torch.equal(model.vgg[-2].bias, reference[-3].bias)  # last conv (vgg drops the final max-pool)
        assert torch.equal(model.scnn.trunk[0].weight, scnn.trunk[0].weight)
        assert torch.equal(model.scnn.trunk[4].running_mean, scnn.trunk[4].running_mean)
        assert model.scnn.head is None


def test_local_resnet_is_loaded_into_hyperiqa(tmp_path: Path) -> None:
    reference = import_torchvision().models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = HyperIQA(depth=18, pretrained=str(path))
    assert torch.equal(model.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


@pytest.mark.parametrize(
    ("build", "arg"),
    [
        (lambda p: DBCNN(backbone="vgg11", pretrained=p), "vgg11 weights"),
        (lambda p: DBCNN(backbone="vgg11", scnn_pretrained=p), "SCNN weights"),
        (lambda p: HyperIQA(depth=18, pretrained=p), "ResNet-18 weights"),
    ],
)
def test_missing_weight_file_is_a_checkpoint_error_naming_it(tmp_path: Path, build, arg: str) -> None:
    path = tmp_path / "absent.pth"
    with pytest.raises(CheckpointError, match=f"{path}: {arg} file not found"):
        build(str(path))


def test_weights_of_another_network_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(import_torchvision().models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError, match="do not fit this model"):
        DBCNN(backbone="vgg11", scnn_pretrained=str(path))


# ------------------------------------------------------------------------------------------ distortion classes
@pytest.fixture(scope="module")
def reference_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("refs")
    g = torch.Generator().manual_seed(0)
    for i in range(5):
        coarse = torch.rand(1, 3, 6, 6, generator=g)
        img = torch.nn.functional.interpolate(coarse, size=(48, 40 + 4 * i), mode="bicubic").clamp(0, 1)[0]
        save_rgb(img + 0.05 * torch.rand(img.shape, generator=g), folder / f"ref{i}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_distortion_classes_labels_decode_to_the_applied_distortion(reference_folder: Path) -> None:
    ds = DATASETS.build("distortion_classes", root=str(reference_folder), length=40, size=32, seed=3)
    assert ds.num_classes == len(ds.codes) * LEVELS and len(ds.ref_names) == 5
    changed = 0
    for i in range(len(ds)):
        item = ds[i]
        code, level = ds.decode(int(item["target"]))
        assert (item["meta"]["distortion"], item["meta"]["level"]) == (code, level)
        assert ds.label(code, level) == int(item["target"])
        draw = ds.draw(i)
        clean = ds.clean(draw)
        assert item["meta"]["ref"] == ds.ref_names[draw.ref] and item["input"].shape == (3, 32, 32)
        torch.testing.assert_close(item["input"], apply_distortion(code, clean, level, draw.generator))
        changed += not torch.allclose(item["input"], clean, atol=1e-3)
    assert changed >= 30  # a few (type, level) pairs barely change a smooth crop
    assert item["target"].dtype == torch.long


def test_distortion_classes_is_deterministic_per_seed_epoch_and_split(reference_folder: Path) -> None:
    def items(ds: DistortionClasses) -> list[tuple[int, str]]:
        return [(int(ds[i]["target"]), ds[i]["meta"]["name"]) for i in range(12)]

    a = DistortionClasses(str(reference_folder), length=12, size=32, distortions=["01", "jpeg", "11"])
    b = DistortionClasses(str(reference_folder), length=12, size=32, distortions=["01", "jpeg", "11"])
    assert a.codes == ("01", "10", "11") and a.num_classes == 15
    assert items(a) == items(b)
    torch.testing.assert_close(a[5]["input"], b[5]["input"], rtol=0, atol=0)
    b.set_epoch(1)
    assert items(a) != items(b)
    b.set_epoch(0)
    b.set_seed(1)
    assert items(a) != items(b)

    train = DistortionClasses(str(reference_folder), length=4, size=32, split="train", train_fraction=0.6)
    test = DistortionClasses(str(reference_folder), length=4, size=32, split="test", train_fraction=0.6)
    assert len(train.ref_names) == 3 and len(test.ref_names) == 2
    assert not set(train.ref_names) & set(test.ref_names)


def test_distortion_classes_errors(tmp_path: Path, reference_folder: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        DistortionClasses(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="no images"):
        DistortionClasses(str(tmp_path))
    with pytest.raises(DataError, match="smaller than size"):
        DistortionClasses(str(reference_folder), size=64)
    with pytest.raises(DataError, match="unknown KADID-10k distortion type"):
        DistortionClasses(str(reference_folder), size=32, distortions=["blurry"])
    with pytest.raises(IndexError):
        DistortionClasses(str(reference_folder), size=32, length=2)[2]


def test_scnn_pretrain_quickstart_recipe_validates() -> None:
    recipe, _ = load_recipe(RECIPES / "scnn_pretrain_quickstart.yaml")
    assert recipe.models["student"].name == "scnn" and recipe.distiller.args == {"loss": "cross_entropy"}
    assert recipe.data.train.args["seed"] != recipe.data.eval["test"].args["seed"]
    assert recipe.data.eval["test"].args["split"] == "test"
