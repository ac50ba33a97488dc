"""Gaussian mixtures with exact ``log_prob``: the toy targets of the mode-collapse literature.

Presets follow the PacGAN/VEEGAN protocol:

- ``ring8``: 8 Gaussians with means (cos 2πi/8, sin 2πi/8), i = 0..7, σ = 0.01.
- ``ring8-wide``: radius 2, σ = 0.02 (the WGAN-GP / unrolled-GAN demo variant).
- ``grid25``: 25 Gaussians with means {−4, −2, 0, 2, 4}², σ = 0.05.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from gankit.errors import GankitError

__all__ = ["GaussianMixture", "ring", "grid", "PRESETS", "mixture"]


class GaussianMixture:
    """A mixture of isotropic Gaussians, p(x) = Σ_k w_k N(x; μ_k, σ_k² I).

    ``means`` is (K, d) (or (K,) for 1-D), ``stds`` is a scalar or (K,), ``weights``
    defaults to uniform. Works in any dimension d ≥ 1.
    """

    def __init__(
        self,
        means: Sequence | torch.Tensor,
        stds: float | Sequence | torch.Tensor,
        weights: Sequence | torch.Tensor | None = None,
    ) -> None:
        means = torch.as_tensor(means, dtype=torch.float64)
        if means.ndim == 1:
            means = means[:, None]
        if means.ndim != 2 or means.shape[0] == 0:
            raise GankitError(f"means: expected shape (K, d) with K >= 1, got {tuple(means.shape)}")
        k = means.shape[0]
        stds = torch.as_tensor(stds, dtype=torch.float64).expand(k).clone()
        if not bool((stds > 0).all()):
            raise GankitError(f"stds: every standard deviation must be > 0, got {stds.tolist()}")
        if weights is None:
            weights = torch.full((k,), 1.0 / k, dtype=torch.float64)
        weights = torch.as_tensor(weights, dtype=torch.float64)
        if weights.shape != (k,) or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise GankitError(f"weights: expected {k} non-negative numbers, got {weights.tolist()}")
        self.means = means
        self.stds = stds
        self.weights = weights / weights.sum()

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def shape(self) -> tuple[int]:
        """The shape of one sample, (d,)."""
        return (self.dim,)

    @property
    def num_modes(self) -> int:
        return self.means.shape[0]

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        return_labels: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` points (and optionally their component labels) as an (n, d) tensor.

        All randomness comes from ``generator`` (whose device is used when ``device`` is
        None), so a seeded generator gives the same points every time.
        """
        if device is None:
            device = generator.device if generator is not None else "cpu"
        w = self.weights.to(device=device, dtype=dtype)
        labels = torch.multinomial(w, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, device=device, dtype=dtype)
        means = self.means.to(device=device, dtype=dtype)
        stds = self.stds.to(device=device, dtype=dtype)
        x = means[labels] + stds[labels, None] * noise
        return (x, labels) if return_labels else x

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(x; μ_k, σ_k² I) for every component: shape (n, K), float64."""
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.ndim == 1 and self.dim == 1:
            x = x[:, None]
        sq = torch.cdist(x, self.means.to(x.device)).square()
        var = self.stds.to(x.device).square()
        log_norm = -0.5 * self.dim * torch.log(2 * math.pi * var)
        return torch.log(self.weights.to(x.device)) + log_norm - 0.5 * sq / var

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) for points x of shape (n, d) (or (n,) in 1-D), as float64."""
        return torch.logsumexp(self.component_log_prob(x), dim=1)

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.num_modes}, d={self.dim})"


def ring(n_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> GaussianMixture:
    """``n_modes`` Gaussians on a circle at angles 2πi/n (distinct angles, i = 0..n−1)."""
    angles = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return GaussianMixture(means, std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    """side × side Gaussians on a grid centred at the origin, ``spacing`` apart."""
    ticks = spacing * (torch.arange(side, dtype=torch.float64) - (side - 1) / 2)
    xs, ys = torch.meshgrid(ticks, ticks, indexing="ij")
    return GaussianMixture(torch.stack([xs.flatten(), ys.flatten()], dim=1), std)


PRESETS = {
    "ring8": lambda: ring(8, 1.0, 0.01),
    "ring8-wide": lambda: ring(8, 2.0, 0.02),
    "grid25": lambda: grid(5, 2.0, 0.05),
}


def mixture(name: str) -> GaussianMixture:
    """A named preset mixture (see ``PRESETS``)."""
    if name not in PRESETS:
        raise GankitError(f"data.name: unknown mixture {name!r}; allowed: {', '.join(PRESETS)}")
    return PRESETS[name]()
