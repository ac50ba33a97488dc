"""Fully connected generator and discriminator for low-dimensional (and flattened) data."""

from __future__ import annotations

import torch
from torch import nn

from gankit.errors import GankitError

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}
LATENT_DISTRIBUTIONS = ("normal", "uniform")


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none at the end)."""
    if activation not in ACTIVATIONS:
        raise GankitError(
            f"model.activation: unknown activation {activation!r}; "
            f"allowed: {', '.join(ACTIVATIONS)}"
        )
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def sample_latent(
    n: int,
    z_dim: int,
    dist: str = "normal",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """z ~ N(0, I) (``normal``) or U[−1, 1]^z_dim (``uniform``), shape (n, z_dim)."""
    if device is None:
        device = generator.device if generator is not None else "cpu"
    if dist == "normal":
        return torch.randn(n, z_dim, generator=generator, device=device)
    if dist == "uniform":
        return 2 * torch.rand(n, z_dim, generator=generator, device=device) - 1
    raise GankitError(
        f"model.z_dist: unknown latent distribution {dist!r}; "
        f"allowed: {', '.join(LATENT_DISTRIBUTIONS)}"
    )


class MLPGenerator(nn.Module):
    """G: z (z_dim) → ``depth`` hidden layers of ``width`` → x (out_dim), linear output."""

    def __init__(
        self,
        out_dim: int,
        z_dim: int = 2,
        width: int = 128,
        depth: int = 2,
        activation: str = "relu",
        z_dist: str = "normal",
    ) -> None:
        super().__init__()
        self.z_dim, self.z_dist = z_dim, z_dist
        self.net = mlp([z_dim] + [width] * depth + [out_dim], activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n generated points, latent drawn with ``generator``."""
        device = next(self.parameters()).device
        z = sample_latent(n, self.z_dim, self.z_dist, generator, device)
        return self(z)


class MLPDiscriminator(nn.Module):
    """D: x (in_dim) → ``depth`` hidden layers of ``width`` → one logit σ⁻¹(D(x))."""

    def __init__(
        self, in_dim: int, width: int = 128, depth: int = 2, activation: str = "relu"
    ) -> None:
        super().__init__()
        self.net = mlp([in_dim] + [width] * depth + [1], activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)
