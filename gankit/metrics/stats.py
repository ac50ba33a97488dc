"""Means with standard errors (a leaf of the metrics)."""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor
__all__ = ["mean_and_stderr"]


def mean_and_stderr(*terms: Tensor) -> tuple[float, float]:
    """Sum of the means of independent sample sets, and its standard error."""
    value = sum(float(t.mean()) for t in terms)
    se = math.sqrt(sum(float(t.var()) / t.numel() for t in terms))
    return value, se
