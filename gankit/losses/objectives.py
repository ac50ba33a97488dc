"""GAN objectives as pure functions of discriminator outputs.

Discriminators return logits l = σ⁻¹(D(x)); every log-probability is written with
``softplus`` / ``logsigmoid`` so logits of ±50 (and far beyond) give finite values and
gradients. Notation: ``real`` are D's logits on data x ~ p, ``fake`` on G(z), z ~ p_z.
Identities used throughout: log D = −softplus(−l), log(1 − D) = −softplus(l).

Each player *minimises* its cost. Costs follow Goodfellow (2016), "NIPS 2016 Tutorial:
Generative Adversarial Networks", eqs. 8, 10, 13 and §3.2, including the ½ factors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.losses.mmd import DEFAULT_BANDWIDTHS, Kernel, gaussian_kernel, mmd2

__all__ = ["value", "discriminator_loss", "minimax", "nonsaturating", "max_likelihood",
           "least_squares_discriminator", "least_squares_generator", "hinge_discriminator",
           "hinge_generator", "wasserstein_critic", "wasserstein_generator", "Objective",
           "FDivergence", "LOG2", "fgan_bound", "fgan_discriminator", "fgan_generator", "gmmn",
           "mmd_gan", "register", "smoothed_discriminator_loss",
           "smoothed_least_squares_discriminator", "with_label_smoothing", "get_objective",
           "relativistic_pairing_discriminator", "relativistic_pairing_generator",
           "relativistic_average_discriminator", "relativistic_average_generator"]


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
    # the mean in float64: a sum of many exp(80) would overflow float32
    return (-0.5 * torch.exp(fake.clamp(max=80.0).double()).mean()).to(fake.dtype)


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




@dataclass(frozen=True)
class Objective:
    """A GAN game: D's cost on (real, fake) outputs and G's cost on fake outputs, with
    what the game declares about itself (read by the cost builder, the config rules and
    the samplers, so no code checks an objective's name):

    - ``gradient_penalty``: the step adds λ·``gradient_penalty`` to D's cost (WGAN-GP).
    - ``needs_real``: G's cost compares D's outputs on its batch with those on a real
      batch, ``generator(fake, real)`` (MMD).
    - ``adversarial = False``: there is no D to train (GMMN: D is a fixed feature map,
      ``discriminator`` is None).
    - ``log_ratio``: D's cost is the cross-entropy J_D, so at its optimum D's logit is
      log p/q (the density-ratio samplers and the semi-supervised K+1 critic need it).
    - ``smoothed(α)``: D's cost with one-sided label smoothing α on the real targets, or
      None where D has no target to smooth.
    - ``embedding``: D outputs an embedding of ``objective.embedding_dim`` values, not a
      logit (MMD-GAN).
    - ``with_kernel(k)``: the same game under kernel k (``objective.kernel`` and
      ``bandwidths``), for kernel objectives.
    """

    name: str
    discriminator: Callable[[Tensor, Tensor], Tensor] | None
    generator: Callable[..., Tensor]
    gradient_penalty: bool = False
    needs_real: bool = False
    adversarial: bool = True
    log_ratio: bool = False
    smoothed: Callable[[float], Callable[[Tensor, Tensor], Tensor]] | None = None
    embedding: bool = False
    with_kernel: Callable[[Kernel], Objective] | None = None


@dataclass(frozen=True)
class FDivergence:
    """One row of the f-GAN table (Nowozin et al. 2016, Table 6): the output activation
    T = g_f(v) of the critic's raw output v, and f*(g_f(v)) written in v for stability.

    ``scale`` maps the paper's f to gankit's (``gankit.theory``): the paper's Jensen-Shannon
    f gives 2·JSD, so its bound is halved to bound JSD.
    """

    activation: Callable[[Tensor], Tensor]
    conjugate_of_activation: Callable[[Tensor], Tensor]
    scale: float = 1.0


LOG2 = 0.6931471805599453

FGAN: dict[str, FDivergence] = {
    # f(u) = u log u;  g_f(v) = v;  f*(t) = exp(t − 1)
    "kl": FDivergence(lambda v: v, lambda v: torch.exp(v - 1)),
    # f(u) = −log u;  g_f(v) = −exp(−v);  f*(t) = −1 − log(−t) = −1 + v
    "reverse_kl": FDivergence(lambda v: -torch.exp(-v), lambda v: v - 1),
    # f(u) = u log u − (u+1) log((u+1)/2);  g_f(v) = log 2 − log(1 + e^−v);
    # f*(t) = −log(2 − e^t) = −log 2 + softplus(v)
    "jsd": FDivergence(lambda v: LOG2 - F.softplus(-v), lambda v: F.softplus(v) - LOG2, 0.5),
    # f(u) = (u − 1)²;  g_f(v) = v;  f*(t) = t²/4 + t
    "pearson_chi2": FDivergence(lambda v: v, lambda v: v.square() / 4 + v),
    # f(u) = (√u − 1)²;  g_f(v) = 1 − e^−v;  f*(t) = t/(1 − t) = e^v − 1
    "squared_hellinger": FDivergence(lambda v: -torch.expm1(-v), lambda v: torch.expm1(v)),
    # f(u) = ½|u − 1|;  g_f(v) = ½ tanh v;  f*(t) = t on |t| ≤ ½
    "total_variation": FDivergence(lambda v: 0.5 * torch.tanh(v), lambda v: 0.5 * torch.tanh(v)),
    # f(u) = u log u − (u+1) log(u+1) (D_f = 2 JSD − log 4);  g_f(v) = −log(1 + e^−v);
    # f*(t) = −log(1 − e^t) = softplus(v). Its D cost is 2·J_D of the original GAN.
    "gan": FDivergence(lambda v: -F.softplus(-v), lambda v: F.softplus(v)),
}


def fgan_bound(name: str, real: Tensor, fake: Tensor) -> Tensor:
    """The variational lower bound E_p g_f(V(x)) − E_q f*(g_f(V(x))) on D_f(P‖Q), scaled
    to gankit's f (see ``FDivergence.scale``). Nowozin et al. (2016), eq. 6."""
    d = FGAN[name]
    return d.scale * (d.activation(real).mean() - d.conjugate_of_activation(fake).mean())


def fgan_discriminator(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """f-GAN critic cost −(E_p g_f(V(x)) − E_q f*(g_f(V(G(z))))): it maximises the bound."""
    d = FGAN[name]
    return lambda real, fake: d.conjugate_of_activation(fake).mean() - d.activation(real).mean()


def fgan_generator(name: str) -> Callable[[Tensor], Tensor]:
    """f-GAN generator cost −E_z f*(g_f(V(G(z)))): it minimises the bound (the saddle-point
    objective of Nowozin et al. 2016, Algorithm 1)."""
    d = FGAN[name]
    return lambda fake: -d.conjugate_of_activation(fake).mean()


def gmmn(kernel: Kernel) -> Objective:
    """Generative moment matching network: G minimises MMD²(p, p_g) under a fixed kernel,
    with no discriminator. Li, Swersky & Zemel (2015), "Generative Moment Matching
    Networks", eq. 3 (unbiased); Dziugaite, Roy & Ghahramani (2015)."""
    return Objective("gmmn", None, lambda fake, real: mmd2(real, fake, kernel),
                     needs_real=True, adversarial=False, with_kernel=gmmn)


def mmd_gan(kernel: Kernel) -> Objective:
    """MMD-GAN: min_G max_f MMD²(f(x), f(G(z))), the kernel k(f(x), f(y)) learned by
    D = f, a feature network with ``objective.embedding_dim`` outputs. Li et al. (2017),
    "MMD GAN: Towards Deeper Understanding of Moment Matching Network", eq. 4 (there with
    √MMD² for G and weight clipping on f: ``objective.weight_clip``)."""
    return Objective("mmd-gan", lambda real, fake: -mmd2(real, fake, kernel),
                     lambda fake, real: mmd2(real, fake, kernel), needs_real=True,
                     embedding=True, with_kernel=mmd_gan)


def relativistic_pairing_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic pairing GAN (RpGAN) D cost E softplus(−(D(x_r) − D(x_f))), each real
    paired with one fake: D learns that a real sample is more real than a fake one.
    Jolicoeur-Martineau (2019), "The relativistic discriminator", eq. 9 with f = softplus;
    R3GAN's base loss (Huang et al. 2025)."""
    return F.softplus(fake - real).mean()


def relativistic_pairing_generator(fake: Tensor, real: Tensor) -> Tensor:
    """RpGAN G cost E softplus(−(D(x_f) − D(x_r))): the D cost with the roles swapped."""
    return F.softplus(real - fake).mean()


def relativistic_average_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic average GAN (RaGAN) D cost E_r softplus(−(D(x_r) − E_f D(x_f))) +
    E_f softplus(D(x_f) − E_r D(x_r)). Jolicoeur-Martineau (2019), eq. 16. The averages
    run over the batch dimension (the last), so S stacked seeds keep their own."""
    return F.softplus(fake.mean(-1, keepdim=True) - real).mean() \
        + F.softplus(fake - real.mean(-1, keepdim=True)).mean()


def relativistic_average_generator(fake: Tensor, real: Tensor) -> Tensor:
    """RaGAN G cost: the D cost with real and fake swapped."""
    return relativistic_average_discriminator(fake, real)


OBJECTIVES: dict[str, Objective] = {}


def register(objective: Objective) -> Objective:
    """Add ``objective`` to the registry (``objective.name`` in configs)."""
    OBJECTIVES[objective.name] = objective
    return objective


def smoothed_discriminator_loss(alpha: float) -> Callable[[Tensor, Tensor], Tensor]:
    """J_D with one-sided label smoothing: real targets 1 − α, fake targets stay 0.

    ½ E_p [(1 − α)(−log D(x)) + α(−log(1 − D(x)))] + ½ E_z [−log(1 − D(G(z)))].
    Salimans et al. (2016), §3.4: smoothing only the real side keeps D* =
    (1 − α) p / (p + q), so D does not reward G for samples where p = 0.
    """

    def loss(real: Tensor, fake: Tensor) -> Tensor:
        real_term = (1 - alpha) * F.softplus(-real) + alpha * F.softplus(real)
        return 0.5 * (real_term.mean() + F.softplus(fake).mean())

    return loss


def smoothed_least_squares_discriminator(alpha: float) -> Callable[[Tensor, Tensor], Tensor]:
    """LSGAN D cost with the real target 1 − α: ½ E_p (D(x) − 1 + α)² + ½ E_z D(G(z))²."""
    return lambda real, fake: 0.5 * ((real - 1 + alpha).square().mean() + fake.square().mean())


def with_label_smoothing(objective: Objective, alpha: float) -> Objective:
    """``objective`` with one-sided label smoothing α on D's real targets (α = 0: unchanged).

    Defined where D has targets (``objective.smoothed``): the cross-entropy games and
    least squares.
    """
    if alpha == 0:
        return objective
    if objective.smoothed is None:
        smoothable = [n for n, o in OBJECTIVES.items() if o.smoothed is not None]
        raise GankitError(f"tricks.label_smoothing: {objective.name!r} has no real target to "
                          f"smooth; allowed with: {', '.join(smoothable)}")
    return dataclasses.replace(objective, name=f"{objective.name}+smooth{alpha:g}",
                               discriminator=objective.smoothed(alpha), smoothed=None,
                               log_ratio=False)  # smoothing rescales D*: its logit is not log p/q


def get_objective(name: str) -> Objective:
    """The objective called ``name`` (see ``OBJECTIVES``)."""
    if name not in OBJECTIVES:
        raise GankitError(
            f"objective.name: unknown objective {name!r}; allowed: {', '.join(OBJECTIVES)}"
        )
    return OBJECTIVES[name]


# The registry: every game a config can name (``objective.name``).
for _name, _g in (("minimax", minimax), ("nonsaturating", nonsaturating),
                  ("max_likelihood", max_likelihood)):
    register(Objective(_name, discriminator_loss, _g, log_ratio=True,
                       smoothed=smoothed_discriminator_loss))
register(Objective("least_squares", least_squares_discriminator, least_squares_generator,
                   smoothed=smoothed_least_squares_discriminator))
register(Objective("hinge", hinge_discriminator, hinge_generator))
register(Objective("wasserstein_gp", wasserstein_critic, wasserstein_generator,
                   gradient_penalty=True))
for _make in (gmmn, mmd_gan):
    register(_make(gaussian_kernel(DEFAULT_BANDWIDTHS)))
for _name in FGAN:
    register(Objective(f"f-gan:{_name}", fgan_discriminator(_name), fgan_generator(_name)))
# relativistic: G's cost reads D's outputs on a real batch too (needs_real)
register(Objective("rpgan", relativistic_pairing_discriminator, relativistic_pairing_generator,
                   needs_real=True))
register(Objective("ragan", relativistic_average_discriminator, relativistic_average_generator,
                   needs_real=True))
