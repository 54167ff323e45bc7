"""The callable each SLURM job of a sweep runs: one ``distill run … --auto-resume``, requeued on pre-emption.

submitit (``--launcher slurm``) pickles this object, runs it in the job, and on the job's SIGUSR2 (sent by SLURM
``slurm_signal_delay_s`` before the time limit, and on pre-emption where the cluster sets
``SlurmctldParameters=preempt_send_user_signal``) calls :meth:`RequeuedRun.checkpoint` and requeues the job with the
submission it returns. ``checkpoint`` sends the run SIGTERM, which makes it save a checkpoint at the next step
boundary and exit (:mod:`distill.engine.interrupt`); it waits up to :attr:`RequeuedRun.grace_s` for that, then hands
submitit this same command, which continues from the checkpoint (``--auto-resume``) when the job starts again.

A SIGTERM that SLURM sends the job's processes directly (``scancel``, or pre-emption without the user signal) also
reaches the run, which saves and exits 143; the job then ends as failed with that line, and SLURM's own requeue (if
the partition's pre-emption mode is REQUEUE) or re-running the sweep command continues it.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any


class RunStopped(RuntimeError):
    """The run exited with an error, or stopped on a signal (its checkpoint saved): the job's failure message."""


class RequeuedRun:
    """``command`` (a ``distill run … --auto-resume`` list) as a checkpointable submitit callable."""

    grace_s = 75.0  # submitit's signal comes 90 s before the time limit

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        self._proc: subprocess.Popen[str] | None = None
        self._requeued = False

    def __getstate__(self) -> dict[str, Any]:  # pickled by submitit: the command alone
        return {"command": self.command}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.command, self._proc, self._requeued = list(state["command"]), None, False

    def __call__(self) -> str:
        """Run the command (its stderr passed through, the last lines kept for the failure message)."""
        proc = subprocess.Popen(self.command, stderr=subprocess.PIPE, text=True, bufsize=1)
        self._proc = proc
        tail: collections.deque[str] = collections.deque(maxlen=5)
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            if line.strip():
                tail.append(line.strip())
        code = proc.wait()
        if code == 0 or self._requeued:
            return ""
        raise RunStopped(f"exit {code}: " + (tail[-1] if tail else "no message"))

    def checkpoint(self) -> Any:
        """submitit's pre-emption/time-out hook: stop the run with SIGTERM (it saves a checkpoint), wait for it,
        and return the submission that continues it."""
        import submitit

        self._requeued = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + self.grace_s
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
        return submitit.helpers.DelayedSubmission(RequeuedRun(self.command))
