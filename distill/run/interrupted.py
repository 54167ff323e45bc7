"""What an interrupted command says: the exception a stopped training loop raises and the command that continues.

Nothing here imports torch: the command line imports this module after Ctrl-C, which may have cut torch's own
import in two. The signal handling itself is :mod:`distill.engine.interrupt`.
"""

from __future__ import annotations

import os
import shlex
import signal
from collections.abc import Sequence
from pathlib import Path

from distill.run.layout import RunFolder


def signal_name(signum: int) -> str:
    """``SIGINT``, ``SIGTERM``, …"""
    return signal.Signals(signum).name


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on ``signum`` after ``step`` of ``total`` steps.

    ``saved``: ``checkpoints/last.pt`` holds step ``step`` (False: stopped at once, the last checkpoint is older or
    absent). ``out_dir`` is the run folder (None for a trainer without one).
    """

    def __init__(self, signum: int, step: int, total: int, out_dir: Path | None, saved: bool) -> None:
        super().__init__(f"{signal_name(signum)} at step {step}/{total}")
        self.signum, self.step, self.total, self.out_dir, self.saved = signum, step, total, out_dir, saved

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum


def resume_line(step: int, total: int, out_dir: Path | None) -> str:
    """What a resumed run prints first: where it continues."""
    where = f" ({out_dir / 'checkpoints' / 'last.pt'})" if out_dir is not None else ""
    if step >= total:  # killed after the last step: only the outputs are written again
        return f"distill: training had finished (step {step}/{total}); writing its outputs from the checkpoint{where}"
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
    world = os.environ.get("WORLD_SIZE", "1")
    if world.isdigit() and int(world) > 1:  # under torchrun
        local = os.environ.get("LOCAL_WORLD_SIZE", world)
        nodes = "" if local == world else f" --nnodes={int(world) // max(1, int(local))} (and your rendezvous)"
        return f"torchrun --nproc_per_node={local}{nodes} -m distill {shlex.join(args)}"
    return f"distill {shlex.join(args)}"


def interrupted_line(err: KeyboardInterrupt, argv: Sequence[str], hint: str | None, training: bool) -> str:
    """The one line the command line prints for an interrupt: what was saved and the exact command to continue
    (``training``: ``argv`` is a ``distill run``; ``hint``: the command's own advice, if any)."""
    if isinstance(err, TrainingInterrupted):
        what = f"{signal_name(err.signum)} at step {err.step}/{err.total}"
        ckpt = RunFolder(err.out_dir).last if err.out_dir is not None else None
        if err.saved and ckpt is not None:
            return (
                f"distill: stopped by {signal_name(err.signum)} after step {err.step}/{err.total}; checkpoint saved. "
                f"Continue with: {resume_command(argv, err.out_dir)}"
            )
        if ckpt is not None and ckpt.exists():
            return (
                f"distill: stopped at once by a second {what}, without saving; the last checkpoint ({ckpt}) is "
                f"older. Continue with: {resume_command(argv, err.out_dir)}"
            )
        return (
            f"distill: stopped at once by a second {what}, before any checkpoint: nothing to resume; start it "
            f"again with: distill {shlex.join(argv)}"
        )
    if hint is None and training:  # outside the training loop: before its first step or after its last
        return f"distill: interrupted; continue with: {resume_command(argv, None, '--auto-resume')}"
    return f"distill: interrupted; {hint or 'run the same command again'}"
