"""Super-resolution models: BasicSR's EDSR, RCAN and SwinIR (registered as ``edsr``, ``rcan``, ``swinir``), their
staged views for feature taps and block swapping and test-time inference helpers (the MiPKD paper's models are
the recipes in recipes/_parts/sr_*.yaml).

basicsr is imported only when an SR model is built, so importing this package stays cheap.
"""

from distill.models.sr.archs import DIV2K_RGB_MEAN, edsr, load_sr_weights, rcan, swinir
from distill.models.sr.inference import dihedral, pad_to_multiple, super_resolve, window_multiple
from distill.models.sr.staged import HeadContext, StagedView, as_view, sr_family, stage_ends

__all__ = [
    "DIV2K_RGB_MEAN",
    "HeadContext",
    "StagedView",
    "as_view",
    "dihedral",
    "edsr",
    "load_sr_weights",
    "pad_to_multiple",
    "rcan",
    "sr_family",
    "stage_ends",
    "super_resolve",
    "swinir",
    "window_multiple",
]
