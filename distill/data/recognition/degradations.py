"""CQD's image degradations: the view B a student sees of an image whose clean view A its teacher sees.

Su & Maji, "Adapting models to signal degradation using distillation", BMVC 2017.
Every degradation starts from one CUB image and its bounding box, takes a *source* view and transforms it:

================  ===========  =================================================================================
name              source       then
================  ===========  =================================================================================
localization      full image   nothing (the object is no longer centred and cropped)
low_resolution    box crop     the crop as cut from the image down to ``low``×``low`` (antialiased bicubic),
                               then up to the view size (bicubic): ``save_images.m``'s chain
line_drawing      box crop     edge map, grey, replicated to 3 channels (kornia; see :func:`edge_map`), or read
                               from a folder of precomputed edge maps (``edge_dir``)
tps_distortion    box crop     resized to a shorter side of the view size (aspect kept), the top-left square taken,
                               then a thin-plate-spline warp: ``grid``×``grid`` control points at the official
                               ``8:16:224`` positions, each jittered by N(0, ``sigma``²) pixels, nearest sampling
loc_low_res       full image   as ``low_resolution``, from the whole image
================  ===========  =================================================================================

The clean view A is the box crop (:func:`crop_view`), resized to the view size without keeping the aspect ratio,
as the official code does. The paper's values (``low=50``, ``grid=14``, ``sigma=4``) are for 224-pixel views;
recipes at other sizes scale them. The paper's line drawings come from the Structured Edge Detector (SED), which
the official code ran once over the crops and saved as images: ``line_drawing`` with ``edge_dir`` reads such a folder
(the layout of ``images/``, one grey edge map per image, of the whole image or of the crop: ``edge_dir_covers``).
Without it (the default) it computes kornia's Sobel gradient magnitude of the Gaussian-smoothed grey image
(``detector="sobel"``, a soft edge map like SED's) or kornia's Canny edges (``detector="canny"``).
The TPS distortion follows ``save_images.m``: the crop is resized (bilinear) so that its shorter side is the view
size, control points sit at ``8:16:224`` (MATLAB pixel indices, scaled for other sizes), the output is the
view-size square of that frame, and pixels are sampled nearest-neighbour (``tpswarp`` with ``'nearest'``).

Degradations are registered by name in :data:`DEGRADATIONS`, so a dataset's ``degradation: low_resolution``
(plus ``degradation_args``) picks one. Random ones (``tps_distortion``) draw from a generator the dataset seeds
per image, so the degraded set is fixed, like the official code's degraded images written to disk once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from distill.errors import DataError, RegistryError
from distill.registry import DEGRADATIONS

__all__ = [
    "DEGRADATIONS",
    "Degradation",
    "build_degradation",
    "crop_box",
    "crop_view",
    "edge_map",
    "full_view",
    "low_resolution_view",
    "resize",
    "short_side_view",
    "tps_warp",
]

Source = Literal["crop", "full"]
_EDGE_FLOOR = 0.02  # smallest gradient maximum an edge map is normalised by


# --------------------------------------------------------------------------------------------- tensor operations
def resize(x: Tensor, size: int | Sequence[int], mode: str = "bilinear") -> Tensor:
    """Resize ``[3, H, W]`` or ``[B, 3, H, W]`` to ``size`` (side or (h, w)), antialiased when shrinking, in [0, 1]."""
    hw = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    batched = x.ndim == 4
    y = x if batched else x.unsqueeze(0)
    if tuple(y.shape[-2:]) != hw:
        y = F.interpolate(y.float(), size=hw, mode=mode, align_corners=False, antialias=mode in ("bilinear", "bicubic"))
        y = y.clamp(0.0, 1.0)
    return y if batched else y.squeeze(0)


def crop_box(image: Tensor, box: Sequence[float]) -> Tensor:
    """The pixels of ``image`` ``[3, H, W]`` inside ``box = (x, y, w, h)`` (CUB's convention: top-left corner, size).

    Coordinates are rounded to whole pixels and clamped to the image; the crop is at least one pixel wide and high.
    """
    _, h_img, w_img = image.shape
    x, y, w, h = (float(v) for v in box)
    left = min(max(round(x), 0), w_img - 1)
    top = min(max(round(y), 0), h_img - 1)
    right = min(max(round(x + w), left + 1), w_img)
    bottom = min(max(round(y + h), top + 1), h_img)
    return image[:, top:bottom, left:right]


def crop_view(image: Tensor, box: Sequence[float], size: int) -> Tensor:
    """View A: the bounding-box crop resized to ``size``×``size``."""
    return resize(crop_box(image, box), size)


def short_side_view(image: Tensor, size: int) -> Tensor:
    """``image`` resized (bilinear, aspect kept) so that its shorter side is ``size``, then its top-left square."""
    _, h, w = image.shape
    factor = size / min(h, w)
    hw = (max(size, round(h * factor)), max(size, round(w * factor)))
    return resize(image, hw)[:, :size, :size]


def full_view(image: Tensor, size: int) -> Tensor:
    """The whole image resized to ``size``×``size`` (no box)."""
    return resize(image, size)


def low_resolution_view(x: Tensor, low: int, size: int | None = None) -> Tensor:
    """``x`` (``[3, H, W]`` or batched) downsampled to ``low``×``low`` (antialiased bicubic), then up to
    ``size``×``size`` (bicubic; default: ``x``'s own size)."""
    out = tuple(x.shape[-2:]) if size is None else (size, size)
    return resize(resize(x, low, mode="bicubic"), out, mode="bicubic")


def edge_map(
    x: Tensor,
    detector: Literal["sobel", "canny"] = "sobel",
    sigma: float = 1.0,
    low_threshold: float = 0.1,
    high_threshold: float = 0.2,
) -> Tensor:
    """Grey edge map of ``x`` (``[B, 3, H, W]``) replicated to 3 channels, in [0, 1]; edges are bright.

    ``sobel``: kornia's Sobel gradient magnitude of the grey image smoothed by a Gaussian of ``sigma`` pixels,
    divided by its per-image maximum (at least ``0.02``, about a 0.1 step) — a soft edge map. ``canny``: kornia's
    Canny edges (binary, thinned, with hysteresis between ``low_threshold`` and ``high_threshold``).
    """
    import kornia

    grey = kornia.color.rgb_to_grayscale(x.float())
    if detector == "sobel":
        if sigma > 0:
            k = 2 * math.ceil(3 * sigma) + 1
            grey = kornia.filters.gaussian_blur2d(grey, (k, k), (sigma, sigma), border_type="replicate")
        grad = kornia.filters.spatial_gradient(grey, mode="sobel", normalized=True)  # [B, 1, 2, H, W]
        mag = grad.pow(2).sum(dim=2).sqrt()
        # per-image maximum, floored so that near-flat images are not stretched into noise
        edges = mag / mag.amax(dim=(1, 2, 3), keepdim=True).clamp_min(_EDGE_FLOOR)
    elif detector == "canny":
        k = 2 * math.ceil(3 * max(sigma, 0.5)) + 1
        _, edges = kornia.filters.canny(
            grey, low_threshold=low_threshold, high_threshold=high_threshold, kernel_size=k, sigma=(sigma, sigma)
        )
    else:
        raise ValueError(f"unknown edge detector '{detector}'; choose sobel or canny")
    return edges.clamp(0.0, 1.0).expand(-1, 3, -1, -1).contiguous()


@functools.lru_cache(maxsize=8)
def _tps_inverse(grid: int, h: int, w: int) -> Tensor:
    """Inverse of the thin-plate-spline system ``[[K, P], [P^T, 0]]`` of the ``grid``×``grid`` lattice of
    :func:`_lattice` (float64): ``K_ij = U(|c_i - c_j|)``, ``U(r) = r² log r``, ``P_i = (1, x_i, y_i)``."""
    from kornia.geometry.transform.thin_plate_spline import _kernel_distance, _pair_square_euclidean

    centres = _lattice(grid, h, w, torch.float64)[None]
    n = grid * grid
    system = torch.zeros(n + 3, n + 3, dtype=torch.float64)
    system[:n, :n] = _kernel_distance(_pair_square_euclidean(centres, centres))[0]
    affine = torch.cat([torch.ones(n, 1, dtype=torch.float64), centres[0]], dim=1)
    system[:n, n:] = affine
    system[n:, :n] = affine.T
    return torch.linalg.inv(system)


def _lattice(grid: int, h: int, w: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``grid``×``grid`` control points ``(x, y)`` in grid_sample's frame (align_corners=False), row-major.

    The official ``8:16:224`` for ``grid=14`` at 224 px: MATLAB pixel index ``(k + 0.5)·side/grid``, whose centre is
    ``(k + 0.5)·side/grid − 0.5`` pixels from the image's left/top edge.
    """
    k = torch.arange(grid, dtype=dtype) + 0.5
    xs = 2 * (k * w / grid - 0.5) / w - 1
    ys = 2 * (k * h / grid - 0.5) / h - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=-1)


def tps_warp(
    x: Tensor,
    grid: int,
    sigma: float,
    generator: torch.Generator | None = None,
    mode: Literal["nearest", "bilinear"] = "nearest",
) -> Tensor:
    """Thin-plate-spline warp of ``x`` (``[B, 3, H, W]``), through kornia's ``warp_points_tps``.

    A ``grid``×``grid`` lattice of control points (:func:`_lattice`, the official ``8:16:224`` at 224 px) spans
    the output image; the spline maps each of them to its position in the input image moved by an independent
    N(0, ``sigma``²) offset in pixels (x and y), and every output pixel reads the input there (``mode``: nearest as
    the official code, or bilinear; border padding). ``sigma=0`` is the identity. The spline weights
    come from the standard symmetric TPS system on the regular lattice (solved once per grid size, in float64):
    kornia's ``get_tps_transform`` places its kernels between source and target points, which for a 14×14 grid of
    pixel-sized jitters is so ill-conditioned that the warp moves some pixels by over 100 pixels.
    """
    from kornia.geometry import create_meshgrid
    from kornia.geometry.transform import warp_points_tps

    if grid < 2:
        raise ValueError(f"tps grid must be at least 2x2 control points, got {grid}")
    b, _, h, w = x.shape
    centres = _lattice(grid, h, w, torch.float64).expand(b, -1, -1)
    noise = torch.randn(b, grid * grid, 2, generator=generator, dtype=torch.float64) * sigma
    # pixels → the normalised grid_sample frame (align_corners=False): one pixel is 2/W wide, 2/H high
    targets = centres + noise * torch.tensor([2.0 / w, 2.0 / h], dtype=torch.float64)
    rhs = torch.cat([targets, torch.zeros(b, 3, 2, dtype=torch.float64)], dim=1)
    weights = _tps_inverse(grid, h, w) @ rhs
    n = grid * grid
    kernel_weights, affine_weights = weights[:, :n].float(), weights[:, n:].float()
    coords = create_meshgrid(h, w, True, x.device, torch.float32, align_corners=False)
    coords = coords.reshape(1, -1, 2).expand(b, -1, -1)
    where = warp_points_tps(
        coords, centres.float().to(x.device), kernel_weights.to(x.device), affine_weights.to(x.device)
    )
    warped = F.grid_sample(x.float(), where.view(b, h, w, 2), mode=mode, padding_mode="border", align_corners=False)
    return warped.clamp(0.0, 1.0)


# ------------------------------------------------------------------------------------------------- degradations
class Degradation:
    """One degradation: the source view (``crop`` or ``full``) and a transform of that view.

    Subclasses implement :meth:`transform` on a batch ``[B, 3, S, S]``; :meth:`__call__` does a whole image.
    :meth:`describe` is a stable text of every parameter (it keys the teacher-output cache and fills captions).
    """

    name: str = "identity"
    source: Source = "crop"
    random: bool = False  # draws from the generator (seeded per image by the datasets)

    def transform(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The degraded batch ``[B, 3, S, S]`` of the source views ``x``."""
        return x

    def view(
        self,
        image: Tensor,
        box: Sequence[float],
        size: int,
        generator: torch.Generator | None = None,
        name: str | None = None,
    ) -> Tensor:
        """The degraded ``[3, size, size]`` view of ``image`` ``[3, H, W]`` with bounding box ``box``; ``name`` is the
        image's path relative to the dataset's ``images/`` (used by degradations that read precomputed files)."""
        return self.transform(self.source_view(image, box, size).unsqueeze(0), generator).squeeze(0)

    def source_view(self, image: Tensor, box: Sequence[float], size: int) -> Tensor:
        """The ``[3, size, size]`` view :meth:`transform` degrades: the box crop or the full image (``source``)."""
        return crop_view(image, box, size) if self.source == "crop" else full_view(image, size)

    def check(self, names: Sequence[str]) -> None:
        """Raise :class:`DataError` before training if a file this degradation needs for ``names`` is missing."""

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.view(*args, **kwargs)  # late-bound: subclasses may override view

    def params(self) -> dict[str, Any]:
        """The parameters that define this degradation."""
        return {}

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params().items())
        return f"{self.name}({args}) of the {'box crop' if self.source == 'crop' else 'full image'}"

    def __repr__(self) -> str:
        return f"<Degradation {self.describe()}>"


class Localization(Degradation):
    """The full image instead of the bounding-box crop."""

    name, source = "localization", "full"


class LowResolution(Degradation):
    """Down to ``low``×``low``, then up to the view size.

    A view (:meth:`view`) starts from the original crop (or full image), not from the view-size image:
    ``save_images.m`` of the CQD MATLAB release resizes the crop to 50×50 (``imresize``, bicubic) and then to
    224×224 (the release's "Degradations" step). :meth:`transform`
    degrades view-size batches (down and back up).
    """

    def __init__(self, low: int, source: Source = "crop", name: str = "low_resolution") -> None:
        if isinstance(low, bool) or int(low) != low or low < 1:
            raise DataError(f"{name}: low must be a positive integer (pixels), got {low!r}")
        self.low, self.source, self.name = int(low), source, name

    def transform(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return low_resolution_view(x, self.low)

    def view(
        self,
        image: Tensor,
        box: Sequence[float],
        size: int,
        generator: torch.Generator | None = None,
        name: str | None = None,
    ) -> Tensor:
        source = crop_box(image, box) if self.source == "crop" else image
        return low_resolution_view(source, self.low, size)

    def params(self) -> dict[str, Any]:
        return {"low": self.low, "resample": "original -> low (bicubic antialiased) -> view size (bicubic)"}


class LineDrawing(Degradation):
    """Edge map of the crop (kornia Sobel or Canny), grey replicated to 3 channels."""

    name = "line_drawing"

    def __init__(
        self,
        detector: str = "sobel",
        sigma: float = 1.0,
        low_threshold: float = 0.1,
        high_threshold: float = 0.2,
        edge_dir: str | None = None,
        edge_dir_covers: str = "image",
    ) -> None:
        if detector not in ("sobel", "canny"):
            raise DataError(f"line_drawing: detector '{detector}' is not one of sobel, canny")
        if sigma < 0:
            raise DataError(f"line_drawing: sigma must be >= 0, got {sigma}")
        if edge_dir_covers not in ("image", "crop"):
            raise DataError(f"line_drawing: edge_dir_covers '{edge_dir_covers}' is not one of image, crop")
        if edge_dir is not None and not Path(edge_dir).is_dir():
            raise DataError(
                f"line_drawing: edge_dir {edge_dir} is not a folder; it holds one precomputed edge map per image "
                "in the layout of images/ (e.g. from the Structured Edge Detector), or leave it unset for Sobel"
            )
        self.detector, self.sigma = detector, float(sigma)
        self.low_threshold, self.high_threshold = float(low_threshold), float(high_threshold)
        self.edge_dir, self.edge_dir_covers = (Path(edge_dir) if edge_dir else None), edge_dir_covers

    def edge_file(self, name: str) -> Path:
        """The precomputed edge map of image ``name`` (same relative path; ``.png`` also accepted)."""
        assert self.edge_dir is not None
        path = self.edge_dir / name
        return path if path.is_file() else path.with_suffix(".png")

    def check(self, names: Sequence[str]) -> None:
        if self.edge_dir is None:
            return
        missing = [n for n in names if not self.edge_file(n).is_file()]
        if missing:
            raise DataError(
                f"line_drawing: {len(missing)} of {len(names)} images have no edge map in {self.edge_dir}, e.g. "
                f"{self.edge_dir / missing[0]} (or .png); compute them for every image, or unset edge_dir for Sobel"
            )

    def view(
        self,
        image: Tensor,
        box: Sequence[float],
        size: int,
        generator: torch.Generator | None = None,
        name: str | None = None,
    ) -> Tensor:
        if self.edge_dir is None:
            return super().view(image, box, size, generator, name)
        from distill.data.images import load_rgb

        if name is None:
            raise DataError("line_drawing with edge_dir needs the image's name (a dataset that passes it, e.g. cub200)")
        edges = load_rgb(self.edge_file(name)).mean(dim=0, keepdim=True).expand(3, -1, -1)
        if self.edge_dir_covers == "crop":
            return resize(edges, size)
        if tuple(edges.shape[-2:]) != tuple(image.shape[-2:]):
            raise DataError(
                f"line_drawing: edge map {self.edge_file(name)} is {tuple(edges.shape[-2:])}, its image "
                f"{tuple(image.shape[-2:])}; edge maps of crops need edge_dir_covers: crop"
            )
        return crop_view(edges, box, size)

    def transform(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return edge_map(x, self.detector, self.sigma, self.low_threshold, self.high_threshold)  # type: ignore[arg-type]

    def params(self) -> dict[str, Any]:
        if self.edge_dir is not None:
            return {"edge_dir": str(self.edge_dir.resolve()), "covers": self.edge_dir_covers}
        p: dict[str, Any] = {"detector": f"kornia {self.detector}", "sigma": self.sigma}
        if self.detector == "canny":
            p.update(low_threshold=self.low_threshold, high_threshold=self.high_threshold)
        return p


class TPSDistortion(Degradation):
    """Thin-plate-spline warp with a jittered control grid (kornia)."""

    name, random = "tps_distortion", True

    def __init__(self, grid: int = 14, sigma: float = 4.0, sampling: str = "nearest", keep_aspect: bool = True) -> None:
        if isinstance(grid, bool) or int(grid) != grid or grid < 2:
            raise DataError(f"tps_distortion: grid must be an integer >= 2, got {grid!r}")
        if sigma < 0:
            raise DataError(f"tps_distortion: sigma must be >= 0 pixels, got {sigma}")
        if sampling not in ("nearest", "bilinear"):
            raise DataError(f"tps_distortion: sampling '{sampling}' is not one of nearest, bilinear")
        self.grid, self.sigma, self.sampling, self.keep_aspect = int(grid), float(sigma), sampling, bool(keep_aspect)

    def source_view(self, image: Tensor, box: Sequence[float], size: int) -> Tensor:
        """The crop resized to a shorter side of ``size`` (aspect kept, top-left square; official)."""
        if not self.keep_aspect:
            return super().source_view(image, box, size)
        return short_side_view(crop_box(image, box), size)

    def transform(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return tps_warp(x, self.grid, self.sigma, generator, self.sampling)  # type: ignore[arg-type]

    def params(self) -> dict[str, Any]:
        return {
            "grid": self.grid,
            "sigma_px": self.sigma,
            "sampling": self.sampling,
            "resize": "shorter side, top-left square" if self.keep_aspect else "square",
        }


@DEGRADATIONS.register("localization")
def localization() -> Degradation:
    """CQD localization: the full image (no bounding box) instead of the box crop."""
    return Localization()


@DEGRADATIONS.register("low_resolution")
def low_resolution(low: int = 50) -> Degradation:
    """CQD low resolution: the box crop down to low x low pixels and back up (paper: 50 at 224)."""
    return LowResolution(low)


@DEGRADATIONS.register("line_drawing")
def line_drawing(
    detector: str = "sobel",
    sigma: float = 1.0,
    low_threshold: float = 0.1,
    high_threshold: float = 0.2,
    edge_dir: str | None = None,
    edge_dir_covers: str = "image",
) -> Degradation:
    """CQD line drawing: edge map of the box crop (kornia Sobel or Canny, or precomputed in edge_dir), grey x3."""
    return LineDrawing(detector, sigma, low_threshold, high_threshold, edge_dir, edge_dir_covers)


@DEGRADATIONS.register("tps_distortion")
def tps_distortion(
    grid: int = 14, sigma: float = 4.0, sampling: str = "nearest", keep_aspect: bool = True
) -> Degradation:
    """CQD distortion: thin-plate-spline warp of the box crop, grid x grid points jittered by N(0, sigma^2) px."""
    return TPSDistortion(grid, sigma, sampling, keep_aspect)


@DEGRADATIONS.register("loc_low_res")
def loc_low_res(low: int = 50) -> Degradation:
    """CQD localization + low resolution: the full image down to low x low pixels and back up."""
    return LowResolution(low, source="full", name="loc_low_res")


def build_degradation(name: str, args: dict[str, Any] | None = None) -> Degradation:
    """The registered degradation ``name`` with ``args``; unknown names and arguments are :class:`DataError`."""
    try:
        factory = DEGRADATIONS.get(name)
    except RegistryError as err:
        raise DataError(f"degradation: {err}") from None
    try:
        return factory(**dict(args or {}))
    except TypeError as err:
        raise DataError(f"degradation '{name}': bad degradation_args {dict(args or {})}: {err}") from None
