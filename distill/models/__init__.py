"""Model zoo; each model registers itself in :data:`~distill.registry.MODELS`."""

from distill.models.iqa import DBCNN, SCNN, HyperIQA, IQAModel, ResNetRegressor
from distill.models.sr import StagedView, edsr, rcan, swinir

__all__ = [
    "DBCNN",
    "SCNN",
    "HyperIQA",
    "IQAModel",
    "ResNetRegressor",
    "StagedView",
    "edsr",
    "rcan",
    "swinir",
]
