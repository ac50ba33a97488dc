"""Layers that change what the discriminator sees."""

from __future__ import annotations

import torch
from torch import nn


def pack(x: torch.Tensor, m: int) -> torch.Tensor:
    """Concatenate m consecutive samples: (n·m, ...) → (n, m·prod(...)).

    PacGAN (Lin et al. 2018, "PacGAN: The power of two samples in generative adversarial
    networks", §3): D judges m samples jointly, all from the data or all from G.
    """
    if x.shape[0] % m:
        raise ValueError(f"batch of {x.shape[0]} samples cannot be packed in groups of {m}")
    return x.reshape(x.shape[0] // m, -1)


class Packed(nn.Module):
    """A discriminator on packs: takes (n·m, d) samples and returns n logits."""

    def __init__(self, discriminator: nn.Module, m: int) -> None:
        super().__init__()
        self.discriminator, self.m = discriminator, m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.discriminator(pack(x, self.m))

    def pointwise(self, x: torch.Tensor) -> torch.Tensor:
        """D's logit for a pack made of m copies of each point (for heat-maps)."""
        return self(x.repeat_interleave(self.m, dim=0))
