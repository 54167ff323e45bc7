"""Distillation methods, one per file; each registers itself in :data:`~distill.registry.DISTILLERS`."""

from distill.distillers.base import Distiller
from distill.distillers.cqd import CQD, QualityRouter
from distill.distillers.kd import LogitsKD
from distill.distillers.mipkd import MiPKD
from distill.distillers.mrkd import MRKD
from distill.distillers.sr_baselines import SRFAKD, SRAttention, SRFitNet, SRLogitsKD, SRSupervised
from distill.distillers.supervised import Supervised

__all__ = [
    "CQD",
    "MRKD",
    "SRFAKD",
    "Distiller",
    "LogitsKD",
    "MiPKD",
    "QualityRouter",
    "SRAttention",
    "SRFitNet",
    "SRLogitsKD",
    "SRSupervised",
    "Supervised",
]
