"""Write a small synthetic dataset in the official KADID-10k layout (images/Iaa_tt_ll.png, dmos.csv).

References are crops of scikit-image's bundled photographs (no download); distorted images come from the same
:mod:`distill.data.iqa.distortions` functions the toolkit trains with.  **The labels are objective pseudo-MOS computed
from a full-reference formula, not human opinion scores** (see :data:`PSEUDO_MOS_FORMULA`); a ``README.txt`` and a
``SYNTHETIC.json`` marker in the folder say so, and :class:`distill.data.iqa.kadid.Kadid10k` reports it.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from distill.data.iqa.distortions import IMPLEMENTED_CODES, KADID_TYPES, get_distortion, kadid_code
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

#: KADID's labels: :func:`~distill.data.synthetic_common.pseudo_mos` on [1, 5].
PSEUDO_MOS_FORMULA = pseudo_mos_formula(1, 5) + "; var = 0."

README = """SYNTHETIC KADID-10k-LAYOUT DATASET -- NOT THE REAL KADID-10k, NOT HUMAN SCORES
==================================================================================

Written by distill (distill.data.iqa.synthetic_kadid.write_synthetic_kadid) so that loaders, recipes and benchmarks
can run end to end without the real dataset.

* Reference images I??.png are crops of scikit-image's bundled sample photographs, resized to {h}x{w}.
* Distorted images I??_TT_LL.png use distill's re-implementation of KADID-10k distortion types {types}
  at levels 1..{levels}.
* The "dmos" column of dmos.csv is an OBJECTIVE PSEUDO-MOS, computed from the distorted image and its reference:

      {formula}

  It is NOT a human opinion score. Numbers obtained on this set say nothing about performance on KADID-10k and
  must be labelled "synthetic" wherever they are reported.

Parameters: see SYNTHETIC.json (seed {seed}).
"""


@WRITERS.register("kadid10k")
def write_synthetic_kadid(
    out: str | Path,
    n_refs: int = 16,
    size: list[int] | tuple[int, int] = (128, 128),
    distortions: list[str] | None = None,
    levels: int = 5,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic KADID-10k-layout set (objective pseudo-MOS, not human labels) to ``out``; return its path.

    ``n_refs`` references of ``size`` (H, W) × ``distortions`` (type codes or names; default: every implemented
    type) × levels ``1..levels``.  Labels in ``dmos.csv`` are OBJECTIVE PSEUDO-MOS in [1, 5] (PSEUDO_MOS_FORMULA),
    not human scores.  Deterministic for a seed.  Written into a temporary sibling folder and renamed into place;
    an existing non-empty ``out`` is replaced only with ``overwrite=True`` and only if it is itself a synthetic set.
    """
    out = Path(out).expanduser()
    h, w = image_size(size, minimum=8)
    if n_refs < 1:
        raise DataError(f"n_refs must be at least 1, got {n_refs}")
    if not 1 <= levels <= 5:
        raise DataError(f"levels must be in 1..5, got {levels}")
    fns = pick_types(distortions, kadid_code, IMPLEMENTED_CODES, get_distortion, "KADID-10k")
    codes = list(fns)
    with staged_output(out, overwrite, "KADID-10k") as tmp:
        images = tmp / "images"
        images.mkdir()
        refs, sources = reference_crops(n_refs, (h, w), seed, tag="kadid-crops")
        width = max(2, len(str(n_refs)))
        ref_names = [f"I{i + 1:0{width}d}" for i in range(n_refs)]
        for name, arr in zip(ref_names, refs):
            Image.fromarray(arr).save(images / f"{name}.png", compress_level=1)
        x = unit_batch(refs)

        rows: list[tuple[str, str, float]] = []
        for code, level, arrays, scores in distorted_levels(x, fns, levels, seed, "kadid-distort", (1.0, 5.0)):
            for ref, arr, score in zip(ref_names, arrays, scores):
                name = f"{ref}_{code}_{level:02d}.png"
                Image.fromarray(arr).save(images / name, compress_level=1)
                rows.append((name, f"{ref}.png", score))
        rows.sort()
        with open(tmp / "dmos.csv", "w", newline="") as fh:
            fh.write("dist_img,ref_img,dmos,var\n")
            fh.writelines(f"{d},{r},{s:.4f},0\n" for d, r, s in rows)

        type_list = ", ".join(f"{c} {KADID_TYPES[c]}" for c in codes)
        describe_synthetic(
            tmp,
            README.format(h=h, w=w, types=type_list, levels=levels, formula=PSEUDO_MOS_FORMULA, seed=seed),
            "kadid10k",
            "distill.data.iqa.synthetic_kadid.write_synthetic_kadid",
            labels="objective pseudo-MOS (NOT human scores)",
            pseudo_mos_formula=PSEUDO_MOS_FORMULA,
            seed=seed,
            n_refs=n_refs,
            size_hw=[h, w],
            levels=levels,
            types={c: KADID_TYPES[c] for c in codes},
            n_images=len(rows),
            references=dict(zip(ref_names, sources)),
        )
    return out
