"""EDSR, RCAN and SwinIR as registered models: BasicSR's own architectures, built from keyword arguments.

Each factory returns the unmodified ``basicsr.archs`` module (imported through
:func:`distill._compat.import_basicsr` on first use), so ``state_dict()`` keys are exactly BasicSR's and official
BasicSR checkpoints load as they are. ``pretrained: PATH`` loads a local file (``torch.load(weights_only=True)``):

* an official BasicSR checkpoint, which stores the weights under ``params`` or ``params_ema``
  (``pretrained_key`` picks one; by default ``params_ema`` when present, else ``params``);
* the ``student.pt`` of a distill run (weights under ``state_dict``), e.g. a teacher trained with
  ``recipes/sr_teacher_*.yaml``;
* a bare state dict.

Loading is strict: a missing, unexpected or mis-shaped key is a :class:`~distill.errors.CheckpointError` naming
the file, the keys and what to do. Images are RGB in [0, 1] in and out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from distill._compat import import_basicsr
from distill.errors import DistillError
from distill.models.weights import WeightsError, is_zoo_ref
from distill.registry import MODELS

__all__ = ["DIV2K_RGB_MEAN", "edsr", "load_sr_weights", "rcan", "swinir"]

#: BasicSR's default RGB mean (DIV2K), subtracted before and added after the network.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
_WEIGHT_KEYS = ("params_ema", "params", "state_dict", "model")


def _archs() -> Any:
    import_basicsr()
    import basicsr.archs.edsr_arch
    import basicsr.archs.rcan_arch
    import basicsr.archs.swinir_arch

    return basicsr.archs


def _pick_state(raw: Any, path: Path, key: str | None) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict inside a loaded file and the top-level key it sat under (``""`` for a bare state dict)."""
    if isinstance(raw, Mapping) and key is not None:
        if not isinstance(raw.get(key), Mapping):
            have = ", ".join(map(str, raw)) or "(nothing)"
            raise WeightsError(f"{path}: no weights under '{key}' (the file holds: {have})", "pretrained_key")
        return dict(raw[key]), key
    if isinstance(raw, Mapping):
        for candidate in _WEIGHT_KEYS:
            if isinstance(raw.get(candidate), Mapping):
                return dict(raw[candidate]), candidate
        if raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
            return dict(raw), ""
    have = ", ".join(map(str, raw)) if isinstance(raw, Mapping) else type(raw).__name__
    raise WeightsError(
        f"{path}: no state dict found (top level holds: {have}). Expected an official BasicSR checkpoint "
        "(weights under 'params' or 'params_ema'), the student.pt of a distill run, or a bare state dict"
    )


def load_sr_weights(net: nn.Module, path: str | Path, key: str | None = None, what: str = "SR weights") -> str:
    """Strictly load a local BasicSR checkpoint / distill ``student.pt`` / state dict into ``net``.

    Returns the top-level key the weights came from (``""`` for a bare state dict).
    """
    if is_zoo_ref(path):  # a published checkpoint by name (distill.models.zoo): fetched and converted once
        from distill.models.zoo import resolve_zoo

        try:
            path = resolve_zoo(str(path))
        except DistillError as err:
            raise WeightsError(str(err)) from None
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"{path}: {what} file not found. Nothing is downloaded unless asked (`pretrained: zoo:NAME` fetches a "
            "published teacher, see `distill weights list`): put an official BasicSR checkpoint there, or train a "
            "teacher first with its own recipe and point `pretrained:` at that run's student.pt; "
            "`pretrained: null` starts from random weights"
        )
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsError(f"{path}: cannot read {what} ({type(err).__name__}); is it a PyTorch file?") from None
    state, source = _pick_state(raw, path, key)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        (k, tuple(state[k].shape), tuple(own[k].shape)) for k in own if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = [
            f"missing keys {missing[:4]}" if missing else "",
            f"unexpected keys {unexpected[:4]}" if unexpected else "",
            f"shape mismatch (file, model) {shapes[:3]}" if shapes else "",
        ]
        raise WeightsError(
            f"{path}: {what} do not fit this {type(net).__name__} ({'; '.join(p for p in parts if p)}). "
            "Check num_feat / num_block / num_group / embed_dim / depths / upscale against the checkpoint"
        )
    net.load_state_dict(state, strict=True)
    return source


