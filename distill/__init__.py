"""distill: knowledge distillation for low-level and degraded-image vision (MRKD, MiPKD, CQD).

The public API is importable from the top level (loaded lazily, so ``import distill`` stays cheap)::

    from distill import Trainer, MRKD, MiPKD, CQD, ResNetRegressor, Kadid10k, DIV2K, CUB200, OptimConfig, TrainConfig
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Trainer": "distill.engine",
    "RunResult": "distill.engine",
    "seed_everything": "distill.engine",
    "Distiller": "distill.distillers",
    "MRKD": "distill.distillers",
    "Supervised": "distill.distillers",
    "LogitsKD": "distill.distillers",
    "MiPKD": "distill.distillers",
    "CQD": "distill.distillers",
    "QualityRouter": "distill.distillers",
    "ResNetRegressor": "distill.models",
    "DBCNN": "distill.models",
    "HyperIQA": "distill.models",
    "Kadid10k": "distill.data",
    "Tid2013": "distill.data",
    "LiveChallenge": "distill.data",
    "write_synthetic_kadid": "distill.data",
    "DIV2K": "distill.data",
    "SRBenchmark": "distill.data",
    "write_synthetic_div2k": "distill.data",
    "CUB200": "distill.data",
    "CUB200Paired": "distill.data",
    "write_synthetic_cub": "distill.data",
    "DistillDataset": "distill.data.base",
    "StepContext": "distill.distillers.base",
    "Task": "distill.tasks",
    "OptimConfig": "distill.recipe.config",
    "ScheduleConfig": "distill.recipe.config",
    "TrainConfig": "distill.recipe.config",
    "EvalConfig": "distill.recipe.config",
    "Recipe": "distill.recipe.config",
    "load_recipe": "distill.recipe.check",
    "run_recipe": "distill.build",
    "build_run": "distill.build",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'distill' has no attribute {name!r}")
