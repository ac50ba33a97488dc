"""What keeps a run's written work safe: stop signals, the run-directory lock, and the
non-finite guard."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
from pathlib import Path

import torch
from torch import nn

from gankit.errors import GankitError


class StopRequested:
    """SIGINT / SIGTERM set a flag; the loop checks it between steps, writes a final
    checkpoint and stops, so the saved state is always that of a whole step."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, object] = {}

    def __enter__(self) -> StopRequested:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:  # a second signal: stop at once
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def __bool__(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def run_lock(out: Path):
    """Hold an exclusive lock on ``out/.lock`` while a run writes there; a second writer is
    refused. The kernel drops the lock when the process dies, even by SIGKILL."""
    path = out / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise GankitError(f"{out}: another gankit process (pid {holder}) is writing to this "
                              "run directory; wait for it or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


class FiniteGuard:
    """Remembers, on the device and without host syncs, the first step after which a
    player's parameters were non-finite (checked right after that player's update, so the
    player that diverged first is the one named). ``check`` syncs once, and is called only
    at logging and checkpoint steps."""

    PLAYERS = {"D": "discriminator", "G": "generator"}

    def __init__(self, device: torch.device) -> None:
        self.first_bad = {p: torch.zeros((), dtype=torch.long, device=device) for p in "DG"}

    def observe(self, step: int, player: str, net: nn.Module) -> None:
        # ‖θ‖ is finite iff every parameter is (one fused pass over the weights)
        norm = torch.nn.utils.get_total_norm(list(net.parameters()))
        fb = self.first_bad[player]
        fb.copy_(torch.where((fb == 0) & ~torch.isfinite(norm), step, fb))

    def check(self) -> str | None:
        """None if all is finite, else a message naming the first step and player."""
        bad = {p: int(fb) for p, fb in self.first_bad.items() if int(fb)}
        if not bad:
            return None
        player = min(bad, key=lambda p: (bad[p], p))  # same step: D updates before G
        return f"step {bad[player]}: non-finite {self.PLAYERS[player]} parameters after its update"

    def reset(self) -> None:
        for fb in self.first_bad.values():
            fb.zero_()
