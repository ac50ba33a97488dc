"""Mode coverage on Gaussian mixtures: the PacGAN / VEEGAN protocol (DESIGN.md §4).

A generated sample is *high quality* if it lies within 3σ (Euclidean) of its nearest
mean; a mode is *covered* if it is the nearest mean of at least one high-quality sample;
*reverse KL* is KL(p̂ ‖ uniform) = log K − H(p̂) over the mode histogram p̂ of the
high-quality samples (Lin et al. 2018, PacGAN, §5.1; Srivastava et al. 2017, VEEGAN).
"""

from __future__ import annotations

import math

import torch

from gankit.data.mixtures import GaussianMixture


def mode_histogram(samples: torch.Tensor, target: GaussianMixture, n_sigma: float = 3.0):
    """(counts per mode over high-quality samples, boolean high-quality mask, nearest mode)."""
    x = torch.as_tensor(samples, dtype=torch.float64).reshape(-1, target.dim)
    finite = torch.isfinite(x).all(dim=1)
    dist = torch.cdist(torch.where(finite[:, None], x, 0.0), target.means)
    nearest_dist, nearest = dist.min(dim=1)
    high_quality = finite & (nearest_dist <= n_sigma * target.stds[nearest])
    counts = torch.bincount(nearest[high_quality], minlength=target.num_modes)
    return counts, high_quality, nearest


def mode_metrics(
    samples: torch.Tensor, target: GaussianMixture, n_sigma: float = 3.0
) -> dict[str, float | int | None]:
    """``modes`` covered, ``high_quality`` fraction and ``reverse_kl`` (nats) of ``samples``.

    ``reverse_kl`` is None when no sample is high quality (p̂ is then undefined).
    Non-finite samples count as low quality.
    """
    counts, high_quality, _ = mode_histogram(samples, target, n_sigma)
    n_hq = int(counts.sum())
    reverse_kl = None
    if n_hq > 0:
        p = counts[counts > 0].double() / n_hq
        reverse_kl = max(0.0, math.log(target.num_modes) + float((p * p.log()).sum()))
    return {
        "modes": int((counts > 0).sum()),
        "num_modes": target.num_modes,
        "high_quality": float(high_quality.double().mean()),
        "reverse_kl": reverse_kl,
        "samples": int(high_quality.numel()),
    }
