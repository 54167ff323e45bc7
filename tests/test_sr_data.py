"""SR data: synthetic writers in both layouts, DIV2K/benchmark readers, bicubic LR, patches, flips, metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from distill._compat import import_basicsr
from distill.data.images import load_rgb, save_rgb
from distill.data.sr.dataset import DIV2K, SRBenchmark, bicubic_downsample
from distill.data.sr.synthetic import (
    BENCHMARK_PHOTOS,
    TRAIN_PHOTOS,
    write_synthetic_div2k,
    write_synthetic_sr_benchmark,
)
from distill.engine.evaluator import Evaluator
from distill.errors import DataError
from distill.registry import DATASETS, WRITERS

import_basicsr()
from basicsr.metrics import calculate_psnr, calculate_ssim  # noqa: E402
from basicsr.utils.matlab_functions import imresize  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
SETS = ("Set5", "Set14", "B100", "Urban100")


@pytest.fixture(scope="module")
def sr_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sr")
    write_synthetic_div2k(root / "DIV2K", n_train=3, n_valid=2, size=(24, 36), scales=[2, 3], seed=0)
    write_synthetic_sr_benchmark(root / "benchmark", n_images=2, size=(24, 24), scales=[2, 3], seed=0)
    return root


def test_writers_are_registered_and_write_the_official_layouts(sr_root):
    assert {"div2k", "sr_benchmark"} <= set(WRITERS.names()) and {"div2k", "sr_benchmark"} <= set(DATASETS.names())
    div2k = sr_root / "DIV2K"
    assert sorted(p.name for p in (div2k / "DIV2K_train_HR").iterdir()) == ["0001.png", "0002.png", "0003.png"]
    assert sorted(p.name for p in (div2k / "DIV2K_valid_HR").iterdir()) == ["0801.png", "0802.png"]
    assert (div2k / "DIV2K_train_LR_bicubic" / "X3" / "0002x3.png").is_file()
    assert load_rgb(div2k / "DIV2K_valid_LR_bicubic" / "X2" / "0801x2.png").shape == (3, 12, 18)
    for name in SETS:
        assert sorted(p.name for p in (sr_root / "benchmark" / name / "HR").iterdir()) == ["img_001.png", "img_002.png"]
        assert (sr_root / "benchmark" / name / "LR_bicubic" / "X2" / "img_002x2.png").is_file()
    marker = json.loads((div2k / "SYNTHETIC.json").read_text())
    assert marker["synthetic"] and "NOT THE REAL DIV2K" in (div2k / "README.txt").read_text()


def test_training_and_test_stand_ins_use_disjoint_photographs(sr_root):
    assert not set(TRAIN_PHOTOS) & set(BENCHMARK_PHOTOS)
    div2k = json.loads((sr_root / "DIV2K" / "SYNTHETIC.json").read_text())["images"]["all"]
    bench = json.loads((sr_root / "benchmark" / "SYNTHETIC.json").read_text())["images"]
    train = {v["photo"] for k, v in div2k.items() if int(k) <= 800}
    valid = {v["photo"] for k, v in div2k.items() if int(k) > 800}
    test = {v["photo"] for s in bench.values() for v in s.values()}
    assert train <= set(TRAIN_PHOTOS) and not train & (valid | test)


def test_writers_are_deterministic_and_refuse_bad_sizes(tmp_path, sr_root):
    again = write_synthetic_sr_benchmark(tmp_path / "b", sets=["Set5"], n_images=2, size=(24, 24), scales=[2, 3])
    for f in ("HR/img_001.png", "LR_bicubic/X3/img_002x3.png"):
        assert (again / "Set5" / f).read_bytes() == (sr_root / "benchmark" / "Set5" / f).read_bytes()
    with pytest.raises(DataError, match="multiple of 6"):
        write_synthetic_div2k(tmp_path / "d", size=(32, 32), scales=[2, 3])
    with pytest.raises(DataError, match="not empty"):
        write_synthetic_sr_benchmark(again, sets=["Set5"], n_images=1, size=(24, 24), scales=[2])


def test_div2k_pairs_lr_and_hr_of_every_image(sr_root):
    ds = DIV2K(str(sr_root / "DIV2K"), split="valid", scale=3)
    assert len(ds) == 2 and ds.is_synthetic and ds.lr_source == "files"
    item = ds[1]
    assert item["input"].shape == (3, 8, 12) and item["target"].shape == (3, 24, 36)
    assert item["meta"] == {"name": "0802", "dataset": "DIV2K"}
    assert torch.equal(item["target"], load_rgb(sr_root / "DIV2K" / "DIV2K_valid_HR" / "0802.png"))
    assert len(DIV2K(str(sr_root / "DIV2K"), scale=2, repeat=4, limit=2)) == 8


def test_benchmark_reader_names_the_set_and_reads_lr_files(sr_root):
    ds = SRBenchmark(str(sr_root / "benchmark" / "B100"), scale=2)
    assert ds.title == "B100" and len(ds) == 2 and ds.lr_source == "files" and ds.is_synthetic
    item = ds[0]
    assert item["meta"] == {"name": "img_001", "dataset": "B100"}
    lr_file = sr_root / "benchmark" / "B100" / "LR_bicubic" / "X2" / "img_001x2.png"
    assert torch.equal(item["input"], load_rgb(lr_file)) and item["target"].shape == (3, 24, 24)


def test_hr_only_folders_get_matlab_bicubic_lr_equal_to_basicsr(sr_root, tmp_path):
    hr_only = tmp_path / "photos"
    shutil.copytree(sr_root / "benchmark" / "Set14" / "HR", hr_only)
    # an HR side that is not a multiple of the scale: mod-cropped first, like BasicSR's LR generation
    hr = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 25, 23)).astype(np.float32) / 255)
    save_rgb(hr, hr_only / "odd.png")
    ds = SRBenchmark(str(hr_only), scale=3)
    assert ds.lr_source == "bicubic" and [s.name for s in ds.samples] == ["img_001", "img_002", "odd"]
    item = ds[2]
    cropped = hr[:, :24, :21]
    expected = (imresize(cropped, 1 / 3).clamp(0, 1) * 255).round() / 255
    assert torch.equal(item["target"], cropped) and torch.equal(item["input"], expected)
    # the synthetic writer made its LR files with the same function: generated LR == written LR files
    files = SRBenchmark(str(sr_root / "benchmark" / "Set14"), scale=3)
    forced = SRBenchmark(str(sr_root / "benchmark" / "Set14"), scale=3, lr="bicubic")
    assert forced.lr_source == "bicubic" and torch.equal(forced[0]["input"], files[0]["input"])
    assert torch.equal(bicubic_downsample(files[0]["target"], 3), files[0]["input"])


def _aligned_set(tmp_path: Path, scale: int) -> Path:
    """A benchmark-layout set whose LR is HR[::s, ::s], so a patch is aligned iff LR == HR_patch[::s, ::s]."""
    g = torch.Generator().manual_seed(0)
    for i in range(2):
        hr = (torch.rand(3, 30, 24, generator=g) * 255).round() / 255
        save_rgb(hr, tmp_path / "HR" / f"im{i}.png")
        save_rgb(hr[:, ::scale, ::scale], tmp_path / "LR_bicubic" / f"X{scale}" / f"im{i}x{scale}.png")
    return tmp_path


def test_patches_stay_aligned_under_every_flip_and_rotation(tmp_path):
    ds = SRBenchmark(str(_aligned_set(tmp_path, 3)), scale=3, patch_size=4, augment=True, repeat=40)
    ds.set_seed(7)
    offsets = set()
    for index in range(len(ds)):
        lr, hr = ds[index]["input"], ds[index]["target"]
        assert lr.shape == (3, 4, 4) and hr.shape == (3, 12, 12)
        # LR = HR[::3, ::3]; a flip moves the sampled pixel of each 3x3 cell from the first to the last row/column
        hits = [(a, b) for a in (0, 2) for b in (0, 2) if torch.equal(lr, hr[:, a::3, b::3])]
        assert hits, f"item {index}: LR patch is not aligned with its HR patch"
        offsets.update(hits)
    assert offsets == {(0, 0), (0, 2), (2, 0), (2, 2)}  # no flip, either flip and both all occur


def test_augmentation_is_seeded_by_seed_epoch_and_index(sr_root):
    ds = DIV2K(str(sr_root / "DIV2K"), scale=2, patch_size=6, augment=True, repeat=2)
    first = ds[3]["input"]
    assert torch.equal(ds[3]["input"], first)
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["input"], first)
    ds.set_epoch(0)
    ds.set_seed(1)
    assert not torch.equal(ds[3]["input"], first)


def test_missing_and_malformed_data_are_clear_errors(sr_root, tmp_path):
    with pytest.raises(DataError, match=r"root '.*nowhere' does not exist.*distill data div2k"):
        DIV2K(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no DIV2K_train_HR/ folder"):
        DIV2K(str(tmp_path / "empty"))
    with pytest.raises(DataError, match="no HR/ folder and no images"):
        SRBenchmark(str(tmp_path / "empty"))
    broken = tmp_path / "broken"
    shutil.copytree(sr_root / "benchmark" / "Set5", broken)
    (broken / "LR_bicubic" / "X2" / "img_002x2.png").unlink()
    with pytest.raises(DataError, match=r"1 LR image\(s\) missing, e.g. .*img_002x2.png.*lr: bicubic"):
        SRBenchmark(str(broken), scale=2)
    with pytest.raises(DataError, match=r"LR folder .*X4' is missing"):
        SRBenchmark(str(broken), scale=4, lr="files")
    wrong = tmp_path / "wrong"
    shutil.copytree(sr_root / "benchmark" / "Set5", wrong)
    for lr in (wrong / "LR_bicubic" / "X2").iterdir():  # x2 files filed as x3 ones
        shutil.copy(lr, (wrong / "LR_bicubic" / "X3") / lr.name.replace("x2", "x3"))
    with pytest.raises(
        DataError, match=r"img_001x3.png: LR image 12x12 times scale 3 exceeds its HR image.*scale right"
    ):
        SRBenchmark(str(wrong), scale=3)[0]
    with pytest.raises(DataError, match="smaller than patch_size 20"):
        SRBenchmark(str(wrong), scale=2, patch_size=20)[0]
    with pytest.raises(DataError, match="patch_size must be a positive integer"):
        SRBenchmark(str(wrong), scale=2, patch_size=0)


@pytest.mark.parametrize("store", [False, True])
def test_an_lr_file_smaller_than_its_hr_over_scale_is_refused_not_paired_with_a_corner(sr_root, tmp_path, store):
    """x3 files filed as x2 ones (or any LR below HR / scale) would train the HR's top-left corner against the whole
    LR image; BasicSR refuses it ("Scale mismatches"). The check runs on headers before training and on loading."""
    wrong = tmp_path / "wrong"
    shutil.copytree(sr_root / "benchmark" / "Set5", wrong)
    for lr in (wrong / "LR_bicubic" / "X3").iterdir():
        shutil.copy(lr, (wrong / "LR_bicubic" / "X2") / lr.name.replace("x3", "x2"))
    says = r"img_001x2.png: LR image 8x8 is not its HR image .*img_001.png \(24x24\) divided by scale 2 \(12x12\)"
    with pytest.raises(DataError, match=says):
        SRBenchmark(str(wrong), scale=2).check_sizes("data.eval.test", 1, "train.eval_batch_size")
    if store:
        from distill.data.prepare import prepare_dataset

        prepare_dataset("sr_benchmark", str(wrong), {"scale": 2})
    with pytest.raises(DataError, match=says):
        SRBenchmark(str(wrong), scale=2, **({"format": "store"} if store else {}))[0]


def _basicsr_validation(distiller, batches, scale: int, quantize: bool) -> tuple[float, float]:
    """BasicSR's ``SRModel.nondist_validation``: tensor2img on output and GT, then its metric functions."""
    from basicsr.utils import tensor2img

    psnrs, ssims = [], []
    for batch in batches:
        with torch.no_grad():
            out = distiller.eval_outputs(batch)["student"]
        if quantize:
            sr, hr = tensor2img([out]), tensor2img([batch["target"]])
        else:  # the float path: same images, no clamp/rounding
            sr, hr = (t[0].permute(1, 2, 0).double().numpy()[..., ::-1] * 255 for t in (out, batch["target"]))
        psnrs.append(calculate_psnr(sr, hr, crop_border=scale, test_y_channel=True))
        ssims.append(calculate_ssim(sr, hr, crop_border=scale, test_y_channel=True))
    return float(np.mean(psnrs)), float(np.mean(ssims))


