"""TID2013 reader for the official, unmodified archive layout.

::

    ROOT/distorted_images/i01_01_1.bmp … i25_24_5.bmp   reference 01–25, type 01–24, level 1–5 (case varies:
                                                        I/i, .bmp/.BMP)
    ROOT/reference_images/I01.BMP … I25.BMP
    ROOT/mos_with_names.txt                             ``MOS filename`` per line, no header; MOS 0–9, higher = better

Synthetic stand-ins written by :func:`distill.data.write_synthetic_tid2013` have the same layout plus a
``SYNTHETIC.json`` marker; their labels are objective pseudo-MOS.  Options, splits, crops and patches:
:class:`distill.data.iqa.dataset.IQADataset`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from distill.data.iqa.dataset import IQADataset, files_by_lower_name, find_child
from distill.data.iqa.distortions_tid import TID_TYPES, tid_code
from distill.errors import DataError
from distill.registry import DATASETS

_NAME_RE = re.compile(r"^i(\d+)_(\d{1,2})_(\d)\.([a-z0-9]+)$", re.IGNORECASE)
LABEL_FILE = "mos_with_names.txt"
_HINT = (
    "Unpack the official TID2013 archive there (it holds distorted_images/, reference_images/ and "
    "mos_with_names.txt; `distill data fetch tid2013 {root}` does it), or write a synthetic stand-in with "
    "`distill data tid2013 {root}`"
)


@dataclass(frozen=True)
class TidSample:
    """One distorted image listed in ``mos_with_names.txt``."""

    name: str  # as listed, e.g. "i01_01_1.bmp"
    path: Path  # the file found on disk (case-insensitive match)
    ref: str  # "I01"
    ref_path: Path
    distortion: str  # "01" … "24"
    level: int  # 1 … 5
    mos: float
    line: int  # line in mos_with_names.txt

    @property
    def score(self) -> float:
        return self.mos


def parse_tid_name(name: str) -> tuple[str, str, int] | None:
    """``"i01_07_3.bmp"`` → ``("I01", "07", 3)``; case-insensitive; ``None`` when the name is not TID-shaped."""
    m = _NAME_RE.match(name.strip())
    if not m:
        return None
    return f"I{m.group(1)}", m.group(2).zfill(2), int(m.group(3))


def read_mos_with_names(path: Path) -> list[tuple[int, float, str]]:
    """Rows ``(line, mos, name)`` of a TID ``mos_with_names.txt``; malformed content raises DataError."""
    rows: list[tuple[int, float, str]] = []
    seen: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not a text file ({err}); use the {LABEL_FILE} from the TID2013 archive") from err
    for line, raw in enumerate(text.splitlines(), start=1):
        cells = raw.split()
        if not cells:
            continue
        if len(cells) != 2:
            raise DataError(
                f"{path}, line {line}: expected 'MOS filename' (two fields separated by spaces), got '{raw.strip()}'"
            )
        try:
            mos = float(cells[0])
        except ValueError:
            mos = math.nan
        if not math.isfinite(mos):
            raise DataError(f"{path}, line {line}: MOS '{cells[0]}' of {cells[1]} is not a finite number")
        key = cells[1].lower()
        if key in seen:
            raise DataError(f"{path}, line {line}: {cells[1]} is listed twice (first on line {seen[key]})")
        seen[key] = line
        rows.append((line, mos, cells[1]))
    if not rows:
        raise DataError(f"{path} lists no images; expected one 'MOS filename' line per distorted image")
    return rows


@DATASETS.register("tid2013")
class Tid2013(IQADataset):
    """TID2013 (official layout: distorted_images/iRR_TT_L.bmp + mos_with_names.txt): 25 refs × 24 types × 5 levels.

    MOS 0–9, higher = better.  Options (split, split_mode, fractions, crop, hflip, distortions, on_corrupt, patches):
    see :class:`~distill.data.iqa.dataset.IQADataset`.  ``distortions`` takes TID type codes
    (``"01"``, ``1``, ``"i01"``) or
    names from :data:`~distill.data.iqa.distortions_tid.TID_TYPES`.  Every TID-named image in ``distorted_images/``
    must have a label line (a shorter label file is an error, not a silent subset).
    """

    key = "tid2013"
    title = "TID2013"
    human_label_kind = "MOS (human, 0–9)"
    type_names = TID_TYPES
    nested_names = ("tid2013", "TID2013")
    hint = _HINT

    samples: list[TidSample]

    def type_code(self, name_or_code: str | int) -> str:
        return tid_code(name_or_code)

    def _scan(self) -> list[TidSample]:
        root = self._check_root()
        folders = {}
        for name in ("distorted_images", "reference_images"):
            folder = find_child(root, name, directory=True)
            if folder is None:
                raise self._no_folder(name)
            folders[name] = folder
        labels = find_child(root, LABEL_FILE, directory=False)
        if labels is None:
            raise DataError(f"TID2013: label file '{root / LABEL_FILE}' is missing. " + _HINT.format(root=root))
        distorted = files_by_lower_name(folders["distorted_images"])
        refs = {p.stem.lower(): p for p in files_by_lower_name(folders["reference_images"]).values()}
        samples: list[TidSample] = []
        missing: list[Path] = []
        for line, mos, name in read_mos_with_names(labels):
            parsed = parse_tid_name(name)
            if parsed is None:
                raise DataError(f"{labels}, line {line}: '{name}' is not a TID2013 name like i01_01_1.bmp")
            ref, code, level = parsed
            if code not in TID_TYPES:
                raise DataError(f"{labels}, line {line}: distortion type {code} of {name} is not a TID type 01–24")
            if not 1 <= level <= 5:
                raise DataError(f"{labels}, line {line}: level {level} of {name} is not in 1–5")
            path, ref_path = distorted.get(name.lower()), refs.get(ref.lower())
            if path is None:
                missing.append(folders["distorted_images"] / name)
            if ref_path is None:
                missing.append(folders["reference_images"] / f"{ref}.BMP")
            if path is not None and ref_path is not None:
                samples.append(TidSample(name, path, ref, ref_path, code, level, mos, line))
        if missing:
            raise self._missing(list(dict.fromkeys(missing)), labels)
        listed = {s.path for s in samples}
        unlabelled = [p for p in distorted.values() if p not in listed and parse_tid_name(p.name) is not None]
        if unlabelled:
            more = f" and {len(unlabelled) - 1} more" if len(unlabelled) > 1 else ""
            raise DataError(
                f"TID2013: {unlabelled[0]}{more} has no label line in {labels}. Use the complete {LABEL_FILE} "
                "of the archive (or remove images you do not want; `distortions` selects types)"
            )
        return samples
