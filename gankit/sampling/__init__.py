"""Sampling corrected by the discriminator's density-ratio estimate.

A discriminator trained with the cross-entropy cost has logit l(x) ≈ log p_data(x)/p_g(x)
at its optimum (D/(1 − D) = p/q, Goodfellow 2016 §3.2.3). Two ways to use it to move
generator samples toward the data:

- ``rejection_sample`` — discriminator rejection sampling (Azadi et al. 2019). Exact
  form (``gamma_quantile=None``): accept a generator sample x with probability
  exp(l(x) − l_max); with D = D* and the true maximum l_max this samples p_data exactly,
  but a trained D's largest logits are outliers and the acceptance rate collapses
  (measured on grid25: 5e-5). Default, the paper's practical form: accept with
  probability σ(F(x) − γ), F = l − l_max − log(1 − exp(l − l_max − ε)) (their eq. 8),
  which accepts far more at the cost of exactness. The paper leaves γ a hyperparameter;
  gankit sets it to the ``gamma_quantile`` quantile of F on the burn-in draws (0.8 by
  default: a sample as likely as the 80th percentile is accepted with probability ½).
- ``metropolis_hastings`` — MH-GAN (Turner et al. 2019): an independence chain with
  generator samples as proposals, accepting x' from x with probability
  min(1, exp(l(x') − l(x))) (= (1/D(x) − 1)/(1/D(x') − 1)); the state after ``steps``
  proposals is the sample.

A packed discriminator (PacGAN, m > 1) judges packs of m independent samples; its
optimal logit is log p^⊗m/q^⊗m = Σ_i log p(x_i)/q(x_i). Both samplers then run over
packs — m generator samples proposed, accepted or rejected together — and target
p^⊗m, every slot of which is a data sample: the trained packed D corrects its own G
without refitting (``packs``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gankit.errors import GankitError

__all__ = ["rejection_sample", "metropolis_hastings", "packs"]


Tensor = torch.Tensor
Draw = Callable[[int, torch.Generator], Tensor]
Logit = Callable[[Tensor], Tensor]


def rejection_sample(
    draw: Draw,
    logit: Logit,
    n: int,
    rng: torch.Generator,
    *,
    burn_in: int = 10_000,
    gamma_quantile: float | None = 0.8,
    eps: float = 1e-6,
    batch: int = 10_000,
    max_draws: int = 2_000_000,
) -> tuple[Tensor, float]:
    """n samples by discriminator rejection sampling, and the acceptance rate.

    l_max is estimated on ``burn_in`` draws and raised whenever a larger logit is seen.
    """

    def shifted(lx: Tensor, l_max: float) -> Tensor:  # F(x) of Azadi et al., eq. 8
        return lx - l_max - torch.log1p(-torch.exp(lx - l_max - eps))

    l_burn = logit(draw(burn_in, rng)).double()
    if not bool(torch.isfinite(l_burn).all()):
        raise GankitError("--correct drs: the discriminator gives non-finite logits on "
                          "generator samples; nothing can be corrected")
    l_max = float(l_burn.max())
    gamma = None
    if gamma_quantile is not None:
        gamma = float(torch.quantile(shifted(l_burn, l_max), gamma_quantile))
    kept, drawn, accepted = [], 0, 0
    while accepted < n:
        if drawn >= max_draws:
            raise GankitError(f"--correct drs: accepted only {accepted} of {n} samples in "
                              f"{drawn} draws; the discriminator rejects almost everything")
        x = draw(batch, rng)
        lx = logit(x).double()
        drawn += batch
        l_max = max(l_max, float(lx.max()))
        if gamma is None:
            log_p = lx - l_max
        else:
            log_p = torch.nn.functional.logsigmoid(shifted(lx, l_max) - gamma)
        u = torch.rand(batch, generator=rng, dtype=torch.float64, device=lx.device)
        keep = torch.log(u) < log_p
        kept.append(x[keep.to(x.device)])
        accepted += int(keep.sum())
    return torch.cat(kept)[:n], accepted / drawn


def metropolis_hastings(
    draw: Draw, logit: Logit, n: int, rng: torch.Generator, steps: int = 100
) -> tuple[Tensor, float]:
    """n samples from n independent MH chains of ``steps`` generator proposals each (the
    chains start from a generator sample), and the fraction of proposals accepted."""
    x = draw(n, rng)
    lx = logit(x).double()
    accepted = 0
    for _ in range(steps):
        y = draw(n, rng)
        ly = logit(y).double()
        u = torch.rand(n, generator=rng, dtype=torch.float64, device=ly.device)
        move = torch.log(u) < (ly - lx)
        x = torch.where(move.to(x.device).view(-1, *(1,) * (x.ndim - 1)), y, x)
        lx = torch.where(move, ly, lx)
        accepted += int(move.sum())
    return x, accepted / (n * steps)


def packs(draw: Draw, logit: Logit, m: int) -> tuple[Draw, Logit]:
    """``draw`` and ``logit`` over packs of m samples: draw(k) gives (k, m, ...) — m·k
    generator samples — and logit of k packs is the packed D's k logits. The samplers
    above take these unchanged; flatten their output's first two axes for samples."""

    def draw_packs(k: int, rng: torch.Generator) -> Tensor:
        x = draw(k * m, rng)
        return x.reshape(k, m, *x.shape[1:])

    return draw_packs, lambda x: logit(x.flatten(0, 1))












