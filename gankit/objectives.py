"""GAN objectives as pure functions of discriminator outputs.

Discriminators return logits l = σ⁻¹(D(x)); every log-probability is written with
``softplus`` / ``logsigmoid`` so logits of ±50 (and far beyond) give finite values and
gradients. Notation: ``real`` are D's logits on data x ~ p, ``fake`` on G(z), z ~ p_z.
Identities used throughout: log D = −softplus(−l), log(1 − D) = −softplus(l).

Each player *minimises* its cost. Costs follow Goodfellow (2016), "NIPS 2016 Tutorial:
Generative Adversarial Networks", eqs. 8, 10, 13 and §3.2, including the ½ factors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankit.errors import GankitError

Tensor = torch.Tensor


def value(real: Tensor, fake: Tensor) -> Tensor:
    """The minimax value V(D, G) = E_p log D(x) + E_z log(1 − D(G(z))).

    Goodfellow et al. (2014), eq. 1. For fixed G, max_D V = −2 log 2 + 2 JSD(p‖p_g).
    """
    return -F.softplus(-real).mean() - F.softplus(fake).mean()


def discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Cross-entropy cost J_D = −½ E_p log D(x) − ½ E_z log(1 − D(G(z))) = −½ V(D, G).

    Goodfellow (2016) eq. 8. Minimised by the optimal D*(x) = p(x) / (p(x) + p_g(x)).
    """
    return 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())


def minimax(fake: Tensor) -> Tensor:
    """Saturating (zero-sum) generator cost J_G = −J_D ≅ ½ E_z log(1 − D(G(z))).

    Goodfellow (2016) eq. 9 with the D-only term dropped. Its gradient −½ σ(l) vanishes
    when D confidently rejects the fakes (l → −∞): the generator stops learning early on.
    """
    return -0.5 * F.softplus(fake).mean()


def nonsaturating(fake: Tensor) -> Tensor:
    """Non-saturating ("−log D trick") generator cost J_G = −½ E_z log D(G(z)).

    Goodfellow et al. (2014) §3; Goodfellow (2016) eq. 13. Its gradient −½ σ(−l) tends
    to −½ as D rejects the fakes, so G keeps learning where minimax saturates.
    """
    return 0.5 * F.softplus(-fake).mean()


def max_likelihood(fake: Tensor) -> Tensor:
    """Maximum-likelihood generator cost J_G = −½ E_z exp(σ⁻¹(D(G(z)))) = −½ E_z exp(l).

    Goodfellow (2014b), "On distinguishability criteria for estimating generative models";
    Goodfellow (2016) §3.2.3. With D = D*, D/(1 − D) = exp(l) = p/p_g, and the expected
    gradient equals that of KL(p‖p_g). The logit is clamped at 80 so exp stays finite in
    float32 (beyond it the cost is flat: D is already certain).
    """
    return -0.5 * torch.exp(fake.clamp(max=80.0)).mean()


def least_squares_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    """LSGAN discriminator cost ½ E_p (D(x) − 1)² + ½ E_z D(G(z))² on raw outputs.

    Mao et al. (2017), "Least Squares Generative Adversarial Networks", eq. 2 (a=0, b=c=1).
    """
    return 0.5 * ((real - 1).square().mean() + fake.square().mean())


def least_squares_generator(fake: Tensor) -> Tensor:
    """LSGAN generator cost ½ E_z (D(G(z)) − 1)². Mao et al. (2017), eq. 2."""
    return 0.5 * (fake - 1).square().mean()


def hinge_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    """Hinge discriminator cost E_p max(0, 1 − D(x)) + E_z max(0, 1 + D(G(z))).

    Lim & Ye (2017), "Geometric GAN"; Miyato et al. (2018), SN-GAN eq. 16.
    """
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_generator(fake: Tensor) -> Tensor:
    """Hinge generator cost −E_z D(G(z)). Miyato et al. (2018), eq. 17."""
    return -fake.mean()


def wasserstein_critic(real: Tensor, fake: Tensor) -> Tensor:
    """WGAN critic cost E_z D(G(z)) − E_p D(x) (add ``gradient_penalty``).

    Arjovsky et al. (2017); with the penalty, Gulrajani et al. (2017), Algorithm 1.
    """
    return fake.mean() - real.mean()


def wasserstein_generator(fake: Tensor) -> Tensor:
    """WGAN generator cost −E_z D(G(z)). Arjovsky et al. (2017)."""
    return -fake.mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP penalty E_x̂ (‖∇_x̂ D(x̂)‖₂ − 1)², x̂ = ε x + (1 − ε) G(z), ε ~ U[0, 1].

    Gulrajani et al. (2017), "Improved Training of Wasserstein GANs", eq. 3 (without λ).
    Differentiable in the critic's parameters (``create_graph=True``).
    """
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    eps = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
    mix = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mix).sum(), mix, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()


@dataclass(frozen=True)
class Objective:
    """A GAN game: D's cost on (real, fake) outputs and G's cost on fake outputs.

    ``gradient_penalty`` says whether the training step adds λ·``gradient_penalty``
    to D's cost (WGAN-GP).
    """

    name: str
    discriminator: Callable[[Tensor, Tensor], Tensor]
    generator: Callable[[Tensor], Tensor]
    gradient_penalty: bool = False


OBJECTIVES: dict[str, Objective] = {
    "minimax": Objective("minimax", discriminator_loss, minimax),
    "nonsaturating": Objective("nonsaturating", discriminator_loss, nonsaturating),
    "max_likelihood": Objective("max_likelihood", discriminator_loss, max_likelihood),
    "least_squares": Objective(
        "least_squares", least_squares_discriminator, least_squares_generator
    ),
    "hinge": Objective("hinge", hinge_discriminator, hinge_generator),
    "wasserstein_gp": Objective(
        "wasserstein_gp", wasserstein_critic, wasserstein_generator, gradient_penalty=True
    ),
}


def get_objective(name: str) -> Objective:
    """The objective called ``name`` (see ``OBJECTIVES``)."""
    if name not in OBJECTIVES:
        raise GankitError(
            f"objective.name: unknown objective {name!r}; allowed: {', '.join(OBJECTIVES)}"
        )
    return OBJECTIVES[name]
