"""Test-time super-resolution shared by every SR distiller's evaluation (and by deployment).

* Window-based networks (SwinIR) need input sides that are multiples of their window: the input is padded at the
  bottom/right by mirroring (SwinIR's official test protocol) and the output cropped back to ``scale × input``.
* ``self_ensemble=True`` is the x8 geometric self-ensemble of EDSR (Lim et al., 2017, "EDSR+"): the network runs on
  the 8 flips/rotations of the input, each output is transformed back, and the 8 are averaged.
* ``tile=N`` bounds memory on large images as SwinIR's ``main_test_swinir.py`` does: the input is cut into N×N tiles
  that overlap by ``tile_overlap`` pixels (the last tile of a row/column is moved back to end at the border, so N need
  not divide the image), each tile is super-resolved alone, and overlapping outputs are averaged. Pixels farther from
  every tile edge than the network's receptive field equal the whole-image output; near seams the output differs
  slightly (tests/test_tiling.py states the tolerance). A window network (SwinIR) needs N to be a multiple of its
  window, as in SwinIR's script.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from distill.errors import DistillError

__all__ = ["check_tile", "dihedral", "pad_to_multiple", "super_resolve", "tile_starts", "window_multiple"]


def window_multiple(net: nn.Module) -> int:
    """The multiple an input side must be for ``net`` (SwinIR's window size; 1 for convolutional networks)."""
    window = getattr(net, "window_size", None)
    if window is None and type(net).__name__ == "SwinIR":
        window = net.layers[0].residual_group.blocks[0].window_size
    return int(window or 1)


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad ``B×C×H×W`` at the bottom and right to multiples of ``multiple`` by mirroring (SwinIR's test padding)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h:
        x = torch.cat([x, x.flip(-2)], dim=-2)[..., : h + pad_h, :]
    if pad_w:
        x = torch.cat([x, x.flip(-1)], dim=-1)[..., : h + pad_h, : w + pad_w]
    return x


def dihedral(x: Tensor, k: int, inverse: bool = False) -> Tensor:
    """The ``k``-th (0–7) of the 8 flips/rotations of ``x``'s last two axes, or its inverse."""
    flip, turns = k >= 4, k % 4
    if inverse:
        x = torch.rot90(x, -turns, dims=(-2, -1))
        return x.flip(-1) if flip else x
    x = x.flip(-1) if flip else x
    return torch.rot90(x, turns, dims=(-2, -1))


def _padded(net: Callable[[Tensor], Tensor], x: Tensor, multiple: int) -> Tensor:
    h, w = x.shape[-2:]
    xp = pad_to_multiple(x, multiple) if multiple > 1 else x
    y = net(xp)
    scale = y.shape[-1] // xp.shape[-1]
    return y[..., : h * scale, : w * scale]


def check_tile(tile: int | None, overlap: int, multiple: int, name: str = "SwinIR") -> None:
    """A tile size the network can take: positive, a multiple of its window, larger than the overlap."""
    if tile is None:
        return
    if tile % multiple:
        lower, upper = max(multiple, tile // multiple * multiple), (tile // multiple + 1) * multiple
        raise DistillError(
            f"tile {tile}: a {name} network needs a multiple of its window size {multiple} (e.g. {lower} or {upper})"
        )
    if tile < 1 or overlap < 0 or overlap >= tile:
        raise DistillError(
            f"tile {tile} with overlap {overlap}: need tile >= 1 and 0 <= overlap < tile, e.g. 256 and 32"
        )


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Where the tiles of one axis start: every ``tile - overlap`` pixels, the last one ending at the border."""
    if tile >= size:
        return [0]
    starts = list(range(0, size - tile, tile - overlap))
    return [*starts, size - tile]


def _tiled(net: Callable[[Tensor], Tensor], x: Tensor, tile: int, overlap: int, multiple: int) -> Tensor:
    """SwinIR's tiled test: overlapping tiles super-resolved one by one, overlapping outputs averaged."""
    h, w = x.shape[-2:]
    th, tw = min(tile, h), min(tile, w)
    out: Tensor | None = None
    count: Tensor | None = None
    scale = 1
    for top in tile_starts(h, th, overlap):
        for left in tile_starts(w, tw, overlap):
            y = _padded(net, x[..., top : top + th, left : left + tw], multiple)
            if out is None:
                scale = y.shape[-1] // tw
                out = y.new_zeros(*y.shape[:-2], h * scale, w * scale)
                count = y.new_zeros(1, 1, h * scale, w * scale)
            region = (..., slice(top * scale, (top + th) * scale), slice(left * scale, (left + tw) * scale))
            out[region] += y
            count[region] += 1  # type: ignore[index]
    return out / count  # type: ignore[operator]


def super_resolve(
    net: nn.Module,
    x: Tensor,
    self_ensemble: bool = False,
    multiple: int | None = None,
    tile: int | None = None,
    tile_overlap: int = 32,
) -> Tensor:
    """``net(x)`` with window padding (``multiple``: default :func:`window_multiple`), optional x8 ensemble and
    optional overlapping tiles of ``tile`` input pixels (``None``: the whole image at once)."""
    multiple = window_multiple(net) if multiple is None else multiple
    check_tile(tile, tile_overlap, multiple, type(net).__name__)

    def run(inp: Tensor) -> Tensor:
        if tile is not None and (inp.shape[-2] > tile or inp.shape[-1] > tile):
            return _tiled(net, inp, tile, tile_overlap, multiple)
        return _padded(net, inp, multiple)

    if not self_ensemble:
        return run(x)
    out = None
    for k in range(8):
        y = dihedral(run(dihedral(x, k)), k, inverse=True)
        out = y if out is None else out + y
    return out / 8  # type: ignore[operator]
