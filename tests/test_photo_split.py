"""The by-reference split of a synthetic stand-in keeps every crop of one source photo on one side (issue 27)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from distill.data.iqa.kadid import Kadid10k
from distill.data.iqa.pristine import DbcnnDistortions
from distill.data.iqa.tid2013 import Tid2013
from distill.data.splits import split_indices
from distill.data.synthetic_common import PHOTOS
from distill.errors import DataError
from distill.registry import WRITERS

pytestmark = pytest.mark.usefixtures("one_thread")

#: two crops of the first 6 bundled photos, one of the others: a plain by-reference split puts crops of one photo on
#: both sides
N_REFS = len(PHOTOS) + 6


def test_groups_keep_each_group_on_one_side_and_count_groups() -> None:
    refs = [f"I{r:02d}" for r in range(20) for _ in range(3)]
    groups = {f"I{r:02d}": f"photo{r % 5}" for r in range(20)}
    plain = split_indices(refs, "by_reference", 0.8, 0.0, seed=1)
    leaked = {groups[refs[i]] for i in plain["train"]} & {groups[refs[i]] for i in plain["test"]}
    assert leaked  # without groups the parts share photos
    for seed in range(4):
        parts = split_indices(refs, "by_reference", 0.8, 0.25, seed=seed, groups=groups)
        sides = [{groups[refs[i]] for i in parts[p]} for p in ("train", "val", "test")]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
        assert [len(s) for s in sides] == [3, 1, 1]  # round(0.8 * 5) = 4 groups for train+val, a quarter of it val
        assert sorted(parts["train"] + parts["val"] + parts["test"]) == list(range(len(refs)))


def test_singleton_or_missing_groups_split_as_without_groups() -> None:
    refs = [f"I{r:02d}" for r in range(30) for _ in range(2)]
    for seed in range(3):
        plain = split_indices(refs, "by_reference", 0.8, 0.1, seed=seed)
        assert split_indices(refs, "by_reference", 0.8, 0.1, seed, {r: f"p{r}" for r in refs}) == plain
        assert split_indices(refs, "by_reference", 0.8, 0.1, seed, {}) == plain
    assert split_indices(refs, "random", 0.8, 0.0, 0, {r: "one" for r in refs}) == split_indices(refs, "random")
    with pytest.raises(DataError, match=r"2 reference groups .* test part empty"):
        split_indices(refs, "by_reference", 0.8, 0.0, 0, {r: str(int(r[1:]) % 2) for r in refs})


def _photos(ds: Kadid10k | Tid2013) -> set[str]:
    info = ds.synthetic_info or {}
    return {info["references"][s.ref]["photo"] for s in ds.samples}


@pytest.mark.parametrize("layout", ["kadid10k", "tid2013"])
def test_synthetic_sets_split_by_photo_and_real_ones_by_reference(layout: str, tmp_path: Path) -> None:
    reader = {"kadid10k": Kadid10k, "tid2013": Tid2013}[layout]
    out = WRITERS.build(layout, out=str(tmp_path / layout), n_refs=N_REFS, size=[16, 16], distortions=["01"], levels=1)
    train, test = (reader(str(out), split=p) for p in ("train", "test"))
    assert not _photos(train) & _photos(test)
    assert (len(_photos(train)), len(_photos(test))) == (11, 3)  # round(0.8 * 14) photos in train
    assert len(train) + len(test) == N_REFS  # every crop of a train photo is in train

    real = Path(shutil.copytree(out, tmp_path / "real"))
    (real / "SYNTHETIC.json").unlink()  # a real dataset has no photo record: the plain split by reference
    refs = [s.ref for s in reader(str(real), split="all").samples]
    plain = split_indices(refs, "by_reference", 0.8, 0.0, 0)["test"]
    assert [s.name for s in reader(str(real), split="test").samples] == [
        reader(str(real), split="all").samples[i].name for i in plain
    ]
    assert {train.synthetic_info["references"][refs[i]]["photo"] for i in plain} & _photos(train)  # that one leaks


def test_a_set_with_one_crop_per_photo_splits_as_before(tmp_path: Path) -> None:
    out = WRITERS.build("kadid10k", out=str(tmp_path / "k"), n_refs=6, size=[16, 16], distortions=["01"], levels=1)
    marker = json.loads((out / "SYNTHETIC.json").read_text())
    ds = Kadid10k(str(out), split="test")
    refs = [s.ref for s in Kadid10k(str(out), split="all").samples]
    assert len({v["photo"] for v in marker["references"].values()}) == 6
    assert sorted({s.ref for s in ds.samples}) == sorted({refs[i] for i in split_indices(refs)["test"]})


def test_dbcnn_stand_ins_split_by_photo_across_both_sets(tmp_path: Path) -> None:
    waterloo = WRITERS.build("waterloo", out=str(tmp_path / "w"), n_images=N_REFS, size=[16, 16])
    voc = WRITERS.build("voc2012", out=str(tmp_path / "v"), n_images=3, size=[16, 16])
    photo = {}
    for key, root in (("waterloo", waterloo), ("voc2012", voc)):
        for name, src in json.loads((root / "SYNTHETIC.json").read_text())["images"].items():
            photo[f"{key}/{name}"] = src["photo"]
    sides = [
        {photo[n] for n in DbcnnDistortions(str(waterloo), str(voc), split=p, size=8, resize=16).names}
        for p in ("train", "test")
    ]
    assert not sides[0] & sides[1] and len(sides[0] | sides[1]) == len(PHOTOS)
