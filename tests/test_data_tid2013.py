"""TID2013: synthetic writer, reader (official layout and its quirks), splits, errors, patches."""

from __future__ import annotations

import itertools
import json
import pickle
import re
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from distill.data import write_synthetic_tid2013
from distill.data.iqa.distortions_tid import TID_TYPES
from distill.data.iqa.tid2013 import Tid2013, parse_tid_name, read_mos_with_names
from distill.errors import DataError
from distill.registry import DATASETS, WRITERS

TYPES = ["01", "08", "10", "12", "16", "23"]
N_REFS = 5


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("t") / "tid"
    return write_synthetic_tid2013(out, n_refs=N_REFS, size=(40, 48), distortions=TYPES)


@pytest.fixture()
def synth_copy(synth: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(synth, tmp_path / "copy"))


# ------------------------------------------------------------------------------------------- synthetic writer
def test_synthetic_layout_and_labels(synth: Path) -> None:
    rows = read_mos_with_names(synth / "mos_with_names.txt")
    assert len(rows) == N_REFS * len(TYPES) * 5
    assert all(re.fullmatch(r"i\d\d_\d\d_[1-5]\.bmp", name) and 0 <= mos <= 9 for _, mos, name in rows)
    assert sorted(p.name for p in (synth / "reference_images").iterdir()) == [f"I0{i}.BMP" for i in range(1, 6)]
    assert len(list((synth / "distorted_images").iterdir())) == len(rows)
    with Image.open(synth / "distorted_images" / "i02_12_3.bmp") as img:
        assert img.format == "BMP" and img.size == (48, 40) and img.mode == "RGB"
    readme = (synth / "README.txt").read_text()
    assert "NOT HUMAN SCORES" in readme and "PSEUDO-MOS" in readme.upper() and "9 *" in readme
    marker = json.loads((synth / "SYNTHETIC.json").read_text())
    assert marker["synthetic"] and marker["layout"] == "tid2013" and sorted(marker["types"]) == TYPES
    assert marker["types"]["12"]["produced_by"] == "tid_jpeg_transmission_errors"
    assert marker["types"]["08"]["produced_by"] == "gaussian_blur"
    assert not [p for p in synth.parent.iterdir() if ".tmp-" in p.name]


def test_every_type_is_written(tmp_path: Path) -> None:
    out = WRITERS.build("tid2013", out=str(tmp_path / "all"), n_refs=1, size=(32, 32))
    ds = Tid2013(str(out), split="all")
    assert len(ds) == 24 * 5 and {s.distortion for s in ds.samples} == set(TID_TYPES)
    assert all(0.0 <= t <= 9.0 for t in ds.targets)


def test_read_back(synth: Path) -> None:
    ds = Tid2013(str(synth), split="all")
    assert len(ds) == N_REFS * len(TYPES) * 5 and ds.is_synthetic and "pseudo-MOS" in ds.label_kind
    item = ds[11]
    s = ds.samples[11]
    assert item["input"].shape == (3, 40, 48) and item["input"].dtype == torch.float32
    assert item["target"].dtype == torch.float32 and float(item["target"]) == pytest.approx(s.mos)
    assert item["meta"] == {"name": s.name, "distortion": s.distortion, "level": s.level, "ref": s.ref}
    assert (s.ref, s.distortion, s.level) == parse_tid_name(s.name)
    assert ds.distortion_names == TID_TYPES and len(ds.distortion_names) == 24
    assert ds.synthetic_info is not None and ds.synthetic_info["n_refs"] == N_REFS
    assert pickle.loads(pickle.dumps(ds)).samples == ds.samples
    assert DATASETS.build("tid2013", root=str(synth), split="all").samples == ds.samples


def test_pseudo_mos_monotone_for_blur(synth: Path) -> None:
    scores: dict[str, dict[int, float]] = defaultdict(dict)
    for s in Tid2013(str(synth), split="all", distortions=["gaussian_blur"]).samples:
        scores[s.ref][s.level] = s.mos
    assert len(scores) == N_REFS
    for per_level in scores.values():
        seq = [per_level[level] for level in range(1, 6)]
        assert all(a >= b for a, b in itertools.pairwise(seq)) and seq[0] > seq[-1], seq


