"""Super-resolution datasets: DIV2K and the common benchmark layout, paired or HR-only.

Layouts (unmodified archives)::

    DIV2K:      ROOT/DIV2K_train_HR/0001.png … 0800.png      ROOT/DIV2K_train_LR_bicubic/X4/0001x4.png …
                ROOT/DIV2K_valid_HR/0801.png … 0900.png      ROOT/DIV2K_valid_LR_bicubic/X4/0801x4.png …
    benchmark:  ROOT/HR/baby.png …                           ROOT/LR_bicubic/X4/babyx4.png …   (Set5, Set14, B100,
                                                                                                Urban100)
    HR only:    ROOT/HR/*.png or ROOT/*.png                  LR made here (``lr: bicubic``)

``lr: auto`` reads the LR files when their folder exists and otherwise makes LR from HR with MATLAB-compatible
bicubic downsampling (antialiased; BasicSR's ``matlab_functions.imresize``), rounded to 8 bits as the official
LR PNGs are. HR images are cropped to ``scale × LR`` (BasicSR's ``mod_crop``). LR names may carry the ``x{s}``
suffix (``0001x4.png``) or not.

Items follow :mod:`distill.data.base`: ``{"input": LR [3, h, w], "target": HR [3, s·h, s·w], "meta": {"name",
"dataset"}}`` in [0, 1]. With ``patch_size: P`` an item is a random P×P LR patch and its aligned sP×sP HR patch;
with ``augment`` it is flipped horizontally, vertically and transposed, each with probability ½ (BasicSR's
``augment``: the 8 flips/rotations). Both draw only from the per-item generator (seed, epoch, index).
``repeat: R`` lists every image R times per epoch (BasicSR's ``dataset_enlarge_ratio``). ``cache`` keeps decoded
pairs in memory as 8-bit tensors; LR images made by bicubic downsampling are always kept (they are slow to make).

``format``: ``files`` (Pillow, the default), ``torchvision`` (``torchvision.io.decode_image``, Pillow where it does
not work) or ``store``: the decoded uint8 memory-mapped store that ``distill data prepare div2k ROOT --set scale=S``
writes (:mod:`distill.data.store`). From the store a training patch is sliced out of the memory map, so no image is
decoded per patch; patches and flips are drawn exactly as from the files (the same items, bit for bit).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from distill.data.base import SeededDataset, batch_of_one
from distill.data.images import header_size, image_files, load_rgb_with
from distill.data.store import ImageStore, check_format
from distill.errors import DataError
from distill.registry import DATASETS

__all__ = ["DIV2K", "SRBenchmark", "SRDataset", "SRSample", "bicubic_downsample"]

SYNTHETIC_MARKER = "SYNTHETIC.json"
LRMode = Literal["auto", "files", "bicubic"]


def bicubic_downsample(hr: Tensor, scale: int) -> Tensor:
    """MATLAB ``imresize(hr, 1/scale, 'bicubic')`` (antialiased) of ``[3, H, W]`` in [0, 1], rounded to 8 bits.

    ``H`` and ``W`` must be multiples of ``scale``. Uses BasicSR's ``matlab_functions.imresize``.
    """
    from distill._compat import import_basicsr

    import_basicsr()
    from basicsr.utils.matlab_functions import imresize

    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} is not a multiple of the scale {scale}; mod-crop it first")
    lr = imresize(hr.float().cpu(), 1.0 / scale)
    return (lr.clamp(0, 1) * 255).round() / 255


@dataclass(frozen=True)
class SRSample:
    """One image of a set: its name (file stem), HR file and LR file (``None``: made by bicubic downsampling)."""

    name: str
    hr: Path
    lr: Path | None


def check_lr_size(lr: object, lr_hw: tuple[int, int], hr: object, hr_hw: tuple[int, int], scale: int) -> None:
    """An LR file must be its HR image divided by ``scale``, rounded down (the HR is then mod-cropped to
    ``scale x LR``, as BasicSR does); anything else is a DataError naming the LR file (a smaller LR would pair with
    the HR's top-left corner only: a misaligned pair, trained on silently)."""
    (lh, lw), (h, w) = lr_hw, hr_hw
    if (lh, lw) == (h // scale, w // scale):
        return
    relation = "times scale {scale} exceeds" if lh * scale > h or lw * scale > w else "is not"
    raise DataError(
        f"{lr}: LR image {lh}x{lw} {relation.format(scale=scale)} its HR image {hr} ({h}x{w})"
        + ("" if "exceeds" in relation else f" divided by scale {scale} ({h // scale}x{w // scale})")
        + "; is the scale right (X2/X3/X4 folder)?"
    )


def _images(folder: Path) -> list[Path]:
    return image_files(folder)


def _to_uint8(x: Tensor) -> Tensor:
    return (x * 255).round().to(torch.uint8)


def _chw_uint8(a: np.ndarray) -> Tensor:
    """A contiguous ``[3, H, W]`` copy of uint8 ``[H, W, 3]`` (a memory-map view): one strided copy."""
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def _chw_float(a: np.ndarray) -> Tensor:
    """uint8 ``[H, W, 3]`` (a memory-map view) → float ``[3, H, W]`` in [0, 1], as :func:`load_rgb` computes it."""
    return torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1).contiguous() / 255


class SRDataset(SeededDataset):
    """Base of the SR readers: HR/LR pairs, mod-crop, optional bicubic LR, seeded patches and flips.

    Subclasses implement :meth:`_scan` (the layout → samples) and set :attr:`title`.
    """

    title: ClassVar[str] = "SR dataset"
    #: What the captions say about a synthetic stand-in of this layout.
    synthetic_note: ClassVar[str] = "HR crops of scikit-image's photos with bicubic LR, not the real images"

    def __init__(
        self,
        root: str,
        scale: int = 4,
        patch_size: int | None = None,
        augment: bool = False,
        repeat: int = 1,
        lr: LRMode = "auto",
        limit: int | None = None,
        cache: bool = True,
        format: str = "files",
    ) -> None:
        self.format = check_format(self.title, format)
        if isinstance(scale, bool) or int(scale) != scale or scale < 1:
            raise DataError(f"{self.title}: scale must be a positive integer, got {scale!r}")
        if patch_size is not None and (isinstance(patch_size, bool) or int(patch_size) != patch_size or patch_size < 1):
            raise DataError(f"{self.title}: patch_size must be a positive integer or null, got {patch_size!r}")
        if int(repeat) != repeat or repeat < 1:
            raise DataError(f"{self.title}: repeat must be a positive integer, got {repeat!r}")
        if lr not in ("auto", "files", "bicubic"):
            raise DataError(f"{self.title}: lr '{lr}' is not one of auto, files, bicubic")
        self.root = Path(root).expanduser()
        self.scale, self.patch_size, self.augment = int(scale), patch_size, bool(augment)
        self.repeat, self.lr_mode, self.cache = int(repeat), lr, bool(cache)
        if not self.root.is_dir():
            raise DataError(f"{self.title}: root '{self.root}' does not exist or is not a folder. {self.hint()}")
        samples = self._scan()
        if limit is not None:
            if limit < 1:
                raise DataError(f"{self.title}: limit must be >= 1, got {limit}")
            samples = samples[:limit]
        if not samples:
            raise DataError(f"{self.title}: no images found under {self.root}. {self.hint()}")
        self.samples = samples
        self._cache: dict[int, tuple[Tensor, Tensor]] = {}
        self._made_lr: dict[int, Tensor] = {}
        self._store: ImageStore | None = None
        if self.format == "store":
            files = [p for s in samples for p in (s.hr, s.lr) if p is not None]
            self._store = ImageStore(self.root, self.prepare_command()).check(files)

    # ------------------------------------------------------------------------------------------ subclass API
    def _scan(self) -> list[SRSample]:
        raise NotImplementedError

    def hint(self) -> str:
        """What to do when the data are missing."""
        return "Point root at the unpacked dataset"

    def prepare_command(self) -> str:
        """The command that writes the ``format: store`` store this reader needs."""
        return f"distill data prepare sr_benchmark {self.root} --set scale={self.scale}"

    # ---------------------------------------------------------------------------------------------- helpers
    @property
    def is_synthetic(self) -> bool:
        """True for stand-ins written by :mod:`distill.data.sr.synthetic` (marker in the root or its parent)."""
        return (self.root / SYNTHETIC_MARKER).is_file() or (self.root.parent / SYNTHETIC_MARKER).is_file()

    @property
    def lr_source(self) -> str:
        """``"files"`` or ``"bicubic"`` (how this set's LR images are obtained), for captions."""
        return "bicubic" if any(s.lr is None for s in self.samples) else "files"

    def pair_samples(self, hr_dir: Path, lr_dir: Path, suffix: str) -> list[SRSample]:
        """Samples of ``hr_dir`` with their LR file in ``lr_dir`` (or none, per :attr:`lr_mode`)."""
        hrs = _images(hr_dir)
        use_files = self.lr_mode == "files" or (self.lr_mode == "auto" and lr_dir.is_dir())
        if not use_files:
            return [SRSample(p.stem, p, None) for p in hrs]
        if not lr_dir.is_dir():
            raise DataError(f"{self.title}: LR folder '{lr_dir}' is missing (lr: files). Use lr: bicubic to make LR")
        by_name = {p.name.lower(): p for p in _images(lr_dir)}
        samples, missing = [], []
        for p in hrs:
            names = (f"{p.stem}{suffix}{p.suffix}", f"{p.stem}{p.suffix}")
            found = next((by_name[n.lower()] for n in names if n.lower() in by_name), None)
            if found is None:
                missing.append(str(lr_dir / names[0]))
            samples.append(SRSample(p.stem, p, found))
        if missing:
            raise DataError(
                f"{self.title}: {len(missing)} LR image(s) missing, e.g. {missing[0]}. Restore them from the archive "
                "or set lr: bicubic to make every LR image from its HR image"
            )
        used = {s.lr for s in samples}
        orphans = [p for p in by_name.values() if p not in used]
        if orphans:  # the LR folder lists an image whose HR file is gone: a broken extraction, not a smaller set
            stem = orphans[0].stem.removesuffix(suffix)
            raise DataError(
                f"{self.title}: {len(orphans)} LR image(s) without their HR image, e.g. {orphans[0]} "
                f"({hr_dir / (stem + orphans[0].suffix)} not found). Restore the HR images from the archive"
            )
        return samples

    def _stored_pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(LR, HR) of sample ``i`` as uint8 ``[h, w, 3]`` memory-map views (``format: store``), HR mod-cropped."""
        assert self._store is not None
        s, sc = self.samples[i], self.scale
        hr = self._store.array(s.hr)
        h, w = hr.shape[:2]
        if s.lr is None:
            hr = hr[: h - h % sc, : w - w % sc]
            if i not in self._made_lr:
                self._made_lr[i] = _to_uint8(bicubic_downsample(_chw_float(hr), sc))
            return self._made_lr[i].permute(1, 2, 0).numpy(), hr
        lr = self._store.array(s.lr)
        lh, lw = lr.shape[:2]
        check_lr_size(s.lr, (lh, lw), s.hr, (h, w), sc)
        return lr, hr[: lh * sc, : lw * sc]

    def load_pair(self, i: int) -> tuple[Tensor, Tensor]:
        """(LR, HR) of sample ``i`` as float ``[3, h, w]`` / ``[3, s·h, s·w]``, HR mod-cropped to fit."""
        if self._store is not None:
            lr_u8, hr_u8 = self._stored_pair(i)
            return _chw_float(lr_u8), _chw_float(hr_u8)
        if i in self._cache:
            lr, hr = self._cache[i]
            return lr.float() / 255, hr.float() / 255
        s = self.samples[i]
        hr = load_rgb_with(s.hr, self.format)
        h, w = hr.shape[-2:]
        if s.lr is None:
            hr = hr[:, : h - h % self.scale, : w - w % self.scale]
            if i not in self._made_lr:  # made once (MATLAB bicubic is slow), kept as 8 bits even without cache
                self._made_lr[i] = _to_uint8(bicubic_downsample(hr, self.scale))
            lr = self._made_lr[i].float() / 255
        else:
            lr = load_rgb_with(s.lr, self.format)
            lh, lw = lr.shape[-2:]
            check_lr_size(s.lr, (lh, lw), s.hr, (h, w), self.scale)
            hr = hr[:, : lh * self.scale, : lw * self.scale]
        if min(lr.shape[-2:]) < 1:
            raise DataError(f"{s.hr}: image of {h}x{w} is smaller than the scale {self.scale}")
        if self.cache:
            self._cache[i] = (_to_uint8(lr), _to_uint8(hr))
        return lr, hr

    # ---------------------------------------------------------------------------------------------- dataset

    def check_sizes(self, key: str, batch_size: int, batch_key: str) -> None:
        """Every HR image must be at least ``scale`` (and ``patch_size × scale`` when training on patches); without
        patches the LR sizes must agree to batch."""
        scale, patch = self.scale, self.patch_size
        first: tuple[Path, tuple[int, int]] | None = None
        for sample in self.samples:
            path = Path(sample.hr)
            size = header_size(path)
            if size is None:
                continue
            h, w = size
            if min(h, w) < scale:
                raise DataError(f"{key}: HR image {path} is {h}×{w}, smaller than the scale {scale}; remove it")
            lr_size = header_size(Path(sample.lr)) if sample.lr is not None else None
            if lr_size is not None:
                check_lr_size(sample.lr, lr_size, path, size, scale)
            if patch is not None and min(h, w) < patch * scale:
                raise DataError(
                    f"{key}: HR image {path} is {h}×{w}, smaller than patch_size {patch} × scale {scale}; lower "
                    f"{key}.args.patch_size or remove the image"
                )
            if patch is not None or batch_size == 1:
                continue
            if first is None:
                first = (path, size)
            elif (h // scale, w // scale) != (first[1][0] // scale, first[1][1] // scale):
                raise DataError(
                    f"{key}: images differ in size ({first[0]} is {first[1][0]}×{first[1][1]}, {path} is {h}×{w}) "
                    f"and patch_size is null, so a batch of {batch_size} cannot be stacked; {batch_of_one(batch_key)}"
                )

    def __len__(self) -> int:
        return len(self.samples) * self.repeat

    def __getitem__(self, index: int) -> dict:
        i = index % len(self.samples)
        g = self.rng(index)
        if self.patch_size is not None:
            p, s = self.patch_size, self.scale
            stored = self._stored_pair(i) if self._store is not None else None
            lr, hr = (None, None) if stored else self.load_pair(i)
            h, w = stored[0].shape[:2] if stored else lr.shape[-2:]  # type: ignore[union-attr]
            if h < p or w < p:
                raise DataError(
                    f"{self.samples[i].hr}: LR image {h}x{w} is smaller than patch_size {p}; lower patch_size"
                )
            top = int(torch.randint(0, h - p + 1, (), generator=g))
            left = int(torch.randint(0, w - p + 1, (), generator=g))
            if stored:  # slice the memory map (only the patch's bytes are read); flip as uint8, then convert
                lr_u8 = _chw_uint8(stored[0][top : top + p, left : left + p])
                hr_u8 = _chw_uint8(stored[1][top * s : (top + p) * s, left * s : (left + p) * s])
                if self.augment:
                    hflip, vflip, transpose = (torch.rand(3, generator=g) < 0.5).tolist()
                    lr_u8, hr_u8 = (_augment(t, hflip, vflip, transpose) for t in (lr_u8, hr_u8))
                return {
                    "input": lr_u8.contiguous().float() / 255,
                    "target": hr_u8.contiguous().float() / 255,
                    "meta": {"name": self.samples[i].name, "dataset": self.title},
                }
            lr = lr[:, top : top + p, left : left + p]  # type: ignore[index]
            hr = hr[:, top * s : (top + p) * s, left * s : (left + p) * s]  # type: ignore[index]
        else:
            lr, hr = self.load_pair(i)
        if self.augment:
            hflip, vflip, transpose = (torch.rand(3, generator=g) < 0.5).tolist()
            lr, hr = (_augment(t, hflip, vflip, transpose) for t in (lr, hr))
        return {
            "input": lr.contiguous(),
            "target": hr.contiguous(),
            "meta": {"name": self.samples[i].name, "dataset": self.title},
        }


def _augment(x: Tensor, hflip: bool, vflip: bool, transpose: bool) -> Tensor:
    if hflip:
        x = x.flip(-1)
    if vflip:
        x = x.flip(-2)
    if transpose:
        x = x.transpose(-2, -1)
    return x


@DATASETS.register("div2k")
class DIV2K(SRDataset):
    """DIV2K (official layout: DIV2K_{train,valid}_HR/ and DIV2K_{train,valid}_LR_bicubic/X{s}/), LR→HR pairs.

    ``split``: ``train`` (0001–0800) or ``valid`` (0801–0900). Training recipes set ``patch_size`` (LR side, the
    paper's 48, 64 for SwinIR), ``augment: true`` and ``repeat``. Other options: :class:`SRDataset`.
    """

    title = "DIV2K"

    def __init__(
        self,
        root: str,
        split: Literal["train", "valid"] = "train",
        scale: int = 4,
        patch_size: int | None = None,
        augment: bool = False,
        repeat: int = 1,
        lr: LRMode = "auto",
        limit: int | None = None,
        cache: bool = False,
        format: str = "files",
    ) -> None:
        if split not in ("train", "valid"):
            raise DataError(f"DIV2K: split '{split}' is not one of train, valid")
        self.split = split
        super().__init__(root, scale, patch_size, augment, repeat, lr, limit, cache, format)

    def prepare_command(self) -> str:
        return f"distill data prepare div2k {self.root} --set split={self.split} --set scale={self.scale}"

    def hint(self) -> str:
        return (
            f"Unpack DIV2K_{self.split}_HR.zip (and DIV2K_{self.split}_LR_bicubic_X{self.scale}.zip) there, or write "
            f"a synthetic stand-in with `distill data div2k {self.root}`"
        )

    def _scan(self) -> list[SRSample]:
        hr_dir = self.root / f"DIV2K_{self.split}_HR"
        if not hr_dir.is_dir():
            raise DataError(f"DIV2K: no {hr_dir.name}/ folder in '{self.root}'. {self.hint()}")
        lr_dir = self.root / f"DIV2K_{self.split}_LR_bicubic" / f"X{self.scale}"
        return self.pair_samples(hr_dir, lr_dir, f"x{self.scale}")


@DATASETS.register("sr_benchmark")
class SRBenchmark(SRDataset):
    """An SR test set in the benchmark layout (HR/, LR_bicubic/X{s}/*x{s}.png) or a folder of HR images only.

    ``root`` is one set's folder (``.../Set5``); its name titles the tables. Without ``LR_bicubic/X{s}`` (or with
    ``lr: bicubic``) LR images are made by MATLAB-compatible bicubic downsampling. Whole images by default;
    ``patch_size``/``augment`` also work (to train on a folder of HR photos). Options: :class:`SRDataset`.
    """

    title = "SR benchmark"
    _SETS: ClassVar[dict[str, str]] = {"set5": "Set5", "set14": "Set14", "b100": "B100", "bsd100": "B100"}

    def __init__(
        self,
        root: str,
        scale: int = 4,
        patch_size: int | None = None,
        augment: bool = False,
        repeat: int = 1,
        lr: LRMode = "auto",
        limit: int | None = None,
        cache: bool = True,
        name: str | None = None,
        format: str = "files",
    ) -> None:
        folder = Path(root).expanduser().name
        self.title = name or self._SETS.get(folder.lower(), folder)  # type: ignore[misc]
        super().__init__(root, scale, patch_size, augment, repeat, lr, limit, cache, format)

    def hint(self) -> str:
        return (
            "Expected HR/ and LR_bicubic/X{s}/ (the common benchmark layout) or a folder of HR images; write a "
            f"synthetic stand-in with `distill data sr_benchmark {self.root.parent}`".replace("{s}", str(self.scale))
        )

    def _scan(self) -> list[SRSample]:
        hr_dir = next((d for d in (self.root / "HR", self.root / "hr") if d.is_dir()), None)
        lr_dir = self.root / "LR_bicubic" / f"X{self.scale}"
        if hr_dir is None:
            if not _images(self.root):
                raise DataError(f"{self.title}: no HR/ folder and no images in '{self.root}'. {self.hint()}")
            if self.lr_mode == "files":
                raise DataError(f"{self.title}: '{self.root}' holds HR images only; use lr: bicubic or lr: auto")
            return [SRSample(p.stem, p, None) for p in _images(self.root)]
        return self.pair_samples(hr_dir, lr_dir, f"x{self.scale}")
