"""Super-resolution models: BasicSR's EDSR, RCAN and SwinIR (registered as ``edsr``, ``rcan``, ``swinir``), their
staged views for feature taps and block swapping, test-time inference helpers and the MiPKD paper's presets.

basicsr is imported only when an SR model is built, so importing this package stays cheap.
"""

from distill.models.sr.archs import DIV2K_RGB_MEAN, edsr, load_sr_weights, rcan, swinir
from distill.models.sr.inference import dihedral, pad_to_multiple, super_resolve, window_multiple
from distill.models.sr.presets import PAIRS, PRESETS, build_preset, preset_spec
from distill.models.sr.staged import HeadContext, StagedView, as_view, sr_family, stage_ends

__all__ = [
    "DIV2K_RGB_MEAN",
    "PAIRS",
    "PRESETS",
    "HeadContext",
    "StagedView",
    "as_view",
    "build_preset",
    "dihedral",
    "edsr",
    "load_sr_weights",
    "pad_to_multiple",
    "preset_spec",
    "rcan",
    "sr_family",
    "stage_ends",
    "super_resolve",
    "swinir",
    "window_multiple",
]