def test_writer_deterministic_and_safe(synth: Path, tmp_path: Path) -> None:
    again = write_synthetic_tid2013(tmp_path / "again", n_refs=N_REFS, size=(40, 48), distortions=TYPES)
    assert (again / "mos_with_names.txt").read_bytes() == (synth / "mos_with_names.txt").read_bytes()
    for name in ("distorted_images/i03_12_5.bmp", "reference_images/I04.BMP"):
        assert (again / name).read_bytes() == (synth / name).read_bytes()
    with pytest.raises(DataError, match="overwrite"):
        write_synthetic_tid2013(again, n_refs=1, size=(32, 32), distortions=["01"])
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="not a synthetic set"):
        write_synthetic_tid2013(precious, n_refs=1, size=(32, 32), distortions=["01"], overwrite=True)
    with pytest.raises(DataError, match="unknown TID2013 distortion"):
        write_synthetic_tid2013(tmp_path / "bad", n_refs=1, size=(32, 32), distortions=["25"])


# ------------------------------------------------------------------------------------- official layout quirks
def _bmp(path: Path, value: int, size: tuple[int, int] = (24, 32)) -> None:
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path, format="BMP")


def _miniature(root: Path) -> Path:
    dist, refs = root / "distorted_images", root / "reference_images"
    dist.mkdir(parents=True)
    refs.mkdir()
    for name in ["I01_01_1.bmp", "i01_01_2.BMP", "i02_17_5.bmp", "I02_24_3.BMP", "i03_09_1.bmp"]:
        _bmp(dist / name, 90)
    for name in ["I01.BMP", "i02.bmp", "I03.bmp"]:
        _bmp(refs / name, 120)
    (root / "mos_with_names.txt").write_bytes(
        b"5.51429 i01_01_1.bmp  \r\n"
        b"5.56757  i01_01_2.bmp\t\r\n"
        b"\r\n"
        b"4.94444 i02_17_5.bmp   \r\n"
        b"1.5 i02_24_3.bmp\r\n"
        b"6.0 I03_09_1.BMP \r\n"
        b"   \r\n"
    )
    return root


def test_hand_made_archive_quirks(tmp_path: Path) -> None:
    ds = Tid2013(str(_miniature(tmp_path / "tid")), split="all")
    assert [(s.name, s.ref, s.distortion, s.level, s.mos) for s in ds.samples] == [
        ("i01_01_1.bmp", "I01", "01", 1, 5.51429),
        ("i01_01_2.bmp", "I01", "01", 2, 5.56757),
        ("i02_17_5.bmp", "I02", "17", 5, 4.94444),
        ("i02_24_3.bmp", "I02", "24", 3, 1.5),
        ("I03_09_1.BMP", "I03", "09", 1, 6.0),
    ]
    assert ds.samples[0].path.name == "I01_01_1.bmp" and ds.samples[4].path.name == "i03_09_1.bmp"
    assert ds.samples[2].ref_path.name == "i02.bmp" and not ds.is_synthetic
    assert ds.label_kind == "MOS (human, 0–9)" and ds[1]["input"].shape == (3, 24, 32)
    assert [s.name for s in Tid2013(str(tmp_path / "tid"), split="all", distortions=["i01", 24]).samples] == [
        "i01_01_1.bmp",
        "i01_01_2.bmp",
        "i02_24_3.bmp",
    ]


# ---------------------------------------------------------------------------------------------------- splits
def test_by_reference_split_is_disjoint_and_seeded(synth: Path) -> None:
    def parts(seed: int) -> dict[str, Tid2013]:
        return {p: Tid2013(str(synth), split=p, val_fraction=0.25, split_seed=seed) for p in ("train", "val", "test")}

    first = parts(0)
    refs = {p: {s.ref for s in ds.samples} for p, ds in first.items()}
    assert all(refs.values())
    assert not (refs["train"] & refs["val"]) and not (refs["train"] & refs["test"]) and not (refs["val"] & refs["test"])
    assert sum(len(ds) for ds in first.values()) == N_REFS * len(TYPES) * 5
    assert all(first[p].samples == ds.samples for p, ds in parts(0).items())
    tests = {frozenset(s.ref for s in Tid2013(str(synth), split="test", split_seed=k).samples) for k in range(6)}
    assert len(tests) > 1
    rnd = Tid2013(str(synth), split="test", split_mode="random")
    assert len(rnd) == 30 and len({s.ref for s in rnd.samples}) > 1


