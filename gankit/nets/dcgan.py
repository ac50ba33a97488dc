"""DCGAN-style convolutional generator and discriminator (Radford et al. 2016) for small
images: 8x8 (digits) and 28x28 (MNIST), any number of channels (3 for stacked MNIST).

G: z → linear to 128·s·s → two stride-2 transposed convolutions (batch norm, ReLU) → tanh.
D: two stride-2 convolutions (leaky ReLU 0.2, no batch norm, so a sample's logit never
depends on its batch) → linear to one logit. s = size / 4 (7 for 28x28, 2 for 8x8).
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.nets.mlp import sample_latent

SIZES = (8, 28)


def _base(size: int) -> int:
    if size not in SIZES:
        raise GankitError(f"model: DCGAN image size {size} not supported; allowed: 8, 28")
    return size // 4


class DCGANGenerator(nn.Module):
    def __init__(self, size: int = 28, channels: int = 1, z_dim: int = 64, width: int = 64,
                 z_dist: str = "normal") -> None:
        super().__init__()
        self.z_dim, self.z_dist, self.s, self.width = z_dim, z_dist, _base(size), width
        self.project = nn.Sequential(nn.Linear(z_dim, 2 * width * self.s * self.s),
                                     nn.BatchNorm1d(2 * width * self.s * self.s), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(-1, 2 * self.width, self.s, self.s)
        return self.net(h)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.parameters()).device
        return self(sample_latent(n, self.z_dim, self.z_dist, generator, device))


class DCGANDiscriminator(nn.Module):
    def __init__(self, size: int = 28, channels: int = 1, width: int = 64,
                 out_dim: int = 1) -> None:
        super().__init__()
        s, self.out_dim = _base(size), out_dim
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten())
        self.head = nn.Linear(2 * width * s * s, out_dim)  # a logit, or an MMD-GAN embedding

    def forward(self, x: torch.Tensor, features: bool = False) -> torch.Tensor:
        h = self.body(x)
        if features:
            return h
        out = self.head(h)
        return out.squeeze(-1) if self.out_dim == 1 else out
