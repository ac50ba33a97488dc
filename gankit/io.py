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
import re
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.errors import GankitError
from gankit.version import __version__

__all__ = ["CHECKPOINT_FORMAT", "FILE_MODE", "atomic_write_bytes", "atomic_write_text",
           "write_json", "versions", "save_checkpoint", "remove_stale_temporaries",
           "load_checkpoint", "checkpoint_problem", "check_checkpoint", "error_line",
           "register_config_check", "NullLog",
           "MetricsLog", "Snapshots", "read_snapshots", "read_metrics", "npz_array_bytes"]


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
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(e, path) from None


def _naming(error: BaseException, path: Path) -> BaseException:
    """``error`` with the file it was writing named (a full disk's ENOSPC names none)."""
    if isinstance(error, OSError) and error.filename is None:
        return OSError(error.errno, error.strerror or str(error), str(path))
    return error


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
    """Load a gankit checkpoint safely and check its structure (``check_checkpoint``); any
    unreadable, foreign, altered or non-finite file is a GankitError naming it and the
    part that does not fit."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise GankitError(f"{path}: {_unpickling_refusal(str(e))}") from None
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError, ValueError, AttributeError,
            TypeError, KeyError, IndexError, RecursionError, MemoryError,
            UnicodeDecodeError) as e:
        why = "an empty file" if path.stat().st_size == 0 else error_line(e)
        raise GankitError(f"{path}: not a readable gankit checkpoint ({why})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise GankitError(f"{path}: not a gankit checkpoint (expected format {CHECKPOINT_FORMAT})")
    check_checkpoint(state, path)
    return state


def error_line(error: BaseException) -> str:
    """The line of a library's error message that says what went wrong (torch's state-dict
    errors put it on the second line), at most 200 characters."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading"):
        lines = lines[1:]
    if not lines or (isinstance(error, (KeyError, IndexError)) and len(lines[0]) < 40):
        lines = [f"{type(error).__name__} {lines[0] if lines else ''}".strip()]
    return lines[0][:200]


