"""Write a small synthetic dataset in the official TID2013 layout (distorted_images/, reference_images/,
mos_with_names.txt).

References are crops of scikit-image's bundled photographs; distorted images come from
:func:`distill.data.iqa.distortions_tid.tid_distortion` (TID2013-specific functions, or the closest KADID-10k one).
**The labels are objective pseudo-MOS in [0, 9], not human opinion scores** (see :data:`PSEUDO_MOS_FORMULA`); a
``README.txt`` and a ``SYNTHETIC.json`` marker in the folder say so, and :class:`distill.data.iqa.tid2013.Tid2013`
reports it.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from distill.data.iqa.distortions_tid import TID_SOURCES, TID_TYPES, tid_code, tid_distortion
from distill.data.synthetic_common import (
    describe_synthetic,
    distorted_levels,
    image_size,
    pick_types,
    pseudo_mos_formula,
    reference_crops,
    staged_output,
    unit_batch,
)
from distill.errors import DataError
from distill.registry import WRITERS

#: TID2013's labels: :func:`~distill.data.synthetic_common.pseudo_mos` on [0, 9].
PSEUDO_MOS_FORMULA = pseudo_mos_formula(0, 9) + "."

README = """SYNTHETIC TID2013-LAYOUT DATASET -- NOT THE REAL TID2013, NOT HUMAN SCORES
==========================================================================

Written by distill (distill.data.iqa.synthetic_tid2013.write_synthetic_tid2013) so that loaders, recipes and
benchmarks can run end to end without the real dataset.

* Reference images reference_images/I??.BMP are crops of scikit-image's bundled sample photographs, resized to
  {h}x{w}.
* Distorted images distorted_images/i??_TT_L.bmp approximate TID2013 types {types} at levels 1..{levels}
  (the registered distill function that produces each type is listed in SYNTHETIC.json; every one is an
  approximation of TID2013's, see distill.data.iqa.distortions_tid).
* The MOS column of mos_with_names.txt is an OBJECTIVE PSEUDO-MOS, computed from the distorted image and its
  reference:

      {formula}

  It is NOT a human opinion score. Numbers obtained on this set say nothing about performance on TID2013 and
  must be labelled "synthetic" wherever they are reported.

Parameters: see SYNTHETIC.json (seed {seed}).
"""


@WRITERS.register("tid2013")
def write_synthetic_tid2013(
    out: str | Path,
    n_refs: int = 10,
    size: list[int] | tuple[int, int] = (96, 128),
    distortions: list[str] | None = None,
    levels: int = 5,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic TID2013-layout set (objective pseudo-MOS 0–9, not human labels) to ``out``; return its path.

    ``n_refs`` references of ``size`` (H, W; TID2013's are 384×512) × ``distortions`` (TID type codes or names;
    default: all 24) × levels ``1..levels``, saved as 8-bit BMP.  Deterministic for a seed; written atomically; an
    existing non-empty ``out`` is replaced only with ``overwrite=True`` and only if it is itself a synthetic set.
    """
    out = Path(out).expanduser()
    h, w = image_size(size, minimum=16)
    if not 1 <= n_refs <= 99:
        raise DataError(f"n_refs must be in 1..99 (TID names have two reference digits), got {n_refs}")
    if not 1 <= levels <= 5:
        raise DataError(f"levels must be in 1..5, got {levels}")
    fns = pick_types(distortions, tid_code, list(TID_TYPES), tid_distortion, "TID2013")
    codes = list(fns)

    with staged_output(out, overwrite, "TID2013") as tmp:
        distorted, references = tmp / "distorted_images", tmp / "reference_images"
        distorted.mkdir()
        references.mkdir()
        refs, sources = reference_crops(n_refs, (h, w), seed, tag="tid2013-crops")
        ref_ids = [f"{i + 1:02d}" for i in range(n_refs)]
        for rid, arr in zip(ref_ids, refs):
            Image.fromarray(arr).save(references / f"I{rid}.BMP", format="BMP")
        x = unit_batch(refs)

        rows: list[tuple[str, float]] = []
        for code, level, arrays, scores in distorted_levels(x, fns, levels, seed, "tid2013-distort", (0.0, 9.0)):
            for rid, arr, score in zip(ref_ids, arrays, scores):
                name = f"i{rid}_{code}_{level}.bmp"
                Image.fromarray(arr).save(distorted / name, format="BMP")
                rows.append((name, score))
        rows.sort()
        (tmp / "mos_with_names.txt").write_text("".join(f"{score:.5f} {name}\n" for name, score in rows))

        type_list = ", ".join(f"{c} {TID_TYPES[c]}" for c in codes)
        describe_synthetic(
            tmp,
            README.format(h=h, w=w, types=type_list, levels=levels, formula=PSEUDO_MOS_FORMULA, seed=seed),
            "tid2013",
            "distill.data.iqa.synthetic_tid2013.write_synthetic_tid2013",
            labels="objective pseudo-MOS 0-9 (NOT human scores)",
            pseudo_mos_formula=PSEUDO_MOS_FORMULA,
            seed=seed,
            n_refs=n_refs,
            size_hw=[h, w],
            levels=levels,
            types={c: {"name": TID_TYPES[c], "produced_by": TID_SOURCES[c]} for c in codes},
            n_images=len(rows),
            references={f"I{rid}": src for rid, src in zip(ref_ids, sources)},
        )
    return out
