"""Recognition models: VGG-M, VGG-16 and ResNet classifiers, and CQD's quality router."""

from distill.models.recognition.classification import ImageClassifier, resnet_classifier, vgg16, vgg_m
from distill.models.recognition.router import QualityPredictor, RoutedClassifier, routed_classifier

__all__ = [
    "ImageClassifier",
    "QualityPredictor",
    "RoutedClassifier",
    "resnet_classifier",
    "routed_classifier",
    "vgg16",
    "vgg_m",
]
