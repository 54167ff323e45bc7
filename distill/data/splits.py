"""Seeded train/val/test splits, by reference content (no leakage) or by image (the paper's random split).

Reusable by every IQA reader with reference ids (KADID-10k, TID2013) and, in ``random`` mode, by those without
(LIVEC: pass each image's own name as its reference).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

from distill.errors import DataError

SPLIT_MODES = ("by_reference", "random")
SPLIT_NAMES = ("train", "val", "test")


def _rank_key(seed: int, key: str) -> bytes:
    return hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=16).digest()


def _round(x: float) -> int:
    return math.floor(x + 0.5)


def split_indices(
    refs: Sequence[str],
    mode: str = "by_reference",
    train_fraction: float = 0.8,
    val_fraction: float = 0.0,
    seed: int = 0,
    groups: Mapping[str, str] | None = None,
) -> dict[str, list[int]]:
    """Split items (given by their reference ids) into ``{"train", "val", "test"}`` index lists.

    * ``by_reference``: the unique references are ordered by a keyed hash of ``(seed, ref)``; the first
      ``round(train_fraction * n_refs)`` go to train+val, the rest to test, so a reference never lands in two parts.
      ``groups`` (reference → group, e.g. the photo a synthetic reference was cropped from) makes the group the unit
      instead: each group's references stay on one side, the fractions count groups, and a group is ranked by the
      key of its first reference (sorted), so singleton groups split exactly as without ``groups``.  References
      missing from ``groups`` are their own group; real datasets pass none.
    * ``random``: the same on individual items (the paper's split; content leaks between parts).
    * ``val_fraction`` is a fraction **of the training part** (validation is carved from train, never from test):
      with 0.8 / 0.1 the parts are 72 % / 8 % / 20 %.

    The result is deterministic for a seed and returned as sorted indices; a ``by_reference`` assignment depends only
    on the set of references, not on the item order.
    ``train_fraction == 1`` leaves test empty and ``val_fraction == 0`` leaves val empty on purpose; any other empty
    part raises :class:`DataError`.
    """
    if mode not in SPLIT_MODES:
        raise DataError(f"unknown split mode '{mode}'; use one of {', '.join(SPLIT_MODES)}")
    if not 0.0 < train_fraction <= 1.0:
        raise DataError(f"train_fraction must be in (0, 1], got {train_fraction}")
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1) (a fraction of the training part), got {val_fraction}")
    if len(refs) == 0:
        raise DataError("cannot split an empty dataset (no items left after filtering?)")

    grouped = mode == "by_reference" and groups is not None
    unit = ("reference group" if grouped else "reference") if mode == "by_reference" else "image"
    group_of: dict[str, str] = {}  # reference -> the key of its group: the group's first reference, sorted
    if mode == "by_reference":
        first: dict[tuple[bool, str], str] = {}
        for ref in sorted(set(refs)):
            group = (True, groups[ref]) if groups is not None and ref in groups else (False, ref)
            group_of[ref] = first.setdefault(group, ref)
    keys = sorted(set(group_of.values())) if mode == "by_reference" else [str(i) for i in range(len(refs))]
    ordered = sorted(keys, key=lambda k: _rank_key(seed, k))
    n = len(ordered)
    n_trainval = min(n, _round(train_fraction * n))
    n_val = _round(val_fraction * n_trainval)
    parts_of_keys = {
        "val": ordered[:n_val],
        "train": ordered[n_val:n_trainval],
        "test": ordered[n_trainval:],
    }
    wanted = {"train": True, "val": val_fraction > 0, "test": train_fraction < 1}
    for part, keys_in_part in parts_of_keys.items():
        if wanted[part] and not keys_in_part:
            raise DataError(
                f"{mode} split of {n} {unit}s with train_fraction={train_fraction}, val_fraction={val_fraction} "
                f"leaves the {part} part empty; use more {unit}s or change the fractions"
            )

    if mode == "random":
        return {part: sorted(int(k) for k in ks) for part, ks in parts_of_keys.items()}
    part_of = {k: part for part, ks in parts_of_keys.items() for k in ks}
    out: dict[str, list[int]] = {part: [] for part in SPLIT_NAMES}
    for i, ref in enumerate(refs):
        out[part_of[group_of[ref]]].append(i)
    return out
