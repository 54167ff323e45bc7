"""CUB-200-2011 reader (official files), paired and union views, and the synthetic CUB-layout writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from distill.data.images import load_rgb
from distill.data.recognition.cub import CUB200, CUB200Paired, read_cub
from distill.data.recognition.degradations import build_degradation
from distill.data.recognition.synthetic import class_attributes, write_synthetic_cub
from distill.errors import DataError
from distill.registry import DATASETS, WRITERS

pytestmark = pytest.mark.usefixtures("one_thread")

# A miniature in the official format: 3 classes, 7 images, ids not in file order, a class folder name with dots.
CLASSES = "1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n3 003.Sooty_Albatross\n"
IMAGES = {
    1: "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg",
    2: "001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg",
    3: "001.Black_footed_Albatross/Black_Footed_Albatross_0002_55.jpg",
    4: "002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg",
    5: "002.Laysan_Albatross/Laysan_Albatross_0003_1033.jpg",
    6: "003.Sooty_Albatross/Sooty_Albatross_0001_1071.jpg",
    7: "003.Sooty_Albatross/Sooty_Albatross_0002_796395.jpg",
}
LABELS = {1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 3, 7: 3}
BOXES = {1: (6.0, 2.0, 32.0, 30.0), 2: (10.0, 10.0, 30.0, 25.0), 3: (0.0, 0.0, 40.0, 30.0), 4: (5, 5, 20, 20),
         5: (1.5, 2.5, 30.0, 28.0), 6: (8, 4, 24, 24), 7: (12, 12, 20, 16)}  # fmt: skip
TRAIN = {1: 1, 2: 0, 3: 1, 4: 1, 5: 0, 6: 1, 7: 0}


def write_miniature(root: Path, **replace: str) -> Path:
    """The seven images (48x40 JPEGs, colour = class) and the five text files, in shuffled id order."""
    files = {
        "classes.txt": CLASSES,
        "images.txt": "".join(f"{i} {IMAGES[i]}\n" for i in (3, 1, 2, 7, 4, 6, 5)),
        "image_class_labels.txt": "".join(f"{i} {LABELS[i]}\n" for i in IMAGES),
        "bounding_boxes.txt": "".join(f"{i} {' '.join(f'{float(v):.1f}' for v in BOXES[i])}\n" for i in IMAGES),
        "train_test_split.txt": "".join(f"{i} {TRAIN[i]}\n" for i in IMAGES),
    }
    files.update(replace)
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    for i, rel in IMAGES.items():
        path = root / "images" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (48, 40), (80 * LABELS[i], 40 * i, 20)).save(path, quality=95)
    return root


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    return write_miniature(tmp_path / "CUB_200_2011")


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return write_synthetic_cub(tmp_path_factory.mktemp("cub") / "syn", n_classes=4, n_train=3, n_test=2, size=[64, 64])


def test_reader_parses_the_official_files(mini):
    samples, names = read_cub(mini)
    assert [s.id for s in samples] == [3, 1, 2, 7, 4, 6, 5]  # images.txt order
    by_id = {s.id: s for s in samples}
    assert by_id[1].name == IMAGES[1] and by_id[1].path == mini / "images" / IMAGES[1]
    assert by_id[5].box == (1.5, 2.5, 30.0, 28.0) and by_id[5].class_id == 2
    assert names == {1: "001.Black_footed_Albatross", 2: "002.Laysan_Albatross", 3: "003.Sooty_Albatross"}
    train = CUB200(str(mini), split="train", size=16)
    test = CUB200(str(mini), split="test", size=16)
    assert sorted(s.id for s in train.samples) == [1, 3, 4, 6] and sorted(s.id for s in test.samples) == [2, 5, 7]
    assert train.num_classes == 3 and len(CUB200(str(mini), split="all", size=16)) == 7
    item = train[0]
    assert set(item) == {"input", "target", "index", "quality", "meta"}
    assert item["input"].shape == (3, 16, 16) and item["target"].dtype == torch.int64
    assert item["meta"]["id"] == 3 and int(item["target"]) == 0 and item["quality"] == 0  # class 1 → label 0


def test_class_subsets_and_a_stratified_validation_split(mini):
    sub = CUB200(str(mini), split="all", size=16, classes=[3, 2])
    assert sub.class_ids == [2, 3] and sorted(int(sub[i]["target"]) for i in range(len(sub))) == [0, 0, 1, 1]
    assert CUB200(str(mini), split="all", size=16, classes=1).class_names == ["001.Black_footed_Albatross"]
    train = CUB200(str(mini), split="train", size=16, val_fraction=0.5, split_seed=1)
    val = CUB200(str(mini), split="val", size=16, val_fraction=0.5, split_seed=1)
    ids_train, ids_val = {s.id for s in train.samples}, {s.id for s in val.samples}
    assert ids_train.isdisjoint(ids_val) and ids_train | ids_val == {1, 3, 4, 6}
    assert {s.class_id for s in val.samples} == {1}  # only class 1 has two training images to split
    again = CUB200(str(mini), split="val", size=16, val_fraction=0.5, split_seed=1)
    assert {s.id for s in again.samples} == ids_val
    with pytest.raises(DataError, match="val_fraction is 0"):
        CUB200(str(mini), split="val", size=16)
    with pytest.raises(DataError, match=r"classes \[9\]"):
        CUB200(str(mini), split="all", size=16, classes=[9])


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bounding_boxes.txt", "1 1 2 3\n", r"bounding_boxes.txt, line 1: expected 5"),
        ("image_class_labels.txt", "1 x\n", r"image_class_labels.txt, line 1: cannot read"),
        ("train_test_split.txt", "1 1\n", r"train_test_split.txt: image id 3 .* is missing, and 5 more"),
        ("images.txt", "1 a.jpg\n1 b.jpg\n", r"images.txt, line 2: id 1 is listed twice"),
        ("image_class_labels.txt", "".join(f"{i} 7\n" for i in IMAGES), r"class 7, not in classes.txt"),
        ("bounding_boxes.txt", "".join(f"{i} 1 1 0 4\n" for i in IMAGES), r"empty or invalid box"),
        ("train_test_split.txt", "".join(f"{i} 2\n" for i in IMAGES), r"split flag 2"),
        ("classes.txt", "", r"classes.txt is empty"),
    ],
)
def test_malformed_files_are_reported_with_file_and_line(tmp_path, name, text, message):
    root = write_miniature(tmp_path / "cub", **{name: text})
    with pytest.raises(DataError, match=message):
        read_cub(root)


def test_missing_data_names_what_is_missing(tmp_path, mini):
    with pytest.raises(DataError, match=r"did you mean .*CUB_200_2011"):
        read_cub(mini.parent)
    (mini / "images" / IMAGES[6]).unlink()
    with pytest.raises(DataError, match=r"Sooty_Albatross_0001_1071\.jpg listed in .*images\.txt not found"):
        read_cub(mini)
    (mini / "bounding_boxes.txt").unlink()
    with pytest.raises(DataError, match=r"bounding_boxes\.txt is missing"):
        read_cub(mini)
    with pytest.raises(DataError, match="does not exist"):
        CUB200(str(tmp_path / "nowhere"))


def test_paired_views_come_from_the_same_image(synth):
    args = {"low": 8}
    paired = CUB200Paired(str(synth), "low_resolution", split="train", size=32, degradation_args=args)
    clean = CUB200(str(synth), split="train", size=32)
    low = CUB200(str(synth), split="train", size=32, degradation="low_resolution", degradation_args=args)
    deg = build_degradation("low_resolution", args)
    for i in (0, 5, len(paired) - 1):
        item = paired[i]
        assert item["meta"] == low[i]["meta"] and item["meta"]["id"] == clean[i]["meta"]["id"]
        assert torch.equal(item["input_clean"], clean[i]["input"]) and torch.equal(item["input"], low[i]["input"])
        # the degraded view is exactly the degradation of that image (8-bit, as stored)
        s = paired.samples[i]
        expected = (deg(load_rgb(s.path), s.box, 32) * 255).round() / 255
        assert torch.allclose(item["input"], expected, atol=1e-6)
        assert item["quality"] == 1 and item["meta"]["quality"] == "low_resolution"
        # and it is degraded: fine detail of the clean crop is gone
        hf = lambda x: (x[:, 1:, :] - x[:, :-1, :]).abs().mean()  # noqa: E731
        assert hf(item["input"]) < 0.6 * hf(item["input_clean"])
    with pytest.raises(DataError, match="need a degradation"):
        CUB200(str(synth), mode="union")


def test_paired_flips_are_shared_and_mark_the_set_augmented(synth):
    flip = CUB200Paired(str(synth), "localization", split="train", size=24, hflip=True)
    plain = CUB200Paired(str(synth), "localization", split="train", size=24)
    assert flip.augmented and not plain.augmented
    flipped = 0
    for i in range(len(flip)):
        a, b = flip[i], plain[i]
        same = torch.equal(a["input"], b["input"])
        assert same == torch.equal(a["input_clean"], b["input_clean"])  # one draw for both views
        if not same:
            assert torch.equal(a["input"], b["input"].flip(-1))
            assert torch.equal(a["input_clean"], b["input_clean"].flip(-1))
            flipped += 1
    assert 0 < flipped < len(flip)


def test_union_mode_holds_every_image_clean_then_degraded(synth):
    union = CUB200(str(synth), split="test", size=24, degradation="line_drawing", mode="union")
    single = CUB200(str(synth), split="test", size=24, degradation="line_drawing")
    clean = CUB200(str(synth), split="test", size=24)
    n = len(clean)
    assert len(union) == 2 * n
    assert torch.equal(union[1]["input"], clean[1]["input"]) and union[1]["quality"] == 0
    assert torch.equal(union[n + 1]["input"], single[1]["input"]) and union[n + 1]["quality"] == 1
    assert union[n + 1]["target"] == union[1]["target"] and union[n + 1]["index"] == n + 1
    assert "line_drawing" in union.view_description("input")


def test_synthetic_writer_layout_boxes_and_determinism(synth, tmp_path):
    for name in ("images.txt", "image_class_labels.txt", "classes.txt", "bounding_boxes.txt", "train_test_split.txt"):
        assert (synth / name).is_file()
    marker = json.loads((synth / "SYNTHETIC.json").read_text())
    assert marker["synthetic"] and marker["n_classes"] == 4 and "NOT THE REAL" in (synth / "README.txt").read_text()
    samples, names = read_cub(synth)
    assert len(samples) == 4 * 5 and sum(s.is_train for s in samples) == 4 * 3
    ds = CUB200(str(synth), split="all", size=32)
    assert ds.is_synthetic and ds.num_classes == 4
    for s in samples:
        w, h = Image.open(s.path).size
        x, y, bw, bh = s.box
        assert min(x, y) >= 0 and x + bw <= w and y + bh <= h and min(bw, bh) >= 8
    # the object fills its box: the crop is mostly the class colour, the full image much less so
    shape, texture, colour = class_attributes(4, 0)[samples[0].class_id - 1]
    assert names[samples[0].class_id].endswith(f"{colour}_{texture}_{shape}")
    again = write_synthetic_cub(tmp_path / "again", n_classes=4, n_train=3, n_test=2, size=[64, 64])
    assert (again / "bounding_boxes.txt").read_text() == (synth / "bounding_boxes.txt").read_text()
    assert (again / "images" / samples[3].name).read_bytes() == samples[3].path.read_bytes()
    with pytest.raises(DataError, match="not empty"):
        write_synthetic_cub(again, n_classes=4, n_train=3, n_test=2, size=[64, 64])
    assert "cub200" in WRITERS and "cub200" in DATASETS and "cub200_paired" in DATASETS


def test_class_attributes_differ_in_one_attribute_from_neighbours():
    attrs = class_attributes(10, 0)
    assert len(set(attrs)) == 10
    for a in attrs:  # every class has another class that differs from it in exactly one attribute
        assert any(sum(x != y for x, y in zip(a, b)) == 1 for b in attrs)
    assert len({a[2] for a in attrs}) >= 2 and len({a[1] for a in attrs}) >= 2  # colour and texture both matter
    with pytest.raises(DataError, match="at most"):
        class_attributes(10_000)
