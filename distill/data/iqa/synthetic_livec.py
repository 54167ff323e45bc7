"""Write a small synthetic dataset in the official LIVE Challenge layout (Images/, Data/*.mat).

Each image is a different crop of scikit-image's bundled photographs passed through a random mix of 1 to
``max_distortions`` registered distortions (KADID-10k and TID2013 types, random levels), so that — like LIVEC's
authentic distortions — there are no references, types or levels to learn from.  **The labels are objective
pseudo-MOS in [0, 100] against the undistorted crop, not human opinion scores** (see :data:`PSEUDO_MOS_FORMULA`);
``README.txt`` and ``SYNTHETIC.json`` say so, and :class:`distill.data.iqa.livec.LiveChallenge` reports it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from distill.data.iqa.distortions import IMPLEMENTED_CODES, KADID_TYPES, get_distortion
from distill.data.iqa.distortions_tid import TID_FROM_KADID, TID_SOURCES
from distill.data.iqa.livec import MOS_KEY, NAMES_KEY
from distill.data.synthetic_common import (
    describe_synthetic,
    image_size,
    pseudo_mos,
    pseudo_mos_formula,
    reference_crops,
    stable_seed,
    staged_output,
    to_uint8_batch,
)
from distill.errors import DataError
from distill.registry import WRITERS

#: LIVEC's labels: :func:`~distill.data.synthetic_common.pseudo_mos` on [0, 100].
PSEUDO_MOS_FORMULA = pseudo_mos_formula(0, 100) + "."

#: The distortions an image may receive: every KADID-10k type and the TID2013-only ones.
POOL: tuple[str, ...] = tuple(KADID_TYPES[c] for c in IMPLEMENTED_CODES) + tuple(
    name for code, name in TID_SOURCES.items() if code not in TID_FROM_KADID
)
N_TRAINING = 7  # LIVEC lists its 7 training images first (Images/trainingImages/t1.bmp … t7.bmp)

README = """SYNTHETIC LIVE-CHALLENGE-LAYOUT DATASET -- NOT THE REAL LIVE CHALLENGE, NOT HUMAN SCORES
===========================================================================================

Written by distill (distill.data.iqa.synthetic_livec.write_synthetic_livec) so that loaders, recipes and benchmarks
can run end to end without the real dataset.

* Images/*.bmp ({n} images, {h}x{w}) and Images/trainingImages/t1.bmp..t7.bmp are different crops of scikit-image's
  bundled sample photographs, each passed through 1..{k} random distortions at random levels (a stand-in for
  authentic distortions; the mix of every image is listed in SYNTHETIC.json).
* Data/AllImages_release.mat (cell AllImages_release, {total}x1, the 7 training images first) and
  Data/AllMOS_release.mat (AllMOS_release, 1x{total}) follow the official structure; Data/AllStdDev_release.mat
  holds zeros.
* The MOS is an OBJECTIVE PSEUDO-MOS, computed from each image and its undistorted crop:

      {formula}

  It is NOT a human opinion score. Numbers obtained on this set say nothing about performance on the LIVE
  Challenge and must be labelled "synthetic" wherever they are reported.

Parameters: see SYNTHETIC.json (seed {seed}).
"""


def _savemat(path: Path, key: str, value: np.ndarray) -> None:
    from scipy.io import savemat

    savemat(str(path), {key: value}, format="5")


@WRITERS.register("livec")
def write_synthetic_livec(
    out: str | Path,
    n_images: int = 60,
    size: list[int] | tuple[int, int] = (128, 128),
    max_distortions: int = 3,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic LIVE-Challenge-layout set (objective pseudo-MOS 0–100, not human labels); return its path.

    ``n_images`` images of ``size`` (H, W) in ``Images/`` plus the 7 leading training images, each with a random
    mix of 1..``max_distortions`` distortions from :data:`POOL`.  Deterministic for a seed; written atomically; an
    existing non-empty ``out`` is replaced only with ``overwrite=True`` and only if it is itself a synthetic set.
    """
    out = Path(out).expanduser()
    h, w = image_size(size, minimum=16)
    if n_images < 1:
        raise DataError(f"n_images must be at least 1, got {n_images}")
    if not 1 <= max_distortions <= len(POOL):
        raise DataError(f"max_distortions must be in 1..{len(POOL)}, got {max_distortions}")

    with staged_output(out, overwrite, "LIVE Challenge") as tmp:
        images, training, data = tmp / "Images", tmp / "Images" / "trainingImages", tmp / "Data"
        training.mkdir(parents=True)
        data.mkdir()
        total = N_TRAINING + n_images
        crops, sources = reference_crops(total, (h, w), seed, tag="livec-crops")
        names = [f"t{i + 1}.bmp" for i in range(N_TRAINING)] + [f"{i + 1}.bmp" for i in range(n_images)]
        rng = np.random.default_rng(stable_seed("livec-mix", seed))
        scores: list[float] = []
        mixes: dict[str, list[list[object]]] = {}
        for i, (name, crop) in enumerate(zip(names, crops)):
            clean = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0
            k = int(rng.integers(1, max_distortions + 1))
            mix = [(POOL[int(j)], int(rng.integers(1, 6))) for j in rng.choice(len(POOL), size=k, replace=False)]
            g = torch.Generator().manual_seed(stable_seed("livec-distort", seed, i))
            y = clean
            for fn_name, level in mix:
                y = get_distortion(fn_name)(y, level, g)
            y = (y * 255).round() / 255.0  # what the 8-bit BMP will hold
            scores.append(float(pseudo_mos(y, clean, 0.0, 100.0)[0]))
            folder = training if i < N_TRAINING else images
            Image.fromarray(to_uint8_batch(y)[0]).save(folder / name, format="BMP")
            mixes[name] = [[fn_name, level] for fn_name, level in mix]

        cell = np.empty((total, 1), dtype=object)
        cell[:, 0] = names
        _savemat(data / "AllImages_release.mat", NAMES_KEY, cell)
        _savemat(data / "AllMOS_release.mat", MOS_KEY, np.asarray(scores, dtype=np.float64)[None, :])
        _savemat(data / "AllStdDev_release.mat", "AllStdDev_release", np.zeros((1, total)))

        describe_synthetic(
            tmp,
            README.format(n=n_images, h=h, w=w, k=max_distortions, total=total, formula=PSEUDO_MOS_FORMULA, seed=seed),
            "livec",
            "distill.data.iqa.synthetic_livec.write_synthetic_livec",
            labels="objective pseudo-MOS 0-100 (NOT human scores)",
            pseudo_mos_formula=PSEUDO_MOS_FORMULA,
            seed=seed,
            n_images=n_images,
            n_training_images=N_TRAINING,
            size_hw=[h, w],
            max_distortions=max_distortions,
            pool=list(POOL),
            distortions=mixes,
            crops=dict(zip(names, sources)),
        )
    return out
