"""Limits on what a run may take, set once per process: the memory budget.

The budget is ``--memory-limit GB`` on the command line (``set_memory_limit``), else the
environment variable ``GANKIT_MEMORY_LIMIT_GB``, else 80% of the machine's physical
memory. ``gankit.build.check_memory`` refuses a run estimated past it; data files are
sized against it before they are read.
"""

from __future__ import annotations

import math
import os

from gankit.errors import GankitError

__all__ = ["MEMORY_LIMIT_ENV", "set_memory_limit", "memory_limit"]

MEMORY_LIMIT_ENV = "GANKIT_MEMORY_LIMIT_GB"

_limit_gb: float | None = None  # set by --memory-limit


def set_memory_limit(gb: float | None) -> None:
    """The budget for this process in GB (None: the environment's, or the default)."""
    global _limit_gb
    _limit_gb = gb


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # (not on every platform)
        return 16 << 30


def memory_limit() -> int:
    """The budget in bytes: ``--memory-limit``, ``GANKIT_MEMORY_LIMIT_GB``, else 80% of
    the physical memory."""
    if _limit_gb is not None:
        return int(_limit_gb * 1e9)
    text = os.environ.get(MEMORY_LIMIT_ENV)
    if text is not None:
        try:
            gb = float(text)
        except ValueError:
            gb = -1.0
        if not (math.isfinite(gb) and gb > 0):
            raise GankitError(f"{MEMORY_LIMIT_ENV}: got {text[:40]!r}; allowed: a positive "
                              "number of GB")
        return int(gb * 1e9)
    return int(0.8 * _physical_memory())
