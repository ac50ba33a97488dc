"""Means with standard errors (a leaf of the metrics)."""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor
__all__ = ["mean_and_stderr", "mean_and_stderr_text"]


def mean_and_stderr(*terms: Tensor) -> tuple[float, float]:
    """Sum of the means of independent sample sets, and its standard error."""
    value = sum(float(t.mean()) for t in terms)
    se = math.sqrt(sum(float(t.var()) / t.numel() for t in terms))
    return value, se


def mean_and_stderr_text(values: list[float], fmt: str) -> str:
    """"mean ± SE" of values over runs (seeds) in format ``fmt``; one value alone, "-" for
    none."""
    if not values:
        return "-"
    if len(values) == 1:
        return format(values[0], fmt)
    mean, se = mean_and_stderr(torch.tensor(values, dtype=torch.float64))
    return f"{format(mean, fmt)} ± {format(se, fmt)}"
