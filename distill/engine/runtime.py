"""Seeding, device choice and numeric precision of a run (what the trainer sets up before the loop)."""

from __future__ import annotations

import os
import random
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch

from distill.errors import DistillError, NonFiniteLossError, RecipeError
from distill.recipe.config import TrainConfig


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; with ``deterministic`` also ask for deterministic kernels.

    Operations without a deterministic kernel (e.g. adaptive pooling's CUDA backward) warn instead of failing.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; otherwise the named device (checked to exist)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RecipeError(f"train.device: '{name}' requested but CUDA is not available; use 'cpu' or 'auto'")
    return device


def make_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """The fp16 gradient scaler on CUDA; ``None`` for fp32/bf16; fp16 on CPU is refused."""
    if precision == "fp32":
        return None
    if device.type != "cuda":
        if precision == "fp16":
            raise RecipeError("train.precision: fp16 autocast needs CUDA; use bf16 or fp32 on CPU")
        return None
    return torch.amp.GradScaler("cuda") if precision == "fp16" else None


def autocast(precision: str, device: torch.device) -> AbstractContextManager[Any]:
    """The forward-pass precision context (autocast for fp16/bf16, nothing for fp32)."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


def check_batching(config: TrainConfig, world_size: int, n_train: int) -> None:
    """The run has a length, its global batch splits over the processes, and one batch fits the training split."""
    if (length_error := config.length_error()) is not None:
        raise RecipeError(f"train: {length_error}")
    if config.batch_size % world_size:
        raise RecipeError(
            f"train.batch_size: {config.batch_size} is the global batch and must be divisible by the "
            f"{world_size} processes; change it or --nproc_per_node"
        )
    if n_train < config.batch_size and config.drop_last:
        raise DistillError(
            f"the training split has {n_train} samples, fewer than one batch of {config.batch_size}; "
            "lower train.batch_size or set train.drop_last: false"
        )


def refuse_nonfinite(bad: tuple[str, float], step: int, skipped: int, config: TrainConfig) -> None:
    """Loss term ``bad`` (name, value) of 0-based step ``step`` is not finite: raise under ``train.nonfinite: stop``
    or once ``skipped`` (the steps skipped so far, this one included) exceeds ``train.max_skipped``."""
    name, value = bad
    if config.nonfinite == "stop":
        hint = "Lower the learning rate, set optim.<group>.clip_grad_norm, or train.nonfinite: skip"
        raise NonFiniteLossError(step + 1, name, value, hint=hint)
    if skipped > config.max_skipped:
        hint = f"more than train.max_skipped={config.max_skipped} skipped"
        raise NonFiniteLossError(step + 1, name, value, hint=hint)
