"""The dataset contract shared by every reader.

A dataset is a ``torch.utils.data.Dataset`` whose items are dicts::

    {"input": Tensor[C, H, W] float in [0, 1],     # what the trained model sees
     "target": Tensor (scalar score, class index, or HR image),
     "meta": {"name": str, ...}}                   # strings/ints used for grouping and reports

Paired datasets (CQD) add ``"input_clean"``.  Random augmentation must be reproducible and independent of worker
count: draw it from :meth:`SeededDataset.rng` (seeded by the run seed, the epoch and the index), never from the
global RNG.  The engine calls :meth:`DistillDataset.set_seed` and :meth:`DistillDataset.set_epoch` before each epoch.

Everything the engine and the reports ask of a dataset beyond ``__len__``/``__getitem__`` is declared on
:class:`DistillDataset` with a default, so a reader overrides only what it has. A plain ``torch`` dataset is
accepted too: :func:`as_distill_dataset` wraps it in :class:`DatasetWrapper`, which forwards the declared
capabilities of the wrapped object and otherwise keeps the defaults.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["DatasetWrapper", "DistillDataset", "SeededDataset", "as_distill_dataset"]


class DistillDataset(Dataset):
    """The capabilities the engine and reports use, each with a default that means "not supported"."""

    #: where the files are read from (captions print it; ``None``: not from files)
    root: str | Path | None = None
    #: True for a synthetic stand-in written by one of the ``WRITERS`` (reported as SYNTHETIC in every table)
    is_synthetic: bool = False
    #: what makes the stand-in synthetic, for captions
    synthetic_note: str = "a synthetic stand-in, not the real dataset"
    #: True when items draw random augmentation (then teacher outputs cannot be cached)
    augmented: bool = False
    #: files skipped as corrupt (``on_corrupt: skip``), reported in ``results.json``
    corrupt_files: Sequence[str] = ()
    #: readable names of the ``group_by`` keys (e.g. distortion code → name), or ``None``
    group_names: Mapping[str, str] | None = None
    #: classes the labels of a classification split span (checked against classifiers' ``num_classes``), or ``None``
    num_classes: int | None = None

    def check_sizes(self, key: str, batch_size: int, batch_key: str) -> None:
        """Refuse, naming the file and the fix, image files that cannot be cropped or stacked into batches of
        ``batch_size``, read from the file headers before training (``key``: the dataset's recipe key, e.g.
        ``data.train``; ``batch_key``: its batch size's key). The default: items are one size already."""

    def set_epoch(self, epoch: int) -> None:
        """Called before each training epoch (reseeds per-item augmentation)."""

    def set_seed(self, seed: int) -> None:
        """Called before each training epoch with the run's seed."""

    def cache_identity(self, key: str) -> dict[str, Any] | None:
        """What identifies the tensors under batch ``key`` (root, split, files, labels, view), to key a teacher
        cache; ``None`` when this dataset cannot be keyed; ``KeyError`` when it has no such view."""
        return None


def batch_of_one(batch_key: str) -> str:
    """How to ask for batches of one item, in the words of where the batch size is set: ``--batch-size 1`` for a
    command-line flag, ``train.eval_batch_size: 1`` for a recipe key."""
    return f"pass {batch_key} 1" if batch_key.startswith("--") else f"set {batch_key}: 1"


class SeededDataset(DistillDataset):
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


class DatasetWrapper(DistillDataset):
    """A dataset that delegates items and every declared capability to ``inner`` (a subclass adds behaviour)."""

    def __init__(self, inner: Dataset) -> None:
        self.inner = inner
        self._declared = isinstance(inner, DistillDataset)

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        return self.inner[index]

    def _capability(self, name: str) -> Any:
        return getattr(self.inner if self._declared else DistillDataset, name)

    root = property(lambda self: self._capability("root"))  # type: ignore[assignment]
    is_synthetic = property(lambda self: self._capability("is_synthetic"))  # type: ignore[assignment]
    synthetic_note = property(lambda self: self._capability("synthetic_note"))  # type: ignore[assignment]
    augmented = property(lambda self: self._capability("augmented"))  # type: ignore[assignment]
    corrupt_files = property(lambda self: self._capability("corrupt_files"))  # type: ignore[assignment]
    group_names = property(lambda self: self._capability("group_names"))  # type: ignore[assignment]
    num_classes = property(lambda self: self._capability("num_classes"))  # type: ignore[assignment]

    def check_sizes(self, key: str, batch_size: int, batch_key: str) -> None:
        if isinstance(self.inner, DistillDataset):
            self.inner.check_sizes(key, batch_size, batch_key)

    def set_epoch(self, epoch: int) -> None:
        if isinstance(self.inner, DistillDataset):
            self.inner.set_epoch(epoch)

    def set_seed(self, seed: int) -> None:
        if isinstance(self.inner, DistillDataset):
            self.inner.set_seed(seed)

    def cache_identity(self, key: str) -> dict[str, Any] | None:
        return self.inner.cache_identity(key) if isinstance(self.inner, DistillDataset) else None


def as_distill_dataset(dataset: Dataset) -> DistillDataset:
    """``dataset`` itself when it declares the contract, else a :class:`DatasetWrapper` with the defaults."""
    return dataset if isinstance(dataset, DistillDataset) else DatasetWrapper(dataset)
