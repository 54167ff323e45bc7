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
import signal
import threading
import time
from types import FrameType
from typing import Any

import torch

from distill.engine import distributed as dist_utils
from distill.run.interrupted import TrainingInterrupted, signal_name

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
REPEAT_WINDOW_S = 1.0  # a second signal within this time is the first one delivered twice


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
                if signal.getsignal(sig) is not signal.SIG_IGN:  # e.g. nohup, or a background job of a script
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
                bar = getattr(getattr(self.trainer, "console", None), "enabled", False)  # leave the progress bar's line
                line = f"distill: {signal_name(signum)} received: stopping after the current step with a checkpoint"
                self._write(("\n" if bar else "") + line + again)
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
