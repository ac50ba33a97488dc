"""Files a run writes, written so a crash never leaves a half-written one.

Every file is written to a temporary name in the same directory, flushed to disk and
renamed over the target (``os.replace`` is atomic), so a reader sees the old file or the
new one, never a torn one. Checkpoints hold only tensors and plain data and are read
with ``torch.load(weights_only=True)``: a crafted file cannot run code.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import platform
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.errors import GankitError
from gankit.version import __version__

__all__ = ["CHECKPOINT_FORMAT", "FILE_MODE", "atomic_write_bytes", "atomic_write_text",
           "write_json", "versions", "save_checkpoint", "remove_stale_temporaries",
           "load_checkpoint", "NullLog", "MetricsLog", "Snapshots", "read_snapshots",
           "read_metrics"]


CHECKPOINT_FORMAT = "gankit-checkpoint-1"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp alone gives 0600


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_directory(path.parent)  # the rename itself survives a power cut
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _finite(data: Any) -> Any:
    """``data`` with every NaN or infinite float replaced by None (JSON has neither)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def write_json(path: str | Path, data: Any) -> None:
    """``data`` as strict JSON (a metric that is not a number is written as null)."""
    atomic_write_text(path, json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")


def versions() -> dict[str, str]:
    return {
        "gankit": str(__version__),
        "torch": str(torch.__version__),  # a TorchVersion, which weights_only refuses
        "numpy": str(np.__version__),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically save a checkpoint dict (tensors, state dicts and plain data only)."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def remove_stale_temporaries(run_dir: str | Path) -> None:
    """Delete the temporaries (``.NAME.*.tmp``) a killed writer left in ``run_dir``; the
    finished files they were to replace are untouched."""
    for tmp in Path(run_dir).glob(".*.*.tmp"):
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a gankit checkpoint safely; any unreadable or foreign file is a GankitError."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, OSError,
            ValueError, AttributeError, TypeError) as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
        why = next((ln for ln in lines if ln.startswith("WeightsUnpickler error")), lines[0])
        raise GankitError(f"{path}: not a readable gankit checkpoint ({why[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise GankitError(f"{path}: not a gankit checkpoint (expected format {CHECKPOINT_FORMAT})")
    return state


class NullLog:
    """A metrics log that writes nothing (ranks other than 0 under torchrun)."""

    def write(self, record: dict) -> None:
        pass


class MetricsLog:
    """``metrics.jsonl``: one JSON object per logged step, each line flushed and fsynced.

    On resume from step s, lines logged after s are dropped (atomically) so the log of a
    resumed run is identical to that of an uninterrupted one.
    """

    def __init__(self, path: str | Path, keep_until_step: int | None = None) -> None:
        self.path = Path(path)
        kept = []
        if keep_until_step is not None:  # read_metrics drops a torn last line from a kill
            kept = [r for r in read_metrics(self.path)
                    if isinstance(r, dict) and isinstance(r.get("step"), (int, float))
                    and r["step"] <= keep_until_step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, allow_nan=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


class Snapshots:
    """``snapshots.npz``: samples from a fixed latent batch at chosen steps (for watching
    training unfold), rewritten atomically; on resume, snapshots after the checkpoint's
    step are dropped."""

    def __init__(self, path: str | Path, keep_until_step: int | None = None) -> None:
        self.path = Path(path)
        self.steps: list[int] = []
        self.samples: list[np.ndarray] = []
        if keep_until_step is not None and self.path.exists():
            steps, samples = read_snapshots(self.path)
            keep = steps <= keep_until_step
            self.steps, self.samples = steps[keep].tolist(), list(samples[keep])

    def add(self, step: int, samples: np.ndarray) -> None:
        self.steps.append(step)
        self.samples.append(samples)
        buf = io.BytesIO()
        np.savez(buf, steps=np.array(self.steps), samples=np.stack(self.samples))
        atomic_write_bytes(self.path, buf.getvalue())


def read_snapshots(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return f["steps"], f["samples"]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    records = []
    path = Path(path)
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
