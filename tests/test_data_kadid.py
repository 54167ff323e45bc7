"""KADID-10k: synthetic writer, reader (official layout and its quirks), splits, errors, seeded augmentation."""

from __future__ import annotations

import csv
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

from distill.data import write_synthetic_kadid
from distill.data.iqa.kadid import Kadid10k, parse_kadid_name
from distill.data.splits import split_indices
from distill.errors import DataError
from distill.registry import DATASETS

TYPES = ["01", "10", "11", "22"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_kadid(tmp_path_factory.mktemp("k") / "kadid", n_refs=6, size=(64, 64), distortions=TYPES)


@pytest.fixture()
def synth_copy(synth: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(synth, tmp_path / "copy"))


# ------------------------------------------------------------------------------------------- synthetic writer
def test_synthetic_layout_and_labels(synth: Path) -> None:
    rows = list(csv.reader((synth / "dmos.csv").open()))
    assert rows[0] == ["dist_img", "ref_img", "dmos", "var"]
    assert len(rows) - 1 == 6 * len(TYPES) * 5
    assert sorted(p.name for p in (synth / "images").glob("I??.png")) == [f"I{i:02d}.png" for i in range(1, 7)]
    readme = (synth / "README.txt").read_text()
    assert "NOT HUMAN SCORES" in readme and "PSEUDO-MOS" in readme.upper()
    marker = json.loads((synth / "SYNTHETIC.json").read_text())
    assert marker["synthetic"] and marker["seed"] == 0 and sorted(marker["types"]) == TYPES
    assert not [p for p in synth.parent.iterdir() if ".tmp-" in p.name]


def test_read_back(synth: Path) -> None:
    ds = Kadid10k(str(synth), split="all")
    assert len(ds) == 120 and ds.is_synthetic and "pseudo-MOS" in ds.label_kind
    item = ds[7]
    s = ds.samples[7]
    assert item["input"].shape == (3, 64, 64) and item["input"].dtype == torch.float32
    assert float(item["input"].min()) >= 0 and float(item["input"].max()) <= 1
    assert item["target"].dtype == torch.float32 and float(item["target"]) == pytest.approx(s.dmos)
    assert item["meta"] == {"name": s.name, "distortion": s.distortion, "level": s.level, "ref": s.ref}
    assert (s.ref, s.distortion, s.level) == parse_kadid_name(s.name)
    assert all(1.0 <= t <= 5.0 for t in ds.targets)
    assert {s.distortion for s in ds.samples} == set(TYPES)
    assert ds.distortion_names["01"] == "gaussian_blur"
    assert pickle.loads(pickle.dumps(ds)).samples == ds.samples
    assert DATASETS.build("kadid10k", root=str(synth), split="all").samples == ds.samples


def test_pseudo_mos_monotone_for_blur(synth: Path) -> None:
    scores: dict[str, dict[int, float]] = defaultdict(dict)
    for s in Kadid10k(str(synth), split="all", distortions=["gaussian_blur"]).samples:
        scores[s.ref][s.level] = s.dmos
    assert len(scores) == 6
    for per_level in scores.values():
        seq = [per_level[level] for level in range(1, 6)]
        assert all(a >= b for a, b in itertools.pairwise(seq)) and seq[0] > seq[-1], seq


def test_writer_deterministic_and_safe(synth: Path, tmp_path: Path) -> None:
    again = write_synthetic_kadid(tmp_path / "again", n_refs=6, size=(64, 64), distortions=TYPES)
    assert (again / "dmos.csv").read_bytes() == (synth / "dmos.csv").read_bytes()
    for name in ("I03.png", "I03_11_05.png", "I06_10_02.png"):
        assert (again / "images" / name).read_bytes() == (synth / "images" / name).read_bytes()
    with pytest.raises(DataError, match="overwrite"):
        write_synthetic_kadid(again, n_refs=2, size=(32, 32), distortions=["01"])
    other = write_synthetic_kadid(again, n_refs=2, size=(32, 32), distortions=["11"], seed=1, overwrite=True)
    assert len(list((other / "images").iterdir())) == 2 + 2 * 5
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("x")
    with pytest.raises(DataError, match="not a synthetic set"):
        write_synthetic_kadid(precious, n_refs=2, size=(32, 32), distortions=["01"], overwrite=True)
    assert (precious / "thesis.tex").exists()


# ------------------------------------------------------------------------------------- official layout quirks
def _png(path: Path, value: int, size: int = 24) -> None:
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path, format="PNG")


