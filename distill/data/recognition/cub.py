"""CUB-200-2011 in its official layout, as single-view, paired (CQD) or union (A ∪ B) classification items.

::

    ROOT/images/<class_dir>/<file>.jpg
    ROOT/images.txt               <image_id> <relative path under images/>
    ROOT/image_class_labels.txt   <image_id> <class_id 1..200>
    ROOT/classes.txt              <class_id> <class name>
    ROOT/bounding_boxes.txt       <image_id> <x> <y> <width> <height>   (floats, pixels, top-left corner)
    ROOT/train_test_split.txt     <image_id> <1 = train | 0 = test>

The official split is 5,994 train / 5,794 test images. Synthetic stand-ins written by
:func:`distill.data.recognition.synthetic.write_synthetic_cub` have the same layout plus a ``SYNTHETIC.json`` marker.

Views (``[3, size, size]`` in [0, 1], rounded to 8 bits like the degraded images the official code writes):
*clean* (A) is the bounding-box crop; *degraded* (B) is a :mod:`~distill.data.recognition.degradations` view of
the same image.
Items follow :mod:`distill.data.base`::

    {"input": Tensor[3, S, S], "target": int64 class (0-based), "index": int, "quality": 0 clean | 1 degraded,
     "meta": {"name": str, "id": int, "class": str, "quality": "clean" | "<degradation name>"}}
    # cub200_paired adds "input_clean": the clean view of the same image (the CQD teacher's input)
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from distill.data.base import SeededDataset
from distill.data.images import load_rgb_with
from distill.data.iqa.dataset import find_child
from distill.data.recognition.degradations import Degradation, build_degradation, crop_view
from distill.data.store import ImageStore, check_format
from distill.errors import DataError
from distill.registry import DATASETS

__all__ = ["CUB200", "CUB200Paired", "CubSample", "read_cub"]

SYNTHETIC_MARKER = "SYNTHETIC.json"
CUB_FILES = ("images.txt", "image_class_labels.txt", "classes.txt", "bounding_boxes.txt", "train_test_split.txt")
_HINT = (
    "Unpack the official CUB_200_2011.tgz there (it holds images/, images.txt, image_class_labels.txt, classes.txt, "
    "bounding_boxes.txt and train_test_split.txt), or write a synthetic stand-in with `distill data cub200 {root}`"
)
Mode = Literal["single", "union"]


@dataclass(frozen=True)
class CubSample:
    """One image of ``images.txt`` with its label, box and official split."""

    id: int
    path: Path
    name: str  # path relative to images/, as listed
    class_id: int  # 1-based, as in image_class_labels.txt
    box: tuple[float, float, float, float]  # x, y, w, h
    is_train: bool


def _rows(path: Path, columns: int, kinds: tuple[type, ...]) -> dict[int, tuple[Any, ...]]:
    """``{first column (an int id): the other columns converted by kinds}``; malformed lines are DataErrors."""
    out: dict[int, tuple[Any, ...]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not a text file ({err}); use the file from the official CUB archive") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        # class names and paths never contain spaces in CUB; split once per column so a stray space is reported
        cells = line.split(maxsplit=columns - 1)
        if len(cells) != columns:
            raise DataError(f"{path}, line {number}: expected {columns} whitespace-separated columns, got '{line}'")
        try:
            key = int(cells[0])
            values = tuple(kind(cell) for kind, cell in zip(kinds, cells[1:]))
        except ValueError:
            raise DataError(
                f"{path}, line {number}: cannot read '{line}' as {columns} columns of ids/numbers"
            ) from None
        if key in out:
            raise DataError(f"{path}, line {number}: id {key} is listed twice")
        out[key] = values
    if not out:
        raise DataError(f"{path} is empty")
    return out


def read_cub(root: str | Path) -> tuple[list[CubSample], dict[int, str]]:
    """All images of an official-layout CUB folder (in ``images.txt`` order) and the class names by id.

    Raises :class:`DataError` naming the file and line for a missing file, a malformed line, an id missing from one
    of the files, a class id without a name, a non-positive box or a missing image.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        nested = root / "CUB_200_2011"
        hint = f" (did you mean {nested}?)" if nested.is_dir() else ""
        raise DataError(
            f"CUB-200-2011 root '{root}' does not exist or is not a folder{hint}. " + _HINT.format(root=root)
        )
    files = {}
    for name in CUB_FILES:
        found = find_child(root, name, directory=False)
        if found is None:
            nested = root / "CUB_200_2011"
            hint = f" (did you mean {nested}?)" if nested.is_dir() else ""
            raise DataError(f"CUB-200-2011: {root / name} is missing{hint}. " + _HINT.format(root=root))
        files[name] = found
    images_dir = find_child(root, "images", directory=True)
    if images_dir is None:
        raise DataError(f"CUB-200-2011: no images/ folder in '{root}'. " + _HINT.format(root=root))
    paths = _rows(files["images.txt"], 2, (str,))
    labels = _rows(files["image_class_labels.txt"], 2, (int,))
    classes = _rows(files["classes.txt"], 2, (str,))
    boxes = _rows(files["bounding_boxes.txt"], 5, (float, float, float, float))
    split = _rows(files["train_test_split.txt"], 2, (int,))
    for name, table in (
        ("image_class_labels.txt", labels),
        ("bounding_boxes.txt", boxes),
        ("train_test_split.txt", split),
    ):
        missing = [i for i in paths if i not in table]
        if missing:
            raise DataError(
                f"{files[name]}: image id {missing[0]} (listed in images.txt) is missing"
                + (f", and {len(missing) - 1} more" if len(missing) > 1 else "")
                + ". Use the files of one and the same CUB archive"
            )
    samples, absent = [], []
    for image_id, (rel,) in paths.items():
        (class_id,) = labels[image_id]
        if class_id not in classes:
            raise DataError(
                f"{files['image_class_labels.txt']}: image {image_id} has class {class_id}, not in classes.txt"
            )
        box = boxes[image_id]
        if not (box[2] > 0 and box[3] > 0) or not all(math.isfinite(v) for v in box):
            raise DataError(f"{files['bounding_boxes.txt']}: image {image_id} has an empty or invalid box {box}")
        (flag,) = split[image_id]
        if flag not in (0, 1):
            raise DataError(f"{files['train_test_split.txt']}: image {image_id} has split flag {flag}, expected 1 or 0")
        path = images_dir / rel
        if not path.is_file():
            absent.append(path)
        samples.append(CubSample(image_id, path, rel, class_id, box, bool(flag)))  # type: ignore[arg-type]
    if absent:
        more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
        raise DataError(
            f"CUB-200-2011: {absent[0]}{more} listed in {files['images.txt']} not found. Re-extract the archive into "
            f"'{root}' (or rewrite the synthetic set with `distill data cub200 {root} --set overwrite=true`)"
        )
    _check_boxes_inside(samples, files["bounding_boxes.txt"])
    return samples, {k: v[0] for k, v in classes.items()}


