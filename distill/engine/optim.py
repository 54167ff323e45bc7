"""Optimizers for trainable groups."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from distill.recipe.config import OptimConfig


def build_optimizer(
    params: Iterable[nn.Parameter], cfg: OptimConfig, lr_ratios: Mapping[nn.Parameter, float] | None = None
) -> torch.optim.Optimizer:
    """SGD (momentum, nesterov), Adam or AdamW with the group's lr and weight decay.

    Parameters with an ``lr_ratios`` entry other than 1 form their own optimizer parameter group (in order of first
    appearance) whose ``lr_ratio`` key multiplies the group's scheduled rate (the trainer applies it every step).
    """
    kept = [p for p in params if p.requires_grad]
    ratios = lr_ratios or {}
    by_ratio: dict[float, list[nn.Parameter]] = {}
    for p in kept:
        by_ratio.setdefault(float(ratios.get(p, 1.0)), []).append(p)
    params: list[Any] = kept
    if set(by_ratio) - {1.0}:
        params = [{"params": ps, "lr_ratio": r, "lr": cfg.lr * r} for r, ps in by_ratio.items()]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    betas = (float(cfg.betas[0]), float(cfg.betas[1]))
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")
