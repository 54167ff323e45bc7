"""What every IQA reader shares: split selection, type filter, corrupt-file policy, seeded crops and patches.

A reader subclasses :class:`IQADataset`, sets the class attributes that name it, and implements :meth:`_scan`
(the official layout → a list of samples) and, where it has distortion types, :meth:`type_code`.  A sample is any
object with ``name``, ``path``, ``ref``, ``distortion``, ``level`` and ``score`` (see :class:`IQASample`).

Items follow :mod:`distill.data.base`::

    {"input": Tensor[3, c, c] (or [P, 3, c, c] outside train with patches=P > 1), "target": float32 scalar score,
     "meta": {"name": str, "distortion": str, "level": int, "ref": str}}
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from distill.data.base import SeededDataset, batch_of_one
from distill.data.images import header_size, load_rgb_with, verify_image
from distill.data.splits import split_indices
from distill.data.store import ImageStore, check_format
from distill.errors import DataError, DistillError, RegistryError

SYNTHETIC_MARKER = "SYNTHETIC.json"
SPLITS = ("train", "val", "test", "all")
PATCH_LAYOUTS = ("grid", "random")


class IQASample(Protocol):
    """The fields an IQA reader's sample must expose."""

    @property
    def name(self) -> str: ...  # as listed in the label file
    @property
    def path(self) -> Path: ...  # the file found on disk
    @property
    def ref(self) -> str: ...  # reference (content) id; the image's own name when there is none
    @property
    def distortion(self) -> str: ...  # type code, "none" for authentic distortions
    @property
    def level(self) -> int: ...  # 1 … 5, 0 for authentic distortions
    @property
    def score(self) -> float: ...  # the quality label (higher = better)


def find_child(parent: Path, name: str, *, directory: bool) -> Path | None:
    """``parent / name`` matched case-insensitively (exact match first), or ``None``."""
    exact = parent / name
    if exact.is_dir() if directory else exact.is_file():
        return exact
    for child in sorted(parent.iterdir()):
        if child.name.lower() == name.lower() and (child.is_dir() if directory else child.is_file()):
            return child
    return None


def files_by_lower_name(folder: Path) -> dict[str, Path]:
    """The files directly in ``folder``, keyed by lower-cased name (archives mix ``.bmp``/``.BMP``, ``I``/``i``)."""
    return {p.name.lower(): p for p in sorted(folder.iterdir()) if p.is_file()}


