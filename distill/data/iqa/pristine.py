"""Pristine image sets for SCNN pre-training, in their official layouts, and DBCNN's distortion-classification data.

* ``waterloo`` — the Waterloo Exploration Database (Ma et al., TIP 2017): 4,744 pristine BMPs in
  ``pristine_images/`` (``00001.bmp`` …), found at ``ROOT/pristine_images`` or
  ``ROOT/exploration_database_and_code/pristine_images`` (the archive's own folder).
* ``voc2012`` — PASCAL VOC 2012 trainval: 17,125 JPEGs in ``JPEGImages/``, found at ``ROOT/JPEGImages``,
  ``ROOT/VOC2012/JPEGImages`` or ``ROOT/VOCdevkit/VOC2012/JPEGImages`` (the tar's own folders).
* ``dbcnn_distortions`` — DBCNN's SCNN pre-training set (Zhang et al., TCSVT 2020; PyTorch code
  github.com/zwx8981/DBCNN-PyTorch, ``SCNN.py``): every pristine image of both sets × every (type, level) class of
  :data:`~distill.data.iqa.distortions_dbcnn.DBCNN_CLASSES`, the image distorted at full resolution (the
  distortion's randomness fixed per image and class, as the authors generated the set once), then resized so the
  shorter side is ``resize`` (256) and cropped to ``size`` (224) — random crop and horizontal flip for training, the
  centre for testing.  Train/test are a seeded 80/20 split by pristine image (the authors took the first 80 % of
  each class folder, i.e. also by image); in the synthetic stand-ins by source photo, so no photo is on both sides.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from distill.data.base import SeededDataset
from distill.data.images import image_files, load_rgb
from distill.data.iqa.dataset import SYNTHETIC_MARKER
from distill.data.iqa.distortions_dbcnn import (
    DBCNN_CLASSES,
    DBCNN_GENERATOR,
    DBCNN_GENERATOR_CHANGES,
    DBCNN_TYPES,
    dbcnn_distortion,
)
from distill.data.splits import split_indices
from distill.data.synthetic_common import image_size, reference_crops, stable_seed, staged_output
from distill.errors import DataError
from distill.registry import DATASETS, WRITERS

__all__ = ["DbcnnDistortions", "PristineImages", "Voc2012Images", "WaterlooExploration"]


class PristineImages(Dataset):
    """A folder of pristine images in an official layout; items ``{"input": [3, H, W], "meta": {"name": ...}}``."""

    title: ClassVar[str] = ""
    name: ClassVar[str] = ""
    folders: ClassVar[tuple[str, ...]] = ()
    suffixes: ClassVar[tuple[str, ...]] = ()
    official_count: ClassVar[int] = 0

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(
                f"{self.title} root '{self.root}' does not exist or is not a folder; "
                f"fetch it with `distill data fetch {self.name} {self.root}`"
            )
        found = [self.root / f for f in self.folders if (self.root / f).is_dir()]
        if not found:
            raise DataError(
                f"{self.title}: none of {', '.join(f + '/' for f in self.folders)} in '{self.root}' "
                f"(it holds: {', '.join(sorted(p.name for p in self.root.iterdir())[:6]) or 'nothing'}); "
                f"fetch it with `distill data fetch {self.name} {self.root}`"
            )
        self.folder = found[0]
        self.files = image_files(self.folder, self.suffixes)
        if not self.files:
            raise DataError(f"{self.title}: no {'/'.join(self.suffixes)} images in '{self.folder}'")

    @property
    def is_synthetic(self) -> bool:
        return (self.root / SYNTHETIC_MARKER).is_file()

    def photo_groups(self) -> dict[str, str]:
        """File name → the photo a synthetic stand-in's image was cropped from (its ``SYNTHETIC.json``); empty for
        the real set."""
        if not self.is_synthetic:
            return {}
        try:
            images = json.loads((self.root / SYNTHETIC_MARKER).read_text()).get("images") or {}
        except (OSError, ValueError, AttributeError):
            return {}
        return {str(n): str(src["photo"]) for n, src in images.items() if isinstance(src, dict) and "photo" in src}

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.files[index]
        return {"input": load_rgb(path), "meta": {"name": path.name}}

    def __repr__(self) -> str:
        note = " SYNTHETIC" if self.is_synthetic else ""
        return f"{type(self).__name__}({self.folder}, n={len(self)} of {self.official_count} official{note})"


@DATASETS.register("waterloo")
class WaterlooExploration(PristineImages):
    """Waterloo Exploration Database pristine images (4,744 BMPs in ``pristine_images/``)."""

    title = "Waterloo Exploration Database"
    name = "waterloo"
    folders = ("pristine_images", "exploration_database_and_code/pristine_images")
    suffixes = (".bmp",)
    official_count = 4744


@DATASETS.register("voc2012")
class Voc2012Images(PristineImages):
    """PASCAL VOC 2012 trainval images (17,125 JPEGs in ``JPEGImages/``)."""

    title = "PASCAL VOC 2012"
    name = "voc2012"
    folders = ("JPEGImages", "VOC2012/JPEGImages", "VOCdevkit/VOC2012/JPEGImages")
    suffixes = (".jpg", ".jpeg")
    official_count = 17125


# --------------------------------------------------------------------------------------------- stand-ins
def _write_pristine(
    out: str | Path, layout: str, folder: str, names: list[str], fmt: str, size: tuple[int, int], seed: int
) -> Path:
    out = Path(out).expanduser()
    with staged_output(out, False, layout) as tmp:
        target = tmp / folder
        target.mkdir(parents=True)
        refs, sources = reference_crops(len(names), size, seed, tag=f"{layout}-crops")
        for name, arr in zip(names, refs, strict=True):
            Image.fromarray(arr).save(target / name, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        marker = {
            "synthetic": True,
            "layout": layout,
            "note": "crops of scikit-image's bundled photos standing in for the real pristine images",
            "seed": seed,
            "size_hw": list(size),
            "images": dict(zip(names, sources, strict=True)),
        }
        (tmp / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return out


@WRITERS.register("waterloo")
def write_synthetic_waterloo(
    out: str | Path, n_images: int = 8, size: list[int] | tuple[int, int] = (96, 128), seed: int = 0
) -> Path:
    """Write a synthetic Waterloo Exploration stand-in: ``pristine_images/00001.bmp`` … (photo crops, not the DB)."""
    if not 1 <= n_images <= 99999:
        raise DataError(f"n_images must be in 1..99999, got {n_images}")
    names = [f"{i + 1:05d}.bmp" for i in range(n_images)]
    return _write_pristine(out, "waterloo", "pristine_images", names, "BMP", image_size(size, 16), seed)


@WRITERS.register("voc2012")
def write_synthetic_voc2012(
    out: str | Path, n_images: int = 8, size: list[int] | tuple[int, int] = (96, 128), seed: int = 0
) -> Path:
    """Write a synthetic PASCAL VOC 2012 stand-in: ``VOCdevkit/VOC2012/JPEGImages/2012_000001.jpg`` … (photo crops)."""
    if not 1 <= n_images <= 999999:
        raise DataError(f"n_images must be in 1..999999, got {n_images}")
    names = [f"2012_{i + 1:06d}.jpg" for i in range(n_images)]
    folder = "VOCdevkit/VOC2012/JPEGImages"
    return _write_pristine(out, "voc2012", folder, names, "JPEG", image_size(size, 16), seed + 1)


# ------------------------------------------------------------------------------ prepared set (dbcnn_prepare)
#: the manifest format of a folder written by :mod:`distill.data.iqa.dbcnn_prepare`
FORMAT = "distill-dbcnn-prepared-1"
MANIFEST = "manifest.json"
#: storage name → the manifest's description of it
STORAGES = {
    "npy": "npy, uint8 [classes, H, W, 3] per pristine image, after distortion and resize",
    "png": "PNG, 8 bits, after distortion and resize",
}


def item_path(out: Path, image_index: int, class_index: int, chunk_images: int, storage: str = "png") -> Path:
    """Where the prepared item of (image, class) lies: ``chunks/<chunk>/<image>_<class>.png``, or for ``npy``
    storage the file of all the image's classes, ``chunks/<chunk>/<image>.npy``."""
    chunk = out / "chunks" / f"{image_index // chunk_images:05d}"
    if storage == "npy":
        return chunk / f"{image_index:06d}.npy"
    return chunk / f"{image_index:06d}_{class_index:02d}.png"


