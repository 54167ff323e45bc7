"""distill.losses: functional losses, registered in :data:`~distill.registry.LOSSES` on import."""

from __future__ import annotations

from distill.losses import functional
from distill.losses.functional import hinton_kd, l1, mse, soft_target_ce

__all__ = ["functional", "hinton_kd", "l1", "mse", "soft_target_ce"]
