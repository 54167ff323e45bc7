"""Multi-process training on ``torch.distributed``: process-group set-up, rank helpers, samplers and gathering.

Launch any recipe on N processes (one node, or several with ``--nnodes``/``--rdzv-endpoint``) with::

    torchrun --nproc_per_node=2 -m distill run recipes/quickstart.yaml

:func:`init_distributed` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) and joins the process group with ``gloo`` for CPU training and ``nccl`` for CUDA (one GPU per
process, ``cuda:LOCAL_RANK``). Without those variables (a plain ``distill run``) everything here is a no-op and the
engine runs exactly as in one process.

The engine's conventions under N processes:

* ``train.batch_size`` is the **global** batch. :class:`EpochBatches` draws the same seeded per-epoch permutation
  as a single process, cuts it into global batches, skips the batches a resumed run already trained on, and hands
  each rank a contiguous slice of every global batch. Loss terms are averaged over the global batch (weighted by
  each rank's sample count), so for per-sample-mean losses the update equals the single-process update up to
  floating-point rounding — except through batch statistics (BatchNorm sees the local batch; set
  ``train.sync_batchnorm`` on CUDA).
* Evaluation splits are sharded contiguously (:class:`ShardSampler`, no padding, no duplicated samples) and the
  per-sample predictions, targets and groups are gathered from every rank before any set metric (SRCC) or sample
  metric mean (PSNR, top-1) is computed, so the numbers equal a single-process evaluation.
* Only rank 0 writes files (logs, ``metrics.jsonl``, checkpoints, ``results.json``) and prints; the other ranks
  wait at a barrier after each checkpoint.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from distill.errors import DistillError, RecipeError

_ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its global rank, the number of processes, its rank on the node and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment variables (``(0, 1, 0)`` without them)."""
    try:
        rank, world, local = (int(os.environ.get(k, default)) for k, default in zip(_ENV_KEYS, ("0", "1", "0")))
    except ValueError:
        shown = ", ".join(f"{k}={os.environ.get(k)!r}" for k in _ENV_KEYS)
        raise DistillError(f"torch.distributed environment is malformed ({shown}); launch with torchrun") from None
    return rank, world, local


def backend_for(device: torch.device) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def is_distributed() -> bool:
    """Whether a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 — the process that writes files and prints."""
    return rank() == 0


