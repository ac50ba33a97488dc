"""The MMD two-sample test of generated samples against a mixture's fresh draws."""

from __future__ import annotations

import torch

from gankit.losses.mmd import gaussian_kernel, mmd_test

Tensor = torch.Tensor
__all__ = ["mixture_mmd", "PERMUTATIONS"]

PERMUTATIONS = 200  # of the permutation test: the smallest p-value is 1/201


def mixture_mmd(samples: Tensor, target, n: int = 1000, permutations: int = PERMUTATIONS,
                seed: int = 0) -> dict[str, float]:
    """``mmd2`` and its permutation-test p-value ``mmd_p`` between the first n of
    ``samples`` and n fresh draws from the mixture ``target`` (drawn from ``seed``), with
    Gaussian bandwidths σ·{1, 4, 16, 64} around the mixture's component σ: the finest
    sees whether points sit on the modes, the widest whether mass is spread like p's."""
    g = torch.Generator().manual_seed(seed)
    x = samples[:n].double().reshape(min(n, len(samples)), -1)
    finite = torch.isfinite(x).all(1)
    x = torch.where(finite[:, None], x, 1e6)  # a non-finite sample is far from everything
    y = target.sample(n, g).double()
    sigma = float(target.stds.median())
    value, p = mmd_test(x, y, gaussian_kernel([sigma * s for s in (1, 4, 16, 64)]),
                        permutations, g)
    return {"mmd2": value, "mmd_p": p}
