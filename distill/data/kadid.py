"""KADID-10k reader for the official, unmodified archive layout.

::

    ROOT/images/I01_01_01.png … I81_25_05.png    distorted: reference, type 01–25, level 01–05
    ROOT/images/I01.png … I81.png                 references
    ROOT/dmos.csv                                 header ``dist_img,ref_img,dmos,var``; DMOS 1–5, higher = better

Synthetic stand-ins written by :func:`distill.data.synthetic.write_synthetic_kadid` have the same layout plus a
``SYNTHETIC.json`` marker; their labels are objective pseudo-MOS (see :attr:`Kadid10k.label_kind`).
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill.data.base import SeededDataset
from distill.data.distortions import KADID_TYPES, kadid_code
from distill.data.images import load_rgb, verify_image
from distill.data.splits import split_indices
from distill.errors import DataError, DistillError
from distill.registry import DATASETS

_NAME_RE = re.compile(r"^(i)(\d+)_(\d{1,3})_(\d{1,3})\.([a-z0-9]+)$", re.IGNORECASE)
_HEADER = ("dist_img", "ref_img", "dmos", "var")
SYNTHETIC_MARKER = "SYNTHETIC.json"
_SPLITS = ("train", "val", "test", "all")
_HINT = (
    "Unpack the official KADID-10k archive there (it holds images/ and dmos.csv), or write a synthetic stand-in "
    "with `distill data kadid10k {root}`"
)


@dataclass(frozen=True)
class KadidSample:
    """One distorted image listed in ``dmos.csv``."""

    name: str  # as listed, e.g. "I01_01_01.png"
    path: Path  # the file found on disk (case-insensitive match)
    ref: str  # "I01"
    ref_path: Path
    distortion: str  # "01" … "25"
    level: int  # 1 … 5
    dmos: float
    var: float
    line: int  # line in dmos.csv


def parse_kadid_name(name: str) -> tuple[str, str, int] | None:
    """``"I01_07_03.png"`` → ``("I01", "07", 3)``; case-insensitive; ``None`` when the name is not KADID-shaped."""
    m = _NAME_RE.match(name.strip())
    if not m:
        return None
    return f"I{m.group(2)}", m.group(3).zfill(2), int(m.group(4))


def _find_child(parent: Path, name: str, *, directory: bool) -> Path | None:
    exact = parent / name
    if exact.is_dir() if directory else exact.is_file():
        return exact
    for child in sorted(parent.iterdir()):
        if child.name.lower() == name.lower() and (child.is_dir() if directory else child.is_file()):
            return child
    return None


def read_dmos_csv(path: Path) -> list[tuple[int, str, str, float, float]]:
    """Rows ``(line, dist_img, ref_img, dmos, var)`` of a KADID ``dmos.csv``; malformed content raises DataError."""
    rows: list[tuple[int, str, str, float, float]] = []
    seen: dict[str, int] = {}
    header_seen = False
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            for cells in reader:
                line = reader.line_num
                cells = [c.strip() for c in cells]
                while cells and not cells[-1]:
                    cells.pop()
                if not cells:
                    continue
                if not header_seen:
                    if tuple(c.lower() for c in cells) != _HEADER:
                        raise DataError(
                            f"{path}, line {line}: expected the header 'dist_img,ref_img,dmos,var', got "
                            f"'{','.join(cells)}'. Use the dmos.csv from the official KADID-10k archive"
                        )
                    header_seen = True
                    continue
                if len(cells) < 3:
                    raise DataError(
                        f"{path}, line {line}: expected 4 columns dist_img,ref_img,dmos,var, got '{','.join(cells)}'"
                    )
                dist, ref = cells[0], cells[1]
                try:
                    dmos = float(cells[2])
                except ValueError:
                    dmos = math.nan
                if not math.isfinite(dmos):
                    raise DataError(f"{path}, line {line}: dmos '{cells[2]}' of {dist} is not a finite number")
                try:
                    var = float(cells[3]) if len(cells) > 3 and cells[3] else math.nan
                except ValueError:
                    raise DataError(f"{path}, line {line}: var '{cells[3]}' of {dist} is not a number") from None
                key = dist.lower()
                if key in seen:
                    raise DataError(f"{path}, line {line}: {dist} is listed twice (first on line {seen[key]})")
                seen[key] = line
                rows.append((line, dist, ref, dmos, var))
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not a text CSV file ({err}); use the dmos.csv from the KADID-10k archive") from err
    except csv.Error as err:
        raise DataError(f"{path}: malformed CSV ({err})") from err
    if not header_seen:
        raise DataError(f"{path} is empty; expected the header 'dist_img,ref_img,dmos,var' and one row per image")
    if not rows:
        raise DataError(f"{path} lists no images")
    return rows


@DATASETS.register("kadid10k")
class Kadid10k(SeededDataset):
    """KADID-10k (official layout: images/Iaa_tt_ll.png + dmos.csv): 81 refs × 25 types × 5 levels, DMOS 1–5.

    ``split`` picks ``train``/``val``/``test`` of a seeded split (``by_reference``: no reference shared between
    parts; ``random``: the paper's per-image split) or ``all``.  ``val_fraction`` is carved from the training part.
    ``crop`` takes a random crop in train and a centre crop elsewhere; ``hflip`` flips at random in train; both draw
    only from :meth:`rng`.  ``distortions`` keeps the listed type codes.  ``on_corrupt="skip"`` verifies the split's
    files at construction and drops undecodable ones (see :attr:`num_corrupt`) instead of raising.
    """

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
    ) -> None:
        if split not in _SPLITS:
            raise DataError(f"kadid10k: split '{split}' is not one of {', '.join(_SPLITS)}")
        if on_corrupt not in ("error", "skip"):
            raise DataError(f"kadid10k: on_corrupt '{on_corrupt}' is not one of error, skip")
        if crop is not None and (isinstance(crop, bool) or int(crop) != crop or crop <= 0):
            raise DataError(f"kadid10k: crop must be a positive integer or null, got {crop!r}")
        self.root = Path(root).expanduser()
        self.split, self.split_mode, self.split_seed = split, split_mode, int(split_seed)
        self.train_fraction, self.val_fraction = float(train_fraction), float(val_fraction)
        self.crop, self.hflip, self.on_corrupt = (int(crop) if crop is not None else None), bool(hflip), on_corrupt
        self.training = split == "train"
        self.distortion_names: dict[str, str] = dict(KADID_TYPES)
        self.corrupt_files: list[str] = []

        all_samples = self._scan()
        if split == "all":
            chosen = all_samples
        else:
            parts = split_indices(
                [s.ref for s in all_samples], split_mode, self.train_fraction, self.val_fraction, self.split_seed
            )
            if not parts[split]:
                why = "val_fraction is 0" if split == "val" else "train_fraction is 1"
                raise DataError(
                    f"kadid10k: split '{split}' is empty because {why}; change the fractions or pick another split"
                )
            chosen = [all_samples[i] for i in parts[split]]
        if distortions is not None:
            try:
                wanted = {kadid_code(d) for d in distortions}
            except DistillError as err:
                raise DataError(f"kadid10k: distortions: {err}") from None
            chosen = [s for s in chosen if s.distortion in wanted]
            if not chosen:
                raise DataError(f"kadid10k: no images of types {sorted(wanted)} in split '{split}' under {self.root}")
        if on_corrupt == "skip":
            kept = []
            for s in chosen:
                if verify_image(s.path) is None:
                    kept.append(s)
                else:
                    self.corrupt_files.append(str(s.path))
            if not kept:
                raise DataError(f"kadid10k: every image of split '{split}' under {self.root} is corrupt")
            chosen = kept
        self.samples: list[KadidSample] = chosen

    # ------------------------------------------------------------------------------------------ construction
    def _scan(self) -> list[KadidSample]:
        root = self.root
        if not root.is_dir():
            nested = [p for p in (root / "kadid10k", root / "KADID-10k") if p.is_dir()]
            hint = f" (did you mean {nested[0]}?)" if nested else ""
            raise DataError(
                f"KADID-10k root '{root}' does not exist or is not a folder{hint}. " + _HINT.format(root=root)
            )
        images = _find_child(root, "images", directory=True)
        if images is None:
            raise DataError(f"KADID-10k: no images/ folder in '{root}'. " + _HINT.format(root=root))
        csv_path = _find_child(root, "dmos.csv", directory=False)
        if csv_path is None:
            raise DataError(f"KADID-10k: label file '{root / 'dmos.csv'}' is missing. " + _HINT.format(root=root))
        on_disk = {p.name.lower(): p for p in images.iterdir()}
        samples: list[KadidSample] = []
        missing: list[Path] = []
        for line, dist, ref_name, dmos, var in read_dmos_csv(csv_path):
            parsed = parse_kadid_name(dist)
            if parsed is None:
                raise DataError(f"{csv_path}, line {line}: '{dist}' is not a KADID name like I01_01_01.png")
            ref, code, level = parsed
            if code not in KADID_TYPES:
                raise DataError(f"{csv_path}, line {line}: distortion type {code} of {dist} is not a KADID type 01–25")
            ref_name = ref_name or f"{ref}.png"
            path, ref_path = on_disk.get(dist.lower()), on_disk.get(ref_name.lower())
            if path is None:
                missing.append(images / dist)
            if ref_path is None:
                missing.append(images / ref_name)
            if path is not None and ref_path is not None:
                samples.append(KadidSample(dist, path, ref, ref_path, code, level, dmos, var, line))
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise DataError(
                f"KADID-10k: {missing[0]}{more} listed in {csv_path} not found. Re-extract the archive "
                f"into '{root}' (or rewrite the synthetic set with `distill data kadid10k {root} "
                "--set overwrite=true`)"
            )
        return samples

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

    @property
    def label_kind(self) -> str:
        """What the targets are, for report headers."""
        return "objective pseudo-MOS (synthetic, not human scores)" if self.is_synthetic else "DMOS (human, 1–5)"

    @property
    def num_corrupt(self) -> int:
        """How many images were skipped as corrupt (``on_corrupt="skip"``)."""
        return len(self.corrupt_files)

    @property
    def targets(self) -> list[float]:
        return [s.dmos for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        kind = "synthetic " if self.is_synthetic else ""
        return f"Kadid10k({kind}{self.root}, split={self.split}, mode={self.split_mode}, n={len(self)})"

    # ------------------------------------------------------------------------------------------------- items
    def _load(self, index: int) -> tuple[int, torch.Tensor]:
        if self.on_corrupt == "error":
            return index, load_rgb(self.samples[index].path)
        for step in range(len(self.samples)):  # skip mode: a file that passed verify() but fails to decode
            i = (index + step) % len(self.samples)
            try:
                return i, load_rgb(self.samples[i].path)
            except DataError:
                if str(self.samples[i].path) not in self.corrupt_files:
                    self.corrupt_files.append(str(self.samples[i].path))
        raise DataError(f"kadid10k: no decodable image left in split '{self.split}' under {self.root}")

    def _augment(self, img: torch.Tensor, index: int, sample: KadidSample) -> torch.Tensor:
        g = self.rng(index) if self.training and (self.crop or self.hflip) else None
        if self.crop:
            c = self.crop
            h, w = img.shape[-2:]
            if h < c or w < c:
                raise DataError(f"kadid10k: image {sample.path} is {h}×{w}, smaller than crop={c}; lower crop")
            if g is not None:
                top = int(torch.randint(0, h - c + 1, (1,), generator=g))
                left = int(torch.randint(0, w - c + 1, (1,), generator=g))
            else:
                top, left = (h - c) // 2, (w - c) // 2
            img = img[:, top : top + c, left : left + c]
        if self.hflip and g is not None and float(torch.rand(1, generator=g)) < 0.5:
            img = img.flip(-1)
        return img.contiguous()

    def __getitem__(self, index: int) -> dict[str, Any]:
        index, img = self._load(index)
        s = self.samples[index]
        return {
            "input": self._augment(img, index, s),
            "target": torch.tensor(s.dmos, dtype=torch.float32),
            "meta": {"name": s.name, "distortion": s.distortion, "level": s.level, "ref": s.ref},
        }
