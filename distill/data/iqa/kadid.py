"""KADID-10k reader for the official, unmodified archive layout.

::

    ROOT/images/I01_01_01.png … I81_25_05.png    distorted: reference, type 01–25, level 01–05
    ROOT/images/I01.png … I81.png                 references
    ROOT/dmos.csv                                 header ``dist_img,ref_img,dmos,var``; DMOS 1–5, higher = better

Synthetic stand-ins written by :func:`distill.data.write_synthetic_kadid` have the same layout plus a
``SYNTHETIC.json`` marker; their labels are objective pseudo-MOS (see :attr:`Kadid10k.label_kind`).  Options,
splits, crops and patches: :class:`distill.data.iqa.dataset.IQADataset`.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

from distill.data.iqa.dataset import IQADataset, files_by_lower_name, find_child
from distill.data.iqa.distortions import KADID_TYPES, kadid_code
from distill.errors import DataError
from distill.registry import DATASETS

_NAME_RE = re.compile(r"^(i)(\d+)_(\d{1,3})_(\d{1,3})\.([a-z0-9]+)$", re.IGNORECASE)
_HEADER = ("dist_img", "ref_img", "dmos", "var")
_HINT = (
    "Unpack the official KADID-10k archive there (it holds images/ and dmos.csv; `distill data fetch kadid10k "
    "{root}` does it), or write a synthetic stand-in with `distill data kadid10k {root}`"
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

    @property
    def score(self) -> float:
        return self.dmos


def parse_kadid_name(name: str) -> tuple[str, str, int] | None:
    """``"I01_07_03.png"`` → ``("I01", "07", 3)``; case-insensitive; ``None`` when the name is not KADID-shaped."""
    m = _NAME_RE.match(name.strip())
    if not m:
        return None
    return f"I{m.group(2)}", m.group(3).zfill(2), int(m.group(4))


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
class Kadid10k(IQADataset):
    """KADID-10k (official layout: images/Iaa_tt_ll.png + dmos.csv): 81 refs × 25 types × 5 levels, DMOS 1–5.

    Options (split, split_mode, fractions, crop, hflip, distortions, on_corrupt, patches): see
    :class:`~distill.data.iqa.dataset.IQADataset`.  ``distortions`` takes KADID type codes (``"01"``, ``1``) or names
    (``"gaussian_blur"``).
    """

    key = "kadid10k"
    title = "KADID-10k"
    human_label_kind = "DMOS (human, 1–5)"
    type_names = KADID_TYPES
    nested_names = ("kadid10k", "KADID-10k")
    hint = _HINT

    samples: list[KadidSample]

    def type_code(self, name_or_code: str | int) -> str:
        return kadid_code(name_or_code)

    def _scan(self) -> list[KadidSample]:
        root = self._check_root()
        images = find_child(root, "images", directory=True)
        if images is None:
            raise self._no_folder("images")
        csv_path = find_child(root, "dmos.csv", directory=False)
        if csv_path is None:
            raise DataError(f"KADID-10k: label file '{root / 'dmos.csv'}' is missing. " + _HINT.format(root=root))
        on_disk = files_by_lower_name(images)
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
            raise self._missing(missing, csv_path)
        return samples
