"""The dataset contract shared by every reader.

A dataset is a ``torch.utils.data.Dataset`` whose items are dicts::

    {"input": Tensor[C, H, W] float in [0, 1],     # what the trained model sees
     "target": Tensor (scalar score, class index, or HR image),
     "meta": {"name": str, ...}}                   # strings/ints used for grouping and reports

Paired datasets (CQD) add ``"input_clean"``.  Random augmentation must be reproducible and independent of worker
count: draw it from :meth:`SeededDataset.rng` (seeded by the run seed, the epoch and the index), never from the
global RNG.  The engine calls :meth:`SeededDataset.set_epoch` before each epoch.
"""

from __future__ import annotations

import hashlib

import torch
from torch.utils.data import Dataset


class SeededDataset(Dataset):
    """Base class giving each item a private RNG derived from (seed, epoch, index)."""

    seed: int = 0
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_seed(self, seed: int) -> None:
        self.seed = int(seed)

    def rng(self, index: int) -> torch.Generator:
        """A generator for item ``index`` in the current epoch, identical across runs and worker layouts."""
        key = f"{self.seed}:{self.epoch}:{index}".encode()
        g = torch.Generator()
        g.manual_seed(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") & (2**63 - 1))
        return g
