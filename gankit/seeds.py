"""Random streams of one run or of S seeds trained together (a leaf module)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["Rng", "per_seed"]


Rng = torch.Generator | Sequence[torch.Generator] | None


def per_seed(rng: Rng, draw: Callable[[torch.Generator | None], torch.Tensor]) -> torch.Tensor:
    """``draw(rng)``; for a list of generators (one per seed), the draws stacked on a new
    leading dimension, each seed's from its own generator — as its single-seed run draws."""
    if rng is None or isinstance(rng, torch.Generator):
        return draw(rng)
    return torch.stack([draw(g) for g in rng])