# ---------------------------------------------------------------------------------------------------- errors
def test_missing_root_folders_and_labels(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist.*distill data tid2013"):
        Tid2013(str(tmp_path / "nowhere"))
    root = _miniature(tmp_path / "tid")
    shutil.rmtree(root / "reference_images")
    with pytest.raises(DataError, match=r"no reference_images/ folder in .*Unpack the official TID2013 archive"):
        Tid2013(str(root))
    (root / "reference_images").mkdir()
    with pytest.raises(DataError, match=r"I01.BMP and 2 more listed in .*mos_with_names.txt not found"):
        Tid2013(str(root))
    (root / "mos_with_names.txt").unlink()
    with pytest.raises(DataError, match=re.escape(str(root / "mos_with_names.txt"))):
        Tid2013(str(root))
    shutil.rmtree(root / "distorted_images")
    with pytest.raises(DataError, match="no distorted_images/ folder"):
        Tid2013(str(root))


def test_missing_and_unlabelled_images(synth_copy: Path) -> None:
    labels = synth_copy / "mos_with_names.txt"
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join(line for line in lines if not line.endswith("i02_10_4.bmp")) + "\n")
    with pytest.raises(DataError, match=r"i02_10_4.bmp has no label line in .*mos_with_names.txt"):
        Tid2013(str(synth_copy))
    labels.write_text("\n".join(lines) + "\n")
    (synth_copy / "distorted_images" / "i04_16_2.bmp").unlink()
    with pytest.raises(DataError, match=r"i04_16_2.bmp listed in .*mos_with_names.txt not found"):
        Tid2013(str(synth_copy))


def test_malformed_label_file(synth_copy: Path) -> None:
    labels = synth_copy / "mos_with_names.txt"
    lines = labels.read_text().splitlines()
    cases = [
        (lines[0].split()[1], "line 1: expected 'MOS filename'"),
        ("x.y " + lines[0].split()[1], r"line 1: MOS 'x.y' of i01_01_1.bmp is not a finite number"),
        ("3.0 i01_25_1.bmp", "line 1: distortion type 25 of i01_25_1.bmp is not a TID type"),
        ("3.0 img001.bmp", "line 1: 'img001.bmp' is not a TID2013 name"),
        (lines[1], r"line 2: i01_01_2.bmp is listed twice \(first on line 1\)"),
    ]
    for first, message in cases:
        labels.write_text("\n".join([first, *lines[1:]]) + "\n")
        with pytest.raises(DataError, match=message):
            Tid2013(str(synth_copy))
    labels.write_text("\n \n")
    with pytest.raises(DataError, match="lists no images"):
        Tid2013(str(synth_copy))


def test_corrupt_images(synth_copy: Path) -> None:
    garbage = synth_copy / "distorted_images" / "i01_08_3.bmp"
    garbage.write_bytes(b"BM this is not a bitmap" * 4)
    ds = Tid2013(str(synth_copy), split="all")
    index = next(i for i, s in enumerate(ds.samples) if s.name == "i01_08_3.bmp")
    with pytest.raises(DataError, match=re.escape("i01_08_3.bmp")):
        ds[index]
    skipping = Tid2013(str(synth_copy), split="all", on_corrupt="skip")
    assert skipping.num_corrupt == 1 and len(skipping) == len(ds) - 1
    assert Path(skipping.corrupt_files[0]).name == "i01_08_3.bmp"


def test_bad_arguments(synth: Path) -> None:
    with pytest.raises(DataError, match="unknown TID2013 distortion"):
        Tid2013(str(synth), distortions=["i99"])
    with pytest.raises(DataError, match="no images of types"):
        Tid2013(str(synth), distortions=["masked_noise"])
    with pytest.raises(DataError, match="patches=2 needs a crop"):
        Tid2013(str(synth), patches=2)
    with pytest.raises(DataError, match="patches must be a positive integer"):
        Tid2013(str(synth), patches=0, crop=16)
    with pytest.raises(DataError, match="smaller than crop"):
        Tid2013(str(synth), split="train", crop=41, patches=2)[0]


