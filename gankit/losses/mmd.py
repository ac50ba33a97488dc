"""Maximum mean discrepancy: kernels, the unbiased MMD² estimator, and its permutation test.

MMD²(P, Q) = E k(x, x') + E k(y, y') − 2 E k(x, y), x, x' ~ P, y, y' ~ Q (Gretton et al.
2012, "A Kernel Two-Sample Test", eq. 3); it is 0 iff P = Q for a characteristic kernel
(Gaussian, rational quadratic). It drives two GAN-like trainings (see ``objectives.py``):

- GMMN (Li, Swersky & Zemel 2015; Dziugaite et al. 2015): G minimises MMD²(data, G(z))
  with a fixed kernel; there is no discriminator.
- MMD-GAN (Li et al. 2017): the kernel is k(f(x), f(y)) with a feature network f
  (gankit's discriminator, with ``objective.embedding_dim`` outputs) trained to maximise
  MMD², and G to minimise it.

Every function takes batches with any leading dimensions (``(..., n, d)``, so S seeds
trained together are S independent estimates) and returns their mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["KERNELS", "DEFAULT_BANDWIDTHS", "squared_distances", "gaussian_kernel",
           "rational_quadratic_kernel", "make_kernel", "mmd2", "witness", "mmd_test"]


Tensor = torch.Tensor
Kernel = Callable[[Tensor], Tensor]  # squared distances → kernel values, elementwise

KERNELS = ("gaussian", "rational_quadratic")
DEFAULT_BANDWIDTHS = (1.0, 2.0, 4.0, 8.0, 16.0)  # σ of MMD-GAN's learned embedding (Li et al.)


def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """‖x_i − y_j‖² for x (..., n, d), y (..., m, d) → (..., n, m), with one matmul."""
    d2 = x.square().sum(-1, keepdim=True) + y.square().sum(-1).unsqueeze(-2) \
        - 2 * x @ y.transpose(-1, -2)
    return d2.clamp_min(0)  # rounding can make a zero distance slightly negative


def gaussian_kernel(bandwidths: Sequence[float]) -> Kernel:
    """k(x, y) = Σ_σ exp(−‖x − y‖² / 2σ²): a sum of Gaussian kernels over several
    bandwidths, so that no single scale has to be right (Li et al. 2015, §3.1)."""
    scales = [1 / (2 * s * s) for s in bandwidths]
    return lambda d2: sum(torch.exp(-c * d2) for c in scales)


def rational_quadratic_kernel(alphas: Sequence[float]) -> Kernel:
    """k(x, y) = Σ_α (1 + ‖x − y‖² / 2α)^−α: a scale mixture of Gaussians with heavier
    tails, whose gradient does not vanish far from the data (Bińkowski et al. 2018, §5)."""
    return lambda d2: sum((1 + d2 / (2 * a)).pow(-a) for a in alphas)


def make_kernel(name: str, parameters: Sequence[float]) -> Kernel:
    """``gaussian`` with bandwidths σ, or ``rational_quadratic`` with shapes α."""
    return {"gaussian": gaussian_kernel,
            "rational_quadratic": rational_quadratic_kernel}[name](parameters)


def mmd2(x: Tensor, y: Tensor, kernel: Kernel) -> Tensor:
    """Unbiased estimate of MMD²(P, Q) from x (..., n, d) ~ P and y (..., m, d) ~ Q:

        1/(n(n−1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m−1)) Σ_{i≠j} k(y_i, y_j) − 2/(nm) Σ k(x_i, y_j)

    Gretton et al. (2012), eq. 3 (the U-statistic). Its expectation is MMD² exactly, so
    it can be negative when P = Q. Needs n, m ≥ 2; the mean over leading dimensions.
    """
    n, m = x.shape[-2], y.shape[-2]
    kxx, kyy = kernel(squared_distances(x, x)), kernel(squared_distances(y, y))
    kxy = kernel(squared_distances(x, y))
    # the diagonal k(x_i, x_i) is the kernel at distance 0: exact, not rounded
    k0 = kernel(torch.zeros((), dtype=x.dtype, device=x.device))
    xx = (kxx.sum((-2, -1)) - n * k0) / (n * (n - 1))
    yy = (kyy.sum((-2, -1)) - m * k0) / (m * (m - 1))
    return (xx + yy - 2 * kxy.mean((-2, -1))).mean()


def witness(points: Tensor, x: Tensor, y: Tensor, kernel: Kernel) -> Tensor:
    """The witness function f(t) = E_x k(t, x) − E_y k(t, y) at ``points`` (k, d): the
    direction in which P and Q differ most (MMD = sup over the unit ball of E_P f − E_Q f
    is reached at f / ‖f‖). Positive where P has more mass than Q."""
    return kernel(squared_distances(points, x)).mean(-1) \
        - kernel(squared_distances(points, y)).mean(-1)


@torch.no_grad()
def mmd_test(
    x: Tensor, y: Tensor, kernel: Kernel, permutations: int = 200,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """(MMD², p-value) of the permutation two-sample test of H0: P = Q.

    Under H0 the labels "from x" / "from y" are exchangeable, so the statistic on random
    relabellings of the pooled sample is a draw from its null distribution; the p-value
    is (1 + #{permuted ≥ observed}) / (1 + permutations), exact at any sample size
    (Gretton et al. 2012, §5). The pooled kernel matrix is computed once.
    """
    n, m = x.shape[0], y.shape[0]
    pooled = torch.cat([x, y]).double()
    k = kernel(squared_distances(pooled, pooled))
    diag = k.diagonal()
    # row 0 is the observed split; the rest are random relabellings
    masks = torch.zeros(permutations + 1, n + m, dtype=torch.float64)
    masks[0, :n] = 1
    for i in range(1, permutations + 1):
        masks[i, torch.randperm(n + m, generator=generator)[:n]] = 1
    km = masks @ k
    sxx = (km * masks).sum(1) - (diag * masks).sum(1)
    syy = ((k.sum(0) - km) * (1 - masks)).sum(1) - (diag * (1 - masks)).sum(1)
    sxy = (km * (1 - masks)).sum(1)
    stats = sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2 * sxy / (n * m)
    p_value = (1 + (stats[1:] >= stats[0]).sum().item()) / (1 + permutations)
    return stats[0].item(), p_value




