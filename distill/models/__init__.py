"""Model zoo; each model registers itself in :data:`~distill.registry.MODELS`."""

from distill.models.iqa import ResNetRegressor

__all__ = ["ResNetRegressor"]
