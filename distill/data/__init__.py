"""distill.data: real dataset readers (official layouts), splits, distortions and synthetic writers.

Importing this package registers the built-in datasets (``DATASETS``: kadid10k, tid2013, livec), distortions
(``DISTORTIONS``: the KADID-10k types and the TID2013-only ``tid_*`` ones) and synthetic writers (``WRITERS``).
"""

from __future__ import annotations

from distill.data import distortions, distortions_tid, images, iqa, kadid, livec, splits, sr, synthetic, tid2013
from distill.data.base import SeededDataset
from distill.data.cub import CUB200, CUB200Paired
from distill.data.distortion_classes import DistortionClasses  # noqa: F401  (registers "distortion_classes")
from distill.data.distortions import KADID_TYPES, apply_distortion
from distill.data.distortions_tid import TID_TYPES, tid_distortion
from distill.data.images import load_rgb, save_rgb
from distill.data.iqa import IQADataset
from distill.data.kadid import Kadid10k
from distill.data.livec import LiveChallenge
from distill.data.splits import split_indices
from distill.data.sr import DIV2K, SRBenchmark, SRDataset
from distill.data.synthetic import write_synthetic_kadid, write_synthetic_livec, write_synthetic_tid2013
from distill.data.tid2013 import Tid2013

__all__ = [
    "CUB200",
    "DIV2K",
    "KADID_TYPES",
    "TID_TYPES",
    "CUB200Paired",
    "IQADataset",
    "Kadid10k",
    "LiveChallenge",
    "SRBenchmark",
    "SRDataset",
    "SeededDataset",
    "Tid2013",
    "apply_distortion",
    "distortions",
    "distortions_tid",
    "images",
    "iqa",
    "kadid",
    "livec",
    "load_rgb",
    "save_rgb",
    "split_indices",
    "splits",
    "sr",
    "synthetic",
    "tid2013",
    "tid_distortion",
    "write_synthetic_kadid",
    "write_synthetic_livec",
    "write_synthetic_tid2013",
]
