"""DBCNN's SCNN set prepared once: items equal the on-the-fly ones (to one grey level), chunks are atomic and a
restart does only what is missing, other settings are refused, and the reader trains from the prepared folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from distill.data.iqa import dbcnn_prepare
from distill.data.iqa.dbcnn_prepare import prepare_dbcnn
from distill.data.iqa.pristine import DbcnnDistortions
from distill.errors import DataError
from distill.registry import WRITERS

CLASSES = ["1:5", "2:3", "3:1", "4:2", "5:4", "6:4", "7:5", "9:2"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("pristine_prep")
    WRITERS.build("waterloo", out=str(root / "waterloo"), n_images=2, size=[40, 56])
    WRITERS.build("voc2012", out=str(root / "voc2012"), n_images=1, size=[48, 40])
    return str(root / "waterloo"), str(root / "voc2012")


def _prepare(out: Path, pristine: tuple[str, str], **kw) -> dbcnn_prepare.PrepareResult:
    return prepare_dbcnn(out, *pristine, workers=1, chunk_images=1, resize=32, classes=CLASSES, **kw)


@pytest.mark.parametrize("storage", ["npy", "png"])
def test_prepared_items_equal_the_on_the_fly_items(pristine, tmp_path: Path, storage: str) -> None:
    res = _prepare(tmp_path / "prep", pristine, storage=storage)
    files = sorted(p.name for p in (tmp_path / "prep" / "chunks").rglob("*.*"))
    if storage == "npy":  # one file per pristine image, all its classes
        assert files == ["000000.npy", "000001.npy", "000002.npy"]
    else:
        assert len(files) == 3 * len(CLASSES) and files[0] == "000000_00.png"
    assert res.written == 3 * len(CLASSES) and res.reused == 0
    for split in ("train", "test"):  # 2 photos (both sets' first image is the astronaut's centre): one a side
        args = {"split": split, "train_fraction": 0.5, "resize": 32, "size": 24, "crop": "center", "classes": CLASSES}
        fly = DbcnnDistortions(*pristine, **args)
        prepared = DbcnnDistortions(*pristine, **args, prepared=str(tmp_path / "prep"))
        assert len(fly) == len(prepared) > 0
        for i in range(len(fly)):
            a, b = fly[i], prepared[i]
            assert a["meta"] == b["meta"] and a["target"] == b["target"]
            assert (a["input"] - b["input"]).abs().max() <= 1 / 255 + 1e-6  # resized in 8 bits
    # random crops and flips come from the per-item RNG as before
    rnd = {"split": "all", "resize": 32, "size": 24, "crop": "random", "classes": CLASSES}
    fly, prepared = DbcnnDistortions(*pristine, **rnd), DbcnnDistortions(*pristine, **rnd, prepared=str(res.out))
    assert (fly[5]["input"] - prepared[5]["input"]).abs().max() <= 1 / 255 + 1e-6


def test_a_restart_writes_only_missing_chunks_and_never_a_half_chunk(pristine, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "prep"
    real = dbcnn_prepare._write_chunk
    calls = []

    def dies_on_the_second(job):
        calls.append(job[1])
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while writing chunk 1
        return real(job)

    monkeypatch.setattr(dbcnn_prepare, "_write_chunk", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        _prepare(out, pristine)
    monkeypatch.setattr(dbcnn_prepare, "_write_chunk", real)
    assert sorted(p.name for p in (out / "chunks").iterdir()) == ["00000"]
    (out / "chunks" / ".00001.tmp-999").mkdir()  # what a killed worker leaves
    first = sorted((out / "chunks" / "00000").iterdir())
    mtimes = [p.stat().st_mtime_ns for p in first]
    res = _prepare(out, pristine)
    assert res.written == 2 * len(CLASSES) and res.reused == len(CLASSES)
    assert sorted(p.name for p in (out / "chunks").iterdir()) == ["00000", "00001", "00002"]
    assert [p.stat().st_mtime_ns for p in first] == mtimes  # the finished chunk was not redone
    assert _prepare(out, pristine).written == 0
    # a missing chunk is one clear line from the reader
    shutil.rmtree(out / "chunks" / "00002")
    ds = DbcnnDistortions(*pristine, split="all", resize=32, size=24, crop="center", classes=CLASSES,
                          prepared=str(out))  # fmt: skip
    with pytest.raises(DataError, match=r"prepared item .*000002\.npy is missing .*dbcnn_prepare .*prep` again"):
        ds[len(ds) - len(CLASSES)]


def test_other_settings_and_foreign_folders_are_refused(pristine, tmp_path: Path) -> None:
    out = tmp_path / "prep"
    _prepare(out, pristine, limit_images=1)
    with pytest.raises(DataError, match=r"other settings \(resize differs\)"):
        prepare_dbcnn(out, *pristine, workers=1, chunk_images=1, resize=40, classes=CLASSES, limit_images=1)
    with pytest.raises(DataError, match="was resized to 32, this set needs resize 48"):
        DbcnnDistortions(*pristine, split="all", resize=48, size=24, classes=CLASSES, prepared=str(out))
    with pytest.raises(DataError, match="lacks 2 images"):
        DbcnnDistortions(*pristine, split="all", resize=32, size=24, classes=CLASSES, prepared=str(out))
    with pytest.raises(DataError, match=r"other settings \(storage differs\)"):
        _prepare(out, pristine, limit_images=1, storage="png")
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "generator": 1}))  # written by the earlier generator
    changes = r"generator 1, this code makes generator 3 \(changed since: the colour-quantisation palette; JPEG2000"
    with pytest.raises(DataError, match=changes):
        DbcnnDistortions(*pristine, split="all", resize=32, size=24, classes=CLASSES, prepared=str(out))
    with pytest.raises(DataError, match=r"other settings \(generator differs\)"):
        _prepare(out, pristine, limit_images=1)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="is not a prepared DBCNN set"):
        _prepare(tmp_path / "other", pristine)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_worker_processes_write_the_same_files(pristine, tmp_path: Path) -> None:
    _prepare(tmp_path / "one", pristine)
    res = prepare_dbcnn(tmp_path / "two", *pristine, workers=2, chunk_images=1, resize=32, classes=CLASSES)
    assert res.workers == 2 and res.written == 3 * len(CLASSES)
    for a in sorted((tmp_path / "one" / "chunks").rglob("*.npy")):
        b = tmp_path / "two" / a.relative_to(tmp_path / "one")
        assert torch.equal(torch.from_numpy(__import__("numpy").fromfile(a, "u1")),
                           torch.from_numpy(__import__("numpy").fromfile(b, "u1")))  # fmt: skip
