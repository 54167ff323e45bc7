"""Image files ↔ float tensors ``[3, H, W]`` in [0, 1], with corrupt files reported by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from distill.errors import DataError
from distill.run.atomic import write_with

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError)


#: File suffixes treated as images when a folder is scanned.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def is_image_file(path: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> bool:
    """A file a folder scan takes as an image: an image suffix and not hidden (``.DS_Store``, and the ``._name.png``
    resource forks macOS writes beside every file of an archive made there, which are not images)."""
    return path.suffix.lower() in suffixes and not path.name.startswith(".") and path.is_file()


def image_files(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """The images directly in ``folder`` (:func:`is_image_file`), sorted by name."""
    return sorted(p for p in folder.iterdir() if is_image_file(p, suffixes))


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Decoded Pillow image → float32 ``[H, W, 3]`` in [0, 1] (grey replicated, alpha dropped, 16-bit scaled)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(arr, 0, 1)[..., None], 3, axis=2)
    if img.mode == "F":
        return np.repeat(np.clip(np.asarray(img, dtype=np.float32), 0, 1)[..., None], 3, axis=2)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.float32) / 255.0


def load_rgb(path: str | Path, *, exif_orientation: bool = False) -> Tensor:
    """Decode an image file into a float tensor ``[3, H, W]`` in [0, 1].

    ``exif_orientation`` turns the pixels upright as the file's EXIF Orientation tag says (what a photo viewer
    shows; phone cameras store portrait shots sideways with the tag). ``distill predict`` sets it for the user's
    photos; dataset readers keep the stored pixels, as the papers' pipelines read them.
    Raises :class:`DataError` naming the file when it is missing, unreadable, corrupt or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image not found: {path}. Check the dataset folder (re-extract the archive if files are lost)")
    try:
        with Image.open(path) as img:
            img.load()
            arr = _to_rgb_array(ImageOps.exif_transpose(img) if exif_orientation else img)
    except _DECODE_ERRORS as err:
        raise DataError(
            f"cannot decode image {path}: {err}. The file is corrupt or truncated; replace it from the original archive"
        ) from err
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def verify_image(path: str | Path) -> str | None:
    """Cheap integrity check without a full decode (Pillow ``verify``): ``None`` if fine, else the reason."""
    try:
        with Image.open(path) as img:
            img.verify()
    except _DECODE_ERRORS as err:
        return f"{type(err).__name__}: {err}"
    return None


def to_uint8(tensor: Tensor) -> np.ndarray:
    """Float tensor ``[3, H, W]`` / ``[1, H, W]`` / ``[H, W]`` in [0, 1] → uint8 array ``[H, W, 3]`` or ``[H, W]``."""
    t = tensor.detach().float().cpu()
    if t.ndim == 3 and t.shape[0] == 1:
        t = t[0]
    if t.ndim == 3:
        if t.shape[0] != 3:
            raise ValueError(f"expected a [3, H, W] image tensor, got {tuple(tensor.shape)}")
        t = t.permute(1, 2, 0)
    elif t.ndim != 2:
        raise ValueError(f"expected a [3, H, W] or [H, W] image tensor, got {tuple(tensor.shape)}")
    return (t.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def save_rgb(tensor: Tensor, path: str | Path) -> Path:
    """Write a float image tensor in [0, 1] to ``path`` (format from the suffix; 8 bits per channel)."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image format {path.suffix!r}; use .png, .jpg, .bmp, .tif …")
    return write_with(path, lambda buf: Image.fromarray(to_uint8(tensor)).save(buf, format=fmt))


_TORCHVISION_DECODE: list[object] = []  # [decode_image] once probed and working, [None] when it does not work here


def torchvision_decoder() -> object | None:
    """``torchvision.io.decode_image`` when it decodes here (probed once per process on a tiny PNG), else ``None``.

    On CPU-only torch with a CUDA torchvision wheel the image extension does not load (see ENVIRONMENT.md); readers
    with ``format: torchvision`` then fall back to Pillow, with one warning.
    """
    if not _TORCHVISION_DECODE:
        decode = None
        try:
            import io
            import warnings

            from distill._compat import import_torchvision

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tv = import_torchvision()
                buf = io.BytesIO()
                Image.new("RGB", (2, 2), (10, 20, 30)).save(buf, format="PNG")
                probe = tv.io.decode_image(torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8))
            if probe.shape == (3, 2, 2) and probe[:, 0, 0].tolist() == [10, 20, 30]:
                decode = tv.io.decode_image
        except Exception:  # any failure to import or decode means: not available here
            decode = None
        if decode is None:
            import warnings

            warnings.warn(
                "format: torchvision: torchvision.io cannot decode images on this machine; decoding with Pillow",
                stacklevel=2,
            )
        _TORCHVISION_DECODE.append(decode)
    return _TORCHVISION_DECODE[0]


def load_rgb_with(path: str | Path, fmt: str) -> Tensor:
    """:func:`load_rgb` with ``fmt`` ``files`` (Pillow) or ``torchvision`` (``decode_image``, RGB; Pillow when it
    does not work here or the file is not 8-bit RGB/grey)."""
    decode = torchvision_decoder() if fmt == "torchvision" else None
    if decode is None:
        return load_rgb(path)
    path = Path(path)
    try:
        from distill._compat import import_torchvision

        tv = import_torchvision()
        img = decode(tv.io.read_file(str(path)), mode=tv.io.ImageReadMode.RGB)  # type: ignore[operator]
    except Exception:  # 16-bit, unusual formats, corrupt files: Pillow decides (and names the file)
        return load_rgb(path)
    return img.float() / 255


def header_size(path: Path) -> tuple[int, int] | None:
    """``(height, width)`` from the file header, ``None`` if it cannot be read (the dataset's policy reports it)."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except Exception:
        return None
    return height, width
