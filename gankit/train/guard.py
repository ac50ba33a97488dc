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
    """Remembers, on the device and without host syncs, the first step at which D's or G's
    loss was non-finite; ``check`` (called only at logging and checkpoint steps) syncs once
    and also checks every parameter."""

    def __init__(self, device: torch.device) -> None:
        self.first_bad = {p: torch.zeros((), dtype=torch.long, device=device) for p in "DG"}

    def observe(self, step: int, loss_d: torch.Tensor, loss_g: torch.Tensor) -> None:
        for player, loss in (("D", loss_d), ("G", loss_g)):
            fb = self.first_bad[player]
            fb.copy_(torch.where((fb == 0) & ~torch.isfinite(loss), step, fb))

    def check(self, generator: nn.Module, discriminator: nn.Module, step: int) -> str | None:
        """None if all is finite, else a message naming the step and the player."""
        for player, name in (("D", "discriminator"), ("G", "generator")):
            bad = int(self.first_bad[player])
            if bad:
                return f"step {bad}: non-finite {name} loss"
        for net, name in ((discriminator, "discriminator"), (generator, "generator")):
            for pname, p in net.named_parameters():
                if not bool(torch.isfinite(p).all()):
                    return f"step {step}: non-finite {name} parameter {pname}"
        return None

    def reset(self) -> None:
        for fb in self.first_bad.values():
            fb.zero_()
