"""distill.data: real dataset readers (official layouts), splits, distortions and synthetic writers.

Importing this package registers the built-in datasets (``DATASETS``) and distortions (``DISTORTIONS``).
"""

from __future__ import annotations

from distill.data import distortions, images, kadid, splits, synthetic
from distill.data.base import SeededDataset
from distill.data.distortions import KADID_TYPES, apply_distortion
from distill.data.images import load_rgb, save_rgb
from distill.data.kadid import Kadid10k
from distill.data.splits import split_indices
from distill.data.synthetic import write_synthetic_kadid

__all__ = [
    "KADID_TYPES",
    "Kadid10k",
    "SeededDataset",
    "apply_distortion",
    "distortions",
    "images",
    "kadid",
    "load_rgb",
    "save_rgb",
    "split_indices",
    "splits",
    "synthetic",
    "write_synthetic_kadid",
]
