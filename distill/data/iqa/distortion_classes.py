"""Distortion type × level classification data for SCNN pre-training (DBCNN, Zhang et al., TCSVT 2020).

Each item is a random crop of a reference image distorted on the fly by a random KADID-10k distortion at a random
level, labelled with the class ``type_index * 5 + (level - 1)`` (``type_index`` in :attr:`codes`).  Every draw —
reference, crop position, type, level and the distortion's own randomness — comes from one generator,
:meth:`SeededDataset.rng`, so an item depends only on (split, seed, epoch, index).  References are the images of a
folder, or scikit-image's bundled colour photographs (``source: skimage``, offline), optionally split by reference
into train/test parts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from distill.data.base import SeededDataset
from distill.data.images import IMAGE_SUFFIXES, image_files, load_rgb
from distill.data.iqa.distortions import IMPLEMENTED_CODES, KADID_TYPES, apply_distortion, kadid_code
from distill.data.splits import split_indices
from distill.data.synthetic_common import PHOTOS
from distill.errors import DataError, DistillError
from distill.registry import DATASETS

__all__ = ["LEVELS", "SKIMAGE_PHOTOS", "DistortionClasses", "DistortionDraw"]

LEVELS = 5
#: scikit-image's bundled colour photographs (offline; grey ones would make colour distortions invisible).
SKIMAGE_PHOTOS: tuple[str, ...] = PHOTOS[:8]
_CROP_TRIES = 8


@dataclass
class DistortionDraw:
    """The random choices of one item; ``generator`` continues into the distortion itself."""

    ref: int
    top: int
    left: int
    type_index: int
    level: int
    generator: torch.Generator


def _skimage_photo(name: str) -> torch.Tensor:
    from skimage import data

    img = getattr(data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
        img = img[0]
    t = torch.as_tensor(img[..., :3]).permute(2, 0, 1).float()
    return (t / 255.0 if t.max() > 1.0 else t).contiguous()


@DATASETS.register("distortion_classes")
class DistortionClasses(SeededDataset):
    """Random crops distorted by a random KADID-10k (type, level); target = class index (SCNN pre-training).

    ``root`` is a folder of reference images (``source: folder``) or unused with ``source: skimage``.  ``length``
    items per epoch, crops of ``size``² (after resizing each reference's shorter side to ``resize`` when set;
    crops flatter than ``min_std`` are redrawn a few times).  ``distortions`` are KADID codes or names (default:
    every implemented type); class ``type_index * 5 + level - 1``.  ``split`` ``train``/``test`` keeps a seeded
    by-reference part (``train_fraction``, ``split_seed``) and also salts the random stream, so a held-out set
    shares neither content nor draws with training; ``seed`` is the stream seed (the trainer sets the training
    set's to the run seed).
    """

    def __init__(
        self,
        root: str | None = None,
        source: Literal["folder", "skimage"] = "folder",
        length: int = 1024,
        size: int = 64,
        distortions: list[str] | None = None,
        resize: int | None = None,
        min_std: float = 0.02,
        split: Literal["all", "train", "test"] = "all",
        train_fraction: float = 0.8,
        split_seed: int = 0,
        seed: int = 0,
    ) -> None:
        if length < 1 or size < 8:
            raise DataError(f"distortion_classes: need length >= 1 and size >= 8, got {length} and {size}")
        if resize is not None and resize < size:
            raise DataError(f"distortion_classes: resize ({resize}) must be at least size ({size})")
        try:
            codes = [kadid_code(d) for d in distortions] if distortions is not None else list(IMPLEMENTED_CODES)
        except DistillError as err:
            raise DataError(f"distortion_classes: distortions: {err}") from None
        missing = [f"{c} {KADID_TYPES[c]}" for c in codes if c not in IMPLEMENTED_CODES]
        if missing or not codes or len(set(codes)) != len(codes):
            why = f"not implemented: {missing}" if missing else "empty or repeated"
            raise DataError(f"distortion_classes: distortions {distortions!r} ({why})")
        self.codes: tuple[str, ...] = tuple(codes)
        self.length, self.size, self.min_std = int(length), int(size), float(min_std)
        self.source, self.split, self.seed = source, split, int(seed)
        self.root: Path | str | None = Path(root).expanduser() if root is not None else None
        self.distortion_names: dict[str, str] = {c: KADID_TYPES[c] for c in self.codes}

        names, loaders = self._references(source)
        if source == "skimage":
            self.root = "skimage.data"  # what run captions print as the data location
        if split != "all":
            parts = split_indices(names, "by_reference", train_fraction, 0.0, split_seed)
            if not parts[split]:
                raise DataError(
                    f"distortion_classes: split '{split}' gets no reference out of {len(names)} with "
                    f"train_fraction={train_fraction}; add references or use split: all"
                )
            keep = parts[split]
            names, loaders = [names[i] for i in keep], [loaders[i] for i in keep]
        self.ref_names: list[str] = names
        self.references: list[torch.Tensor] = []
        for name, load in zip(names, loaders, strict=True):
            img = load()
            if resize is not None:
                scale = resize / min(img.shape[-2:])
                hw = (max(resize, round(img.shape[-2] * scale)), max(resize, round(img.shape[-1] * scale)))
                img = F.interpolate(img[None], size=hw, mode="bilinear", antialias=True, align_corners=False)[0]
                img = img.clamp(0, 1)
            if min(img.shape[-2:]) < size:
                raise DataError(f"distortion_classes: reference {name} is {tuple(img.shape[-2:])}, smaller than size")
            self.references.append(img.contiguous())

    def _references(self, source: str) -> tuple[list[str], list[Any]]:
        if source == "skimage":
            return list(SKIMAGE_PHOTOS), [lambda n=n: _skimage_photo(n) for n in SKIMAGE_PHOTOS]
        if not isinstance(self.root, Path) or not self.root.is_dir():
            raise DataError(
                f"distortion_classes: reference folder '{self.root}' does not exist; set root to a folder of "
                "images, or source: skimage for scikit-image's bundled photos"
            )
        files = image_files(self.root)
        if not files:
            raise DataError(f"distortion_classes: no images ({', '.join(IMAGE_SUFFIXES)}) in '{self.root}'")
        return [p.name for p in files], [lambda p=p: load_rgb(p) for p in files]

    # ------------------------------------------------------------------------------------------------ labels
    @property
    def group_names(self) -> dict[str, str]:
        """Distortion code → name, for per-distortion tables."""
        return self.distortion_names

    @property
    def num_classes(self) -> int:
        return len(self.codes) * LEVELS

    def label(self, code: str, level: int) -> int:
        """Class index of KADID type ``code`` at ``level`` (1–5)."""
        return self.codes.index(code) * LEVELS + (level - 1)

    def decode(self, label: int) -> tuple[str, int]:
        """``(type code, level)`` of a class index."""
        return self.codes[label // LEVELS], label % LEVELS + 1

    # ------------------------------------------------------------------------------------------------- items
    def rng(self, index: int) -> torch.Generator:
        """The item's generator, keyed by (split, seed, epoch, index)."""
        key = f"distortion_classes:{self.split}:{self.seed}:{self.epoch}:{index}".encode()
        g = torch.Generator()
        g.manual_seed(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") & (2**63 - 1))
        return g

    def draw(self, index: int) -> DistortionDraw:
        """The random choices of item ``index`` in the current epoch (a fresh generator each call)."""
        g = self.rng(index)
        s = self.size
        for _ in range(_CROP_TRIES):
            ref = int(torch.randint(len(self.references), (1,), generator=g))
            h, w = self.references[ref].shape[-2:]
            top = int(torch.randint(h - s + 1, (1,), generator=g))
            left = int(torch.randint(w - s + 1, (1,), generator=g))
            crop = self.references[ref][:, top : top + s, left : left + s]
            if self.min_std <= 0 or float(crop.std()) >= self.min_std:
                break
        type_index = int(torch.randint(len(self.codes), (1,), generator=g))
        level = int(torch.randint(1, LEVELS + 1, (1,), generator=g))
        return DistortionDraw(ref, top, left, type_index, level, g)

    def clean(self, draw: DistortionDraw) -> torch.Tensor:
        """The undistorted crop ``[3, size, size]`` of a draw."""
        s = self.size
        return self.references[draw.ref][:, draw.top : draw.top + s, draw.left : draw.left + s]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"distortion_classes: index {index} out of range for length {self.length}")
        d = self.draw(index)
        code = self.codes[d.type_index]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one small image: extra intra-op threads only add contention (~40x slower)
        try:
            image = apply_distortion(code, self.clean(d), d.level, d.generator)
        finally:
            torch.set_num_threads(threads)
        return {
            "input": image.contiguous(),
            "target": torch.tensor(d.type_index * LEVELS + d.level - 1, dtype=torch.long),
            "meta": {
                "name": f"{self.ref_names[d.ref]}@{d.top},{d.left}",
                "ref": self.ref_names[d.ref],
                "distortion": code,
                "level": d.level,
            },
        }

    def __repr__(self) -> str:
        return (
            f"DistortionClasses({self.root}, split={self.split}, refs={len(self.references)}, n={self.length}, "
            f"classes={self.num_classes})"
        )
