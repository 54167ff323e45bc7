"""Model zoo; each model registers itself in :data:`~distill.registry.MODELS`."""

from distill.models.iqa import DBCNN, SCNN, HyperIQA, IQAModel, ResNetRegressor

__all__ = ["DBCNN", "SCNN", "HyperIQA", "IQAModel", "ResNetRegressor"]