# ------------------------------------------------------------------------------------------------ patches
def test_eval_patches_lie_on_a_fixed_uniform_grid(synth: Path) -> None:
    test = Tid2013(str(synth), split="test", crop=24, patches=4)  # images are 40×48: grid tops 0, 16; lefts 0, 24
    full = Tid2013(str(synth), split="test")
    first = [test[i]["input"] for i in range(3)]
    for i, x in enumerate(first):
        img = full[i]["input"]
        corners = [img[:, t : t + 24, s : s + 24] for t in (0, 16) for s in (0, 24)]
        assert torch.equal(x, torch.stack(corners))
    test.set_epoch(5)
    test.set_seed(9)
    assert all(torch.equal(x, test[i]["input"]) for i, x in enumerate(first))
    with pytest.raises(DataError, match="patches=3 on a grid needs a square number"):
        Tid2013(str(synth), split="test", crop=24, patches=3)


def test_eval_patches_upscale_images_whose_short_side_is_at_most_the_crop(synth: Path) -> None:
    patches = Tid2013(str(synth), split="test", crop=40, patches=4)[0]["input"]  # short side 40 <= 40
    img = Tid2013(str(synth), split="test")[0]["input"]
    up = torch.nn.functional.interpolate(img[None], size=(41, 49), mode="bilinear", align_corners=False)[0]
    assert patches.shape == (4, 3, 40, 40)
    torch.testing.assert_close(patches[0], up[:, :40, :40])
    torch.testing.assert_close(patches[3], up[:, 1:41, 9:49])


def test_random_eval_patches_are_seeded_by_the_image(synth: Path) -> None:
    test = Tid2013(str(synth), split="test", crop=24, patches=3, patch_layout="random")
    first = [test[i]["input"] for i in range(3)]
    assert all(x.shape == (3, 3, 24, 24) for x in first)
    assert any(not torch.equal(x[0], x[1]) for x in first)  # different places
    test.set_epoch(5)
    again = Tid2013(str(synth), split="test", crop=24, patches=3, patch_layout="random")
    assert all(torch.equal(x, test[i]["input"]) and torch.equal(x, again[i]["input"]) for i, x in enumerate(first))
    full = Tid2013(str(synth), split="test")[0]["input"]
    assert any(torch.equal(first[0][0], full[:, t : t + 24, s : s + 24]) for t in range(17) for s in range(25))
    with pytest.raises(DataError, match="patch_layout 'spiral' is not one of grid, random"):
        Tid2013(str(synth), split="test", crop=24, patches=4, patch_layout="spiral")


def test_train_patches_are_separate_items_with_their_own_random_crop(synth: Path) -> None:
    """HyperIQA's authors list every training image P times per epoch, each a fresh random patch."""
    plain = Tid2013(str(synth), split="train")
    train = Tid2013(str(synth), split="train", crop=24, patches=3, hflip=True)
    train.set_seed(1)
    assert len(train) == 3 * len(plain)
    epoch0 = [train[i] for i in range(6)]
    assert all(item["input"].shape == (3, 24, 24) for item in epoch0)
    assert [item["meta"]["name"] for item in epoch0] == [plain.samples[i // 3].name for i in range(6)]
    assert not torch.equal(epoch0[0]["input"], epoch0[1]["input"])  # two patches of one image differ
    twin = Tid2013(str(synth), split="train", crop=24, patches=3, hflip=True)
    twin.set_seed(1)
    assert all(torch.equal(item["input"], twin[i]["input"]) for i, item in enumerate(epoch0))
    train.set_epoch(1)
    assert any(not torch.equal(item["input"], train[i]["input"]) for i, item in enumerate(epoch0))
    batch = torch.utils.data.default_collate([train[0], train[1]])
    assert batch["input"].shape == (2, 3, 24, 24) and batch["target"].shape == (2,)
