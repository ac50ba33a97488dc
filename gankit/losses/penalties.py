"""Penalties and alternative costs added to a player's cost: the WGAN-GP gradient
penalty, the zero-centred R1 / R2 penalties and feature matching. Pure functions of
tensors (and a critic to differentiate)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from gankit.autodiff import double_backward
from gankit.seeds import per_seed

Tensor = torch.Tensor
__all__ = ["gradient_penalty", "feature_matching", "zero_centred_penalty"]


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
) -> Tensor:
    """WGAN-GP penalty E_x̂ (‖∇_x̂ D(x̂)‖₂ − 1)², x̂ = ε x + (1 − ε) G(z), ε ~ U[0, 1].

    Gulrajani et al. (2017), "Improved Training of Wasserstein GANs", eq. 3 (without λ).
    Differentiable in the critic's parameters (``create_graph=True``). With a list of S
    generators the inputs are S stacked batches (S, n, ...) of S independent critics
    (seeds in parallel): ε is drawn per seed and the result is the mean over seeds.
    """
    batch_dims = 1 if generator is None or isinstance(generator, torch.Generator) else 2
    shape = real.shape[batch_dims - 1:batch_dims] + (1,) * (real.ndim - batch_dims)
    eps = per_seed(generator, lambda g: torch.rand(shape, generator=g, device=real.device,
                                                   dtype=real.dtype))
    mix = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    with double_backward():  # the penalty is differentiated again, for D's parameters
        (grad,) = torch.autograd.grad(critic(mix).sum(), mix, create_graph=True)
    return (grad.flatten(batch_dims).norm(dim=-1) - 1).square().mean()


def feature_matching(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """Feature-matching generator cost ‖E_p f(x) − E_z f(G(z))‖₂², f an intermediate
    layer of D. Salimans et al. (2016), §3.1."""
    # mean over the batch dimension (−2), so S stacked seeds (S, n, f) give their mean cost
    return (real_features.mean(-2) - fake_features.mean(-2)).square().sum(-1).mean()


def zero_centred_penalty(critic: Callable[[Tensor], Tensor], x: Tensor,
                         batch_dims: int = 1) -> Tensor:
    """E ‖∇_x D(x)‖²: the zero-centred gradient penalty, R1 on real x and R2 on generated
    x (Mescheder, Geiger & Nowozin 2018, "Which Training Methods for GANs do actually
    Converge?", eq. 9; Huang et al. 2025, R3GAN, use both). The step weighs it by γ/2.
    Differentiable in the critic's parameters. ``batch_dims = 2``: x is (S, n, ...), S
    seeds stacked; the result is the mean over seeds and samples."""
    x = x.detach().requires_grad_(True)
    with double_backward():
        (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.flatten(batch_dims).square().sum(-1).mean()
