"""Parameters that train at a multiple of their group's learning rate (HyperIQA's ``lr_ratio``).

A model that derives from :class:`LRRatios` names such parameters in :meth:`LRRatios.lr_ratios`; the distiller
collects them (:meth:`distill.distillers.base.Distiller.lr_ratios`) and the engine gives each ratio its own
optimizer parameter group inside the model's trainable group, at ``ratio x`` the group's scheduled rate
(:func:`distill.engine.optim.build_optimizer`). Ratios of 1 are left out.
"""

from __future__ import annotations

from torch import nn


class LRRatios:
    """Mixin of models with parameter subsets trained at a multiple of their group's learning rate."""

    def lr_ratios(self) -> dict[nn.Parameter, float]:
        """Parameter → learning-rate multiplier (absent: 1)."""
        return {}