def _finish(
    net: nn.Module, pretrained: str | None, key: str | None, what: str, profile_hw: tuple[int, int] = (180, 320)
) -> nn.Module:
    # the paper's fixed input for FLOPs/latency (320x180 LR), read by `distill profile`; a plain attribute
    net.profile_input_shape = (int(net.conv_first.in_channels), *profile_hw)
    if pretrained:
        load_sr_weights(net, pretrained, key, what)
    return net


@MODELS.register("edsr", task="sr")
def edsr(
    num_feat: int = 64,
    num_block: int = 16,
    upscale: int = 4,
    res_scale: float = 1.0,
    img_range: float = 255.0,
    rgb_mean: list[float] = DIV2K_RGB_MEAN,  # type: ignore[assignment]
    num_in_ch: int = 3,
    num_out_ch: int = 3,
    pretrained: str | None = None,
    pretrained_key: str | None = None,
) -> nn.Module:
    """EDSR (Lim et al., CVPR-W 2017) — basicsr's EDSR; paper teacher c256 b32 res_scale 0.1, baseline c64 b16."""
    net = _archs().edsr_arch.EDSR(
        num_in_ch, num_out_ch, num_feat, num_block, upscale, res_scale, img_range, tuple(rgb_mean)
    )
    return _finish(net, pretrained, pretrained_key, f"EDSR c{num_feat} b{num_block} x{upscale} weights")


@MODELS.register("rcan", task="sr")
def rcan(
    num_feat: int = 64,
    num_group: int = 10,
    num_block: int = 20,
    squeeze_factor: int = 16,
    upscale: int = 4,
    res_scale: float = 1.0,
    img_range: float = 255.0,
    rgb_mean: list[float] = DIV2K_RGB_MEAN,  # type: ignore[assignment]
    num_in_ch: int = 3,
    num_out_ch: int = 3,
    pretrained: str | None = None,
    pretrained_key: str | None = None,
) -> nn.Module:
    """RCAN (Zhang et al., ECCV 2018) — basicsr's RCAN; paper teacher g10 b20 c64, student g10 b6 c64."""
    net = _archs().rcan_arch.RCAN(
        num_in_ch, num_out_ch, num_feat, num_group, num_block, squeeze_factor, upscale, res_scale, img_range,
        tuple(rgb_mean),
    )  # fmt: skip
    return _finish(net, pretrained, pretrained_key, f"RCAN g{num_group} b{num_block} c{num_feat} x{upscale} weights")


@MODELS.register("swinir", task="sr")
def swinir(
    embed_dim: int = 180,
    depths: list[int] = (6, 6, 6, 6, 6, 6),  # type: ignore[assignment]
    num_heads: list[int] = (6, 6, 6, 6, 6, 6),  # type: ignore[assignment]
    window_size: int = 8,
    mlp_ratio: float = 2.0,
    upscale: int = 4,
    img_size: int = 64,
    img_range: float = 1.0,
    upsampler: Literal["pixelshuffle", "pixelshuffledirect", "nearest+conv"] = "pixelshuffle",
    resi_connection: Literal["1conv", "3conv"] = "1conv",
    drop_path_rate: float = 0.1,
    in_chans: int = 3,
    pretrained: str | None = None,
    pretrained_key: str | None = None,
) -> nn.Module:
    """SwinIR (Liang et al., ICCV-W 2021) — basicsr's SwinIR; classical SR-M: c180, 6 RSTB x 6 layers, window 8."""
    if len(depths) != len(num_heads):
        raise ValueError(f"swinir: depths {list(depths)} and num_heads {list(num_heads)} differ in length")
    net = _archs().swinir_arch.SwinIR(
        img_size=img_size,
        patch_size=1,
        in_chans=in_chans,
        embed_dim=embed_dim,
        depths=list(depths),
        num_heads=list(num_heads),
        window_size=window_size,
        mlp_ratio=mlp_ratio,
        drop_path_rate=drop_path_rate,
        upscale=upscale,
        img_range=img_range,
        upsampler=upsampler,
        resi_connection=resi_connection,
    )
    net.window_size = window_size  # plain attribute (not in the state dict): inference pads to a multiple of it
    padded = (-(-180 // window_size) * window_size, -(-320 // window_size) * window_size)  # 320x180 padded
    return _finish(
        net, pretrained, pretrained_key, f"SwinIR c{embed_dim} {len(depths)} RSTB x{upscale} weights", padded
    )