def _seed_of(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") & (2**63 - 1)


class IQADataset(SeededDataset):
    """Base of the IQA readers: a scored image list with seeded splits, filters and crops.

    * ``split``: ``train``/``val``/``test`` of a seeded split (``split_mode="by_reference"``: no reference content
      shared between parts, and in a synthetic stand-in no source photo either (:meth:`photo_groups`);
      ``"random"``: the per-image split of the papers) or ``all``.  ``val_fraction`` is carved from the training
      part (:func:`~distill.data.splits.split_indices`).
    * ``crop``: a random ``crop``×``crop`` window in train, the centre one elsewhere; ``hflip`` flips at random in
      train.  Both draw only from :meth:`rng` (seed, epoch, index).  ``crop=None`` returns the whole image.
    * ``patches`` (the HyperIQA protocol of its authors' code, github.com/SSL92/hyperIQA, needs ``crop``): with
      P > 1, in train every image is listed P times per epoch and each listing is its own random ``crop``² patch
      (own flip, own loss term, drawn anew each epoch), so an epoch has P × images items; elsewhere the input is
      ``[P, 3, crop, crop]`` and models average the P scores.  ``patch_layout="grid"`` (default) takes the
      evaluation patches on a fixed uniform √P × √P grid spanning the image (P must be a square), after
      upscaling the image bilinearly to a short side of ``crop + 1`` when it is ``<= crop`` (as IQA-PyTorch's
      ``uniform_crop``); ``"random"`` takes P seeded random crops per image (the authors' test code draws 25
      random crops; here they are seeded by the image name only, so every epoch, run and checkpoint sees the same).
    * ``distortions``: keep only these type codes/names.
    * ``on_corrupt="skip"`` verifies the chosen files at construction and drops undecodable ones (listed in
      :attr:`corrupt_files`) instead of raising :class:`DataError` when an item is read.
    * ``format``: ``files`` (Pillow), ``torchvision`` (``torchvision.io.decode_image``, Pillow where it does not work
      here) or ``store``: the decoded uint8 memory-mapped store written by ``distill data prepare KEY ROOT``
      (:mod:`distill.data.store`), checked at construction (missing, truncated or stale: one line naming the command).
    """

    #: registry name, the prefix of messages (``"kadid10k"``)
    key: ClassVar[str] = "iqa"
    #: the official dataset name (``"KADID-10k"``)
    title: ClassVar[str] = "IQA dataset"
    #: What the captions say about a synthetic stand-in of this layout.
    synthetic_note: ClassVar[str] = "objective pseudo-MOS, not human scores"
    #: :attr:`label_kind` of the real dataset
    human_label_kind: ClassVar[str] = "MOS (human)"
    #: type code → name
    type_names: ClassVar[Mapping[str, str]] = {}
    #: folders an archive may unpack into, suggested when ``root`` is wrong
    nested_names: ClassVar[tuple[str, ...]] = ()
    #: what to do when the data are missing; ``{root}`` is filled in
    hint: ClassVar[str] = "Point root at the unpacked dataset"

    samples: list[Any]

    def __init__(
        self,
        root: str,
        split: str = "train",
        split_mode: str = "by_reference",
        train_fraction: float = 0.8,
        val_fraction: float = 0.0,
        split_seed: int = 0,
        crop: int | None = None,
        hflip: bool = False,
        distortions: list[str] | None = None,
        on_corrupt: str = "error",
        patches: int = 1,
        patch_layout: str = "grid",
        format: str = "files",
    ) -> None:
        key = self.key
        self.format = check_format(key, format)
        if split not in SPLITS:
            raise DataError(f"{key}: split '{split}' is not one of {', '.join(SPLITS)}")
        if on_corrupt not in ("error", "skip"):
            raise DataError(f"{key}: on_corrupt '{on_corrupt}' is not one of error, skip")
        if crop is not None and (isinstance(crop, bool) or int(crop) != crop or crop <= 0):
            raise DataError(f"{key}: crop must be a positive integer or null, got {crop!r}")
        if isinstance(patches, bool) or int(patches) != patches or patches < 1:
            raise DataError(f"{key}: patches must be a positive integer, got {patches!r}")
        if patches > 1 and crop is None:
            raise DataError(f"{key}: patches={patches} needs a crop size (e.g. crop: 224)")
        if patch_layout not in PATCH_LAYOUTS:
            raise DataError(f"{key}: patch_layout '{patch_layout}' is not one of {', '.join(PATCH_LAYOUTS)}")
        if patch_layout == "grid" and split != "train" and math.isqrt(int(patches)) ** 2 != patches:
            raise DataError(
                f"{key}: patches={patches} on a grid needs a square number (4, 9, 16, 25, …); "
                "change patches or set patch_layout: random"
            )
        self.root = Path(root).expanduser()
        self.split, self.split_mode, self.split_seed = split, split_mode, int(split_seed)
        self.train_fraction, self.val_fraction = float(train_fraction), float(val_fraction)
        self.crop, self.hflip, self.on_corrupt = (int(crop) if crop is not None else None), bool(hflip), on_corrupt
        self.patches, self.patch_layout = int(patches), patch_layout
        self.training = split == "train"
        self.distortion_names: dict[str, str] = dict(self.type_names)
        self.corrupt_files: list[str] = []

        all_samples = self._scan()
        if split == "all":
            chosen = all_samples
        else:
            refs = [s.ref for s in all_samples]
            groups = self.photo_groups(refs)
            parts = split_indices(
                refs, split_mode, self.train_fraction, self.val_fraction, self.split_seed, groups or None
            )
            if not parts[split]:
                why = "val_fraction is 0" if split == "val" else "train_fraction is 1"
                raise DataError(
                    f"{key}: split '{split}' is empty because {why}; change the fractions or pick another split"
                )
            chosen = [all_samples[i] for i in parts[split]]
        if distortions is not None:
            try:
                wanted = {self.type_code(d) for d in distortions}
            except DistillError as err:
                raise DataError(f"{key}: distortions: {err}") from None
            chosen = [s for s in chosen if s.distortion in wanted]
            if not chosen:
                raise DataError(f"{key}: no images of types {sorted(wanted)} in split '{split}' under {self.root}")
        if on_corrupt == "skip":
            kept = []
            for s in chosen:
                if verify_image(s.path) is None:
                    kept.append(s)
                else:
                    self.corrupt_files.append(str(s.path))
            if not kept:
                raise DataError(f"{key}: every image of split '{split}' under {self.root} is corrupt")
            chosen = kept
        self.samples = chosen
        self._store: ImageStore | None = None
        if self.format == "store":
            rebuild = f"distill data prepare {key} {self.root}"
            self._store = ImageStore(self.root, rebuild).check([s.path for s in chosen])

    # ------------------------------------------------------------------------------------------ subclass API
    def _scan(self) -> list[Any]:
        """Read the official layout under :attr:`root` into samples (all of them, in label-file order)."""
        raise NotImplementedError

    def type_code(self, name_or_code: str | int) -> str:
        """Normalise a distortion type given by code or name (:attr:`distortion_names`) to its code."""
        key = str(name_or_code).strip().lower()
        for code, name in self.distortion_names.items():
            if key in (code.lower(), name.lower()) or (key.isdigit() and code.isdigit() and int(key) == int(code)):
                return code
        valid = ", ".join(f"{c} {n}" for c, n in self.distortion_names.items())
        raise RegistryError(f"unknown {self.title} distortion type '{name_or_code}'. Valid: {valid}")

    def _check_root(self) -> Path:
        """:attr:`root` if it is a folder, else a :class:`DataError` suggesting a nested folder and the hint."""
        root = self.root
        if not root.is_dir():
            raise DataError(
                f"{self.title} root '{root}' does not exist or is not a folder{self._nested_hint()}. "
                + self.hint.format(root=root)
            )
        return root

    def _nested_hint(self) -> str:
        """`` (did you mean ROOT/<archive folder>?)`` when the archive's own folder sits inside :attr:`root`."""
        nested = [p for p in (self.root / n for n in self.nested_names) if p.is_dir()]
        return f" (did you mean {nested[0]}?)" if nested else ""

    def _no_folder(self, name: str) -> DataError:
        """The error for a missing top-level folder of the layout."""
        where = f"'{self.root}'{self._nested_hint()}"
        return DataError(f"{self.title}: no {name}/ folder in {where}. " + self.hint.format(root=self.root))

    def _missing(self, what: list[Path], listed_in: Path) -> DataError:
        more = f" and {len(what) - 1} more" if len(what) > 1 else ""
        return DataError(
            f"{self.title}: {what[0]}{more} listed in {listed_in} not found. Re-extract the archive into "
            f"'{self.root}' (or rewrite the synthetic set with `distill data {self.key} {self.root} "
            "--set overwrite=true`)"
        )

    # ---------------------------------------------------------------------------------------------- metadata
    @property
    def synthetic_info(self) -> dict[str, Any] | None:
        """Parameters from ``SYNTHETIC.json`` when this is a synthetic stand-in, else ``None``."""
        marker = self.root / SYNTHETIC_MARKER
        if not marker.is_file():
            return None
        try:
            return dict(json.loads(marker.read_text()))
        except (OSError, ValueError, TypeError):
            return {"synthetic": True, "note": f"{marker} is unreadable"}

    @property
    def is_synthetic(self) -> bool:
        return (self.root / SYNTHETIC_MARKER).is_file()

    def photo_groups(self, refs: list[str]) -> dict[str, str]:
        """Reference → the photo it was cropped from, for a synthetic stand-in whose ``SYNTHETIC.json`` records it
        (``references`` or ``crops``: ``{name: {"photo": ...}}``, matched case-insensitively); empty for a real
        dataset.  The ``by_reference`` split keeps each photo's references on one side with it."""
        info = self.synthetic_info or {}
        recorded = info.get("references") or info.get("crops") or {}
        if not isinstance(recorded, dict):
            return {}
        photo = {
            str(name).lower(): str(src["photo"])
            for name, src in recorded.items()
            if isinstance(src, dict) and "photo" in src
        }
        return {r: photo[r.lower()] for r in set(refs) if r.lower() in photo}

    @property
    def group_names(self) -> dict[str, str]:
        """Distortion code → name, for per-distortion tables."""
        return self.distortion_names

    @property
    def label_kind(self) -> str:
        """What the targets are, for report headers."""
        return "objective pseudo-MOS (synthetic, not human scores)" if self.is_synthetic else self.human_label_kind

    @property
    def num_corrupt(self) -> int:
        """How many images were skipped as corrupt (``on_corrupt="skip"``)."""
        return len(self.corrupt_files)

    @property
    def targets(self) -> list[float]:
        return [s.score for s in self.samples]

    @property
    def items_per_image(self) -> int:
        """How many items each image gives per epoch: ``patches`` in train (one patch each), else 1."""
        return self.patches if self.training else 1

    def check_sizes(self, key: str, batch_size: int, batch_key: str) -> None:
        """Every image must be at least ``crop``; with ``crop: null`` all must be one size to batch."""
        first: tuple[Path, tuple[int, int]] | None = None
        for path in (Path(s.path) for s in self.samples):
            size = header_size(path)
            if size is None:
                continue
            h, w = size
            if self.crop is not None and min(h, w) < self.crop:
                raise DataError(
                    f"{key}: image {path} is {h}×{w}, smaller than crop={self.crop}; lower {key}.args.crop or "
                    "remove the image"
                )
            if self.crop is not None or batch_size == 1:
                continue
            if first is None:
                first = (path, size)
            elif size != first[1]:
                fix = (
                    f"set {key}.args.crop (e.g. --set {key}.args.crop=224) or {batch_key}: 1"
                    if key.startswith("data.")  # a recipe's split; a command's dataset takes no crop
                    else batch_of_one(batch_key)
                )
                raise DataError(
                    f"{key}: images differ in size ({first[0]} is {first[1][0]}×{first[1][1]}, {path} is {h}×{w}) "
                    f"and crop is null, so a batch of {batch_size} cannot be stacked; {fix}"
                )

    def __len__(self) -> int:
        return len(self.samples) * self.items_per_image

    def __repr__(self) -> str:
        kind = "synthetic " if self.is_synthetic else ""
        return f"{type(self).__name__}({kind}{self.root}, split={self.split}, mode={self.split_mode}, n={len(self)})"

    # ------------------------------------------------------------------------------------------------- items
    def _read(self, path: Path) -> torch.Tensor:
        """The image at ``path`` as float ``[3, H, W]`` in [0, 1], from the files or the store (``format``)."""
        if self._store is not None:
            return torch.from_numpy(np.array(self._store.array(path), dtype=np.float32)).permute(2, 0, 1) / 255
        return load_rgb_with(path, self.format)

    def _load(self, index: int) -> tuple[int, torch.Tensor]:
        if self.on_corrupt == "error":
            try:
                return index, self._read(self.samples[index].path)
            except DataError as err:
                where = "data.train" if self.training else "data.eval.<split>"
                raise DataError(
                    f"{self.key}: {err}, or skip and count corrupt images with on_corrupt: skip in the dataset's "
                    f"args (e.g. --set {where}.args.on_corrupt=skip)"
                ) from None
        for step in range(len(self.samples)):  # skip mode: a file that passed verify() but fails to decode
            i = (index + step) % len(self.samples)
            try:
                return i, self._read(self.samples[i].path)
            except DataError:
                if str(self.samples[i].path) not in self.corrupt_files:
                    self.corrupt_files.append(str(self.samples[i].path))
        raise DataError(f"{self.key}: no decodable image left in split '{self.split}' under {self.root}")

    def _augment(self, img: torch.Tensor, index: int, sample: Any) -> torch.Tensor:
        c = self.crop
        h, w = img.shape[-2:]
        if self.patches > 1 and not self.training:
            assert c is not None
            return self._eval_patches(img, c, sample)
        if c is not None and (h < c or w < c):
            raise DataError(f"{self.key}: image {sample.path} is {h}×{w}, smaller than crop={c}; lower crop")
        g = self.rng(index) if self.training and (c or self.hflip) else None
        if c is not None:
            if g is not None:
                top = int(torch.randint(0, h - c + 1, (1,), generator=g))
                left = int(torch.randint(0, w - c + 1, (1,), generator=g))
            else:
                top, left = (h - c) // 2, (w - c) // 2
            img = img[:, top : top + c, left : left + c]
        if self.hflip and g is not None and float(torch.rand(1, generator=g)) < 0.5:
            img = img.flip(-1)
        return img.contiguous()

    def _eval_patches(self, img: torch.Tensor, c: int, sample: Any) -> torch.Tensor:
        """The ``[P, 3, c, c]`` evaluation patches of one image (see ``patch_layout``); the same on every call."""
        h, w = img.shape[-2:]
        if self.patch_layout == "random":  # seeded by the image only: independent of epoch, run seed and split
            if h < c or w < c:
                raise DataError(f"{self.key}: image {sample.path} is {h}×{w}, smaller than crop={c}; lower crop")
            g = torch.Generator().manual_seed(_seed_of(f"eval-patches:{sample.name}:{c}"))
            corners = [
                (
                    int(torch.randint(0, h - c + 1, (1,), generator=g)),
                    int(torch.randint(0, w - c + 1, (1,), generator=g)),
                )
                for _ in range(self.patches)
            ]
        else:
            if min(h, w) <= c:  # upscale to a short side of c + 1, as IQA-PyTorch's uniform_crop does
                scale = (c + 1) / min(h, w)
                size = (max(c + 1, round(h * scale)), max(c + 1, round(w * scale)))
                img = F.interpolate(img[None], size=size, mode="bilinear", align_corners=False)[0]
                h, w = size
            n = math.isqrt(self.patches)
            tops = torch.linspace(0, h - c, n).round().long().tolist()
            lefts = torch.linspace(0, w - c, n).round().long().tolist()
            corners = [(t, s) for t in tops for s in lefts]
        return torch.stack([img[:, t : t + c, s : s + c] for t, s in corners]).contiguous()

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = index  # a train patch's own RNG stream; its image is index // patches
        index, img = self._load(index // self.items_per_image)
        s = self.samples[index]
        return {
            "input": self._augment(img, item, s),
            "target": torch.tensor(s.score, dtype=torch.float32),
            "meta": {"name": s.name, "distortion": s.distortion, "level": s.level, "ref": s.ref},
        }
