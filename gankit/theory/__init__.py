"""The GAN theory on known densities: optimal D, exact divergences, variational estimates.

Convention (Nowozin et al. 2016, f-GAN, eq. 2): for convex f with f(1) = 0,

    D_f(P‖Q) = ∫ q(x) f(p(x)/q(x)) dx.

The named divergences and their f (natural logarithms, nats):

| name                | f(u)                                  | D_f(P‖Q)                        |
|---------------------|---------------------------------------|---------------------------------|
| ``kl``              | u log u                               | KL(P‖Q)                         |
| ``reverse_kl``      | −log u                                | KL(Q‖P)                         |
| ``jsd``             | ½[u log u − (u+1) log((u+1)/2)]       | JSD = ½KL(P‖M) + ½KL(Q‖M)       |
| ``pearson_chi2``    | (u − 1)²                              | ∫ (p − q)² / q                  |
| ``squared_hellinger`` | (√u − 1)²                           | ∫ (√p − √q)²                    |
| ``total_variation`` | ½ |u − 1|                             | ½ ∫ |p − q|                     |

The conjugate f°(u) = u f(1/u) swaps the arguments: D_f(P‖Q) = D_{f°}(Q‖P).
*Hilbertian* divergences are those whose square root is a metric: JSD, squared Hellinger
and total variation (``HILBERTIAN``); KL, reverse KL and χ² are not even symmetric.

Goodfellow et al. (2014), Prop. 1 and Thm. 1: for fixed q the discriminator maximising
V(D, G) is D*(x) = p(x) / (p(x) + q(x)), and max_D V = −2 log 2 + 2 JSD(P‖Q).

The other order of play (Goodfellow 2016, §5.1.1): for a *fixed* D, G's cost
E_z log(1 − D(G(z))) is lowest when every z goes to x* = argmax_x D(x): min_G V puts all
of G's mass on D's "golden point". ``best_response`` trains a G against a frozen D.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from scipy import integrate

from gankit.errors import GankitError
from gankit.losses.objectives import FGAN, fgan_bound, minimax
from gankit.metrics.modes import fraction_near
from gankit.metrics.stats import mean_and_stderr
from gankit.nets.mlp import MLPDiscriminator, MLPGenerator

__all__ = ["Density", "DIVERGENCES", "HILBERTIAN", "f_function", "conjugate", "log_ratio",
           "optimal_discriminator", "optimal_logit", "Estimate", "integrate_1d", "divergence",
           "value_at_optimum", "divergences_from_discriminator", "small_critic", "train_critic",
           "estimate_divergence", "gaussian_golden_point", "argmax_on_grid", "fraction_near",
           "best_response"]


Tensor = torch.Tensor


class Density(Protocol):
    dim: int

    def log_prob(self, x: Tensor) -> Tensor: ...

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor: ...


def _chi2_term(lp: Tensor, lq: Tensor) -> Tensor:  # (p − q)²/q, inf where q = 0 < p
    r = lp - lq
    return torch.where(r < 300, torch.exp(lq) * torch.expm1(r.clamp(max=300)).square(),
                       torch.exp(2 * lp - lq))


# q·f(p/q) written in log p and log q, so no 0·inf appears where one density underflows.
Q_TIMES_F: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "kl": lambda lp, lq: torch.exp(lp) * (lp - lq),
    "reverse_kl": lambda lp, lq: torch.exp(lq) * (lq - lp),
    "jsd": lambda lp, lq: 0.5 * (
        torch.exp(lp) * (lp - torch.logaddexp(lp, lq) + math.log(2))
        + torch.exp(lq) * (lq - torch.logaddexp(lp, lq) + math.log(2))),
    "pearson_chi2": _chi2_term,
    "squared_hellinger": lambda lp, lq: (torch.exp(lp / 2) - torch.exp(lq / 2)).square(),
    "total_variation": lambda lp, lq: 0.5 * (torch.exp(lp) - torch.exp(lq)).abs(),
}
DIVERGENCES = tuple(Q_TIMES_F)
HILBERTIAN = ("jsd", "squared_hellinger", "total_variation")


def f_function(name: str) -> Callable[[Tensor], Tensor]:
    """f(u) of a named divergence, as a function of the ratio u > 0."""
    q_times_f = Q_TIMES_F[_check_name(name)]

    def f(u: Tensor) -> Tensor:  # f(u) = q·f(p/q) at q = 1, p = u
        log_u = torch.log(torch.as_tensor(u, dtype=torch.float64))
        return q_times_f(log_u, torch.zeros_like(log_u))

    return f


def conjugate(f: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """f°(u) = u f(1/u): D_f(P‖Q) = D_{f°}(Q‖P). Convex with f°(1) = 0 when f is."""
    return lambda u: torch.as_tensor(u, dtype=torch.float64) * f(1 / torch.as_tensor(
        u, dtype=torch.float64))


def _check_name(name: str) -> str:
    if name not in Q_TIMES_F:
        raise GankitError(f"divergence: unknown name {name!r}; allowed: {', '.join(DIVERGENCES)}"
                          " (or pass a convex f with f(1) = 0)")
    return name


def _check_f(f: Callable) -> None:
    at_one = float(torch.as_tensor(f(torch.tensor([1.0], dtype=torch.float64))).reshape(-1)[0])
    if not math.isfinite(at_one) or abs(at_one) > 1e-9:
        raise GankitError(f"divergence: f(1) must be 0 for an f-divergence, got f(1) = {at_one}; "
                          f"allowed names: {', '.join(DIVERGENCES)}")


def log_ratio(p: Density, q: Density, x: Tensor) -> Tensor:
    """log p(x) − log q(x) (float64)."""
    return p.log_prob(x) - q.log_prob(x)


def optimal_discriminator(p: Density, q: Density) -> Callable[[Tensor], Tensor]:
    """x ↦ D*(x) = p(x) / (p(x) + q(x)) = σ(log p(x) − log q(x)), computed in log space."""
    return lambda x: torch.sigmoid(log_ratio(p, q, x))


def optimal_logit(p: Density, q: Density) -> Callable[[Tensor], Tensor]:
    """x ↦ σ⁻¹(D*(x)) = log p(x) − log q(x): what a trained discriminator's logit estimates."""
    return lambda x: log_ratio(p, q, x)


