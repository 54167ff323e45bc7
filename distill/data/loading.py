"""Persistent DataLoader workers that still see each epoch: items addressed by (seed, epoch, index).

A seeded dataset draws an item's augmentation from (seed, epoch, index) (:meth:`SeededDataset.rng`). The engine
sets the epoch on its own copy of the dataset, which persistent worker processes never see again after they
start. :class:`EpochBatchSource` hands the loader batches of ``(seed, epoch, index)`` keys instead, and
:class:`EpochItems` sets the seed and epoch in whichever process reads the item, so one loader (its workers started
once, their decoded-image caches kept) serves every epoch and any worker count yields the batches ``num_workers: 0``
yields.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from torch.utils.data import Dataset, Sampler

from distill.data.base import DistillDataset

__all__ = ["EpochBatchSource", "EpochItems"]

Key = tuple[int, int, int]


class EpochItems(Dataset):
    """``dataset`` read by ``(seed, epoch, index)`` keys: sets the seed and epoch (when they change), then reads."""

    def __init__(self, dataset: DistillDataset) -> None:
        self.dataset = dataset
        self._state: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: Key) -> Any:
        seed, epoch, index = key
        if self._state != (seed, epoch):
            self.dataset.set_seed(seed)
            self.dataset.set_epoch(epoch)
            self._state = (seed, epoch)
        return self.dataset[index]


class EpochBatchSource(Sampler[list[Key]]):
    """The batch sampler of a persistent loader: the current epoch's batches (:meth:`set`) as key lists."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.seed = self.epoch = 0

    def set(self, batches: Iterable[list[int]], seed: int, epoch: int) -> None:
        """Serve ``batches`` (index lists) of ``epoch`` under ``seed`` on the loader's next iteration."""
        self.batches, self.seed, self.epoch = [list(b) for b in batches], int(seed), int(epoch)

    def __iter__(self) -> Iterator[list[Key]]:
        for batch in self.batches:
            yield [(self.seed, self.epoch, i) for i in batch]

    def __len__(self) -> int:
        return len(self.batches)