@pytest.mark.parametrize("quantize", [True, False])
def test_evaluator_psnr_ssim_equal_basicsr_validation_8bit_by_default_float_on_request(sr_root, quantize):
    """The recipes' metric settings through the evaluator equal BasicSR's validation (tensor2img → 8 bits) by
    default, and its metric functions on the float outputs with ``quantize: false``."""
    from distill.distillers import SRSupervised
    from distill.models.sr import edsr

    scale = 2
    torch.manual_seed(0)
    net = edsr(num_feat=4, num_block=1, upscale=scale)
    with torch.no_grad():  # outputs overshoot [0, 1] and fall between 8-bit levels, so the protocols differ
        net.conv_last.bias.fill_(0.3)
    distiller = SRSupervised({"student": net})
    ds = SRBenchmark(str(sr_root / "benchmark" / "Urban100"), scale=scale)
    args = {"crop_border": scale, "test_y_channel": True, **({} if quantize else {"quantize": False})}
    evaluator = Evaluator(["psnr", "ssim"], {"psnr": args, "ssim": args})
    batches = [{k: (v.unsqueeze(0) if torch.is_tensor(v) else v) for k, v in ds[i].items()} for i in range(len(ds))]
    got = evaluator.evaluate(distiller, batches, torch.device("cpu"))["student"]["overall"]
    ref_psnr, ref_ssim = _basicsr_validation(distiller, batches, scale, quantize)
    other_psnr, _ = _basicsr_validation(distiller, batches, scale, not quantize)
    assert got["psnr"] == pytest.approx(ref_psnr, rel=1e-6) and got["ssim"] == pytest.approx(ref_ssim, rel=1e-6)
    assert abs(got["psnr"] - other_psnr) > 10 * 1e-6 * ref_psnr  # the protocols differ beyond the tolerance


