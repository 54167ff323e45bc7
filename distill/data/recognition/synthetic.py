"""Write a synthetic CUB-200-2011-layout set: procedurally drawn object classes on cluttered backgrounds.

Each class is a combination of three attributes — a **shape** (ellipse, triangle, star, …), a fine **texture**
inside it (solid, stripes, checks, dots, …) and a **colour** — taken from the smallest balanced attribute grid that
holds all classes, so most classes differ from others in exactly one attribute:

* *localization* matters: the object covers roughly 15–40 % of the image, and the background is a tinted crop of a
  scikit-image photograph with 2–4 smaller distractor objects drawn from the same attribute vocabulary;
* *low resolution* matters: textures repeat every 1/16 of the image side, about 8–10 cycles across the object,
  which a 14×14 low-resolution crop (the CPU recipes' 14 of 64, the ratio of the paper's 50 of 224) cannot hold,
  leaving shape and colour (a 50×50 crop keeps them: use ``low: 14`` with this set at any view size);
* *line drawing* matters: edge maps drop colour, leaving shape and texture.

Every image gets a random position, size, rotation, aspect, colour jitter, brightness and noise; its bounding box
is the tight box of the object's mask. Images are JPEG (quality 92) of varying size around ``size``, written in the
official layout (``images/<class_dir>/<file>.jpg``, ``images.txt``, ``image_class_labels.txt``, ``classes.txt``,
``bounding_boxes.txt``, ``train_test_split.txt``) with a ``SYNTHETIC.json`` marker and a ``README.txt``, so
:class:`distill.data.recognition.cub.CUB200` reads it unchanged. Deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from distill.data.synthetic_common import describe_synthetic, image_size, load_photo, stable_seed, staged_output
from distill.errors import DataError
from distill.registry import WRITERS

__all__ = ["COLOURS", "SHAPES", "TEXTURES", "class_attributes", "render_image", "write_synthetic_cub"]

Array = np.ndarray

#: name → RGB in [0, 1]
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.15, 0.12),
    "blue": (0.15, 0.30, 0.85),
    "yellow": (0.92, 0.82, 0.15),
    "green": (0.18, 0.68, 0.22),
    "purple": (0.55, 0.20, 0.70),
    "orange": (0.95, 0.50, 0.10),
    "cyan": (0.15, 0.75, 0.80),
    "pink": (0.95, 0.45, 0.65),
}


def _polygon(n: int) -> Callable[[Array, Array], Array]:
    def inside(r: Array, phi: Array) -> Array:
        sector = 2 * math.pi / n
        return r <= math.cos(math.pi / n) / np.cos((phi % sector) - sector / 2)

    return inside


#: name → inside test on polar coordinates (r, phi) of the object frame (radius 1 = the object's half-size)
SHAPES: dict[str, Callable[[Array, Array], Array]] = {
    "ellipse": lambda r, phi: r <= 1.0,
    "triangle": _polygon(3),
    "star": lambda r, phi: r <= 0.5 + 0.5 * np.abs(np.cos(2.5 * phi)) ** 1.5,
    "cross": lambda r, phi: (np.minimum(np.abs(r * np.cos(phi)), np.abs(r * np.sin(phi))) <= 0.33) & (r <= 1.0),
    "hexagon": _polygon(6),
    "ring": lambda r, phi: (r <= 1.0) & (r >= 0.5),
    "square": _polygon(4),
    "crescent": lambda r, phi: (r <= 1.0) & ((r * np.cos(phi) - 0.45) ** 2 + (r * np.sin(phi)) ** 2 >= 0.62),
}


#: name → pattern in {0, 1} on object-frame pixel coordinates (u, v); 1 takes the secondary colour
TEXTURES: dict[str, Callable[[Array, Array, float], Array]] = {
    "solid": lambda u, v, p: np.zeros_like(u),
    "striped": lambda u, v, p: (np.sin(2 * math.pi * u / p) > 0).astype(float),
    "checked": lambda u, v, p: ((np.sin(2 * math.pi * u / p) > 0) ^ (np.sin(2 * math.pi * v / p) > 0)).astype(float),
    "dotted": lambda u, v, p: (((u / p) % 1 - 0.5) ** 2 + ((v / p) % 1 - 0.5) ** 2 < 0.09).astype(float),
    "wavy": lambda u, v, p: (np.sin(2 * math.pi * (u + 0.6 * p * np.sin(2 * math.pi * v / (2.5 * p))) / p) > 0).astype(
        float
    ),
    "ringed": lambda u, v, p: (np.sin(2 * math.pi * np.hypot(u, v) / p) > 0).astype(float),
}

_BACKGROUNDS = ("grass", "gravel", "brick", "coffee", "rocket", "chelsea", "astronaut", "hubble_deep_field")

README = """SYNTHETIC CUB-200-2011-LAYOUT DATASET -- NOT THE REAL CUB-200-2011
===================================================================

