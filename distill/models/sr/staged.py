"""Staged views of SR networks: head → K body stages at block boundaries → tail.

A :class:`StagedView` wraps a BasicSR EDSR, RCAN or SwinIR *without owning or renaming its parameters* (it is not
an ``nn.Module``; the network stays the registered model whose ``state_dict`` is BasicSR's). It only knows where
the pieces are, so a distiller can tap the K stage outputs and run one network's stage on another's feature:

* **head** — mean shift and ``conv_first`` (SwinIR: also patch embedding + norm); returns the feature entering the
  body and the context the tail needs (the long skip);
* **stages** — the body blocks split proportionally into K stages (``stage_ends``): EDSR residual blocks, RCAN
  residual groups, SwinIR RSTBs. Stage outputs are ``B×C×H×W`` at LR resolution for every family (SwinIR's tokens
  are reshaped, which is exact);
* **tail** — ``conv_after_body`` + long skip, upsampler, ``conv_last``, mean shift back (SwinIR: norm first).

``view(x)`` equals ``net(x)`` exactly (tested), so features tapped here are the features of the deployed network.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

__all__ = ["HeadContext", "StagedView", "as_view", "sr_family", "stage_ends"]


def stage_ends(num_blocks: int, num_stages: int) -> list[int]:
    """Exclusive end block of each of ``num_stages`` stages over ``num_blocks`` blocks (proportional split).

    ``stage_ends(32, 4) == [8, 16, 24, 32]``, ``stage_ends(16, 4) == [4, 8, 12, 16]``, ``stage_ends(6, 4) ==
    [2, 3, 5, 6]`` (rounding half up), so teacher and student stage k end at the same relative depth.
    """
    if num_stages < 1:
        raise ValueError(f"num_stages must be >= 1, got {num_stages}")
    if num_blocks < num_stages:
        raise ValueError(f"cannot split {num_blocks} body blocks into {num_stages} stages; lower num_stages")
    return [(2 * k * num_blocks + num_stages) // (2 * num_stages) for k in range(1, num_stages + 1)]


@dataclass
class HeadContext:
    """What the tail needs from the head: the long skip (``conv_first`` output) and the normalised input."""

    skip: Tensor
    image: Tensor


def sr_family(net: nn.Module) -> str:
    """``"edsr"``, ``"rcan"`` or ``"swinir"`` for a BasicSR network; anything else is a TypeError."""
    name = type(net).__name__
    for cls in type(net).__mro__:
        if cls.__module__.startswith("basicsr.archs.") and cls.__name__ in ("EDSR", "RCAN", "SwinIR"):
            return cls.__name__.lower()
    raise TypeError(f"no staged view for {name}: supported are basicsr's EDSR, RCAN and SwinIR")


class StagedView:
    """Head / K stages / tail of a BasicSR EDSR, RCAN or SwinIR (see the module docstring)."""

    def __init__(self, net: nn.Module, num_stages: int = 4) -> None:
        self.net = net
        self.family = sr_family(net)
        self.blocks: list[nn.Module] = list(net.layers if self.family == "swinir" else net.body)
        self.ends = stage_ends(len(self.blocks), num_stages)
        self.num_stages = num_stages
        self.channels = int(net.conv_first.out_channels)
        #: features live on ``img_range`` × the pixel scale (255 for EDSR/RCAN, 1 for SwinIR); distillers divide
        #: by it so feature losses are in pixel units, like the [0, 1] reconstruction loss
        self.unit = float(net.img_range)

    def __repr__(self) -> str:
        return f"StagedView({self.family}, {len(self.blocks)} blocks, C={self.channels}, stage ends {self.ends})"

    def stage_blocks(self, k: int) -> list[nn.Module]:
        """The blocks of stage ``k`` (0-based)."""
        start = self.ends[k - 1] if k else 0
        return self.blocks[start : self.ends[k]]

    # ------------------------------------------------------------------------------------------------- pieces
    def head(self, x: Tensor) -> tuple[Tensor, HeadContext]:
        """LR image in [0, 1] → (feature entering stage 0, context for the tail)."""
        net = self.net
        image = (x - net.mean.to(x)) * net.img_range
        skip = net.conv_first(image)
        if self.family != "swinir":
            return skip, HeadContext(skip, image)
        window = getattr(net, "window_size", None)
        h, w = x.shape[-2:]
        if window and (h % window or w % window):
            raise ValueError(
                f"SwinIR stages need inputs whose sides are multiples of the window size {window}, got {h}x{w}; "
                "train on patches of such a size (inference pads: distill.models.sr.super_resolve)"
            )
        tokens = net.patch_embed(skip)
        if net.ape:
            tokens = tokens + net.absolute_pos_embed
        tokens = net.pos_drop(tokens)
        return _to_image(tokens, h, w), HeadContext(skip, image)

    def stage(self, k: int, f: Tensor) -> Tensor:
        """Run stage ``k`` (0-based) on a ``B×C×H×W`` feature."""
        blocks = self.stage_blocks(k)
        if self.family != "swinir":
            for block in blocks:
                f = block(f)
            return f
        h, w = f.shape[-2:]
        tokens = f.flatten(2).transpose(1, 2)
        for layer in blocks:
            tokens = layer(tokens, (h, w))
        return _to_image(tokens, h, w)

    def tail(self, f: Tensor, ctx: HeadContext) -> Tensor:
        """Last stage's feature + head context → SR image in [0, 1] scale (not clamped, like BasicSR)."""
        net = self.net
        if self.family == "swinir":
            h, w = f.shape[-2:]
            f = _to_image(net.norm(f.flatten(2).transpose(1, 2)), h, w)
        res = net.conv_after_body(f) + ctx.skip
        upsampler = getattr(net, "upsampler", "pixelshuffle") if self.family == "swinir" else "pixelshuffle"
        if upsampler == "pixelshuffle":
            if self.family == "swinir":
                res = net.conv_before_upsample(res)
            y = net.conv_last(net.upsample(res))
        elif upsampler == "pixelshuffledirect":
            y = net.upsample(res)
        elif upsampler == "nearest+conv":
            up = nn.functional.interpolate
            res = net.conv_before_upsample(res)
            res = net.lrelu(net.conv_up1(up(res, scale_factor=2, mode="nearest")))
            res = net.lrelu(net.conv_up2(up(res, scale_factor=2, mode="nearest")))
            y = net.conv_last(net.lrelu(net.conv_hr(res)))
        else:  # no upsampler (restoration): residual on the input image
            y = ctx.image + net.conv_last(res)
        return y / net.img_range + net.mean.to(y)

    # ------------------------------------------------------------------------------------------------- wholes
    def features(self, x: Tensor) -> tuple[Tensor, HeadContext, list[Tensor]]:
        """``(output, head context, [stage 1 … stage K outputs])`` of one forward pass."""
        f, ctx = self.head(x)
        feats = []
        for k in range(self.num_stages):
            f = self.stage(k, f)
            feats.append(f)
        return self.tail(f, ctx), ctx, feats

    def __call__(self, x: Tensor) -> Tensor:
        return self.features(x)[0]


def _to_image(tokens: Tensor, h: int, w: int) -> Tensor:
    """``B×(H·W)×C`` tokens → ``B×C×H×W`` (SwinIR's PatchUnEmbed, contiguous)."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)


def as_view(net: nn.Module | StagedView, num_stages: int) -> StagedView:
    """``net`` as a :class:`StagedView` with ``num_stages`` stages (a view is returned as is if K matches)."""
    if isinstance(net, StagedView):
        if net.num_stages != num_stages:
            return StagedView(net.net, num_stages)
        return net
    return StagedView(net, num_stages)
