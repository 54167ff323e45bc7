"""Seeding, device choice and numeric precision of a run (what the trainer sets up before the loop)."""

from __future__ import annotations

import os
import random
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch

from distill.errors import RecipeError


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
