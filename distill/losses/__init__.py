"""distill.losses: functional losses, registered in :data:`~distill.registry.LOSSES` on import."""

from __future__ import annotations

from distill.losses import feature, functional
from distill.losses.feature import attention_transfer, fakd, fitnet
from distill.losses.functional import hinton_kd, l1, mse, soft_target_ce

__all__ = ["attention_transfer", "fakd", "feature", "fitnet", "functional", "hinton_kd", "l1", "mse", "soft_target_ce"]
