"""LIVE Challenge: synthetic writer, reader (official layout and its quirks), splits, errors, patches."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import loadmat, savemat

from distill.data import write_synthetic_livec
from distill.data.iqa.livec import LiveChallenge
from distill.errors import DataError
from distill.registry import DATASETS, WRITERS

N = 24


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_livec(tmp_path_factory.mktemp("l") / "livec", n_images=N, size=(40, 40))


@pytest.fixture()
def synth_copy(synth: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(synth, tmp_path / "copy"))


def _write_mats(data: Path, names: list[str], mos: list[float]) -> None:
    cell = np.empty((len(names), 1), dtype=object)
    cell[:, 0] = names
    savemat(str(data / "AllImages_release.mat"), {"AllImages_release": cell})
    savemat(str(data / "AllMOS_release.mat"), {"AllMOS_release": np.asarray(mos, dtype=float)[None, :]})


# ------------------------------------------------------------------------------------------- synthetic writer
def test_synthetic_layout_and_labels(synth: Path) -> None:
    names = loadmat(str(synth / "Data" / "AllImages_release.mat"))["AllImages_release"]
    mos = loadmat(str(synth / "Data" / "AllMOS_release.mat"))["AllMOS_release"]
    assert names.shape == (N + 7, 1) and names.dtype == object and mos.shape == (1, N + 7)
    assert [str(names[i, 0][0]) for i in range(7)] == [f"t{i}.bmp" for i in range(1, 8)]
    assert ((mos >= 0) & (mos <= 100)).all() and mos.std() > 5
    assert len(list((synth / "Images").glob("*.bmp"))) == N
    assert sorted(p.name for p in (synth / "Images" / "trainingImages").iterdir()) == [f"t{i}.bmp" for i in range(1, 8)]
    readme = (synth / "README.txt").read_text()
    assert "NOT HUMAN SCORES" in readme and "PSEUDO-MOS" in readme.upper() and "100 *" in readme
    marker = json.loads((synth / "SYNTHETIC.json").read_text())
    assert marker["synthetic"] and marker["layout"] == "livec" and len(marker["distortions"]) == N + 7
    assert all(1 <= len(mix) <= 3 for mix in marker["distortions"].values())
    assert len({tuple(map(tuple, mix)) for mix in marker["distortions"].values()}) > N // 2  # no per-type structure


def test_read_back(synth: Path) -> None:
    ds = LiveChallenge(str(synth), split="all")
    assert len(ds) == N and ds.is_synthetic and "pseudo-MOS" in ds.label_kind
    item = ds[3]
    s = ds.samples[3]
    assert item["input"].shape == (3, 40, 40) and float(item["target"]) == pytest.approx(s.mos)
    assert item["meta"] == {"name": s.name, "distortion": "none", "level": 0, "ref": s.name}
    assert s.index == 8 + 3 and all(0 <= t <= 100 for t in ds.targets)
    assert ds.distortion_names == {"none": "authentic"}
    assert len(LiveChallenge(str(synth), split="all", distortions=["authentic"])) == N
    assert pickle.loads(pickle.dumps(ds)).samples == ds.samples
    assert DATASETS.build("livec", root=str(synth), split="all").samples == ds.samples
    with_training = LiveChallenge(str(synth), split="all", drop_first=0)  # found in Images/trainingImages
    assert len(with_training) == N + 7 and with_training.samples[0].name == "t1.bmp"


def test_writer_deterministic_and_safe(synth: Path, tmp_path: Path) -> None:
    again = WRITERS.build("livec", out=str(tmp_path / "again"), n_images=N, size=(40, 40))
    for name in ("Images/5.bmp", "Images/trainingImages/t3.bmp", "SYNTHETIC.json", "README.txt"):
        assert (again / name).read_bytes() == (synth / name).read_bytes()
    for name in ("AllMOS_release", "AllImages_release"):  # .mat headers hold a creation time: compare contents
        a, b = (loadmat(str(root / "Data" / f"{name}.mat"))[name] for root in (again, synth))
        assert a.shape == b.shape and all(np.array_equal(u, v) for u, v in zip(a.ravel(), b.ravel()))
    with pytest.raises(DataError, match="overwrite"):
        write_synthetic_livec(again, n_images=2, size=(32, 32))


# ------------------------------------------------------------------------------------- official layout quirks
def _miniature(root: Path) -> Path:
    images, data = root / "Images", root / "Data"
    (images / "trainingImages").mkdir(parents=True)
    data.mkdir()
    rng = np.random.default_rng(0)
    files = {"3.bmp": (40, 40), "1000.JPG": (40, 30), "1001.jpg": (30, 40), "12.BMP": (36, 36)}
    for name, (h, w) in files.items():
        fmt = "JPEG" if name.lower().endswith("jpg") else "BMP"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(images / name, format=fmt)
    names = [f"t{i}.bmp" for i in range(1, 8)] + ["3.bmp", "1000.JPG", "1001.JPG", "12.bmp"]
    _write_mats(data, names, [50.0] * 7 + [63.9, 25.5, 70.1, 44.0])
    return root


def test_hand_made_archive_quirks(tmp_path: Path) -> None:
    ds = LiveChallenge(str(_miniature(tmp_path / "ChallengeDB_release")), split="all")
    assert [(s.name, s.path.name, s.mos, s.index) for s in ds.samples] == [
        ("3.bmp", "3.bmp", 63.9, 8),
        ("1000.JPG", "1000.JPG", 25.5, 9),
        ("1001.JPG", "1001.jpg", 70.1, 10),
        ("12.bmp", "12.BMP", 44.0, 11),
    ]
    assert not ds.is_synthetic and ds.label_kind == "MOS (human, 0–100)"
    assert [ds[i]["input"].shape for i in range(4)] == [(3, 40, 40), (3, 40, 30), (3, 30, 40), (3, 36, 36)]
    cropped = LiveChallenge(str(tmp_path / "ChallengeDB_release"), split="all", crop=24)
    assert all(cropped[i]["input"].shape == (3, 24, 24) for i in range(4))
    with pytest.raises(DataError, match=r"did you mean .*ChallengeDB_release"):
        LiveChallenge(str(tmp_path))
    assert len(LiveChallenge(str(tmp_path / "ChallengeDB_release"), split="all", drop_first=9)) == 2


# ---------------------------------------------------------------------------------------------------- splits
@pytest.mark.parametrize("mode", ["random", "by_reference"])
def test_splits(synth: Path, mode: str) -> None:
    parts = {p: LiveChallenge(str(synth), split=p, split_mode=mode, val_fraction=0.2) for p in ("train", "val", "test")}
    names = {p: {s.name for s in ds.samples} for p, ds in parts.items()}
    assert all(names.values()) and sum(len(v) for v in names.values()) == N
    assert not (names["train"] & names["val"]) and not (names["train"] & names["test"])
    assert not (names["val"] & names["test"])
    refs = {p: {s.ref for s in ds.samples} for p, ds in parts.items()}
    assert not (refs["train"] & refs["test"])
    crops = parts["test"].synthetic_info["crops"]
    photos = {p: {crops[n]["photo"] for n in v} for p, v in names.items()}
    if mode == "random":  # per image: crops of one photo on several sides
        assert len(names["test"]) == round(0.2 * N) and photos["train"] & photos["test"]
    else:  # a synthetic set's by-reference split keeps each photo's crops on one side
        assert not (photos["train"] & photos["test"] or photos["val"] & (photos["train"] | photos["test"]))
    other = LiveChallenge(str(synth), split="test", split_mode=mode, val_fraction=0.2, split_seed=1)
    assert {s.name for s in other.samples} != names["test"]
    assert {s.name for s in LiveChallenge(str(synth), split="test", split_mode=mode).samples} == names["test"]


# ---------------------------------------------------------------------------------------------------- errors
def test_missing_root_folders_and_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist.*distill data livec"):
        LiveChallenge(str(tmp_path / "nowhere"))
    root = _miniature(tmp_path / "lc")
    (root / "Images" / "12.BMP").unlink()
    with pytest.raises(DataError, match=r"12.bmp listed in .*AllImages_release.mat not found"):
        LiveChallenge(str(root))
    (root / "Data" / "AllMOS_release.mat").unlink()
    with pytest.raises(DataError, match=re.escape(str(root / "Data" / "AllMOS_release.mat")) + "' is missing"):
        LiveChallenge(str(root))
    shutil.rmtree(root / "Data")
    with pytest.raises(DataError, match="no Data/ folder"):
        LiveChallenge(str(root))


def test_bad_mat_files(tmp_path: Path) -> None:
    root = _miniature(tmp_path / "lc")
    data = root / "Data"
    (data / "AllMOS_release.mat").write_bytes(b"MATLAB 5.0 MAT-file, but truncated")
    with pytest.raises(DataError, match=r"cannot read .*AllMOS_release.mat"):
        LiveChallenge(str(root))
    savemat(str(data / "AllMOS_release.mat"), {"mos": np.ones((1, 11))})
    with pytest.raises(DataError, match=r"AllMOS_release.mat has no variable 'AllMOS_release' \(found: mos\)"):
        LiveChallenge(str(root))
    names = [f"t{i}.bmp" for i in range(1, 8)] + ["3.bmp", "1000.JPG", "1001.JPG", "12.bmp"]
    _write_mats(data, names, [50.0] * 10)
    with pytest.raises(DataError, match=r"lists 11 images but .*AllMOS_release\.mat has 10 scores"):
        LiveChallenge(str(root))
    _write_mats(data, names, [50.0] * 8 + [float("nan"), 1.0, 2.0])
    with pytest.raises(DataError, match=r"MOS of entry 9 \(1000.JPG\) is nan"):
        LiveChallenge(str(root))
    _write_mats(data, names, [50.0] * 11)
    with pytest.raises(DataError, match="none left after dropping the first 11"):
        LiveChallenge(str(root), drop_first=11)
    _write_mats(data, [*names[:-1], "3.BMP"], [50.0] * 11)
    with pytest.raises(DataError, match=r"3\.BMP is listed twice"):
        LiveChallenge(str(root))


def test_corrupt_images(synth_copy: Path) -> None:
    (synth_copy / "Images" / "7.bmp").write_bytes(b"not an image at all")
    ds = LiveChallenge(str(synth_copy), split="all")
    index = next(i for i, s in enumerate(ds.samples) if s.name == "7.bmp")
    with pytest.raises(DataError, match=re.escape("7.bmp")):
        ds[index]
    skipping = LiveChallenge(str(synth_copy), split="all", on_corrupt="skip")
    assert skipping.num_corrupt == 1 and len(skipping) == N - 1


def test_bad_arguments(synth: Path) -> None:
    with pytest.raises(DataError, match="unknown LIVE Challenge distortion"):
        LiveChallenge(str(synth), distortions=["01"])
    with pytest.raises(DataError, match="drop_first"):
        LiveChallenge(str(synth), drop_first=-1)


# ------------------------------------------------------------------------------------------------ patches
def test_patches(synth: Path) -> None:
    test = LiveChallenge(str(synth), split="test", crop=16, patches=4, patch_layout="random")
    first = [test[i]["input"] for i in range(3)]
    assert all(x.shape == (4, 3, 16, 16) for x in first)
    test.set_epoch(2)
    assert all(torch.equal(x, test[i]["input"]) for i, x in enumerate(first))
    assert LiveChallenge(str(synth), split="test", crop=16, patches=9)[0]["input"].shape == (9, 3, 16, 16)  # grid
    train = LiveChallenge(str(synth), split="train", crop=16, patches=5)
    assert len(train) == 5 * len(LiveChallenge(str(synth), split="train"))
    epoch0 = [train[i]["input"] for i in range(3)]
    assert all(x.shape == (3, 16, 16) for x in epoch0)
    assert all(torch.equal(x, train[i]["input"]) for i, x in enumerate(epoch0))
    train.set_epoch(1)
    assert all(not torch.equal(x, train[i]["input"]) for i, x in enumerate(epoch0))