def read_manifest(out: str | Path) -> dict[str, Any]:
    """The manifest of a prepared folder; a DataError naming the folder when it is not one."""
    path = Path(out) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        raise DataError(
            f"{out}: not a prepared DBCNN set (no readable {MANIFEST}); write it with "
            f"`python -m distill.data.iqa.dbcnn_prepare {out}`"
        ) from None
    if manifest.get("format") != FORMAT:
        raise DataError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}; prepare the set again")
    return manifest


# -------------------------------------------------------------------------------------- classification set
def _resize_shorter(img: torch.Tensor, side: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    scale = side / min(h, w)
    hw = (max(side, round(h * scale)), max(side, round(w * scale)))
    return F.interpolate(img[None], size=hw, mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


@DATASETS.register("dbcnn_distortions")
class DbcnnDistortions(SeededDataset):
    """DBCNN's SCNN pre-training set: pristine image × (type, level) class; target = class index (39 classes).

    ``waterloo``/``voc2012`` are the roots of the two sets (either may be null).  Items enumerate (image, class)
    pairs, all of them by default (``length: null``, the authors' set) or the first ``length`` of a seeded
    permutation.  ``classes`` restricts the (type, level) list (``"T:L"`` strings, e.g. ``["3:1", "3:5"]``).
    ``crop: random`` draws crop position and flip from the per-item RNG; ``center`` takes the centre, unflipped.
    ``prepared``: a folder written by :mod:`distill.data.iqa.dbcnn_prepare` (every pair distorted once, in
    parallel); items are read from it instead of distorted now (within one grey level of the same item).
    """

    def __init__(
        self,
        waterloo: str | None = "data/waterloo",
        voc2012: str | None = "data/voc2012",
        split: Literal["all", "train", "test"] = "train",
        train_fraction: float = 0.8,
        split_seed: int = 0,
        resize: int = 256,
        size: int = 224,
        crop: Literal["random", "center"] = "random",
        length: int | None = None,
        classes: list[str] | None = None,
        seed: int = 0,
        prepared: str | None = None,
    ) -> None:
        if size < 8 or resize < size:
            raise DataError(f"dbcnn_distortions: need 8 <= size <= resize, got size {size}, resize {resize}")
        sets: list[PristineImages] = []
        if waterloo is not None:
            sets.append(WaterlooExploration(waterloo))
        if voc2012 is not None:
            sets.append(Voc2012Images(voc2012))
        if not sets:
            raise DataError("dbcnn_distortions: set waterloo and/or voc2012 to the pristine image folders")
        self.sets = sets
        files = [(s.name, p) for s in sets for p in s.files]
        names = [f"{n}/{p.name}" for n, p in files]
        if split != "all":  # synthetic stand-ins: every crop of one photo on one side, across both sets
            groups = {f"{s.name}/{n}": photo for s in sets for n, photo in s.photo_groups().items()}
            keep = split_indices(names, "by_reference", train_fraction, 0.0, split_seed, groups or None)[split]
            if not keep:
                raise DataError(f"dbcnn_distortions: split '{split}' gets no image of {len(names)}; add images")
            files, names = [files[i] for i in keep], [names[i] for i in keep]
        self.files, self.names = [p for _, p in files], names
        if classes is None:
            self.classes = DBCNN_CLASSES
        else:
            try:
                pairs = [c.split(":") for c in classes]
                self.classes = tuple((dbcnn_distortion(t).code, int(lv)) for t, lv in pairs)
                if any(not 1 <= lv <= 5 for _, lv in self.classes) or not self.classes:
                    raise ValueError
            except ValueError:
                raise DataError(f"dbcnn_distortions: classes must be 'TYPE:LEVEL' strings, got {classes!r}") from None
        self.split, self.resize, self.size, self.crop, self.seed = split, int(resize), int(size), crop, int(seed)
        self.root = ", ".join(str(s.folder) for s in sets)  # what run captions print
        self.is_synthetic = any(s.is_synthetic for s in sets)
        self.synthetic_note = "photo crops standing in for Waterloo/VOC; distortions are DBCNN's generator"
        self.distortion_names: dict[str, str] = {c: DBCNN_TYPES[c] for c in dict.fromkeys(c for c, _ in self.classes)}
        total = len(self.files) * len(self.classes)
        if length is None or length >= total:
            self.order = np.arange(total)
        else:
            self.order = np.random.default_rng(stable_seed("dbcnn_distortions", split, split_seed)).permutation(total)
            self.order = np.sort(self.order[: max(1, int(length))])
        self.prepared = None if prepared is None else self._check_prepared(Path(prepared))

    def _check_prepared(self, folder: Path) -> dict[str, Any]:
        """The prepared folder's manifest, checked against this set's resize, classes and images."""
        manifest = read_manifest(folder)
        if manifest["resize"] != self.resize:
            raise DataError(
                f"dbcnn_distortions: prepared {folder} was resized to {manifest['resize']}, this set needs "
                f"resize {self.resize}; prepare it again with --resize {self.resize} in another folder"
            )
        generator = manifest.get("generator", 1)
        if generator != DBCNN_GENERATOR:
            changed = "; ".join(v for k, v in DBCNN_GENERATOR_CHANGES.items() if k > generator) or "unknown"
            raise DataError(
                f"dbcnn_distortions: prepared {folder} holds items of DBCNN generator {generator}, this code makes "
                f"generator {DBCNN_GENERATOR} (changed since: {changed}); prepare it again in another folder"
            )
        storage = [k for k, v in STORAGES.items() if v == manifest.get("storage")]
        if not storage:
            raise DataError(f"dbcnn_distortions: prepared {folder} has an unknown storage {manifest.get('storage')!r}")
        class_index = {c: k for k, c in enumerate(manifest["classes"])}
        image_index = {n: k for k, n in enumerate(manifest["images"])}
        missing_c = [f"{c}:{lv}" for c, lv in self.classes if f"{c}:{lv}" not in class_index]
        missing_i = [n for n in self.names if n not in image_index]
        if missing_c or missing_i:
            what = f"classes {missing_c[:3]}" if missing_c else f"{len(missing_i)} images, e.g. {missing_i[0]}"
            raise DataError(f"dbcnn_distortions: prepared {folder} lacks {what}; prepare it from the same folders")
        return {
            "root": folder,
            "chunk_images": int(manifest["chunk_images"]),
            "storage": storage[0],
            "classes": [class_index[f"{c}:{lv}"] for c, lv in self.classes],
            "images": [image_index[n] for n in self.names],
        }

    def _prepared_item(self, ref: int, cls: int) -> torch.Tensor:
        p = self.prepared
        assert p is not None
        path = item_path(p["root"], p["images"][ref], p["classes"][cls], p["chunk_images"], p["storage"])
        if not path.is_file():
            raise DataError(
                f"dbcnn_distortions: prepared item {path} is missing (the preparation has not finished); run "
                f"`python -m distill.data.iqa.dbcnn_prepare {p['root']}"
                f"{' --storage png' if p['storage'] == 'png' else ''}` again to complete it"
            )
        if p["storage"] == "npy":  # memory-mapped: only this class's pixels are read, nothing is decoded
            arr = np.load(path, mmap_mode="r")[p["classes"][cls]]
            return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float() / 255
        return load_rgb(path)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = int(self.order[index])
        ref, cls = divmod(pair, len(self.classes))
        code, level = self.classes[cls]
        if self.prepared is not None:
            image = self._prepared_item(ref, cls)
        else:
            image = self._distorted(ref, code, level)
        h, w = image.shape[-2:]
        s = self.size
        if self.crop == "random":
            g = self.rng(index)
            top = int(torch.randint(h - s + 1, (1,), generator=g))
            left = int(torch.randint(w - s + 1, (1,), generator=g))
            flip = bool(torch.randint(2, (1,), generator=g))
        else:
            top, left, flip = (h - s) // 2, (w - s) // 2, False
        image = image[:, top : top + s, left : left + s]
        if flip:
            image = image.flip(-1)
        name = self.names[ref]
        meta = {"name": f"{name}@{code}:{level}", "ref": name, "distortion": code, "level": level}
        return {"input": image.contiguous(), "target": torch.tensor(cls, dtype=torch.long), "meta": meta}

    def _distorted(self, ref: int, code: str, level: int) -> torch.Tensor:
        """The (image, class) item computed now: the full image distorted, then the shorter side resized."""
        fixed = torch.Generator().manual_seed(stable_seed("dbcnn-distort", self.names[ref], code, level))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one image: extra intra-op threads only add contention
        try:
            image = dbcnn_distortion(code)(load_rgb(self.files[ref])[None], level, fixed)[0]
            return _resize_shorter(image, self.resize)
        finally:
            torch.set_num_threads(threads)

    def __repr__(self) -> str:
        return (
            f"DbcnnDistortions({self.root}, split={self.split}, images={len(self.files)}, "
            f"classes={self.num_classes}, n={len(self)})"
        )
