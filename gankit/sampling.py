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

import dataclasses
from collections.abc import Callable

import torch

from gankit.errors import GankitError

Tensor = torch.Tensor
Draw = Callable[[int, torch.Generator], Tensor]
Logit = Callable[[Tensor], Tensor]


def rejection_sample(
    draw: Draw,
    logit: Logit,
    n: int,
    rng: torch.Generator,
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


def density_ratio_logit(cfg, discriminator: torch.nn.Module) -> Logit:
    """D's logit as a log density-ratio estimate, refusing runs where it is not one.
    A packed D (``tricks.pack = m``) takes m·k samples, m consecutive ones a pack, and
    returns k logits: log p/q of each pack."""
    from gankit.objectives import OBJECTIVES, discriminator_loss

    usable = [n for n, o in OBJECTIVES.items() if o.discriminator is discriminator_loss]
    if cfg.objective.name not in usable:
        raise GankitError(f"--correct: D of objective {cfg.objective.name!r} does not estimate "
                          f"log p/q; allowed with: {', '.join(usable)}")
    if cfg.tricks.label_smoothing > 0:
        raise GankitError("--correct: label smoothing rescales D*, so its logit is not log p/q; "
                          "allowed with tricks.label_smoothing = 0")

    @torch.no_grad()
    def logit(x: Tensor) -> Tensor:
        device = next(discriminator.parameters()).device
        # chunks of 256 (packs): a minibatch-discrimination D compares inputs in a batch
        return torch.cat([discriminator(c.to(device)).float().cpu()
                          for c in x.split(256 * cfg.tricks.pack)])

    return logit


def fit_density_ratio(cfg, draw_real: Draw, draw_fake: Draw, steps: int, seed: int,
                      device: torch.device | str = "cpu", batch: int | None = None,
                      decay: bool = False, fourier: int = 0) -> torch.nn.Module:
    """A fresh D of the config's architecture (no tricks: unpacked, unsmoothed) trained
    ``steps`` Adam steps (``train.lr_d``, ``train.betas_d``; ``batch`` real and as many
    fake samples a step, default ``train.batch_size``; with ``decay`` the learning rate
    falls linearly to 0) with the cross-entropy cost to tell ``draw_real`` from
    ``draw_fake`` (each called as ``draw(n, rng)``, real first). At the optimum its logit
    is log p_real/p_fake (Goodfellow 2016 §3.2.3), the estimate DRS, MH and AdaGAN's
    weights need; a frozen generator's D after training is only near that optimum
    (Azadi et al. 2019 keep training D on the final G for this reason).

    ``fourier = F > 0`` (vector data only): the MLP reads ``FourierFeatures`` of x (F
    frequencies of scale 1 per unit of x), so it resolves the fine log-ratio of narrow
    modes that a ReLU MLP on raw coordinates learns only slowly."""
    from gankit.build import build_models
    from gankit.nets.layers import FourierFeatures
    from gankit.nets.mlp import MLPDiscriminator
    from gankit.objectives import discriminator_loss

    plain = dataclasses.replace(cfg, tricks=type(cfg.tricks)(), objective=type(cfg.objective)())
    rng = torch.Generator().manual_seed(seed)
    n = batch or cfg.train.batch_size
    shape = tuple(draw_real(1, torch.Generator().manual_seed(seed)).shape[1:])
    if fourier and (len(shape) != 1 or cfg.model.discriminator != "mlp"):
        raise GankitError(f"--refit-fourier: Fourier features need vector data and an MLP D; "
                          f"got samples of shape {shape} and a {cfg.model.discriminator} D; "
                          "allowed here: 0")
    _, d = build_models(plain, shape, seed)
    if fourier:
        features = FourierFeatures(shape[0], fourier, seed=seed)
        m = cfg.model
        d = torch.nn.Sequential(features, MLPDiscriminator(features.out_dim, m.d_width,
                                                           m.d_depth, m.activation))
    d.to(device)
    opt = torch.optim.Adam(d.parameters(), lr=cfg.train.lr_d, betas=tuple(cfg.train.betas_d))
    for i in range(steps):
        if decay:
            opt.param_groups[0]["lr"] = cfg.train.lr_d * (1 - i / steps)
        real = draw_real(n, rng).to(device)
        with torch.no_grad():
            fake = draw_fake(n, rng).to(device)
        loss = discriminator_loss(d(real), d(fake))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return d.eval()


CORRECTIONS = ("drs", "mh")


def correction_label(method: str, refit_steps: int = 0, refit_fourier: int = 0) -> str:
    """How a corrected row is named: ``mh``, ``drs (D refit 2000 steps)``, ...."""
    if not refit_steps:
        return method
    return f"{method} (D refit {refit_steps} steps" + \
        (f", {refit_fourier} Fourier features)" if refit_fourier else ")")


REFIT_SEED_OFFSET = 5_000_011  # the refitted D's draws, apart from training and eval
REFIT_BATCH = 256  # real and fake samples per refit step (a fixed G: a plain classifier fit)


def corrected_samples(cfg, generator, discriminator, method: str, n: int, seed: int,
                      mh_steps: int = 100, refit_steps: int = 0, refit_fourier: int = 0
                      ) -> tuple[Tensor, float]:
    """n samples of a trained run corrected by ``method`` (drs | mh), and acceptance rate.

    ``refit_steps > 0``: the density ratio comes from a fresh D fitted that many steps on
    the data against the trained generator (``fit_density_ratio``: ``REFIT_BATCH``,
    learning rate decayed to 0, ``refit_fourier`` Fourier features) instead of the run's D, so it
    also serves runs whose D does not estimate log p/q (smoothed, WGAN, hinge).
    """
    from gankit.build import build_target
    from gankit.evaluate import generate

    if method not in CORRECTIONS:
        raise GankitError(f"--correct: got {method!r}; allowed: {', '.join(CORRECTIONS)}")

    def draw(k: int, rng: torch.Generator) -> Tensor:
        return generate(cfg, generator, k, rng)

    if refit_steps:
        device = next(generator.parameters()).device
        # (an image dataset's target is its train split, as training saw it)
        discriminator = fit_density_ratio(cfg, build_target(cfg).sample, draw, refit_steps,
                                          cfg.train.seed + REFIT_SEED_OFFSET, device,
                                          REFIT_BATCH, decay=True, fourier=refit_fourier)
        cfg = dataclasses.replace(cfg, tricks=type(cfg.tricks)(),
                                  objective=type(cfg.objective)())
    logit = density_ratio_logit(cfg, discriminator)
    m = cfg.tricks.pack
    units = -(-n // m)  # packs (or points, m = 1) to sample
    if m > 1:  # a packed D: chains / rejections over packs of m samples
        draw, logit = packs(draw, logit, m)

    rng = torch.Generator().manual_seed(seed)
    if method == "drs":
        x, rate = rejection_sample(draw, logit, units, rng, burn_in=max(1, 10_000 // m),
                                   batch=max(1, 10_000 // m))
    else:
        x, rate = metropolis_hastings(draw, logit, units, rng, mh_steps)
    return (x.flatten(0, 1)[:n] if m > 1 else x), rate
