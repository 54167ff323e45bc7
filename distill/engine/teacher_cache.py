"""Frozen-teacher outputs computed once per training sample, stored on disk, and attached to every batch.

A distiller opts in by declaring which frozen roles' outputs depend only on one batch key::

    class CQD(Distiller):
        cacheable_inputs = {"teacher": "input_clean"}      # role → the batch key its input comes from

Before training, :func:`prepare` runs each such role once over the whole training set (eval mode, ``no_grad``, the
run's precision) and keeps the outputs ``[N, ...]`` indexed by the items' ``"index"``. Every training batch then
gets ``batch["cached"][role] = outputs[batch["index"]]``, and the distiller uses it instead of a forward pass (it
must still work without it, e.g. in the Python API or in ``online`` mode). :func:`prepare` takes the distiller, the
dataset and the run settings, not the trainer, so the trainer imports this module and not the other way round.

The outputs are stored as ``<dir>/<role>-<key>.pt`` (written atomically, read with ``weights_only=True``), where
``key`` hashes the teacher's architecture spec and every tensor of its state dict, the dataset's identity (root,
split, file list, labels) and the description of the teacher's view (``dataset.cache_identity(batch_key)``), and
the precision. Any change gives another key, so the outputs are recomputed; a file whose content does not match
its key is recomputed too. ``dir`` is ``train.teacher_cache_dir`` or ``<out_dir>/teacher_cache`` (runs sharing a
teacher and dataset can share one folder); without an output folder the outputs live in memory for the run.

``train.teacher_cache``: ``auto`` (default) caches when the dataset can be keyed and is not augmented, else runs
the teacher online and says why; ``cached`` insists (an error says why it cannot); ``online`` computes the teacher
every step (needed with random augmentation, where the teacher must see each step's augmented view).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from distill.data.base import DistillDataset
from distill.engine import distributed as dist_utils
from distill.errors import CheckpointError, DistillError, RecipeError
from distill.recipe.config import TrainConfig
from distill.registry import spec_of
from distill.run.atomic import STALE_TEMP_AGE_S, remove_stale_temps
from distill.run.checkpoint import atomic_save, preserved_rng
from distill.run.layout import RunFolder

if TYPE_CHECKING:
    from distill.distillers.base import Distiller
    from distill.engine.distributed import DistInfo

__all__ = ["CACHED_KEY", "CACHE_FORMAT", "TeacherOutputs", "cache_key", "compute_outputs", "prepare", "state_digest"]

_log = logging.getLogger(__name__)

CACHE_FORMAT = "distill-teacher-cache/1"
#: batch key under which cached outputs reach the distiller: ``batch["cached"][role]``
CACHED_KEY = "cached"


_CACHE_FILE = re.compile(r"^\.([\w.]+-[0-9a-f]{32}\.pt)\.")  # the temporary of a cache file <role>-<key>.pt


def remove_stale_cache_temps(directory: Path) -> list[Path]:
    """In a shared ``train.teacher_cache_dir``, delete the temporaries of cache files that a killed run left long
    ago (:data:`~distill.run.atomic.STALE_TEMP_AGE_S`): other runs may be writing theirs now, and the folder may
    hold the user's own files, so nothing else is touched."""
    if not directory.is_dir():
        return []
    names = sorted({m.group(1) for p in directory.iterdir() if (m := _CACHE_FILE.match(p.name))})
    return remove_stale_temps(directory, names, older_than_s=STALE_TEMP_AGE_S) if names else []


def state_digest(model: nn.Module) -> str:
    """A hash of every tensor (name, dtype, shape, values) of ``model``'s state dict and of its registry spec."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(spec_of(model) or type(model).__qualname__, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def cache_key(model: nn.Module, identity: Mapping[str, Any], precision: str) -> str:
    """The key of one role's outputs: teacher state + dataset identity (with the view description) + precision."""
    text = json.dumps({"format": CACHE_FORMAT, "teacher": state_digest(model), "data": identity,
                       "precision": precision}, sort_keys=True, default=str)  # fmt: skip
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def why_not_cacheable(dataset: DistillDataset, key: str) -> str | None:
    """Why ``dataset``'s ``key`` views cannot be cached (``None`` when they can)."""
    name = type(dataset).__name__
    try:
        identity = dataset.cache_identity(key)
        has_view = True
    except KeyError:
        identity, has_view = {}, False
    if identity is None:
        return f"the training set ({name}) has no cache_identity(key) method to key a cache by"
    if dataset.augmented:
        return f"the training set ({name}) draws random augmentation, so the teacher must see each step's view"
    if not has_view:
        return f"the training set ({name}) has no '{key}' view"
    return None


@torch.no_grad()
def compute_outputs(
    model: nn.Module,
    dataset: Dataset,
    key: str,
    device: torch.device,
    batch_size: int,
    autocast: Any = None,
    num_workers: int = 0,
) -> torch.Tensor:
    """``model(item[key])`` for every item of ``dataset`` in index order (eval mode, RNG untouched), on the CPU."""
    n = len(dataset)  # type: ignore[arg-type]
    out: torch.Tensor | None = None
    seen = torch.zeros(n, dtype=torch.bool)
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    try:
        with preserved_rng():
            for batch in loader:
                if "index" not in batch:
                    raise DistillError(
                        f"cached teacher outputs need dataset items with an 'index' entry; {type(dataset).__name__} "
                        "has none: add it, or set train.teacher_cache: online"
                    )
                x = batch[key].to(device)
                with autocast or nullcontext():
                    y = model(x)
                y = y.detach().float().cpu()
                if out is None:
                    out = torch.empty((n, *y.shape[1:]), dtype=torch.float32)
                index = torch.as_tensor(batch["index"]).long()
                out[index] = y
                seen[index] = True
    finally:
        model.train(was_training)
    if out is None or not bool(seen.all()):
        raise DistillError(f"{type(dataset).__name__}: item indices do not cover 0..{n - 1}; cannot cache outputs")
    return out


