"""Model zoo; each model registers itself in :data:`~distill.registry.MODELS`."""

from distill.models.iqa import CNNIQA, DBCNN, SCNN, HyperIQA, IQAModel, ResNetRegressor
from distill.models.recognition import (
    ImageClassifier,
    QualityPredictor,
    RoutedClassifier,
    resnet_classifier,
    routed_classifier,
    vgg16,
    vgg_m,
)
from distill.models.sr import StagedView, edsr, rcan, swinir

__all__ = [
    "CNNIQA",
    "DBCNN",
    "SCNN",
    "HyperIQA",
    "IQAModel",
    "ImageClassifier",
    "QualityPredictor",
    "ResNetRegressor",
    "RoutedClassifier",
    "StagedView",
    "edsr",
    "rcan",
    "resnet_classifier",
    "routed_classifier",
    "swinir",
    "vgg16",
    "vgg_m",
]
