"""A metric computed separately within groups of samples (e.g. per distortion type or per dataset)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from distill.metrics.base import Metric

__all__ = ["grouped_metric"]


def _take(x: Any, idx: np.ndarray) -> Any:
    if hasattr(x, "index_select"):  # torch.Tensor
        import torch

        return x.index_select(0, torch.as_tensor(idx, dtype=torch.long, device=x.device))
    return np.asarray(x)[idx]


def grouped_metric(metric: Metric, pred: Any, target: Any, groups: Sequence[Hashable]) -> dict[str, float]:
    """``metric`` within each group: ``{str(key): value}`` in sorted key order.

    ``groups[i]`` is the group of sample ``i``; keys are compared as strings. A ``"set"`` metric runs on each
    group's subset of ``pred``/``target``; a ``"sample"`` metric is computed once per sample and its values are
    averaged within each group.
    """
    keys = [str(g) for g in groups]
    if len(keys) != len(pred) or len(keys) != len(target):
        raise ValueError(f"{len(keys)} group labels for {len(pred)} predictions and {len(target)} targets")
    members: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    index = {key: np.asarray(members[key], dtype=np.int64) for key in sorted(members)}
    if metric.kind == "sample":
        values = metric(pred, target)
        values = values.detach().cpu().double().numpy() if hasattr(values, "detach") else np.asarray(values, float)
        return {key: float(values[idx].mean()) for key, idx in index.items()}
    return {key: float(metric(_take(pred, idx), _take(target, idx))) for key, idx in index.items()}
