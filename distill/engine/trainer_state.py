"""What a trainer's checkpoint holds and how it is restored: models, optimizers, AMP scaler, step counters, RNG
states (every rank's), the selection state, the open training-loss window, the EMA and the resolved recipe; and
when a timed checkpoint is due."""

from __future__ import annotations

import time
from typing import Any

import torch

from distill.engine import distributed as dist_utils
from distill.run import folder as run_folder
from distill.run.checkpoint import CHECKPOINT_FORMAT, rng_state, set_rng_state

#: a :class:`distill.engine.trainer.Trainer` (not imported: the trainer imports this module)
Trainer = Any


def capture(t: Trainer) -> dict[str, Any]:
    """Everything needed to continue ``t``'s run exactly (a collective call when distributed)."""
    rng = rng_state()
    return {
        "format": CHECKPOINT_FORMAT,
        "step": t.step,
        "epoch": t.epoch,
        "step_in_epoch": t.step_in_epoch,
        "skipped": t.skipped,
        "distiller": t.distiller.state_dict(),
        "optimizers": {g: o.state_dict() for g, o in t.optimizers.items()},
        "scaler": t.scaler.state_dict() if t.scaler is not None else None,
        "rng": rng,
        "world_size": t.dist.world_size,
        # each rank's own global RNG stream (dropout, stochastic paths), restored rank by rank on resume
        "rng_ranks": dist_utils.all_gather_objects(rng) if t.dist.enabled else None,
        "selected": t.selection.state_dict(),
        "running": {"sums": dict(t.running), "n": t.n_running},  # the open training-loss log window
        "recipe": t.recipe,
        "ema": t.ema.state_dict() if t.ema is not None else None,
    }


def restore(t: Trainer, state: dict[str, Any]) -> None:
    """Restore a :func:`capture` into ``t``; refuses checkpoints of another model or an incompatible recipe."""
    run_folder.check_resumable(state, t.recipe, t.distiller.state_dict(), t.evaluation.selection)
    t.distiller.load_state_dict(state["distiller"])
    for group, opt in t.optimizers.items():
        opt.load_state_dict(state["optimizers"][group])
    if t.scaler is not None and state.get("scaler"):
        t.scaler.load_state_dict(state["scaler"])
    t.step, t.epoch = int(state["step"]), int(state["epoch"])
    t.step_in_epoch, t.skipped = int(state["step_in_epoch"]), int(state["skipped"])
    t.selection.load_state_dict(state["selected"])
    if t.ema is not None:
        t.ema.load_state_dict(state.get("ema"))
    running = state.get("running") or {"sums": {}, "n": 0}
    t.running, t.n_running = {k: float(v) for k, v in running["sums"].items()}, int(running["n"])
    ranks = state.get("rng_ranks")
    if ranks and len(ranks) == t.dist.world_size:
        set_rng_state(ranks[t.dist.rank])
    elif t.dist.is_main:
        set_rng_state(state["rng"])
    # else: another process count than the checkpoint's; ranks > 0 keep their fresh per-rank seeds


def checkpoint_due(t: Trainer) -> bool:
    """``train.checkpoint_minutes`` have passed since the last checkpoint (rank 0's clock decides for all)."""
    minutes = t.config.checkpoint_minutes
    if minutes is None or t.out_dir is None or t.step >= t.total_steps:
        return False
    due = time.monotonic() - t._last_save >= 60.0 * minutes
    if not t.dist.enabled:
        return due
    flag = torch.tensor([float(due and t.dist.is_main)], device=t.device)
    return bool(dist_utils.all_reduce_sum(flag).item())
