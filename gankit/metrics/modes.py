"""Mode coverage on Gaussian mixtures: the PacGAN / VEEGAN protocol.

A generated sample is *high quality* if it lies within 3σ (Euclidean) of its nearest
mean; a mode is *covered* if it is the nearest mean of at least one high-quality sample;
*reverse KL* is KL(p̂ ‖ uniform) = log K − H(p̂) over the mode histogram p̂ of the
high-quality samples (Lin et al. 2018, PacGAN, §5.1; Srivastava et al. 2017, VEEGAN).

Beside the papers' count, gankit reports the stricter *well-covered modes*: modes holding
at least a quarter of their fair share n/K of the n samples (25 of 2,500 on grid25). A
generator can reach 24/25 by the papers' count with a whole column of modes holding one
or two samples each; this figure shows it.
"""

from __future__ import annotations

import math

import torch

from gankit.data.mixtures import GaussianMixture

__all__ = ["mode_histogram", "mode_metrics", "coverage", "fraction_near", "WELL_COVERED_SHARE",
           "DISTANCE_CHUNK"]

WELL_COVERED_SHARE = 0.25  # a well-covered mode holds at least this share of n/K samples
DISTANCE_CHUNK = 1 << 20  # distances computed at once by the metrics (8 MB in float64)


def mode_histogram(samples: torch.Tensor, target: GaussianMixture, n_sigma: float = 3.0):
    """(counts per mode over high-quality samples, boolean high-quality mask, nearest mode)."""
    x = torch.as_tensor(samples, dtype=torch.float64).reshape(-1, target.dim)
    finite = torch.isfinite(x).all(dim=1)
    dist = torch.cdist(torch.where(finite[:, None], x, 0.0), target.means)
    nearest_dist, nearest = dist.min(dim=1)
    high_quality = finite & (nearest_dist <= n_sigma * target.stds[nearest])
    counts = torch.bincount(nearest[high_quality], minlength=target.num_modes)
    return counts, high_quality, nearest


def fraction_near(samples: torch.Tensor, point: torch.Tensor, eps: float) -> float:
    """The fraction of ``samples`` (n, dim) within Euclidean distance ``eps`` of ``point``
    (e.g. of argmax D: how much of G sits on the discriminator's favourite point)."""
    return float(((samples - point.to(samples)).norm(dim=1) <= eps).double().mean())


def mode_metrics(
    samples: torch.Tensor, target: GaussianMixture, n_sigma: float = 3.0
) -> dict[str, float | int | None]:
    """``modes`` covered, ``well_covered_modes``, ``high_quality`` fraction and
    ``reverse_kl`` (nats) of ``samples``, and ``mode_counts`` (high-quality samples per
    mode, in the order of ``target.means``).

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
        "well_covered_modes": int((counts >= WELL_COVERED_SHARE * len(high_quality)
                                   / target.num_modes).sum()),
        "num_modes": target.num_modes,
        "high_quality": float(high_quality.double().mean()),
        "reverse_kl": reverse_kl,
        "samples": int(high_quality.numel()),
        "mode_counts": counts.tolist(),
    }


def coverage(samples: torch.Tensor, target: GaussianMixture, n_real: int = 2500,
             seed: int = 0, quantile: float = 0.05) -> float:
    """AdaGAN's coverage C = P_data(p̂_model(x) > t), t the 5th percentile of p̂_model over
    the model's own samples: the data mass inside the region holding 95% of the model's
    (Tolstikhin et al. 2017, §4.1). p̂_model is a Gaussian kernel density estimate on
    ``samples`` with bandwidth the mixture's component σ (the scale the mode metrics judge
    at); the data are ``n_real`` draws from ``target`` (fixed by ``seed``)."""
    x = torch.as_tensor(samples, dtype=torch.float64).reshape(-1, target.dim)
    x = x[torch.isfinite(x).all(dim=1)]
    if len(x) == 0:
        return 0.0
    real = target.sample(n_real, torch.Generator().manual_seed(seed), dtype=torch.float64)
    h = float(target.stds.median())

    # (rows in chunks: about DISTANCE_CHUNK distances at a time, so memory is O(n), not
    # the n × n matrix — 1.8 GB at 10,000 samples)
    rows = max(1, DISTANCE_CHUNK // len(x))

    def log_density(points: torch.Tensor) -> torch.Tensor:  # up to a constant (same for all)
        # (into one buffer: small results kept between the chunks' large temporaries
        # would fragment the heap, and each chunk would take fresh memory)
        out = torch.empty(len(points), dtype=torch.float64)
        for i in range(0, len(points), rows):
            out[i:i + rows] = torch.logsumexp(
                -torch.cdist(points[i:i + rows], x).square() / (2 * h * h), dim=1)
        return out

    threshold = torch.quantile(log_density(x), quantile)
    return float((log_density(real) > threshold).double().mean())
