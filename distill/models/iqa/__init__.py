"""Image quality assessment models."""

from distill.models.iqa.resnet import ResNetRegressor

__all__ = ["ResNetRegressor"]