def test_hand_made_archive_quirks(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ["i01_01_01.PNG", "I01_01_02.png", "I02_07_01.png", "i02_07_05.Png", "I01.PNG", "i02.png"]:
        _png(images / name, 100)
    (tmp_path / "dmos.csv").write_bytes(
        b"\xef\xbb\xbfdist_img , ref_img,dmos ,var \r\n"
        b"I01_01_01.png, I01.png , 4.57 , 0.496  \r\n"
        b"I01_01_02.png,I01.png,4.02,0.3\r\n"
        b"  I02_07_01.png ,I02.png,3.5,0.1   \r\n"
        b"I02_07_05.png,I02.png,1.25,0.2\r\n"
        b"\r\n  \r\n"
    )
    ds = Kadid10k(str(tmp_path), split="all")
    assert [(s.name, s.ref, s.distortion, s.level, s.dmos) for s in ds.samples] == [
        ("I01_01_01.png", "I01", "01", 1, 4.57),
        ("I01_01_02.png", "I01", "01", 2, 4.02),
        ("I02_07_01.png", "I02", "07", 1, 3.5),
        ("I02_07_05.png", "I02", "07", 5, 1.25),
    ]
    assert ds.samples[0].path.name == "i01_01_01.PNG" and not ds.is_synthetic
    assert ds[3]["input"].shape == (3, 24, 24)


# ---------------------------------------------------------------------------------------------------- splits
def test_by_reference_split_is_disjoint_and_seeded(synth: Path) -> None:
    def parts(seed: int) -> dict[str, Kadid10k]:
        return {p: Kadid10k(str(synth), split=p, val_fraction=0.25, split_seed=seed) for p in ("train", "val", "test")}

    first = parts(0)
    refs = {p: {s.ref for s in ds.samples} for p, ds in first.items()}
    assert all(refs.values())
    assert not (refs["train"] & refs["val"]) and not (refs["train"] & refs["test"]) and not (refs["val"] & refs["test"])
    assert sum(len(ds) for ds in first.values()) == 120
    assert all(first[p].samples == ds.samples for p, ds in parts(0).items())
    test_sets = {frozenset(s.ref for s in Kadid10k(str(synth), split="test", split_seed=k).samples) for k in range(6)}
    assert len(test_sets) > 1


def test_random_split_differs_by_seed(synth: Path) -> None:
    a = [s.name for s in Kadid10k(str(synth), split="train", split_mode="random", split_seed=0).samples]
    b = [s.name for s in Kadid10k(str(synth), split="train", split_mode="random", split_seed=1).samples]
    assert a != b and len(a) == len(b) == 96
    assert a == [s.name for s in Kadid10k(str(synth), split="train", split_mode="random", split_seed=0).samples]


def test_split_indices_contract() -> None:
    refs = [f"I{i % 10:02d}" for i in range(100)]
    base = split_indices(refs, "by_reference", 0.8, 0.0, seed=3)
    with_val = split_indices(refs, "by_reference", 0.8, 0.25, seed=3)
    assert base["test"] == with_val["test"]  # validation is carved from train, never from test
    assert sorted(with_val["train"] + with_val["val"]) == base["train"] and not base["val"]
    shuffled = list(reversed(refs))
    back = split_indices(shuffled, "by_reference", 0.8, 0.0, seed=3)
    assert {shuffled[i] for i in back["test"]} == {refs[i] for i in base["test"]}
    rnd = split_indices(refs, "random", 0.8, 0.1, seed=0)
    assert sorted(rnd["train"] + rnd["val"] + rnd["test"]) == list(range(100)) and len(rnd["test"]) == 20
    with pytest.raises(DataError, match="test part empty"):
        split_indices(["a", "b"], "by_reference", 0.9, 0.0, 0)
    with pytest.raises(DataError, match="val part empty"):
        split_indices(["a", "b", "c"], "by_reference", 0.67, 0.2, 0)
    with pytest.raises(DataError, match="split mode"):
        split_indices(refs, "by_content", 0.8, 0.0, 0)
    assert split_indices(["a", "b"], "by_reference", 1.0, 0.0, 0)["test"] == []


# ---------------------------------------------------------------------------------------------------- errors
def test_missing_root_images_and_labels(synth_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist.*distill data kadid10k"):
        Kadid10k(str(tmp_path / "nowhere"))
    (synth_copy / "images" / "I02_10_03.png").unlink()
    with pytest.raises(DataError, match=re.escape("I02_10_03.png")):
        Kadid10k(str(synth_copy))
    (synth_copy / "dmos.csv").unlink()
    with pytest.raises(DataError, match=re.escape("dmos.csv")):
        Kadid10k(str(synth_copy))


def test_malformed_csv(synth_copy: Path) -> None:
    path = synth_copy / "dmos.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(["image,ref,score,var", *lines[1:]]) + "\n")
    with pytest.raises(DataError, match=r"dmos.csv, line 1: expected the header"):
        Kadid10k(str(synth_copy))
    bad = lines[2].split(",")
    bad[2] = "n/a"
    path.write_text("\n".join([lines[0], lines[1], ",".join(bad), *lines[3:]]) + "\n")
    with pytest.raises(DataError, match=rf"dmos.csv, line 3: dmos 'n/a' of {bad[0]}"):
        Kadid10k(str(synth_copy))


def test_corrupt_images(synth_copy: Path) -> None:
    garbage = synth_copy / "images" / "I01_01_03.png"
    garbage.write_bytes(b"this is not a png" * 10)
    truncated = synth_copy / "images" / "I04_22_02.png"
    truncated.write_bytes(truncated.read_bytes()[:200])
    ds = Kadid10k(str(synth_copy), split="all")
    index = next(i for i, s in enumerate(ds.samples) if s.name == "I01_01_03.png")
    with pytest.raises(DataError, match=re.escape("I01_01_03.png")):
        ds[index]
    index = next(i for i, s in enumerate(ds.samples) if s.name == "I04_22_02.png")
    with pytest.raises(DataError, match=re.escape("I04_22_02.png")):
        ds[index]
    skipping = Kadid10k(str(synth_copy), split="all", on_corrupt="skip")
    assert skipping.num_corrupt == 2 and len(skipping) == len(ds) - 2
    assert {Path(p).name for p in skipping.corrupt_files} == {"I01_01_03.png", "I04_22_02.png"}
    assert all(skipping[i]["input"].shape == (3, 64, 64) for i in range(len(skipping)))


def test_bad_arguments(synth: Path) -> None:
    with pytest.raises(DataError, match="split"):
        Kadid10k(str(synth), split="training")
    with pytest.raises(DataError, match="val_fraction is 0"):
        Kadid10k(str(synth), split="val")
    with pytest.raises(DataError, match="unknown KADID-10k distortion"):
        Kadid10k(str(synth), distortions=["99"])
    with pytest.raises(DataError, match="no images of types"):
        Kadid10k(str(synth), distortions=["02"])
    with pytest.raises(DataError, match="smaller than crop"):
        Kadid10k(str(synth), split="all", crop=65)[0]


# ------------------------------------------------------------------------------------------------ augmentation
def test_crop_and_flip_are_seeded(synth: Path) -> None:
    ds = Kadid10k(str(synth), split="train", crop=40, hflip=True)
    ds.set_seed(5)
    first = [ds[i]["input"] for i in range(8)]
    assert all(x.shape == (3, 40, 40) for x in first)
    twin = Kadid10k(str(synth), split="train", crop=40, hflip=True)
    twin.set_seed(5)
    assert all(torch.equal(a, twin[i]["input"]) for i, a in enumerate(first))
    ds.set_epoch(1)
    assert any(not torch.equal(a, ds[i]["input"]) for i, a in enumerate(first))
    ds.set_epoch(0)
    assert all(torch.equal(a, ds[i]["input"]) for i, a in enumerate(first))

    test = Kadid10k(str(synth), split="test", crop=40, hflip=True)
    full = Kadid10k(str(synth), split="test")
    assert torch.equal(test[0]["input"], full[0]["input"][:, 12:52, 12:52])
    test.set_epoch(3)
    assert torch.equal(test[0]["input"], full[0]["input"][:, 12:52, 12:52])


def test_patches_and_base_class(synth: Path, tmp_path: Path) -> None:
    from distill.data.iqa.dataset import IQADataset

    test = Kadid10k(str(synth), split="test", crop=32, patches=4)
    assert isinstance(test, IQADataset) and test[0]["input"].shape == (4, 3, 32, 32)
    test.set_epoch(4)
    assert torch.equal(test[0]["input"], Kadid10k(str(synth), split="test", crop=32, patches=4)[0]["input"])
    train = Kadid10k(str(synth), split="train", crop=32, patches=2, hflip=True)
    assert train[0]["input"].shape == (3, 32, 32) and len(train) == 2 * len(Kadid10k(str(synth), split="train"))
    nested = tmp_path / "kadid10k"
    (nested / "images").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no images/ folder in .*did you mean .*kadid10k\?"):
        Kadid10k(str(tmp_path))


def test_a_writer_killed_mid_write_leaves_nothing_the_next_write_keeps(tmp_path: Path) -> None:
    """A writer killed while staging leaves ``.NAME.tmp-PID-*``; the next write of that set removes it once its
    process is gone and it has not changed for a while, and keeps a live or fresh writer's folder."""
    import os
    import subprocess
    import sys
    import time

    from distill.data.synthetic_common import STALE_AFTER_S

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    old = time.time() - STALE_AFTER_S - 60
    stale = tmp_path / f".set.tmp-{dead_pid}-0a1b2c3d"
    fresh = tmp_path / f".set.tmp-{dead_pid}-4e5f6a7b"  # its writer may live on another machine sharing the folder
    live = tmp_path / f".set.tmp-{os.getpid()}-8c9d0e1f"
    for folder in (stale, fresh, live):
        (folder / "images").mkdir(parents=True)
        (folder / "images" / "I01.png").write_bytes(b"partial")
    for path in (stale / "images" / "I01.png", stale / "images", stale, live / "images", live):
        os.utime(path, (old, old))
    write_synthetic_kadid(tmp_path / "set", n_refs=1, size=(16, 16), distortions=["jpeg"], levels=1)
    assert not stale.exists()
    assert fresh.is_dir() and live.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["set", fresh.name, live.name])


@pytest.mark.parametrize("old_set", ["with_manifest", "written_before_the_manifest"])
def test_overwrite_never_deletes_what_a_person_added_to_a_synthetic_set(old_set: str, tmp_path: Path) -> None:
    from distill.data.synthetic_common import MANIFEST

    kw = {"size": (16, 16), "distortions": ["jpeg"], "levels": 1}
    out = write_synthetic_kadid(tmp_path / "set", n_refs=3, **kw)
    assert (out / MANIFEST).is_file()
    if old_set == "written_before_the_manifest":
        (out / MANIFEST).unlink()
    (out / "notes.txt").write_text("mine")
    (out / "my_results").mkdir()
    (out / "my_results" / "r.csv").write_text("x")
    (out / "images" / "mine.png").write_bytes((out / "images" / "I01.png").read_bytes())
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    with pytest.raises(DataError, match=r" \(images/mine.png, my_results, my_results/r.csv, notes.txt\); move them"):
        write_synthetic_kadid(out, n_refs=3, seed=1, overwrite=True, **kw)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["set"], "the staging folder was left behind"
    for added in ("notes.txt", "my_results", "images/mine.png"):
        path = out / added
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    if old_set == "written_before_the_manifest":  # nothing says the third reference was written by distill
        with pytest.raises(DataError, match=r"no list of what was written earlier\) \(images/I03.png, "):
            write_synthetic_kadid(out, n_refs=2, seed=1, overwrite=True, **kw)
        write_synthetic_kadid(out, n_refs=3, seed=1, overwrite=True, **kw)  # the same files: replaced
    # what a writer wrote is replaced, also when the new set is smaller (n_refs 3 -> 2)
    write_synthetic_kadid(out, n_refs=2, seed=1, overwrite=True, **kw)
    images = sorted(p.name for p in (out / "images").iterdir())
    assert images == ["I01.png", "I01_10_01.png", "I02.png", "I02_10_01.png"]
