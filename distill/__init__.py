"""distill: knowledge distillation for low-level and degraded-image vision (MRKD, MiPKD, CQD)."""

from __future__ import annotations

__version__ = "0.1.0"
