"""DBCNN's SCNN pre-training data: pristine-image readers, DBCNN's distortions and the 39-class dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from distill.data.iqa.distortions_dbcnn import DBCNN_CLASSES, DBCNN_LEVELS, DBCNN_TYPES, dbcnn_distortion
from distill.data.iqa.pristine import DbcnnDistortions, Voc2012Images, WaterlooExploration
from distill.data.synthetic_common import reference_crops
from distill.errors import DataError
from distill.recipe.check import load_recipe
from distill.registry import DATASETS, WRITERS

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pristine")
    WRITERS.build("waterloo", out=str(root / "waterloo"), n_images=5, size=[40, 56])
    WRITERS.build("voc2012", out=str(root / "voc2012"), n_images=5, size=[48, 40])
    return root / "waterloo", root / "voc2012"


def test_readers_open_the_official_layouts_and_their_archive_folders(pristine, tmp_path: Path) -> None:
    waterloo, voc = pristine
    w = DATASETS.build("waterloo", root=str(waterloo))
    v = DATASETS.build("voc2012", root=str(voc))
    assert [p.name for p in w.files] == [f"0000{i}.bmp" for i in range(1, 6)]
    assert v.folder == voc / "VOCdevkit" / "VOC2012" / "JPEGImages" and len(v) == 5
    assert w.is_synthetic and w[0]["input"].shape == (3, 40, 56)
    nested = tmp_path / "exploration_database_and_code"
    shutil.copytree(waterloo / "pristine_images", nested / "pristine_images")
    assert len(WaterlooExploration(tmp_path)) == 5 and not WaterlooExploration(tmp_path).is_synthetic
    assert len(Voc2012Images(voc / "VOCdevkit" / "VOC2012")) == 5


def test_reader_errors_say_what_was_found_and_the_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist.*`distill data fetch waterloo .*missing`"):
        WaterlooExploration(tmp_path / "missing")
    (tmp_path / "Annotations").mkdir()
    with pytest.raises(DataError, match=r"none of JPEGImages/.*holds: Annotations.*distill data fetch voc2012"):
        Voc2012Images(tmp_path)


def test_39_classes_seven_types_by_five_levels_and_two_by_two() -> None:
    assert len(DBCNN_CLASSES) == 39 and len(DBCNN_TYPES) == 9
    assert sorted(len(v) for v in DBCNN_LEVELS.values()) == [2, 2] + [5] * 7
    assert len(set(DBCNN_CLASSES)) == 39


@pytest.mark.parametrize("code", list(DBCNN_TYPES))
def test_dbcnn_distortions_are_8bit_deterministic_and_grow_with_level(code: str) -> None:
    x = torch.from_numpy(reference_crops(1, (128, 160), 0)[0][0]).permute(2, 0, 1)[None].float() / 255
    fn = dbcnn_distortion(code)
    outs = [fn(x, level, torch.Generator().manual_seed(3)) for level in range(1, 6)]
    again = fn(x, 5, torch.Generator().manual_seed(3))
    assert torch.equal(outs[-1], again)
    for y in outs:
        assert y.shape == x.shape and torch.equal(y, (y * 255).round() / 255)
    change = [float((y - x).abs().mean()) for y in outs]
    assert change[4] > change[0] > 0, change


def test_items_distort_the_full_image_then_resize_then_crop(pristine) -> None:
    waterloo = pristine[0]
    ds = DbcnnDistortions(str(waterloo), None, split="all", resize=32, size=24, crop="center", classes=["1:3", "3:5"])
    item = ds[1]  # image 0, class 1 = JPEG at level 5
    assert item["target"] == 1 and item["meta"]["distortion"] == "3" and item["meta"]["level"] == 5
    full = dbcnn_distortion("3")(WaterlooExploration(waterloo)[0]["input"][None], 5)
    small = F.interpolate(full, size=(32, 45), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    assert torch.allclose(item["input"], small[0, :, 4:28, 10:34], atol=1e-6)


def test_fixed_distortion_per_image_and_class_fresh_crops_per_epoch(pristine) -> None:
    waterloo, voc = pristine
    ds = DbcnnDistortions(str(waterloo), str(voc), split="train", resize=32, size=16, classes=["2:3", "6:2"])
    center = DbcnnDistortions(str(waterloo), str(voc), split="train", resize=32, size=16, crop="center",
                              classes=["2:3", "6:2"])  # fmt: skip
    a = center[3]["input"]
    center.set_epoch(1)
    assert torch.equal(a, center[3]["input"])  # the noise of (image, class) is fixed, as in a generated set
    first = ds[3]["input"]
    ds.set_epoch(1)
    assert not torch.equal(first, ds[3]["input"])  # crop and flip are redrawn


def test_train_and_test_split_by_image(pristine) -> None:
    waterloo, voc = pristine
    train = DbcnnDistortions(str(waterloo), str(voc), split="train", resize=32, size=16)
    test = DbcnnDistortions(str(waterloo), str(voc), split="test", resize=32, size=16, length=20)
    assert not set(train.names) & set(test.names) and len(train.names) + len(test.names) == 10
    assert len(train) == len(train.names) * 39 and len(test) == 20
    assert {int(test[i]["target"]) for i in range(len(test))} <= set(range(39))
    with pytest.raises(DataError, match="TYPE:LEVEL"):
        DbcnnDistortions(str(waterloo), None, classes=["3"])


def test_scnn_pretrain_recipe_is_dbcnn_protocol() -> None:
    recipe, _ = load_recipe(RECIPES / "scnn_pretrain.yaml")
    train = recipe.data.train
    assert recipe.models["student"].args["num_classes"] == len(DBCNN_CLASSES)
    assert train.name == "dbcnn_distortions" and (train.args["resize"], train.args["size"]) == (256, 224)
    assert recipe.train.batch_size == 128 and recipe.train.epochs == 30
    quick, _ = load_recipe(RECIPES / "scnn_pretrain_quickstart.yaml")
    assert quick.name == "scnn_pretrain_quickstart" and quick.data.train.name == "distortion_classes"


def test_contrast_stretch_uses_matlab_stretchlim() -> None:
    """Every level 0..255 equally often: stretchlim gives levels 2 (cdf 3/256 > 1 %) and 253 (cdf 254/256 >= 99 %)."""
    x = (torch.arange(256.0).repeat(3, 4, 1) / 255)[None]  # [1, 3, 4, 256]
    y = dbcnn_distortion("5")(x, 1)  # imadjust to [0.2, 0.8]
    expected = 0.2 + 0.6 * ((x - 2 / 255) / (251 / 255)).clamp(0, 1)
    assert torch.allclose(y, (expected * 255).round() / 255)


def test_pink_noise_has_a_one_over_f_amplitude_spectrum() -> None:
    from distill.data.iqa.distortions_dbcnn import _pink_fields

    field = _pink_fields(torch.Generator().manual_seed(0), 2, 128)
    assert float(field.abs().amax()) == pytest.approx(1.0)
    power = torch.fft.fft2(field).abs().pow(2).mean(0)
    k = torch.fft.fftfreq(128, d=1 / 128)
    radius = (k[:, None] ** 2 + k[None, :] ** 2).sqrt().round().long()
    ring = [float(power[radius == r].mean()) for r in range(2, 40)]
    slope = torch.linalg.lstsq(
        torch.stack([torch.log(torch.arange(2.0, 40)), torch.ones(38)], 1), torch.log(torch.tensor(ring))[:, None]
    ).solution[0, 0]
    assert float(slope) == pytest.approx(-2.0, abs=0.25)  # power ∝ 1/f²: amplitude ∝ 1/f, randnd(-1, ...)