Written by distill (distill.data.recognition.synthetic.write_synthetic_cub) so that the CUB reader, the CQD recipes and
benchmarks run end to end without the real dataset.

* {n_classes} classes, each a procedurally drawn object: shape x texture x colour (see classes.txt and
  SYNTHETIC.json). Objects sit at random positions, sizes and rotations on tinted crops of scikit-image's bundled
  photographs, among 2-4 smaller distractor objects of the same attribute vocabulary.
* bounding_boxes.txt holds each object's tight box (x y width height, pixels); train_test_split.txt puts
  {n_train} images per class in train (1) and {n_test} in test (0).
* Images are JPEG, about {h}x{w} pixels.

Numbers obtained on this set say nothing about accuracy on CUB-200-2011 and must be labelled "synthetic".
Parameters: see SYNTHETIC.json (seed {seed}).
"""


def _grid_shape(n: int) -> tuple[int, int, int]:
    """A balanced (shapes, textures, colours) grid with at least ``n`` cells: from 2x2x2, grow shapes, colours,
    textures in turn (each within its vocabulary) until it is large enough."""
    limits = (len(SHAPES), len(TEXTURES), len(COLOURS))
    if n > math.prod(limits):
        raise DataError(f"synthetic CUB: at most {math.prod(limits)} classes (shape x texture x colour), got {n}")
    grid = [2, 2, 2]
    turn = 0
    while math.prod(grid) < n:
        dim = (0, 2, 1)[turn % 3]
        if grid[dim] < limits[dim]:
            grid[dim] += 1
        turn += 1
    return grid[0], grid[1], grid[2]


def class_attributes(n_classes: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """``(shape, texture, colour)`` of each class: ``n_classes`` distinct cells of a balanced attribute grid."""
    if n_classes < 2:
        raise DataError(f"synthetic CUB: n_classes must be at least 2, got {n_classes}")
    ns, nt, nc = _grid_shape(n_classes)
    cells = [(s, t, c) for s in range(ns) for t in range(nt) for c in range(nc)]
    rng = np.random.default_rng(stable_seed("cub-classes", seed))
    order = rng.permutation(len(cells))[:n_classes]
    shapes, textures, colours = list(SHAPES), list(TEXTURES), list(COLOURS)
    return [(shapes[cells[k][0]], textures[cells[k][1]], colours[cells[k][2]]) for k in sorted(order)]


def _background(rng: np.random.Generator, h: int, w: int, photos: dict[str, Array]) -> Array:
    name = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))]
    if name not in photos:
        photos[name] = load_photo(name)
    img = photos[name]
    ph, pw = img.shape[:2]
    scale = rng.uniform(0.25, 0.6)
    ch, cw = max(8, int(ph * scale)), max(8, int(pw * scale * w / h))
    ch, cw = min(ch, ph), min(cw, pw)
    top, left = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    crop = Image.fromarray((img[top : top + ch, left : left + cw] * 255).astype(np.uint8)).resize((w, h))
    bg = np.asarray(crop, dtype=np.float64) / 255.0
    grey = bg.mean(axis=2, keepdims=True)
    tint = rng.uniform(0.3, 1.0, size=3)
    return np.clip(0.35 * bg + 0.45 * grey * tint + 0.1, 0, 1)  # muted, so objects do not vanish into it


def _draw(
    canvas: Array,
    rng: np.random.Generator,
    attrs: tuple[str, str, str],
    centre: tuple[float, float],
    half: float,
    texture_period: float,
) -> Array:
    """Paint one object on ``canvas`` in place; returns its boolean mask."""
    h, w, _ = canvas.shape
    shape, texture, colour = attrs
    angle = rng.uniform(0, 2 * math.pi)
    aspect = rng.uniform(0.8, 1.25)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xx - centre[0], yy - centre[1]
    u = dx * math.cos(angle) + dy * math.sin(angle)
    v = -dx * math.sin(angle) + dy * math.cos(angle)
    un, vn = u / (half * aspect), v / (half / aspect)
    r, phi = np.hypot(un, vn), np.arctan2(vn, un)
    mask = SHAPES[shape](r, phi)
    base = np.clip(np.asarray(COLOURS[colour]) + rng.normal(0, 0.05, 3), 0, 1)
    # light and dark shades averaging to the base colour: a blurred texture looks like the solid colour
    contrast = rng.uniform(0.45, 0.55)
    pattern = TEXTURES[texture](u, v, texture_period)[..., None]
    fill = np.clip(base * (1 + contrast * (1 - 2 * pattern)), 0, 1) if texture != "solid" else base
    shade = 1.0 - 0.25 * np.clip(r, 0, 1)[..., None] ** 2  # a little 3-D shading
    canvas[mask] = (fill * shade)[mask]
    return mask


def render_image(
    rng: np.random.Generator,
    attrs: tuple[str, str, str],
    vocabulary: list[tuple[str, str, str]],
    size: tuple[int, int],
    photos: dict[str, Array],
) -> tuple[Array, tuple[float, float, float, float]]:
    """One image ``[H, W, 3]`` in [0, 1] of an object with ``attrs`` and its box ``(x, y, w, h)``.

    ``vocabulary``: attributes the distractors are drawn from (shape, texture and colour independently).
    """
    bh, bw = size
    h = round(bh * rng.uniform(0.85, 1.15))
    w = round(bw * rng.uniform(0.85, 1.15))
    canvas = _background(rng, h, w, photos)
    side = min(h, w)
    half = side * rng.uniform(0.22, 0.32)
    period = max(4.0, side / 16) * rng.uniform(0.9, 1.1)
    shapes, textures, colours = ({a[k] for a in vocabulary} for k in range(3))
    for _ in range(int(rng.integers(2, 5))):
        distractor = (
            str(rng.choice(sorted(shapes))),
            str(rng.choice(sorted(textures))),
            str(rng.choice(sorted(colours))),
        )
        d_half = half * rng.uniform(0.35, 0.6)
        centre = (rng.uniform(0, w), rng.uniform(0, h))
        _draw(canvas, rng, distractor, centre, d_half, period)
    margin = half * 1.3
    centre = (rng.uniform(margin, max(margin, w - margin)), rng.uniform(margin, max(margin, h - margin)))
    mask = _draw(canvas, rng, attrs, centre, half, period)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:  # cannot happen for the sizes allowed, but never write an empty box
        raise DataError("synthetic CUB: an object fell outside its image; use a larger size")
    box = (float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1))
    canvas = canvas * rng.uniform(0.8, 1.15) + rng.normal(0, 0.015, canvas.shape)
    return np.clip(canvas, 0, 1), box


@WRITERS.register("cub200")
def write_synthetic_cub(
    out: str | Path,
    n_classes: int = 10,
    n_train: int = 30,
    n_test: int = 20,
    size: list[int] | tuple[int, int] = (128, 128),
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic CUB-200-2011-layout set (procedural shape x texture x colour classes) to ``out``.

    ``n_classes`` classes with ``n_train`` training and ``n_test`` test images each, about ``size`` (H, W) pixels,
    JPEG, with bounding boxes and the official split file. Deterministic for a seed. Written into a temporary
    sibling folder and renamed into place; an existing non-empty ``out`` is replaced only with ``overwrite=True``
    and only if it is itself a synthetic set.
    """
    out = Path(out).expanduser()
    h, w = image_size(size, minimum=32)
    if n_train < 1 or n_test < 1:
        raise DataError(f"synthetic CUB: n_train and n_test must be at least 1, got {n_train}, {n_test}")
    attributes = class_attributes(n_classes, seed)
    names = [f"{colour}_{texture}_{shape}" for shape, texture, colour in attributes]
    with staged_output(out, overwrite, "CUB-200-2011") as tmp:
        photos: dict[str, Array] = {}
        images, labels, boxes, split = [], [], [], []
        image_id = 0
        for c, (attrs, name) in enumerate(zip(attributes, names), start=1):
            folder = f"{c:03d}.{name}"
            (tmp / "images" / folder).mkdir(parents=True)
            for k in range(n_train + n_test):
                image_id += 1
                rng = np.random.default_rng(stable_seed("cub-image", seed, c, k))
                img, box = render_image(rng, attrs, attributes, (h, w), photos)
                rel = f"{folder}/{name}_{k + 1:04d}_{image_id}.jpg"
                Image.fromarray((img * 255).round().astype(np.uint8)).save(tmp / "images" / rel, quality=92)
                images.append(f"{image_id} {rel}")
                labels.append(f"{image_id} {c}")
                boxes.append(f"{image_id} {box[0]:.1f} {box[1]:.1f} {box[2]:.1f} {box[3]:.1f}")
                split.append(f"{image_id} {1 if k < n_train else 0}")
        for fname, lines in (
            ("images.txt", images),
            ("image_class_labels.txt", labels),
            ("bounding_boxes.txt", boxes),
            ("train_test_split.txt", split),
            ("classes.txt", [f"{c:d} {c:03d}.{n}" for c, n in enumerate(names, start=1)]),
        ):
            (tmp / fname).write_text("\n".join(lines) + "\n")
        describe_synthetic(
            tmp,
            README.format(n_classes=n_classes, n_train=n_train, n_test=n_test, h=h, w=w, seed=seed),
            "cub200",
            "distill.data.recognition.synthetic.write_synthetic_cub",
            labels="procedural classes (shape x texture x colour), not birds",
            seed=seed,
            n_classes=n_classes,
            n_train_per_class=n_train,
            n_test_per_class=n_test,
            size_hw=[h, w],
            classes={n: {"shape": a[0], "texture": a[1], "colour": a[2]} for n, a in zip(names, attributes)},
            backgrounds=list(_BACKGROUNDS),
        )
    return out
