"""Synthetic stand-ins for the paper recipes' datasets at their real image sizes, in the official layouts.

Shared by ``benchmarks.paper_shapes`` (steps at paper shapes) and ``benchmarks.loader_throughput`` (loader items/s):
the sizes of the real datasets, which recipes are paper recipes, and the writers of the stand-ins.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"
PAPER_GLOBS = ("mrkd_*.yaml", "mipkd_*.yaml", "cqd_cub_*.yaml")
#: real item counts of each dataset, for the projections (CUB: official train / test split; LIVE Challenge
#: without its 7 training images; DIV2K: the 800 training images, times the recipe's ``repeat``)
REAL_ITEMS: dict[str, int] = {"tid2013": 3000, "kadid10k": 10125, "livec": 1162, "div2k": 800}
CUB_SPLITS = {"train": 5994, "test": 5794, "all": 11788}
SR_SETS = {
    "Set5": (5, (512, 512)),
    "Set14": (14, (576, 720)),
    "B100": (100, (321, 481)),
    "Urban100": (100, (768, 1024)),
}
IQA_SIZES = {"tid2013": (384, 512), "kadid10k": (384, 512), "livec": (500, 500)}
CUB_SIZE = (376, 500)
#: the IQA and CUB stand-ins are written at 1/UPSCALE of the real size (the writers distort at full resolution,
#: seconds per image) and every image file is then resized to the real size (bounding boxes scaled with them)
UPSCALE = 4
DIV2K_SIZE = (1356, 2040)
FAMILY = {"cub200_paired": "cub200"}


# ------------------------------------------------------------------------------------------------ stand-ins
def dataset_family(name: str) -> str:
    return FAMILY.get(name, name)


def split_fraction(args: dict[str, Any]) -> float:
    """Share of a dataset's items in the split ``args`` names (IQA: train_fraction, val_fraction)."""
    split, tf, vf = (
        args.get("split", "train"),
        float(args.get("train_fraction", 0.8)),
        float(args.get("val_fraction", 0)),
    )
    return {"all": 1.0, "train": tf * (1 - vf), "val": tf * vf, "test": 1 - tf}.get(split, 1.0)


def write_stand_in(name: str, args: dict[str, Any], need: int, cache: Path, sr_scale: int) -> str:
    """Write (or reuse) a full-size synthetic stand-in for dataset ``name`` with at least ``need`` items in the
    split ``args`` selects; returns its root."""
    from distill.registry import WRITERS

    fam = dataset_family(name)
    if fam in ("tid2013", "kadid10k"):
        per_ref = 2 * 2  # two distortion types x two levels
        refs = max(2, math.ceil(need / per_ref / max(split_fraction(args), 0.05)) + 1)
        kw: dict[str, Any] = {"n_refs": refs, "size": _small(IQA_SIZES[fam]), "distortions": ["01", "02"], "levels": 2}
    elif fam == "livec":
        kw = {"n_images": math.ceil(need / max(split_fraction(args), 0.05)) + 2, "size": _small(IQA_SIZES[fam])}
    elif fam == "cub200":
        share = 1 - float(args.get("val_fraction", 0))
        per_class = max(2, math.ceil(need / 4 / share / (2 if args.get("mode") == "union" else 1)) + 1)
        kw = {"n_classes": 4, "n_train": per_class, "n_test": 1, "size": _small(CUB_SIZE)}
    elif fam == "div2k":
        n = max(1, math.ceil(need / int(args.get("repeat", 1))))
        out = cache / f"div2k_{n}_{DIV2K_SIZE[0]}x{DIV2K_SIZE[1]}_x{sr_scale}"
        names = [f"{i + 1:04d}" for i in range(n)]
        return str(_write_sr(out, "DIV2K_train_HR", "DIV2K_train_LR_bicubic", names, DIV2K_SIZE, sr_scale))
    elif fam == "sr_benchmark":
        set_name = Path(str(args.get("root", "Set5"))).name
        size = SR_SETS.get(set_name, (0, (512, 512)))[1]
        out = cache / f"benchmark_x{sr_scale}" / set_name
        return str(_write_sr(out, "HR", "LR_bicubic", ["img_001", "img_002"], size, sr_scale))
    else:
        raise ValueError(f"no full-size stand-in for dataset '{name}'")
    out = cache / f"{fam}_{hashlib.md5(json.dumps(kw, sort_keys=True).encode()).hexdigest()[:10]}"
    if not (out / "DONE").is_file():
        WRITERS.build(fam, out=str(out), overwrite=True, **kw)
        _upscale_files(out, UPSCALE)
        (out / "DONE").write_text("synthetic stand-in for benchmarks/paper_shapes.py\n")
    return str(out)


def _small(size: tuple[int, int]) -> list[int]:
    return [size[0] // UPSCALE, size[1] // UPSCALE]


def _upscale_files(root: Path, factor: int) -> None:
    """Resize every image under ``root`` by ``factor`` (bicubic, same format) and scale CUB's bounding boxes."""
    from PIL import Image

    from distill.data.images import IMAGE_SUFFIXES

    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        with Image.open(path) as img:
            img.load()
            big = img.resize((img.width * factor, img.height * factor), Image.BICUBIC)
        big.save(path)
    boxes = root / "bounding_boxes.txt"
    if boxes.is_file():
        lines = [ln.split() for ln in boxes.read_text().splitlines() if ln.strip()]
        boxes.write_text(
            "".join(f"{i} " + " ".join(f"{float(v) * factor:g}" for v in rest) + "\n" for i, *rest in lines)
        )


def _write_sr(out: Path, hr_dir: str, lr_dir: str, names: list[str], size: tuple[int, int], scale: int) -> Path:
    """HR photographs of ``size`` (a scikit-image photo resized: the project's SR writers crop photos of at most
    512 px) and their MATLAB-bicubic LR, in the official layouts; written once."""
    if (out / "DONE").is_file():
        return out
    import numpy as np
    from PIL import Image
    from skimage import data as skdata

    from distill.data.images import load_rgb, save_rgb
    from distill.data.sr.dataset import bicubic_downsample

    h, w = size[0] - size[0] % scale, size[1] - size[1] % scale
    (out / hr_dir).mkdir(parents=True, exist_ok=True)
    (out / lr_dir / f"X{scale}").mkdir(parents=True, exist_ok=True)
    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea()]
    for i, name in enumerate(names):
        Image.fromarray(np.asarray(photos[i % len(photos)])).resize((w, h), Image.BICUBIC).save(
            out / hr_dir / f"{name}.png"
        )
        hr = load_rgb(out / hr_dir / f"{name}.png")
        save_rgb(bicubic_downsample(hr, scale), out / lr_dir / f"X{scale}" / f"{name}x{scale}.png")
    (out / "DONE").write_text("synthetic stand-in for benchmarks/paper_shapes.py\n")
    return out


def paper_recipes() -> list[str]:
    """Every paper recipe (:data:`PAPER_GLOBS`), by name."""
    return sorted({p.stem for g in PAPER_GLOBS for p in RECIPES.glob(g)})