@dataclass(frozen=True)
class Estimate:
    """A number with its standard error (0 for quadrature, which is exact to ~1e-8)."""

    value: float
    stderr: float = 0.0
    method: str = "quadrature"

    def as_dict(self) -> dict:
        return {"value": self.value, "stderr": self.stderr, "method": self.method}


def _integration_range(*densities: Density) -> tuple[float, float, list[float]]:
    lo, hi, points = math.inf, -math.inf, []
    for d in densities:
        means, stds = getattr(d, "means", None), getattr(d, "stds", None)
        if means is None or stds is None:
            raise GankitError("divergence: 1-D quadrature needs mixtures with means and stds")
        lo = min(lo, float((means[:, 0] - 40 * stds).min()))
        hi = max(hi, float((means[:, 0] + 40 * stds).max()))
        points += means[:, 0].tolist()
    return lo, hi, sorted(points)


def integrate_1d(func: Callable[[Tensor], Tensor], *densities: Density) -> float:
    """∫ func(x) dx over the real line for 1-D mixtures: adaptive quadrature (scipy.quad)."""
    lo, hi, points = _integration_range(*densities)
    with warnings.catch_warnings():  # quad warns when 1e-10 is beyond float64 round-off
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value, _ = integrate.quad(
            lambda x: float(func(torch.tensor([[x]], dtype=torch.float64))[0]),
            lo, hi, points=[x for x in points if lo < x < hi], limit=2000, epsabs=1e-10,
            epsrel=1e-10)
    return value


