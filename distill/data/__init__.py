"""distill.data: dataset readers in the official layouts, grouped by task (``iqa``, ``sr``, ``recognition``), with
the shared seeded-dataset base, image I/O, splits and the synthetic-writer skeleton.

Importing this package registers the built-in datasets (``DATASETS``), distortions (``DISTORTIONS``: the KADID-10k
types and the TID2013-only ``tid_*`` ones), degradations and synthetic writers (``WRITERS``).
"""

from __future__ import annotations

from distill.data import images, iqa, recognition, splits, sr, synthetic_common
from distill.data.base import SeededDataset
from distill.data.images import load_rgb, save_rgb
from distill.data.iqa import (
    KADID_TYPES,
    TID_TYPES,
    DistortionClasses,
    IQADataset,
    Kadid10k,
    LiveChallenge,
    Tid2013,
    apply_distortion,
    distortions,
    distortions_tid,
    tid_distortion,
    write_synthetic_kadid,
    write_synthetic_livec,
    write_synthetic_tid2013,
)
from distill.data.recognition import CUB200, CUB200Paired, write_synthetic_cub
from distill.data.splits import split_indices
from distill.data.sr import DIV2K, SRBenchmark, SRDataset, write_synthetic_div2k, write_synthetic_sr_benchmark
from distill.data.synthetic_common import pseudo_mos

__all__ = [
    "CUB200",
    "DIV2K",
    "KADID_TYPES",
    "TID_TYPES",
    "CUB200Paired",
    "DistortionClasses",
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
    "load_rgb",
    "pseudo_mos",
    "recognition",
    "save_rgb",
    "split_indices",
    "splits",
    "sr",
    "synthetic_common",
    "tid_distortion",
    "write_synthetic_cub",
    "write_synthetic_div2k",
    "write_synthetic_kadid",
    "write_synthetic_livec",
    "write_synthetic_sr_benchmark",
    "write_synthetic_tid2013",
]