def _unpickling_refusal(message: str) -> str:
    """What torch's weights-only unpickler refused, said as what it means for a checkpoint
    (torch's own text ends with advice to load it unsafely)."""
    refused = re.search(r"GLOBAL ([\w.]+)", message)
    if refused:
        return (f"holds code, not only tensors and plain data (it asks for {refused.group(1)}); "
                "refused without running it")
    operand = re.search(r"Unsupported operand \S+", message)
    return "not a readable gankit checkpoint (" + (
        f"a pickle instruction no checkpoint has: {operand.group(0)}" if operand else
        "a pickle the weights-only reader refuses") + ")"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _non_finite(value: Any, where: str) -> str | None:
    """Where in ``value`` (nested dicts, lists, tensors) a floating tensor holds NaN or
    infinity, or None."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return where
    elif isinstance(value, dict):
        for k, v in value.items():
            if found := _non_finite(v, f"{where}/{k}" if where else str(k)):
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if found := _non_finite(v, f"{where}/{i}"):
                return found
    return None


def _weights_problem(value: Any, name: str) -> str | None:
    """Why ``value`` is not a state dict (names → tensors), or None."""
    if not isinstance(value, dict):
        return f"{name} is {type(value).__name__}, not a table of tensors"
    bad = next((k for k, v in value.items()
                if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    return None if bad is None else f"{name}[{bad!r}] is not a tensor"


# How a checkpoint's config is checked: ``gankit.config`` registers its validator here
# (io sits below config in the package's layers, so it cannot import it).
_config_check: Callable[[dict], str | None] | None = None


def register_config_check(check: Callable[[dict], str | None]) -> None:
    """``check(raw config) -> its first problem or None`` for every checkpoint read."""
    global _config_check
    _config_check = check


def checkpoint_problem(state: dict[str, Any]) -> str | None:
    """What in a loaded checkpoint does not fit a gankit checkpoint, or None: its config
    (a valid one), its step (an integer ≥ 0), the weights (tables of finite tensors) and
    the training state of the kind of run it is (one GAN or an AdaGAN mixture)."""
    if not isinstance(state.get("config"), dict):
        return "no config" if "config" not in state else "config is not a table"
    if _config_check is not None and (problem := _config_check(state["config"])):
        return f"its config does not validate ({problem})"
    step = state.get("step")
    if not _is_int(step) or step < 0:
        return "no step" if "step" not in state else f"step is {step!r}, not an integer >= 0"
    adagan = _is_int(state["config"].get("adagan", {}).get("components")) \
        and state["config"]["adagan"]["components"] > 1
    if adagan:
        parts = {"states": list, "betas": list, "data_weights": list, "discriminator": dict}
    else:
        parts = {"generator": dict, "discriminator": dict}
    for key, kind in parts.items():
        if key not in state:
            return f"no {key!r}"
        if not isinstance(state[key], kind):
            return f"{key!r} is {type(state[key]).__name__}, not a {kind.__name__}"
    for key in ("generator", "discriminator", "generator_ema"):
        if key in state and (problem := _weights_problem(state[key], key)):
            return problem
    if adagan:
        if len(state["states"]) != step or len(state["betas"]) != step:
            return f"step {step} but {len(state['states'])} component states and " \
                   f"{len(state['betas'])} weights"
        for i, g in enumerate(state["states"]):
            if problem := _weights_problem(g, f"states[{i}]"):
                return problem
    for key, ok in (("lr_scale", lambda v: isinstance(v, (int, float)) and not
                     isinstance(v, bool) and math.isfinite(v) and v > 0),
                    ("rollbacks", lambda v: _is_int(v) and v >= 0),
                    ("generator_ema_updates", lambda v: _is_int(v) and v >= 0),
                    ("wall_time", lambda v: isinstance(v, (int, float)) and not
                     isinstance(v, bool) and math.isfinite(v))):
        if key in state and not ok(state[key]):
            return f"{key} is {state[key]!r:.60}"
    if where := _non_finite({k: v for k, v in state.items() if k not in ("config", "meta")}, ""):
        return (f"non-finite values in {where}; "
                "gankit never saves a non-finite state: the file was altered or corrupted")
    return None


def check_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Raise a GankitError naming ``path`` and the part of the checkpoint that does not
    fit (see ``checkpoint_problem``)."""
    if problem := checkpoint_problem(state):
        raise GankitError(f"{path}: {problem}")


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
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise _naming(e, self.path) from None


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


MAX_SNAPSHOT_BYTES = 2 << 30  # what snapshots.npz may inflate to (a crafted one: anything)


def npz_array_bytes(archive: zipfile.ZipFile, name: str) -> int:
    """The size of the array ``name`` in an .npz, read from its .npy header alone."""
    with archive.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
    return math.prod(shape) * dtype.itemsize


def read_snapshots(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(steps (S,), samples (S, n, ...)) of a ``snapshots.npz``; a file that is not one
    (garbage, other arrays, an inflated size past ``MAX_SNAPSHOT_BYTES``) is a GankitError
    naming it."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            size = sum(npz_array_bytes(archive, n) for n in ("steps", "samples"))
        if size > MAX_SNAPSHOT_BYTES:
            raise GankitError(f"{path}: its arrays would take {size} bytes; allowed: at most "
                              f"{MAX_SNAPSHOT_BYTES}")
        with np.load(path, allow_pickle=False) as f:
            steps, samples = f["steps"], f["samples"]
    except GankitError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, RuntimeError,
            TypeError) as e:
        raise GankitError(f"{path}: not a readable snapshots file ({error_line(e)})") \
            from None
    if steps.ndim != 1 or steps.dtype.kind not in "iu" or samples.ndim not in (3, 5) \
            or samples.dtype.kind != "f" or len(samples) != len(steps):
        raise GankitError(f"{path}: expected integer steps (S,) and float samples (S, n, d) "
                          f"or (S, n, C, H, W); got {steps.dtype} {steps.shape} and "
                          f"{samples.dtype} {samples.shape}")
    return steps, samples


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
