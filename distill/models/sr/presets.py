"""The MiPKD paper's teachers and students as named presets, and its teacher → student pairs.

A preset is a registry spec (``{"name": ..., "args": {...}}``) without the scale; :func:`preset_spec` adds
``upscale``. The recipes in ``recipes/_parts/sr_*.yaml`` state the same numbers (a test keeps them equal).

=====================  ===============================================  =====================================
preset                 architecture                                     role in the paper
=====================  ===============================================  =====================================
``edsr_teacher``       EDSR c256 b32, res_scale 0.1                     teacher
``edsr_width``         EDSR c64 b32                                     width-compressed student
``edsr_depth``         EDSR c256 b16, res_scale 0.1                     depth-compressed student
``edsr_both``          EDSR c64 b16 (= EDSR-baseline)                   compounded student
``rcan_teacher``       RCAN g10 b20 c64                                 teacher
``rcan_depth``         RCAN g10 b6 c64                                  depth-compressed student
``swinir_teacher``     SwinIR c180, 6 RSTB x 6, window 8, pixelshuffle  teacher (classical SwinIR-M)
``swinir_both``        SwinIR c60, 4 RSTB x 6, window 8, pixelshuffle   compounded student
=====================  ===============================================  =====================================

The SwinIR student keeps the classical ``pixelshuffle`` tail, not lightweight SwinIR's ``pixelshuffledirect``: the
recovered setup table (DCKD Table 1, said to follow MiPKD) gives it 1.2M parameters (``pixelshuffle``: 1.24M at x4,
``pixelshuffledirect``: 0.93M), and the same group's DUKD option file sets ``upsampler: 'pixelshuffle'``.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

__all__ = ["PAIRS", "PRESETS", "build_preset", "preset_spec"]

PRESETS: dict[str, dict[str, Any]] = {
    "edsr_teacher": {"name": "edsr", "args": {"num_feat": 256, "num_block": 32, "res_scale": 0.1}},
    "edsr_width": {"name": "edsr", "args": {"num_feat": 64, "num_block": 32, "res_scale": 1.0}},
    "edsr_depth": {"name": "edsr", "args": {"num_feat": 256, "num_block": 16, "res_scale": 0.1}},
    "edsr_both": {"name": "edsr", "args": {"num_feat": 64, "num_block": 16, "res_scale": 1.0}},
    "rcan_teacher": {"name": "rcan", "args": {"num_feat": 64, "num_group": 10, "num_block": 20}},
    "rcan_depth": {"name": "rcan", "args": {"num_feat": 64, "num_group": 10, "num_block": 6}},
    "swinir_teacher": {
        "name": "swinir",
        "args": {"embed_dim": 180, "depths": [6] * 6, "num_heads": [6] * 6, "window_size": 8, "mlp_ratio": 2.0},
    },
    "swinir_both": {
        "name": "swinir",
        "args": {
            "embed_dim": 60,
            "depths": [6] * 4,
            "num_heads": [6] * 4,
            "window_size": 8,
            "mlp_ratio": 2.0,
            "upsampler": "pixelshuffle",
        },
    },
}

#: Named teacher → student pairs of the paper: (teacher preset, student preset, compression type).
PAIRS: dict[str, tuple[str, str, str]] = {
    "edsr_width": ("edsr_teacher", "edsr_width", "width"),
    "edsr_depth": ("edsr_teacher", "edsr_depth", "depth"),
    "edsr_both": ("edsr_teacher", "edsr_both", "compounded"),
    "rcan_depth": ("rcan_teacher", "rcan_depth", "depth"),
    "swinir_both": ("swinir_teacher", "swinir_both", "compounded"),
}


def preset_spec(name: str, scale: int) -> dict[str, Any]:
    """The registry spec of preset ``name`` at ``scale`` (a fresh copy)."""
    if name not in PRESETS:
        raise KeyError(f"unknown SR preset '{name}'; choose one of {', '.join(PRESETS)}")
    spec = copy.deepcopy(PRESETS[name])
    spec["args"]["upscale"] = int(scale)
    return spec


def build_preset(name: str, scale: int) -> nn.Module:
    """Build preset ``name`` at ``scale`` through the registry (random weights; the spec is attached)."""
    from distill.build import build_model
    from distill.config import ComponentSpec

    spec = preset_spec(name, scale)
    return build_model(ComponentSpec(spec["name"], spec["args"]))