def test_grey_test_image_is_scored_as_basicsr_reads_it_three_equal_channels(tmp_path):
    """BasicSR's paired dataset reads a grey file with cv2.imread (3-channel BGR), so Y = 16 + 219·v; against
    scoring the grey channel on 0-255 (MATLAB-era tables) that adds 20·log10(255/219) ≈ 1.32 dB to the image."""
    import cv2
    from PIL import Image

    from distill.metrics import psnr

    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (24, 24), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-9, 10, hr.shape), 0, 255).astype(np.uint8)
    root = tmp_path / "Set14"
    for sub, arr in (("HR", hr), ("LR_bicubic/X2", hr[::2, ::2]), ("SR", sr)):
        (root / sub).mkdir(parents=True)
        Image.fromarray(arr, mode="L").save(root / sub / ("g.png" if sub != "LR_bicubic/X2" else "gx2.png"))
    item = SRBenchmark(str(root), scale=2)[0]
    assert item["target"].shape == (3, 24, 24) and torch.equal(item["target"][0], item["target"][2])
    ours = psnr(load_rgb(root / "SR" / "g.png")[None], item["target"][None], crop_border=2, test_y_channel=True)
    bgr = [cv2.imread(str(root / sub / "g.png")) for sub in ("SR", "HR")]  # cv2's default IMREAD_COLOR
    assert bgr[0].shape == (24, 24, 3)
    assert ours.item() == pytest.approx(calculate_psnr(*bgr, crop_border=2, test_y_channel=True), rel=1e-6)
    grey_255 = calculate_psnr(sr[..., None], hr[..., None], crop_border=2)
    assert ours.item() - grey_255 == pytest.approx(20 * np.log10(255 / 219), abs=1e-6)


