"""InfoGAN's information term (Chen et al. 2016): the variational lower bound on
I(c; G(z, c)) through a head Q(c | x) on D; see ``gankit.nets.heads`` for G and Q.

    L_I(G, Q) = E_{c ~ p(c), x ~ G(z, c)} [log Q(c | x)] + H(c)  ≤  I(c; G(z, c))

(paper eq. 4 and Lemma 5.1). Both G and Q minimise E[−log Q(c | x)] = H(c) − L_I.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
__all__ = ["code_entropy", "categorical_nll", "gaussian_nll", "info_loss", "mi_lower_bound"]


def code_entropy(categorical: list[int], continuous: int) -> tuple[float, float]:
    """H(c) in nats: (Σ log K of the categorical codes, continuous codes' differential
    entropy #cont · log 2 of U[−1, 1])."""
    return float(sum(math.log(k) for k in categorical)), continuous * math.log(2.0)


def categorical_nll(logits: list[Tensor], codes: Tensor) -> Tensor:
    """−E log Q(c_cat | x), summed over the categorical codes (nats); the mean runs over
    every leading dimension (samples, or seeds × samples)."""
    return sum((F.cross_entropy(lg.flatten(0, -2), codes[..., i].flatten())
                for i, lg in enumerate(logits)),
               torch.zeros((), device=codes.device))


def gaussian_nll(mean: Tensor, log_var: Tensor, codes: Tensor) -> Tensor:
    """−E log N(c_cont; mean, exp(log_var)), summed over the continuous codes (nats; the
    mean over every leading dimension)."""
    if codes.shape[-1] == 0:
        return torch.zeros((), device=codes.device)
    nll = 0.5 * (log_var + (codes - mean).square() / log_var.exp() + math.log(2 * math.pi))
    return nll.sum(-1).mean()


def info_loss(q: tuple[list[Tensor], Tensor, Tensor], codes: tuple[Tensor, Tensor],
              continuous_weight: float = 1.0) -> Tensor:
    """−L_I + H(c) = E[−log Q(c | x)] on generated x with codes c = (categorical,
    continuous), from Q's outputs on x, ``q = (categorical logits, mean, log-variance)``;
    the continuous part weighted by ``continuous_weight``."""
    logits, mean, log_var = q
    categorical, continuous = codes
    return categorical_nll(logits, categorical) + \
        continuous_weight * gaussian_nll(mean, log_var, continuous)


def mi_lower_bound(logits: list[Tensor], codes: Tensor, categorical: list[int]) -> float:
    """The categorical codes' L_I = H(c) − E[−log Q(c | x)] in nats: at most H(c) =
    Σ log K (cross-entropy is ≥ 0), equal to it when Q recovers c exactly."""
    return code_entropy(categorical, 0)[0] - float(categorical_nll(logits, codes))
