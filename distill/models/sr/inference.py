"""Test-time super-resolution shared by every SR distiller's evaluation (and by deployment).

* Window-based networks (SwinIR) need input sides that are multiples of their window: the input is padded at the
  bottom/right by mirroring (SwinIR's official test protocol) and the output cropped back to ``scale × input``.
* ``self_ensemble=True`` is the x8 geometric self-ensemble of EDSR (Lim et al., 2017, "EDSR+"): the network runs on
  the 8 flips/rotations of the input, each output is transformed back, and the 8 are averaged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["dihedral", "pad_to_multiple", "super_resolve", "window_multiple"]


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


def super_resolve(net: nn.Module, x: Tensor, self_ensemble: bool = False, multiple: int | None = None) -> Tensor:
    """``net(x)`` with window padding (``multiple``: default :func:`window_multiple`) and optional x8 ensemble."""
    multiple = window_multiple(net) if multiple is None else multiple
    if not self_ensemble:
        return _padded(net, x, multiple)
    out = None
    for k in range(8):
        y = dihedral(_padded(net, dihedral(x, k), multiple), k, inverse=True)
        out = y if out is None else out + y
    return out / 8  # type: ignore[operator]