@dataclass
class TeacherOutputs:
    """Cached outputs per frozen role, kept on the training device and attached to batches by item index."""

    tables: dict[str, torch.Tensor]
    files: dict[str, Path | None] = field(default_factory=dict)
    loaded: dict[str, bool] = field(default_factory=dict)  # role → read from disk (True) or computed (False)
    seconds: float = 0.0  # time spent computing / loading, before training

    def attach(self, batch: dict[str, Any]) -> dict[str, Any]:
        """``batch`` plus ``batch["cached"][role]`` = the outputs of its items."""
        index = batch.get("index")
        if index is None:
            raise DistillError("cached teacher outputs need an 'index' in every batch; set train.teacher_cache: online")
        device = next(iter(self.tables.values())).device
        index = torch.as_tensor(index).to(device=device, dtype=torch.long)
        return {**batch, CACHED_KEY: {role: table[index] for role, table in self.tables.items()}}


def _load(path: Path, key: str, n: int) -> torch.Tensor | None:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: recompute it
        _log.warning("teacher cache %s is unreadable (%s); recomputing it", path, type(err).__name__)
        return None
    ok = isinstance(data, dict) and data.get("format") == CACHE_FORMAT and data.get("key") == key
    outputs = data.get("outputs") if ok else None
    if not isinstance(outputs, torch.Tensor):
        _log.warning("teacher cache %s does not match its key; recomputing it", path)
        return None
    if outputs.shape[0] != n:
        _log.warning("teacher cache %s holds %d outputs for %d samples; recomputing it", path, outputs.shape[0], n)
        return None
    return outputs


def prepare(
    distiller: Distiller,
    dataset: DistillDataset,
    config: TrainConfig,
    device: torch.device,
    *,
    out_dir: Path | None = None,
    autocast: AbstractContextManager[Any] | None = None,
    dist: DistInfo | None = None,
) -> TeacherOutputs | None:
    """Compute or load the cached outputs of ``distiller``'s cacheable roles, or ``None`` when they run online.

    ``config`` gives the mode, folder, precision and batch sizes; ``out_dir`` the default folder; ``dist`` who
    writes (rank 0) and who reads under multi-process training (default: this process alone).
    """
    cfg = config
    roles: dict[str, str] = dict(distiller.cacheable_inputs)
    mode = cfg.teacher_cache
    if not roles or mode == "online":
        return None
    for role, key in roles.items():
        reason = why_not_cacheable(dataset, key)
        if reason is not None:
            if mode == "cached":
                raise RecipeError(f"train.teacher_cache: cannot cache the {role}'s outputs: {reason}. Set it to online")
            _log.warning("teacher outputs computed online: %s (train.teacher_cache: auto)", reason)
            return None
    distributed, is_main = (dist.enabled, dist.is_main) if dist is not None else (False, True)
    directory: Path | None = None
    if cfg.teacher_cache_dir:
        directory = Path(cfg.teacher_cache_dir).expanduser()
        if is_main:
            remove_stale_cache_temps(directory)
    elif out_dir is not None:
        directory = RunFolder(out_dir).teacher_cache
    started = time.perf_counter()
    n = len(dataset)  # type: ignore[arg-type]
    result = TeacherOutputs({})
    for role, key in roles.items():
        model = distiller.models[role]
        identity = dataset.cache_identity(key) or {}
        digest = cache_key(model, identity, cfg.precision)
        path = directory / f"{role}-{digest}.pt" if directory is not None else None
        table = None
        if path is not None and path.is_file():
            table = _load(path, digest, n)
        result.loaded[role] = table is not None
        if table is None:
            if path is not None and distributed and not is_main:
                dist_utils.barrier()  # rank 0 computes and writes; read its file
                table = _load(path, digest, n)
                if table is None:
                    raise CheckpointError(f"{path}: rank 0 did not write the teacher cache; check that it is shared")
            else:
                bs = cfg.eval_batch_size or cfg.batch_size
                table = compute_outputs(model, dataset, key, device, bs, autocast, cfg.num_workers)
                if path is not None and is_main:
                    atomic_save({"format": CACHE_FORMAT, "key": digest, "role": role, "input": key,
                                 "identity": {k: v for k, v in identity.items() if k != "samples"},
                                 "outputs": table}, path)  # fmt: skip
                if path is not None and distributed:
                    dist_utils.barrier()
        result.tables[role] = table.to(device)
        result.files[role] = path
    result.seconds = time.perf_counter() - started
    _log.info("teacher outputs for %s: %s in %.1f s", ", ".join(roles),
              ", ".join("loaded" if v else "computed" for v in result.loaded.values()), result.seconds)  # fmt: skip
    return result
