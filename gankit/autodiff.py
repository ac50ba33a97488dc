"""Switches for code that is differentiated twice (a leaf module)."""

from __future__ import annotations

import contextlib
import contextvars

__all__ = ["double_backward", "double_backward_on"]


_DOUBLE_BACKWARD = contextvars.ContextVar("gankit_double_backward", default=False)


@contextlib.contextmanager
def double_backward():
    """Within this block, layers pick ops that support a second backward (needed by
    unrolled D updates and gradient penalties), even where those are slower."""
    token = _DOUBLE_BACKWARD.set(True)
    try:
        yield
    finally:
        _DOUBLE_BACKWARD.reset(token)


def double_backward_on() -> bool:
    """Whether the code runs inside ``double_backward()``."""
    return _DOUBLE_BACKWARD.get()
