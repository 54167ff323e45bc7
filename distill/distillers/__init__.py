"""Distillation methods, one per file; each registers itself in :data:`~distill.registry.DISTILLERS`."""

from distill.distillers.base import Distiller
from distill.distillers.kd import LogitsKD
from distill.distillers.mrkd import MRKD
from distill.distillers.supervised import Supervised

__all__ = ["MRKD", "Distiller", "LogitsKD", "Supervised"]
