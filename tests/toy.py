"""Tiny models and datasets for fast engine tests (not registered, so tests can build them freely)."""

from __future__ import annotations

import torch
from torch import nn

from distill.data.base import SeededDataset


class ToyIQA(SeededDataset):
    """Images whose score is their mean brightness, with a seeded random flip (exercises per-item RNG)."""

    def __init__(self, n: int = 32, size: int = 8, seed: int = 0, groups: int = 2) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.rand(n, 3, size, size, generator=g)
        self.scores = self.images.mean(dim=(1, 2, 3)) * 4 + 1
        self.groups = [f"g{i % groups}" for i in range(n)]
        self.root = None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        x = self.images[i]
        if torch.rand((), generator=self.rng(i)) < 0.5:
            x = x.flip(-1)
        return {"input": x, "target": self.scores[i], "meta": {"name": str(i), "distortion": self.groups[i]}}


class TinyRegressor(nn.Module):
    """Conv → pool → dropout → linear; dropout makes training draw from the global RNG."""

    def __init__(self, width: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(torch.relu(self.conv(x)).mean(dim=(2, 3)))).squeeze(-1)