def divergence(
    name: str | Callable[[Tensor], Tensor],
    p: Density,
    q: Density,
    n: int = 200_000,
    generator: torch.Generator | None = None,
) -> Estimate:
    """D_f(P‖Q) for a named divergence (``DIVERGENCES``) or a user's convex f with f(1) = 0.

    1-D: adaptive quadrature (exact to ~1e-8). Higher dimensions: Monte Carlo with ``n``
    samples, half from p and half from q (the proposal m = (p + q)/2, so the weights q/m
    are bounded by 2), returned with its standard error.
    """
    if callable(name):
        _check_f(name)
        user_f = name

        def q_times_f(lp: Tensor, lq: Tensor) -> Tensor:
            # A user's f sees u = p/q; ratios beyond e^±300 are clamped so u and 1/u stay
            # finite, and q·f(u) counts as 0 where q itself underflows to 0.
            value = torch.exp(lq) * user_f(torch.exp((lp - lq).clamp(-300, 300)))
            return torch.where(torch.exp(lq) > 0, value, torch.zeros_like(value))
    else:
        q_times_f = Q_TIMES_F[_check_name(name)]
    if p.dim != q.dim:
        raise GankitError(f"divergence: p has dimension {p.dim} but q has {q.dim}")

    def integrand(x: Tensor) -> Tensor:  # q(x) f(p(x)/q(x))
        return q_times_f(p.log_prob(x), q.log_prob(x))

    if p.dim == 1:
        return Estimate(integrate_1d(integrand, p, q))
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    half = n // 2
    parts = []
    for d in (p, q):
        x = d.sample(half, generator).double()
        lp, lq = p.log_prob(x), q.log_prob(x)
        lm = torch.logaddexp(lp, lq) - math.log(2)
        parts.append(q_times_f(lp, lq) * torch.exp(-lm))  # q f(p/q) / m
    value = 0.5 * (parts[0].mean() + parts[1].mean())
    se = 0.5 * torch.sqrt(parts[0].var() / half + parts[1].var() / half)
    return Estimate(float(value), float(se), f"monte-carlo n={2 * half}")


def value_at_optimum(p: Density, q: Density) -> float:
    """V(D*, G) = E_p log D*(x) + E_q log(1 − D*(x)) by quadrature (1-D) — equals
    −2 log 2 + 2 JSD(P‖Q) (Goodfellow et al. 2014, Theorem 1)."""
    if p.dim != 1:
        raise GankitError("value_at_optimum: quadrature is 1-D only; use divergence('jsd', ...)")

    def integrand(x: Tensor) -> Tensor:
        lp, lq = p.log_prob(x), q.log_prob(x)
        r = lp - lq
        return torch.exp(lp) * -F.softplus(-r) + torch.exp(lq) * -F.softplus(r)

    return integrate_1d(integrand, p, q)


# ---------------------------------------------------------------------------------------
# Estimates from a discriminator or critic trained on samples only.




@torch.no_grad()
def divergences_from_discriminator(
    discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor
) -> dict[str, Estimate]:
    """KL(P‖Q), KL(Q‖P) and JSD(P‖Q) from a trained discriminator's logit l ≈ log p/q.

    D/(1 − D) = exp(l) estimates p/q (Goodfellow 2016, §3.2.3), so with real ~ p, fake ~ q:
    KL(P‖Q) ≈ E_p l, KL(Q‖P) ≈ −E_q l, and
    JSD ≈ log 2 − ½ E_p softplus(−l) − ½ E_q softplus(l)  (= log 2 + ½ V(D, G)).
    """
    lr, lf = discriminator(real).double().reshape(-1), discriminator(fake).double().reshape(-1)
    kl = mean_and_stderr(lr)
    rkl = mean_and_stderr(-lf)
    js = mean_and_stderr(-0.5 * F.softplus(-lr), -0.5 * F.softplus(lf))
    method = f"discriminator n={lr.numel()}+{lf.numel()}"
    return {"kl": Estimate(*kl, method), "reverse_kl": Estimate(*rkl, method),
            "jsd": Estimate(js[0] + math.log(2), js[1], method)}


def small_critic(dim: int, width: int = 64, depth: int = 2) -> torch.nn.Module:
    """The MLP used as D or f-GAN critic in the theory experiments."""
    # ReLU, not tanh/SiLU: the total-variation critic must approach ½ sign(p − q), which
    # smooth nets reach far more slowly (measured: bound 0.19 vs 0.31 of TV = 0.32).
    return MLPDiscriminator(dim, width, depth, activation="relu")