def test_predict_writes_exactly_the_8bit_image_the_evaluator_scores(tmp_path):
    """`distill predict`'s PNGs are BasicSR's tensor2img of the output, so scoring them reproduces evaluation."""
    from basicsr.utils import tensor2img

    from distill.metrics.image import quantize_8bit
    from distill.models.sr import edsr, super_resolve
    from distill.registry import METRICS
    from distill.tasks.sr import upscale_images

    torch.manual_seed(0)
    net = edsr(num_feat=4, num_block=1, upscale=2).eval()
    with torch.no_grad():
        net.conv_last.bias.fill_(0.3)  # outputs beyond [0, 1] and between 8-bit levels
    lr = torch.rand(3, 12, 14, generator=torch.Generator().manual_seed(1))
    save_rgb(lr, tmp_path / "in" / "a.png")
    (written,) = upscale_images(net, [tmp_path / "in" / "a.png"], tmp_path / "out", progress=False)
    with torch.no_grad():
        out = super_resolve(net, load_rgb(tmp_path / "in" / "a.png")[None])
    png = np.asarray(__import__("PIL.Image").Image.open(written))
    assert np.array_equal(png, tensor2img([out])[..., ::-1])  # tensor2img is BGR
    assert torch.equal((load_rgb(written)[None].double() * 255).round(), quantize_8bit(out))
    hr = torch.rand(1, 3, 24, 28, generator=torch.Generator().manual_seed(2))
    psnr = METRICS.get("psnr")
    assert psnr(load_rgb(written)[None], hr).item() == pytest.approx(psnr(out, hr).item(), rel=1e-12)


def test_a_set_unpacked_on_macos_reads_only_its_images(sr_root, tmp_path):
    """macOS tar writes a ``._name.png`` resource fork beside every file, and Finder leaves ``.DS_Store``: neither is
    an image, and a folder scan must not take them for one (they would fail as corrupt images)."""
    root = tmp_path / "B100"
    shutil.copytree(sr_root / "benchmark" / "B100", root)
    for folder in (root / "HR", root / "LR_bicubic" / "X2"):
        for image in sorted(folder.glob("*.png")):
            (folder / f"._{image.name}").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
        (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    ds = SRBenchmark(str(root), scale=2)
    assert len(ds) == 2 and [ds[i]["meta"]["name"] for i in range(2)] == ["img_001", "img_002"]
