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

__all__ = ["StopRequested", "run_lock", "FiniteGuard"]


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
    """Finds the first step and the player at which training went non-finite, without host
    syncs inside the step.

    Each step it notes, on the device, the first step at which D's or G's loss was
    non-finite (two scalar ops). ``check``, called only at logging and checkpoint steps,
    syncs once and reads the order of events: G's cost at step s is computed after D's
    update at s, and D's cost at step s + 1 after G's update at s, so

    - G's loss first non-finite at s (D's still finite): D's update at s broke D's
      parameters — or, if they are finite, G's cost itself overflowed;
    - D's loss first non-finite at s: G's update at s − 1 broke G's parameters — or, if
      they are finite, D's cost itself overflowed.
    """

    def __init__(self, device: torch.device) -> None:
        self.first_bad = {p: torch.zeros((), dtype=torch.long, device=device) for p in "DG"}

    def observe(self, step: int, player: str, loss: torch.Tensor) -> None:
        fb = self.first_bad[player]
        fb.copy_(torch.where((fb == 0) & ~torch.isfinite(loss), step, fb))

    def check(self, generator: nn.Module, discriminator: nn.Module, step: int,
              parameters: bool = False) -> str | None:
        """None if all is finite, else a message naming the first step and the player.

        ``parameters``: also check every parameter (before a checkpoint is written, since
        an update at this very step may have broken them before any loss could show it).
        """
        d_bad, g_bad = int(self.first_bad["D"]), int(self.first_bad["G"])
        if not (d_bad or g_bad):
            if parameters:
                for net, name in ((discriminator, "discriminator"), (generator, "generator")):
                    if not _finite(net):
                        return f"step {step}: non-finite {name} parameters after its update"
            return None
        if g_bad and (not d_bad or g_bad < d_bad):
            if not _finite(discriminator):
                return f"step {g_bad}: non-finite discriminator parameters after its update"
            return f"step {g_bad}: non-finite generator loss"
        if d_bad > 1 and not _finite(generator):
            return f"step {d_bad - 1}: non-finite generator parameters after its update"
        if not _finite(discriminator):
            return f"step {d_bad}: non-finite discriminator parameters"
        return f"step {d_bad}: non-finite discriminator loss"

    def reset(self) -> None:
        for fb in self.first_bad.values():
            fb.zero_()


def _finite(net: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in net.parameters())