def train_critic(
    loss: Callable[[Tensor, Tensor], Tensor],
    p: Density,
    q: Density,
    *,
    steps: int = 3000,
    batch_size: int = 512,
    lr: float = 2e-3,
    seed: int = 0,
    critic: torch.nn.Module | None = None,
) -> torch.nn.Module:
    """Fit a critic on samples only by minimising ``loss(critic(x_p), critic(x_q))``."""
    torch.manual_seed(seed)
    critic = critic if critic is not None else small_critic(p.dim)
    rng = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(critic.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        xp, xq = p.sample(batch_size, rng).float(), q.sample(batch_size, rng).float()
        value = loss(critic(xp), critic(xq))
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        sched.step()
    return critic


def estimate_divergence(
    name: str,
    p: Density,
    q: Density,
    *,
    steps: int = 3000,
    batch_size: int = 512,
    n_eval: int = 100_000,
    seed: int = 0,
) -> Estimate:
    """The f-GAN variational lower bound on D_f(P‖Q), from a critic trained on samples.

    D_f(P‖Q) ≥ sup_T E_p T(x) − E_q f*(T(x)) (Nguyen et al. 2010; Nowozin et al. 2016,
    eq. 4), with T = g_f(V(x)) and V an MLP. Evaluated on ``n_eval`` fresh samples from
    each side, with its standard error.
    """
    spec = FGAN[_check_name(name)]
    critic = train_critic(lambda a, b: -fgan_bound(name, a, b), p, q, steps=steps,
                          batch_size=batch_size, seed=seed)
    rng = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        vp = critic(p.sample(n_eval, rng).float()).double()
        vq = critic(q.sample(n_eval, rng).float()).double()
        value, se = mean_and_stderr(spec.scale * spec.activation(vp),
                             -spec.scale * spec.conjugate_of_activation(vq))
    return Estimate(value, se, f"f-gan critic n={n_eval}+{n_eval}")


# ---------------------------------------------------------------------------------------
# G's best response to a fixed D: maximin's inner problem.


def gaussian_golden_point(p_mean: float, p_std: float, q_mean: float, q_std: float) -> float:
    """argmax_x D*(x) for 1-D Gaussians p = N(μp, σp²), q = N(μq, σq²) with σp < σq.

    log D*/(1 − D*) = log p − log q is then a concave quadratic; its derivative
    −(x − μp)/σp² + (x − μq)/σq² vanishes at x* = (μp/σp² − μq/σq²) / (1/σp² − 1/σq²),
    the unique maximum of D* (σ is increasing): beyond p's mean, away from q's.
    """
    if not 0 < p_std < q_std:
        raise GankitError(f"gaussian_golden_point: needs 0 < p_std < q_std (D* has a maximum); "
                          f"got p_std = {p_std}, q_std = {q_std}")
    a, b = 1 / p_std**2, 1 / q_std**2
    return (p_mean * a - q_mean * b) / (a - b)


@torch.no_grad()
def argmax_on_grid(score: Callable[[Tensor], Tensor], lo: float, hi: float, dim: int,
                   n: int = 2001, dtype: torch.dtype = torch.float32) -> Tensor:
    """The point of an n-per-axis grid over [lo, hi]^dim (dim 1 or 2) where ``score`` (D,
    or its logit: same argmax) is highest, shape (dim,)."""
    if dim not in (1, 2):
        raise GankitError(f"argmax_on_grid: dim must be 1 or 2, got {dim}")
    ticks = torch.linspace(lo, hi, n, dtype=dtype)
    grid = ticks[:, None] if dim == 1 else \
        torch.stack(torch.meshgrid(ticks, ticks, indexing="xy"), -1).reshape(-1, 2)
    values = torch.cat([score(chunk).reshape(-1).double() for chunk in grid.split(65536)])
    return grid[values.argmax()]


def best_response(
    logit: Callable[[Tensor], Tensor],
    dim: int,
    *,
    steps: int = 2000,
    batch_size: int = 512,
    lr: float = 1e-2,
    seed: int = 0,
) -> torch.nn.Module:
    """A generator (MLP from z ~ N(0, 1), gankit's 2×64) trained by Adam to minimise the
    minimax cost ½ E_z log(1 − D(G(z))) against a frozen D given by its ``logit``.

    The exact minimiser maps every z to argmax D; gradient descent reaches the maximum
    whose basin G starts in (all of G's mass moves together: it collapses to one point).
    """
    torch.manual_seed(seed)
    generator = MLPGenerator(dim, 1, 64, 2)
    rng = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(generator.parameters(), lr=lr)
    for _ in range(steps):
        z = torch.randn(batch_size, 1, generator=rng)
        cost = minimax(logit(generator(z).double()))
        opt.zero_grad(set_to_none=True)
        cost.backward()
        opt.step()
    return generator