def is_local_main() -> bool:
    """True for local rank 0 (and outside torchrun): the process of a node that fills node-local caches first."""
    return env_world()[2] == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join torchrun's process group (idempotent) and return this process's :class:`DistInfo`.

    ``device`` is the recipe's resolved device: its type picks the backend (``gloo`` on CPU, ``nccl`` on CUDA) and a
    CUDA device is replaced by ``cuda:LOCAL_RANK``. Without ``WORLD_SIZE > 1`` in the environment nothing is
    initialised and ``DistInfo(0, 1, 0, device)`` is returned.
    """
    if dist.is_available() and dist.is_initialized():
        r, w = dist.get_rank(), dist.get_world_size()
        local = env_world()[2]
    else:
        r, w, local = env_world()
    if w <= 1:
        return DistInfo(0, 1, 0, device)
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise RecipeError(
                f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA devices are visible; run at most one "
                "process per GPU (torchrun --nproc_per_node=<number of GPUs>)"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not (dist.is_available() and dist.is_initialized()):
        if not dist.is_available():
            raise DistillError(f"WORLD_SIZE={w} but this torch build has no torch.distributed support")
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise DistillError(
                f"WORLD_SIZE={w} but {', '.join(missing)} is not set; launch with "
                "`torchrun --nproc_per_node=N -m distill run RECIPE`"
            )
        kwargs: dict[str, Any] = {"timeout": datetime.timedelta(minutes=30)}
        if device.type == "cuda":
            kwargs["device_id"] = device
        dist.init_process_group(backend_for(device), init_method="env://", rank=r, world_size=w, **kwargs)
    return DistInfo(r, w, local, device)


def cleanup() -> None:
    """Leave the process group (no-op when none is active)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` when not distributed).

    Only for small, trusted values exchanged between the processes of one job (predictions, RNG states).
    """
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place and return it (unchanged when not distributed)."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy every buffer (e.g. BatchNorm running statistics) of ``module`` from rank ``src`` to all ranks."""
    if is_distributed():
        for buf in module.buffers():
            dist.broadcast(buf, src)


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """``[start, stop)`` of rank's contiguous share of ``n`` items; sizes differ by at most one, no padding."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def batches_per_epoch(n: int, batch_size: int, drop_last: bool, world: int = 1) -> int:
    """Global batches in one epoch of ``n`` samples (a final partial batch smaller than ``world`` is dropped)."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest and not drop_last and rest >= world else 0)


class EpochBatches(Sampler[list[int]]):
    """This rank's part of one epoch's batches: a permutation seeded by (seed, epoch), cut into global batches.

    ``skip`` drops the first global batches (already trained before a resume). With ``world > 1`` each global batch
    is split into contiguous per-rank slices (:func:`shard_bounds`); a final partial batch with fewer samples than
    ranks is dropped so that no rank is left without data.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        epoch: int,
        drop_last: bool,
        skip: int = 0,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        g = torch.Generator()
        g.manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g).tolist()
        count = batches_per_epoch(n, batch_size, drop_last, world)
        batches = [order[i * batch_size : (i + 1) * batch_size] for i in range(count)][skip:]
        if world > 1:
            batches = [b[slice(*shard_bounds(len(b), rank, world))] for b in batches]
        self.batches = batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class ShardSampler(Sampler[int]):
    """The indices ``[start, stop)`` of this rank's contiguous shard of an evaluation set, in order."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.start, self.stop = shard_bounds(n, rank, world)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


class TrainingStep(nn.Module):
    """Adapter whose ``forward(batch)`` is ``distiller.training_step(batch)``, so DDP can wrap any distiller.

    Wrapping the whole distiller synchronises every trainable model and helper module (MRKD's two online models,
    MiPKD's mixers and adapters) through one DDP reducer; frozen roles have ``requires_grad`` off and are ignored.
    The adapter leaves the distiller's own ``forward`` free for whatever the method wants it to mean.
    """

    def __init__(self, distiller: nn.Module) -> None:
        super().__init__()
        self.distiller = distiller

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.distiller.training_step(batch)  # type: ignore[operator]


def wrap_ddp(
    distiller: nn.Module, info: DistInfo, find_unused_parameters: bool, sync_batchnorm: bool = False
) -> nn.Module:
    """``DistributedDataParallel`` around a :class:`TrainingStep` of ``distiller`` (optionally with SyncBatchNorm).

    Construction broadcasts rank 0's parameters and buffers, so every rank starts from the same weights.
    ``find_unused_parameters`` is needed when some trainable parameters may get no gradient in a step (stochastic
    paths such as MiPKD's block mixer, or a branch used only sometimes).
    """
    if sync_batchnorm:
        if info.device.type != "cuda":
            raise RecipeError(
                "train.sync_batchnorm: SyncBatchNorm needs CUDA devices (torch supports it only on GPUs); "
                "set it to false for CPU training"
            )
        nn.SyncBatchNorm.convert_sync_batchnorm(distiller)
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        TrainingStep(distiller), device_ids=ids, find_unused_parameters=find_unused_parameters
    )


def derived_seed(seed: int, rank: int) -> int:
    """The global-RNG seed of ``rank``: the run seed on rank 0, a distinct stream on every other rank."""
    return seed if rank == 0 else (seed * 1_000_003 + 7919 * rank) % 2**63


def batch_len(batch: dict[str, Any]) -> int:
    """Number of samples in a collated batch (the leading dimension of its target, else of its input)."""
    for key in ("target", "input"):
        value = batch.get(key)
        if isinstance(value, torch.Tensor) and value.ndim:
            return int(value.shape[0])
    raise DistillError("cannot tell the batch size: the batch has no 'target' or 'input' tensor")


def global_means(stacked: torch.Tensor, batch: dict[str, Any], world: int) -> tuple[list[float], float]:
    """Loss terms averaged over the global batch, and this rank's gradient weight ``n_local * world / n``."""
    n_local = batch_len(batch)
    packed = torch.cat([stacked.double() * n_local, stacked.new_tensor([n_local], dtype=torch.float64)])
    all_reduce_sum(packed)
    n_total = float(packed[-1])
    values = (packed[:-1] / n_total).tolist()
    return values, n_local * world / n_total
