"""Decoded uint8 stores (``format: store``), ``distill data prepare`` and persistent DataLoader workers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from distill.cli import main
from distill.data.iqa.synthetic_kadid import write_synthetic_kadid
from distill.data.prepare import prepare_dataset
from distill.data.recognition import CUB200Paired, write_synthetic_cub
from distill.data.sr import DIV2K, write_synthetic_div2k
from distill.data.store import DATA_FILE, MANIFEST, STORE_DIR, ImageStore, prepare_files
from distill.distillers import Supervised
from distill.engine import Trainer
from distill.errors import DataError
from distill.recipe.config import OptimConfig, TrainConfig
from distill.registry import DATASETS


@pytest.fixture(scope="module")
def div2k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_synthetic_div2k(tmp_path_factory.mktemp("sr") / "DIV2K", n_train=3, n_valid=1, size=(48, 60),
                                 scales=[2, 4])  # fmt: skip
    prepare_dataset("div2k", root, {"scale": [2, 4]}, quiet=True)
    return root


@pytest.fixture(scope="module")
def kadid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_synthetic_kadid(tmp_path_factory.mktemp("iqa") / "kadid", n_refs=3, size=[40, 48],
                                 distortions=["01", "10"], levels=2)  # fmt: skip
    prepare_dataset("kadid10k", root, {}, quiet=True)
    return root


def test_store_equals_the_source_images_bit_for_bit(div2k: Path, kadid: Path) -> None:
    for root in (div2k, kadid):
        store = ImageStore(root, "rebuild")
        store.check([])
        assert store.entries
        for rel in store.entries:
            with Image.open(root / rel) as img:
                expected = np.asarray(img.convert("RGB"))
            assert np.array_equal(store.array(root / rel), expected), rel


def test_store_items_equal_file_items(div2k: Path, kadid: Path, tmp_path: Path) -> None:
    for scale in (2, 4):
        kw = {"split": "train", "scale": scale, "patch_size": 8, "augment": True, "repeat": 3}
        files, stored = DIV2K(str(div2k), **kw), DIV2K(str(div2k), format="store", **kw)
        for epoch in (0, 1):
            files.set_epoch(epoch), stored.set_epoch(epoch)
            for i in range(len(files)):
                a, b = files[i], stored[i]
                assert torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
        whole = DIV2K(str(div2k), split="train", scale=scale, format="store")
        assert torch.equal(whole[0]["target"], DIV2K(str(div2k), split="train", scale=scale)[0]["target"])
    for crop in (None, 24):
        kw = {"split": "train", "crop": crop, "hflip": True}
        files, stored = (
            DATASETS.build("kadid10k", root=str(kadid), **kw),
            DATASETS.build("kadid10k", root=str(kadid), format="store", **kw),
        )
        for i in range(len(files)):
            assert torch.equal(files[i]["input"], stored[i]["input"])
    cub = write_synthetic_cub(tmp_path / "cub", n_classes=2, n_train=2, n_test=1, size=(40, 48))
    prepare_dataset("cub200", cub, {}, quiet=True)
    kw = {"degradation": "low_resolution", "size": 32, "hflip": True, "cache": False}
    files_cub, stored_cub = CUB200Paired(str(cub), **kw), CUB200Paired(str(cub), format="store", **kw)
    for i in range(len(files_cub)):
        for key in ("input", "input_clean"):
            assert torch.equal(files_cub[i][key], stored_cub[i][key])


def test_sr_patches_from_the_store_are_the_full_image_patches(div2k: Path) -> None:
    """The store holds whole images, so a patch drawn from it is the patch drawn from the decoded file: every LR
    position (top, left) is reachable with the same probability 1 / ((h - p + 1)(w - p + 1)). Checked by drawing
    many items of one image and finding each stored patch in the full image at the drawn corner."""
    ds = DIV2K(str(div2k), split="train", scale=4, patch_size=4, repeat=400, format="store")
    lr_full, hr_full = DIV2K(str(div2k), split="train", scale=4).load_pair(0)
    h, w = lr_full.shape[-2:]
    corners = set()
    for index in range(0, len(ds), len(ds.samples)):  # image 0's 400 listings
        item = ds[index]
        g = ds.rng(index)
        top, left = int(torch.randint(0, h - 4 + 1, (), generator=g)), int(torch.randint(0, w - 4 + 1, (), generator=g))
        assert torch.equal(item["input"], lr_full[:, top : top + 4, left : left + 4])
        assert torch.equal(item["target"], hr_full[:, top * 4 : top * 4 + 16, left * 4 : left * 4 + 16])
        corners.add((top, left))
    assert len(corners) > 0.5 * (h - 3) * (w - 3)  # spread over the image, not a few positions


def _rebuild_line(err: pytest.ExceptionInfo[DataError]) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_truncated_and_stale_stores_are_refused_naming_the_rebuild(tmp_path: Path, capsys) -> None:
    root = write_synthetic_kadid(tmp_path / "kadid", n_refs=2, size=[32, 32], distortions=["01"], levels=1)
    assert main(["data", "prepare", "kadid10k", str(root)]) == 0
    assert "read it with format: store" in capsys.readouterr().out
    build = lambda: DATASETS.build("kadid10k", root=str(root), split="all", format="store")  # noqa: E731
    build()
    data = root / STORE_DIR / DATA_FILE
    full = data.read_bytes()
    data.write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError, match="truncated") as err:
        build()
    assert f"`distill data prepare kadid10k {root}`" in _rebuild_line(err)
    assert main(["data", "prepare", "kadid10k", str(root)]) == 0  # resumes: re-decodes the cut-off images only
    assert data.read_bytes() == full
    build()
    victim = root / sorted(json.loads((root / STORE_DIR / MANIFEST).read_text())["entries"])[0]
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(victim)
    os.utime(victim, ns=(1, 1))
    with pytest.raises(DataError, match="stale") as err:
        build()
    assert f"`distill data prepare kadid10k {root}`" in _rebuild_line(err)
    assert main(["data", "prepare", "kadid10k", str(root)]) == 0
    assert "1 decoded now" in capsys.readouterr().out
    assert build()[0] is not None
    (root / STORE_DIR / MANIFEST).unlink()
    with pytest.raises(DataError, match="no store here") as err:
        build()
    assert "distill data prepare kadid10k" in _rebuild_line(err)


def test_prepare_resumes_after_an_interruption(tmp_path: Path) -> None:
    root = write_synthetic_kadid(tmp_path / "k", n_refs=2, size=[32, 32], distortions=["01"], levels=1)
    files = [Path(s.path) for s in DATASETS.build("kadid10k", root=str(root), split="all").samples]
    assert prepare_files(root, files[:2])["stored"] == 2
    with open(root / STORE_DIR / DATA_FILE, "ab") as fh:  # an interrupted write after the last manifest
        fh.write(b"\x01" * 1000)
    counts = prepare_files(root, files)
    assert (counts["stored"], counts["kept"]) == (len(files) - 2, 2)
    entries = json.loads((root / STORE_DIR / MANIFEST).read_text())["entries"]
    assert counts["bytes"] == sum(int(np.prod(e["shape"])) for e in entries.values())
    assert (root / STORE_DIR / DATA_FILE).stat().st_size == counts["bytes"]


def test_format_and_prepare_errors(kadid: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"kadid10k: format 'lmdb' is not one of files, torchvision, store"):
        DATASETS.build("kadid10k", root=str(kadid), format="lmdb")
    with pytest.raises(DataError, match=r"prepare: unknown dataset 'imagenet'\. Choose one of div2k"):
        prepare_dataset("imagenet", tmp_path, {})
    with pytest.raises(DataError, match=r"unknown option 'scale'\. Allowed: none"):
        prepare_dataset("kadid10k", kadid, {"scale": 4})
    with pytest.raises(DataError, match="not in the store"):  # prepared at x2 and x4 only
        DATASETS.build("div2k", root=str(_div2k_x3(tmp_path)), scale=3, format="store")


def _div2k_x3(tmp_path: Path) -> Path:
    root = write_synthetic_div2k(tmp_path / "D", n_train=1, n_valid=1, size=(24, 24), scales=[2, 3])
    prepare_dataset("div2k", root, {"scale": 2}, quiet=True)
    return root


def test_torchvision_format_gives_the_files_items(kadid: Path) -> None:
    with pytest.warns(UserWarning, match="torchvision") if _no_tv() else _nothing():
        tv = DATASETS.build("kadid10k", root=str(kadid), split="all", format="torchvision")
        items = [tv[i]["input"] for i in range(3)]
    files = DATASETS.build("kadid10k", root=str(kadid), split="all")
    assert all(torch.equal(a, files[i]["input"]) for i, a in enumerate(items))


def _no_tv() -> bool:
    from distill.data import images

    return not images._TORCHVISION_DECODE


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _batches(root: Path, workers: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    ds = DIV2K(str(root), scale=4, patch_size=4, augment=True, repeat=4, format="store")
    cfg = TrainConfig(epochs=3, batch_size=4, num_workers=workers, progress=False, log_every=1, eval_every=10)
    trainer = Trainer(Supervised({"student": _SR()}), ds, optim={"student": OptimConfig(lr=0.0)}, config=cfg,
                      tensorboard=False)  # fmt: skip
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    inner = trainer._train_step

    def record(batch: dict) -> object:
        seen.append((batch["input"].clone(), batch["target"].clone()))
        return inner(batch)

    trainer._train_step = record  # type: ignore[method-assign]
    trainer.fit()
    return seen


class _SR(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3 * 16, 1)
        self.shuffle = torch.nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


def test_batches_are_identical_across_worker_counts(div2k: Path) -> None:
    """Persistent workers (started once, kept over the 3 epochs) give the batches of num_workers 0, every epoch."""
    reference = _batches(div2k, 0)
    assert len(reference) == 9
    assert not torch.equal(reference[0][0], reference[3][0])  # epochs differ: a stale epoch in a worker would show
    for workers in (1, 2):
        got = _batches(div2k, workers)
        assert len(got) == len(reference)
        for (a, b), (c, d) in zip(reference, got):
            assert torch.equal(a, c) and torch.equal(b, d)


def test_persistent_loader_is_built_once(div2k: Path) -> None:
    ds = DIV2K(str(div2k), scale=4, patch_size=4, repeat=4)
    cfg = TrainConfig(epochs=2, batch_size=4, num_workers=1, progress=False, eval_every=10)
    trainer = Trainer(Supervised({"student": _SR()}), ds, optim={"student": OptimConfig(lr=0.0)}, config=cfg,
                      tensorboard=False)  # fmt: skip
    loaders = []
    inner = trainer._train_batches

    def spy(sampler):  # type: ignore[no-untyped-def]
        loaders.append(inner(sampler))
        return loaders[-1]

    trainer._train_batches = spy  # type: ignore[method-assign]
    trainer.fit()
    assert len(loaders) == 2 and loaders[0] is loaders[1] and loaders[0].persistent_workers


def test_cub_views_from_the_store_equal_computed_views(tmp_path: Path) -> None:
    cub = write_synthetic_cub(tmp_path / "cub", n_classes=2, n_train=2, n_test=1, size=(40, 48))
    prepare_dataset("cub200", cub, {"size": 32, "degradation": "low_resolution"}, quiet=True)
    kw = {"degradation": "low_resolution", "size": 32, "hflip": True, "cache": False}
    files, stored = CUB200Paired(str(cub), **kw), CUB200Paired(str(cub), format="store", **kw)
    assert set(stored._view_prefix) == {"clean", "degraded"}  # reads the prepared views, not the images
    for i in range(len(files)):
        for key in ("input", "input_clean"):
            assert torch.equal(files[i][key], stored[i][key])
    other = CUB200Paired(str(cub), format="store", degradation="low_resolution", size=24)
    assert other._view_prefix == {}  # no views of that size: the decoded images are used
    manifest = cub / STORE_DIR / MANIFEST
    data = json.loads(manifest.read_text())
    view_key = next(k for k in data["entries"] if k.startswith(stored.view_prefix("degraded")))
    del data["entries"][view_key]
    manifest.write_text(json.dumps(data))
    with pytest.raises(DataError, match="not in the store") as err:
        CUB200Paired(str(cub), format="store", **kw)
    assert f"`distill data prepare cub200 {cub} --set size=32 --set degradation=low_resolution`" in _rebuild_line(err)
