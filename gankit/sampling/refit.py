"""Corrected sampling of a trained run: D's logit as the density ratio, or a fresh D
fitted on the data against the trained generator (``fit_density_ratio``)."""

from __future__ import annotations

import dataclasses

import torch

from gankit.build import build_models, build_target
from gankit.errors import GankitError
from gankit.generate import generate
from gankit.losses.objectives import OBJECTIVES, discriminator_loss, get_objective
from gankit.nets.layers import FourierFeatures
from gankit.nets.mlp import MLPDiscriminator
from gankit.sampling import Draw, Logit, metropolis_hastings, packs, rejection_sample

Tensor = torch.Tensor
__all__ = ["CORRECTIONS", "correction_label", "corrected_samples", "density_ratio_logit",
           "fit_density_ratio"]


def density_ratio_logit(cfg, discriminator: torch.nn.Module) -> Logit:
    """D's logit as a log density-ratio estimate, refusing runs where it is not one.
    A packed D (``tricks.pack = m``) takes m·k samples, m consecutive ones a pack, and
    returns k logits: log p/q of each pack."""

    usable = [n for n, o in OBJECTIVES.items() if o.log_ratio]
    if not get_objective(cfg.objective.name).log_ratio:
        raise GankitError(f"--correct: D of objective {cfg.objective.name!r} does not estimate "
                          f"log p/q; allowed with: {', '.join(usable)}")
    if cfg.tricks.label_smoothing > 0:
        raise GankitError("--correct: label smoothing rescales D*, so its logit is not log p/q; "
                          "allowed with tricks.label_smoothing = 0")

    @torch.no_grad()
    def logit(x: Tensor) -> Tensor:
        device = next(discriminator.parameters()).device
        was = discriminator.training
        discriminator.eval()  # D's plain verdict: no augmentation, noise or power iteration
        try:
            # chunks of 256 (packs): a minibatch-discrimination D compares inputs in a batch
            return torch.cat([discriminator(c.to(device)).float().cpu()
                              for c in x.split(256 * cfg.tricks.pack)])
        finally:
            discriminator.train(was)

    return logit


def fit_density_ratio(cfg, draw_real: Draw, draw_fake: Draw, *, steps: int, seed: int,
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


def corrected_samples(cfg, generator, discriminator, method: str, *, n: int, seed: int,
                      mh_steps: int = 100, refit_steps: int = 0, refit_fourier: int = 0
                      ) -> tuple[Tensor, float]:
    """n samples of a trained run corrected by ``method`` (drs | mh), and acceptance rate.

    ``refit_steps > 0``: the density ratio comes from a fresh D fitted that many steps on
    the data against the trained generator (``fit_density_ratio``: ``REFIT_BATCH``,
    learning rate decayed to 0, ``refit_fourier`` Fourier features) instead of the run's D, so it
    also serves runs whose D does not estimate log p/q (smoothed, WGAN, hinge).
    """

    if method not in CORRECTIONS:
        raise GankitError(f"--correct: got {method!r}; allowed: {', '.join(CORRECTIONS)}")

    def draw(k: int, rng: torch.Generator) -> Tensor:
        return generate(cfg, generator, k, rng)

    if refit_steps:
        device = next(generator.parameters()).device
        # (an image dataset's target is its train split, as training saw it)
        discriminator = fit_density_ratio(
            cfg, build_target(cfg).sample, draw, steps=refit_steps,
            seed=cfg.train.seed + REFIT_SEED_OFFSET, device=device, batch=REFIT_BATCH,
            decay=True, fourier=refit_fourier)
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
