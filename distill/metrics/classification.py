"""Sample metrics for recognition: per-sample top-k correctness (the evaluator averages it into accuracy)."""

from __future__ import annotations

import torch

from distill.metrics.base import register_metric

__all__ = ["top1", "top5", "topk_correct"]


def topk_correct(logits: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """1.0 for each sample whose target class is among the ``k`` highest logits, else 0.0: shape ``(B,)``.

    ``logits`` is ``(B, C)``, ``target`` holds ``B`` class indices; ``k`` larger than ``C`` counts as ``C``.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (B, C), got shape {tuple(logits.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    target = target.reshape(-1).to(device=logits.device, dtype=torch.long)
    if target.numel() != logits.shape[0]:
        raise ValueError(f"{target.numel()} targets for {logits.shape[0]} logit rows")
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return (top == target[:, None]).any(dim=1).to(torch.float32)


@register_metric("top1", "sample")
def top1(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy per sample (1.0 when the arg-max class is the target, else 0.0)."""
    return topk_correct(logits, target, 1)


@register_metric("top5", "sample")
def top5(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Top-5 accuracy per sample (1.0 when the target is among the 5 highest logits, else 0.0)."""
    return topk_correct(logits, target, 5)
