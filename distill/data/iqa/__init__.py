"""Image quality assessment data: the KADID-10k, TID2013 and LIVE Challenge readers, their distortion types,
SCNN's distortion-classification set and the synthetic writers for each layout."""

from __future__ import annotations

from distill.data.iqa import distortions, distortions_dbcnn, distortions_tid
from distill.data.iqa.dataset import IQADataset
from distill.data.iqa.distortion_classes import DistortionClasses
from distill.data.iqa.distortions import KADID_TYPES, apply_distortion
from distill.data.iqa.distortions_tid import TID_TYPES, tid_distortion
from distill.data.iqa.kadid import Kadid10k
from distill.data.iqa.livec import LiveChallenge
from distill.data.iqa.pristine import DbcnnDistortions, Voc2012Images, WaterlooExploration
from distill.data.iqa.synthetic_kadid import PSEUDO_MOS_FORMULA, write_synthetic_kadid
from distill.data.iqa.synthetic_livec import write_synthetic_livec
from distill.data.iqa.synthetic_tid2013 import write_synthetic_tid2013
from distill.data.iqa.tid2013 import Tid2013

__all__ = [
    "KADID_TYPES",
    "PSEUDO_MOS_FORMULA",
    "TID_TYPES",
    "DbcnnDistortions",
    "DistortionClasses",
    "IQADataset",
    "Kadid10k",
    "LiveChallenge",
    "Tid2013",
    "Voc2012Images",
    "WaterlooExploration",
    "apply_distortion",
    "distortions",
    "distortions_dbcnn",
    "distortions_tid",
    "tid_distortion",
    "write_synthetic_kadid",
    "write_synthetic_livec",
    "write_synthetic_tid2013",
]
