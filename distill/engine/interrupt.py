"""Stopping a run on SIGINT or SIGTERM without losing work.

While the training loop runs, :class:`StopRequests` owns SIGINT (Ctrl-C) and SIGTERM (``kill``, SLURM pre-emption,
torchrun shutting its workers down). The first signal only sets a flag and prints one line; at the next step
boundary the trainer writes ``checkpoints/last.pt`` (unless it was just written) and raises
:class:`TrainingInterrupted`, which the command line turns into one line with the resume command and exit status
``128 + signal`` (130 for SIGINT, 143 for SIGTERM). A second Ctrl-C more than :data:`REPEAT_WINDOW_S` after the first
stops at once, without saving; repeats within that window are the same interrupt delivered twice (the terminal
and torchrun both signal a worker) and are ignored, as is a repeated SIGTERM.

Under DDP every rank calls :meth:`StopRequests.requested` at the same points of the loop; it all-reduces the
ranks' flags, so all ranks stop after the same step and save one consistent checkpoint, even when only one rank
was signalled. torchrun gives its workers 30 s after forwarding a signal before it kills them, so a step (and
the checkpoint) must fit in that time. SIGKILL cannot be caught: ``train.checkpoint_minutes`` bounds what it loses.
"""

from __future__ import annotations

import os
import shlex
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from distill.engine import distributed as dist_utils

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
REPEAT_WINDOW_S = 1.0  # a second signal within this time is the first one delivered twice


def _name(signum: int) -> str:
    return signal.Signals(signum).name


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on ``signum`` after ``step`` of ``total`` steps.

    ``saved``: ``checkpoints/last.pt`` holds step ``step`` (False: stopped at once, the last checkpoint is older or
    absent). ``out_dir`` is the run folder (None for a trainer without one).
    """

    def __init__(self, signum: int, step: int, total: int, out_dir: Path | None, saved: bool) -> None:
        super().__init__(f"{_name(signum)} at step {step}/{total}")
        self.signum, self.step, self.total, self.out_dir, self.saved = signum, step, total, out_dir, saved

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum


class StopRequests:
    """The SIGINT/SIGTERM handlers of one training loop (a context manager; see the module docstring).

    ``trainer`` needs ``step``, ``total_steps``, ``out_dir``, ``dist`` (a ``DistInfo``), ``device``, ``save()`` and
    ``_saved_step`` (the step of the last checkpoint written by this process, or None).
    """

    def __init__(self, trainer: Any, write: Any = None) -> None:
        self.trainer = trainer
        self.signum: int | None = None
        self._first = 0.0
        self._pid = os.getpid()
        self._previous: dict[int, Any] = {}
        self._write = write or (lambda line: os.write(2, (line + "\n").encode()))

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:  # a forked DataLoader worker inherited the handler: the main process decides
            return
        now = time.monotonic()
        if self.signum is None:
            self.signum, self._first = signum, now
            if self.trainer.dist.is_main:
                again = "; press Ctrl-C again to stop at once without saving" if signum == signal.SIGINT else ""
                self._write(
                    f"distill: {_name(signum)} received: saving a checkpoint after step "
                    f"{self.trainer.step + 1}, then stopping{again}"
                )
            return
        if signum != signal.SIGINT or now - self._first < REPEAT_WINDOW_S:
            return  # the same interrupt delivered twice, or a repeated SIGTERM: still saving
        t = self.trainer
        raise TrainingInterrupted(signum, t.step, t.total_steps, t.out_dir, saved=t._saved_step == t.step)

    def requested(self) -> bool:
        """Whether to stop at this step boundary; a collective call under DDP (every rank, same points)."""
        dist = self.trainer.dist
        if not dist.enabled:
            return self.signum is not None
        flag = torch.tensor([float(self.signum or 0)], device=self.trainer.device)
        if dist_utils.is_distributed():
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        agreed = int(flag.item())
        if agreed and self.signum is None:  # another rank was signalled: stop with it
            self.signum = agreed
        return bool(agreed)

    def stop_here(self) -> None:
        """Write the checkpoint of this step (unless already written) and raise :class:`TrainingInterrupted`."""
        t = self.trainer
        assert self.signum is not None
        if t.out_dir is not None and t._saved_step != t.step:
            t.save()
        raise TrainingInterrupted(self.signum, t.step, t.total_steps, t.out_dir, saved=t.out_dir is not None)


def resume_line(step: int, total: int, out_dir: Path | None) -> str:
    """What a resumed run prints first: where it continues."""
    where = f" ({out_dir / 'checkpoints' / 'last.pt'})" if out_dir is not None else ""
    return f"distill: resuming at step {step + 1}/{total} from the checkpoint of step {step}{where}"


def resume_command(argv: Sequence[str], out_dir: Path | None, flag: str = "--resume") -> str:
    """``distill run …`` (or the torchrun form) that continues the run of ``argv``: ``--out`` the run folder (when
    known) and ``flag`` instead of ``--resume``/``--auto-resume``; with ``--seeds`` the same command (it continues
    unfinished seeds)."""
    args = list(argv)
    if "--seeds" not in args and not any(a.startswith("--seeds=") for a in args):
        kept: list[str] = []
        skip = False
        for a in args:
            if skip:
                skip = False
            elif a == "--out" and out_dir is not None:
                skip = True
            elif (a.startswith("--out=") and out_dir is not None) or a in ("--resume", "--auto-resume"):
                continue
            else:
                kept.append(a)
        args = kept + ([] if out_dir is None else ["--out", str(out_dir)]) + [flag]
    _, world, _ = dist_utils.env_world()
    if world > 1:
        local = os.environ.get("LOCAL_WORLD_SIZE", str(world))
        nodes = "" if local == str(world) else f" --nnodes={int(world) // max(1, int(local))} (and your rendezvous)"
        return f"torchrun --nproc_per_node={local}{nodes} -m distill {shlex.join(args)}"
    return f"distill {shlex.join(args)}"


def interrupted_line(err: KeyboardInterrupt, argv: Sequence[str], hint: str | None, training: bool) -> str:
    """The one line the command line prints for an interrupt: what was saved and the exact command to continue
    (``training``: ``argv`` is a ``distill run``; ``hint``: the command's own advice, if any)."""
    if isinstance(err, TrainingInterrupted):
        ckpt = err.out_dir / "checkpoints" / "last.pt" if err.out_dir is not None else None
        if err.saved and ckpt is not None:
            return (
                f"distill: stopped by {_name(err.signum)} after step {err.step}/{err.total}; checkpoint saved. "
                f"Continue with: {resume_command(argv, err.out_dir)}"
            )
        if ckpt is not None and ckpt.exists():
            return (
                f"distill: stopped at once by a second {_name(err.signum)} at step {err.step}/{err.total}, without "
                f"saving; the last checkpoint ({ckpt}) is older. Continue with: {resume_command(argv, err.out_dir)}"
            )
        return (
            f"distill: stopped at once by a second {_name(err.signum)} at step {err.step}/{err.total}, before any "
            f"checkpoint: nothing to resume; start it again with: distill {shlex.join(argv)}"
        )
    if hint is None and training:  # outside the training loop: before its first step or after its last
        return f"distill: interrupted; continue with: {resume_command(argv, None, '--auto-resume')}"
    return f"distill: interrupted; {hint or 'run the same command again'}"
