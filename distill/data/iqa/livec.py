"""LIVE In the Wild Image Quality Challenge (LIVEC) reader for the official, unmodified archive layout.

::

    ROOT/Images/*.bmp|*.JPG                   1162 photographs with authentic distortions (mostly 500×500)
    ROOT/Images/trainingImages/t1.bmp …       the 7 training images (not used unless drop_first < 7)
    ROOT/Data/AllImages_release.mat           cell ``AllImages_release`` (1169×1): file names, the 7 training ones first
    ROOT/Data/AllMOS_release.mat              ``AllMOS_release`` (1×1169): MOS 0–100, higher = better

The first ``drop_first`` (7) entries are the training images and are dropped: 1162 images remain.  There are no
references or distortion types: every image is its own reference (so ``split_mode="by_reference"`` equals a random
split by image), ``meta`` holds ``distortion="none"``, ``level=0``, ``ref=name``.

**Set a crop (or patches) in recipes**: the images differ in size, so ``crop=None`` returns whole images that the
engine cannot batch with ``batch_size > 1``.  Synthetic stand-ins (:func:`distill.data.write_synthetic_livec`)
have the same layout plus a ``SYNTHETIC.json`` marker; their labels are objective pseudo-MOS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from distill.data.iqa.dataset import IQADataset, files_by_lower_name, find_child
from distill.errors import DataError
from distill.registry import DATASETS

NAMES_FILE, NAMES_KEY = "AllImages_release.mat", "AllImages_release"
MOS_FILE, MOS_KEY = "AllMOS_release.mat", "AllMOS_release"
_HINT = (
    "Unpack the official LIVE Challenge archive (ChallengeDB_release: Images/ and Data/) there (`distill data "
    "fetch livec {root}` does it), or write a synthetic stand-in with `distill data livec {root}`"
)


@dataclass(frozen=True)
class LivecSample:
    """One image listed in ``AllImages_release.mat``."""

    name: str  # as listed, e.g. "1000.JPG"
    path: Path  # the file found on disk (case-insensitive match)
    mos: float
    index: int  # 1-based position in the .mat arrays

    @property
    def ref(self) -> str:
        return self.name

    @property
    def distortion(self) -> str:
        return "none"

    @property
    def level(self) -> int:
        return 0

    @property
    def score(self) -> float:
        return self.mos


def _load_mat(path: Path, key: str) -> np.ndarray:
    from scipy.io import loadmat

    try:
        data = loadmat(str(path))
    except NotImplementedError as err:  # MATLAB v7.3 (HDF5) files
        raise DataError(f"cannot read {path}: {err}. Use the .mat file from the LIVE Challenge archive") from err
    except Exception as err:  # scipy raises ValueError, TypeError, MatReadError … on corrupt files
        raise DataError(f"cannot read {path} ({type(err).__name__}: {err}); the file is corrupt or not a .mat") from err
    if key not in data:
        found = ", ".join(k for k in data if not k.startswith("__")) or "none"
        raise DataError(f"{path} has no variable '{key}' (found: {found}); use the file of the LIVE Challenge archive")
    return np.asarray(data[key])


def _cell_strings(arr: np.ndarray, path: Path) -> list[str]:
    """A MATLAB cell array of strings (as ``loadmat`` returns it) → Python strings."""
    out = []
    for i, item in enumerate(arr.reshape(-1)):
        value: Any = item
        while isinstance(value, np.ndarray):
            if value.size != 1:
                raise DataError(f"{path}: entry {i + 1} of the name list is not one file name (shape {value.shape})")
            value = value.reshape(-1)[0]
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{path}: entry {i + 1} of the name list is not a file name ({value!r})")
        out.append(value.strip())
    return out


def read_livec_labels(names_path: Path, mos_path: Path) -> list[tuple[str, float]]:
    """``(name, mos)`` for every entry of the two LIVEC ``.mat`` files, in order (training images included)."""
    names = _cell_strings(_load_mat(names_path, NAMES_KEY), names_path)
    mos_arr = _load_mat(mos_path, MOS_KEY)
    if mos_arr.dtype.kind not in "iuf":
        raise DataError(f"{mos_path}: '{MOS_KEY}' is not numeric ({mos_arr.dtype})")
    mos = [float(v) for v in mos_arr.reshape(-1)]
    if len(mos) != len(names):
        raise DataError(
            f"LIVEC: {names_path} lists {len(names)} images but {mos_path} has {len(mos)} scores; use the two files "
            "of the same archive"
        )
    for i, (name, value) in enumerate(zip(names, mos)):
        if not math.isfinite(value):
            raise DataError(f"{mos_path}: MOS of entry {i + 1} ({name}) is {value}, not a finite number")
    return list(zip(names, mos))


@DATASETS.register("livec")
class LiveChallenge(IQADataset):
    """LIVE Challenge (official layout: Images/ + Data/*.mat): 1162 authentically distorted photos, MOS 0–100.

    ``drop_first`` leading entries (the 7 training images) are dropped.  Only ``split_mode="random"`` is meaningful;
    ``by_reference`` treats every image as its own reference.  Images differ in size: set ``crop`` (or ``patches``)
    in recipes, since ``crop=None`` returns whole images that cannot be batched.  Other options: see
    :class:`~distill.data.iqa.dataset.IQADataset` (``distortions`` accepts only ``"none"``/``"authentic"``).
    """

    key = "livec"
    title = "LIVE Challenge"
    human_label_kind = "MOS (human, 0–100)"
    type_names: ClassVar[Mapping[str, str]] = {"none": "authentic"}
    nested_names = ("ChallengeDB_release", "livec", "LIVEC")
    hint = _HINT

    samples: list[LivecSample]

    def __init__(
        self,
        root: str,
        split: str = "train",
        split_mode: str = "random",
        train_fraction: float = 0.8,
        val_fraction: float = 0.0,
        split_seed: int = 0,
        crop: int | None = None,
        hflip: bool = False,
        distortions: list[str] | None = None,
        on_corrupt: str = "error",
        patches: int = 1,
        patch_layout: str = "grid",
        drop_first: int = 7,
        format: str = "files",
    ) -> None:
        if isinstance(drop_first, bool) or int(drop_first) != drop_first or drop_first < 0:
            raise DataError(f"livec: drop_first must be a non-negative integer, got {drop_first!r}")
        self.drop_first = int(drop_first)
        super().__init__(
            root,
            split=split,
            split_mode=split_mode,
            train_fraction=train_fraction,
            val_fraction=val_fraction,
            split_seed=split_seed,
            crop=crop,
            hflip=hflip,
            distortions=distortions,
            on_corrupt=on_corrupt,
            patches=patches,
            patch_layout=patch_layout,
            format=format,
        )

    def _scan(self) -> list[LivecSample]:
        root = self._check_root()
        images, data = find_child(root, "Images", directory=True), find_child(root, "Data", directory=True)
        if images is None or data is None:
            raise self._no_folder("Images" if images is None else "Data")
        paths = {}
        for name in (NAMES_FILE, MOS_FILE):
            path = find_child(data, name, directory=False)
            if path is None:
                raise DataError(f"LIVE Challenge: '{data / name}' is missing. " + _HINT.format(root=root))
            paths[name] = path
        rows = read_livec_labels(paths[NAMES_FILE], paths[MOS_FILE])
        if len(rows) <= self.drop_first:
            raise DataError(
                f"LIVE Challenge: {paths[NAMES_FILE]} lists {len(rows)} images, none left after dropping the first "
                f"{self.drop_first} (drop_first)"
            )
        on_disk = files_by_lower_name(images)
        training = find_child(images, "trainingImages", directory=True)
        if training is not None:  # where the archive keeps t1.bmp … t7.bmp (used only with a smaller drop_first)
            on_disk = {**files_by_lower_name(training), **on_disk}
        samples: list[LivecSample] = []
        missing: list[Path] = []
        seen: dict[str, int] = {}
        for index, (name, mos) in enumerate(rows[self.drop_first :], start=self.drop_first + 1):
            key = Path(name).name.lower()
            if key in seen:
                raise DataError(f"{paths[NAMES_FILE]}: {name} is listed twice (entries {seen[key]} and {index})")
            seen[key] = index
            path = on_disk.get(key)
            if path is None:
                missing.append(images / name)
            else:
                samples.append(LivecSample(name, path, mos, index))
        if missing:
            raise self._missing(missing, paths[NAMES_FILE])
        return samples
