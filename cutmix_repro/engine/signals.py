"""Stop cleanly on the signals a cluster sends before it takes a job away.

SIGTERM and SIGUSR1 (what SLURM sends before preemption or the time limit) ask the trainer to
finish the current step, write a checkpoint and exit. SIGUSR2 is the signal submitit (Hydra's
SLURM launcher) uses to requeue a job: when a handler for it is already installed, ours runs
first (checkpoint) and then hands the signal to it, so the job is requeued and resumes.
"""

from __future__ import annotations

import signal
import threading


class StopRequest:
    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self):
        self.signum: int | None = None
        self.previous: dict[int, object] = {}

    def install(self) -> StopRequest:
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers can only be set from the main thread
        chained = [signal.SIGUSR2] if callable(signal.getsignal(signal.SIGUSR2)) else []
        for sig in (*self.SIGNALS, *chained):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()

    def hand_over(self) -> None:
        """Pass the signal on to the handler that was there before ours (e.g. submitit's requeue)."""
        previous = self.previous.get(self.signum)
        self.restore()
        if callable(previous):
            previous(self.signum, None)