def _check_boxes_inside(samples: list[CubSample], box_file: Path, slack: float = 1.0) -> None:
    """Every box lies inside its image (to ``slack`` pixels); refuses, naming the line of ``bounding_boxes.txt``."""
    for s in samples:
        try:
            with Image.open(s.path) as img:
                width, height = img.size
        except Exception:  # an undecodable image is reported when it is read
            continue
        x, y, w, h = s.box
        if x < -slack or y < -slack or x + w > width + slack or y + h > height + slack:
            raise DataError(
                f"{box_file}, line {_line_of(box_file, s.id)}: the box of image {s.id} (x={x:g}, y={y:g}, w={w:g}, "
                f"h={h:g}) lies outside its {width}×{height} image {s.path}; correct the line or use the official file"
            )


def _line_of(path: Path, image_id: int) -> int:
    """1-based number of the line of ``path`` whose first column is ``image_id`` (0 if none)."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        cells = line.split()
        if cells and cells[0] == str(image_id):
            return number
    return 0


def _rank(seed: int, image_id: int) -> bytes:
    """A seeded, platform-independent sort key of an image (for the stratified validation split)."""
    return hashlib.blake2b(f"{seed}:{image_id}".encode(), digest_size=8).digest()


def _to_uint8(x: Tensor) -> Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


@DATASETS.register("cub200")
class CUB200(SeededDataset):
    """CUB-200-2011 (official layout), one view per item: the clean box crop or a degradation; or A ∪ B.

    * ``split``: ``train``/``test`` (the official split), ``val`` (``val_fraction`` of each class's training images,
      carved by ``split_seed``; ``train`` then excludes them) or ``all``.
    * ``size``: side of the square views. ``degradation`` (a name in
      :data:`~distill.data.recognition.degradations.DEGRADATIONS`, with ``degradation_args``) picks the degraded view;
      ``null`` keeps the clean crop.
    * ``mode``: ``single`` (one view per image) or ``union`` (every image twice: clean, then degraded — the data
      augmentation baseline A ∪ B and the mixed-quality test set of the multi-resolution experiment).
    * ``classes``: the first K class ids (an integer) or a list of ids; labels are renumbered 0..K-1 in id order.
    * ``hflip``: random horizontal flips in train (one draw per item, shared by paired views).
    * ``cache``: keep the prepared 8-bit views in memory after their first use.
    * ``format``: ``files`` (Pillow), ``torchvision`` (``torchvision.io.decode_image``, Pillow where it does not work
      here) or ``store``: the decoded uint8 memory-mapped store of ``distill data prepare cub200 ROOT``
      (:mod:`distill.data.store`); views are cut from the stored pixels, bit-identical to decoding the files.
    """

    paired: bool = False

    def __init__(
        self,
        root: str,
        split: Literal["train", "val", "test", "all"] = "train",
        size: int = 224,
        degradation: str | None = None,
        degradation_args: dict[str, Any] | None = None,
        mode: Mode = "single",
        classes: int | list[int] | None = None,
        val_fraction: float = 0.0,
        split_seed: int = 0,
        hflip: bool = False,
        cache: bool = True,
        format: str = "files",
    ) -> None:
        self.format = check_format("cub200", format)
        if split not in ("train", "val", "test", "all"):
            raise DataError(f"cub200: split '{split}' is not one of train, val, test, all")
        if mode not in ("single", "union"):
            raise DataError(f"cub200: mode '{mode}' is not one of single, union")
        if isinstance(size, bool) or int(size) != size or size < 8:
            raise DataError(f"cub200: size must be an integer >= 8, got {size!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise DataError(f"cub200: val_fraction must be in [0, 1), got {val_fraction}")
        if (mode == "union" or self.paired) and degradation is None:
            raise DataError(f"cub200: {'paired items' if self.paired else 'mode union'} need a degradation")
        self.root = Path(root).expanduser()
        self.split, self.size, self.mode = split, int(size), mode
        self.val_fraction, self.split_seed = float(val_fraction), int(split_seed)
        self.hflip, self.cache = bool(hflip), bool(cache)
        self._degradation_args = dict(degradation_args or {})
        self.degradation: Degradation | None = (
            build_degradation(degradation, degradation_args) if degradation is not None else None
        )
        samples, names = read_cub(self.root)
        chosen_ids = self._class_ids(classes, names)
        self.class_ids = chosen_ids
        self.class_names = [names[c] for c in chosen_ids]
        label_of = {c: i for i, c in enumerate(chosen_ids)}
        samples = [s for s in samples if s.class_id in label_of]
        self.samples = self._select(samples)
        if not self.samples:
            raise DataError(f"cub200: split '{split}' of {self.root} holds no images of the chosen classes")
        self.labels = [label_of[s.class_id] for s in self.samples]
        if self.degradation is not None:
            self.degradation.check([s.name for s in self.samples])  # precomputed files, before training
        self._views: dict[tuple[int, str], Tensor] = {}
        self._store: ImageStore | None = None
        self._view_prefix: dict[str, str] = {}  # kind → key prefix of its prepared views in the store
        if self.format == "store":
            rebuild = f"distill data prepare cub200 {self.root}"
            store = ImageStore(self.root, rebuild).check([s.path for s in self.samples])
            for kind in ("clean", "degraded") if self.degradation is not None else ("clean",):
                prefix = self.view_prefix(kind)
                if store.has(prefix):  # views prepared for this size and degradation: every one must be there
                    store.rebuild = f"{rebuild} {self.prepare_options()}"
                    store.check([s.path for s in self.samples], prefix)
                    self._view_prefix[kind] = prefix
            store.rebuild = rebuild
            self._store = store

    # ------------------------------------------------------------------------------------------------ selection
    def _class_ids(self, classes: int | list[int] | None, names: dict[int, str]) -> list[int]:
        ids = sorted(names)
        if classes is None:
            return ids
        if isinstance(classes, int) and not isinstance(classes, bool):
            if not 1 <= classes <= len(ids):
                raise DataError(f"cub200: classes={classes}, but {self.root} has {len(ids)} classes")
            return ids[:classes]
        unknown = [c for c in classes if c not in names]
        if unknown:
            raise DataError(f"cub200: classes {unknown} are not in {self.root}/classes.txt (ids {ids[0]}..{ids[-1]})")
        return sorted(set(classes))

    def _select(self, samples: list[CubSample]) -> list[CubSample]:
        if self.split == "all":
            return samples
        if self.split == "test":
            return [s for s in samples if not s.is_train]
        train = [s for s in samples if s.is_train]
        if self.val_fraction == 0.0:
            if self.split == "val":
                raise DataError("cub200: split 'val' is empty because val_fraction is 0; set val_fraction (e.g. 0.1)")
            return train
        val: set[int] = set()
        for class_id in sorted({s.class_id for s in train}):  # stratified: the same fraction of every class
            members = sorted((s for s in train if s.class_id == class_id), key=lambda s: _rank(self.split_seed, s.id))
            n_val = min(math.floor(self.val_fraction * len(members) + 0.5), len(members) - 1)  # keep one to train
            val.update(s.id for s in members[:n_val])
        return [s for s in train if (s.id in val) == (self.split == "val")]

    # ------------------------------------------------------------------------------------------------- metadata
    @property
    def num_classes(self) -> int:
        return len(self.class_ids)

    @property
    def is_synthetic(self) -> bool:
        return (self.root / SYNTHETIC_MARKER).is_file()

    @property
    def synthetic_info(self) -> dict[str, Any] | None:
        """``SYNTHETIC.json`` of a synthetic stand-in, else ``None``."""
        marker = self.root / SYNTHETIC_MARKER
        return dict(json.loads(marker.read_text())) if marker.is_file() else None

    @property
    def augmented(self) -> bool:
        """True when items draw random augmentation (then teacher outputs cannot be cached)."""
        return self.hflip and self.split == "train"

    def view_description(self, key: str) -> str:
        """What the tensor under batch ``key`` is (``input`` / ``input_clean``), exactly enough to key a cache."""
        clean = f"box crop resized to {self.size}x{self.size} (bilinear, antialiased), 8-bit"
        if key == "input_clean" and self.paired:
            return clean
        if key != "input":
            raise KeyError(f"cub200 items have no view '{key}'")
        deg = self.degradation.describe() if self.degradation else "none"
        if self.mode == "union":
            return f"union: items 0..{len(self.samples) - 1} {clean}; then {deg} at {self.size}x{self.size}, 8-bit"
        return clean if self.degradation is None else f"{deg} at {self.size}x{self.size}, 8-bit"

    def cache_identity(self, key: str) -> dict[str, Any]:
        """Root, split, classes, files, labels and the view under ``key``: what a teacher-output cache is keyed by."""
        return {
            "dataset": f"cub200{'_paired' if self.paired else ''}",
            "root": str(self.root.resolve()),
            "split": self.split,
            "val_fraction": self.val_fraction,
            "split_seed": self.split_seed,
            "mode": self.mode,
            "samples": [[s.id, s.name, lab, list(s.box)] for s, lab in zip(self.samples, self.labels)],
            "view": self.view_description(key),
        }

    # ---------------------------------------------------------------------------------------------------- views
    def view_prefix(self, kind: str) -> str:
        """Store key prefix of this reader's ``kind`` views (size and degradation, with its arguments, hashed)."""
        what = f"clean {self.size}" if kind == "clean" else f"{self.degradation.describe()} {self.size}"  # type: ignore[union-attr]
        return f"views/{hashlib.blake2b(what.encode(), digest_size=6).hexdigest()}/"

    def prepare_options(self) -> str:
        """The ``--set`` options of ``distill data prepare cub200`` that store this reader's views."""
        opts = f"--set size={self.size}"
        if self.degradation is not None:
            opts += f" --set degradation={self.degradation.name}"
            if self._degradation_args:
                opts += f" --set 'degradation_args={json.dumps(self._degradation_args)}'"
        return opts

    def stored_view(self, i: int, kind: str) -> Tensor:
        """The ``kind`` view of sample ``i`` as uint8 ``[3, S, S]``, computed from the image (what the view store
        holds and, with ``format: store``, what is read back from it)."""
        return _to_uint8(self._view(i, kind))

    def _view(self, i: int, kind: str) -> Tensor:
        """Clean (``kind="clean"``) or degraded view of sample ``i``, 8-bit, cached when asked."""
        key = (i, kind)
        if key in self._views:
            return self._views[key].float() / 255
        s = self.samples[i]
        if kind in self._view_prefix:  # a prepared view: no decode, no resize, no degradation
            assert self._store is not None
            view_u8 = self._store.array(s.path, self._view_prefix[kind])
            return torch.from_numpy(np.array(view_u8.transpose(2, 0, 1), dtype=np.float32)) / 255
        if self._store is not None:
            image = torch.from_numpy(np.array(self._store.array(s.path), dtype=np.float32)).permute(2, 0, 1) / 255
        else:
            image = load_rgb_with(s.path, self.format)
        if kind == "clean":
            view = crop_view(image, s.box, self.size)
        else:
            assert self.degradation is not None
            g = None
            if self.degradation.random:  # the degraded set is fixed: one draw per image, not per epoch
                g = torch.Generator().manual_seed(s.id * 1_000_003 + 17)
            view = self.degradation.view(image, s.box, self.size, g, name=s.name)
        stored = _to_uint8(view)
        if self.cache:
            self._views[key] = stored
        return stored.float() / 255

    def __len__(self) -> int:
        return len(self.samples) * (2 if self.mode == "union" else 1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.samples)
        i = index % n
        degraded = self.degradation is not None and (self.mode == "single" or index >= n)
        quality = self.degradation.name if degraded and self.degradation else "clean"
        x = self._view(i, "degraded" if degraded else "clean")
        item: dict[str, Any] = {
            "input": x,
            "target": torch.tensor(self.labels[i], dtype=torch.int64),
            "index": index,
            "quality": int(degraded),
            "meta": {"name": self.samples[i].name, "id": self.samples[i].id, "class": self.class_names[self.labels[i]],
                     "quality": quality},
        }  # fmt: skip
        if self.paired:
            item["input_clean"] = self._view(i, "clean")
        if self.augmented and bool(torch.rand((), generator=self.rng(index)) < 0.5):
            for k in ("input", "input_clean"):
                if k in item:
                    item[k] = item[k].flip(-1)
        return item


@DATASETS.register("cub200_paired")
class CUB200Paired(CUB200):
    """CUB-200-2011 pairs for CQD: ``input`` is the degraded view, ``input_clean`` the clean crop of the same image.

    Options as :class:`CUB200` (``degradation`` is required; ``mode`` is always ``single``).
    """

    paired = True

    def __init__(
        self,
        root: str,
        degradation: str,
        split: Literal["train", "val", "test", "all"] = "train",
        size: int = 224,
        degradation_args: dict[str, Any] | None = None,
        classes: int | list[int] | None = None,
        val_fraction: float = 0.0,
        split_seed: int = 0,
        hflip: bool = False,
        cache: bool = True,
        format: str = "files",
    ) -> None:
        super().__init__(
            root,
            split,
            size,
            degradation,
            degradation_args,
            "single",
            classes,
            val_fraction,
            split_seed,
            hflip,
            cache,
            format,
        )
