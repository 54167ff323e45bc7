"""Image quality assessment models (each registered in :data:`~distill.registry.MODELS`)."""

from distill.models.iqa.base import IQAModel
from distill.models.iqa.cnniqa import CNNIQA
from distill.models.iqa.dbcnn import DBCNN, SCNN
from distill.models.iqa.hyperiqa import HyperIQA
from distill.models.iqa.resnet import ResNetRegressor

__all__ = ["CNNIQA", "DBCNN", "SCNN", "HyperIQA", "IQAModel", "ResNetRegressor"]
