"""Sampling a trained generator: fixed-seed latent noise, and the seeds of a run."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import torch

from gankit.config import Config
from gankit.errors import GankitError
from gankit.nets.mlp import sample_latent
from gankit.nets.stacked import Stacked

__all__ = ["EVAL_SEED_OFFSET", "generate", "seed_players"]


EVAL_SEED_OFFSET = 1_000_003  # evaluation noise is fixed per run, apart from training noise


@torch.no_grad()
def generate(
    cfg: Config, generator: torch.nn.Module, n: int, seed: int | torch.Generator, *,
    label: int | None = None,
) -> torch.Tensor:
    """n samples from ``generator`` (in eval mode), latent noise drawn on the CPU from
    ``seed`` — or from a CPU ``torch.Generator`` to continue its stream. ``label``: of a
    conditional generator, samples of that class (the same latent noise, its class
    coordinate replaced)."""
    classes = getattr(generator, "num_classes", None)
    if label is not None and not (classes and 0 <= label < classes):
        raise GankitError(f"--class: {label} given; allowed: "
                          + (f"0 to {classes - 1}" if classes else
                             "nothing (the run is not conditional: conditional.method)"))
    rng = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    out = []
    for start in range(0, n, 65536):
        # (an AdaGAN mixture's latent has one more coordinate: the component)
        z_dim = getattr(generator, "z_dim", cfg.model.z_dim)
        z = sample_latent(min(65536, n - start), z_dim, cfg.model.z_dist, rng, "cpu")
        z = z.to(device)
        x = generator(z) if label is None else generator.decode(
            z[..., :generator.noise_dim], torch.full(z.shape[:-1], label, device=device))
        out.append(x.float().cpu())
    generator.train(was_training)
    return torch.cat(out)


def seed_players(cfg: Config, generator, discriminator) -> Iterator[tuple[Config, object, object]]:
    """(config, G, D) of each seed of a run, as if that seed had been trained alone: for
    ``train.seeds = S > 1`` the S copies of the stacked players, with seed seed + i."""
    if cfg.train.seeds == 1:
        yield cfg, generator, discriminator
        return
    for i in range(cfg.train.seeds):
        train = dataclasses.replace(cfg.train, seed=cfg.train.seed + i, seeds=1)
        # (gmmn's D, without parameters, is one module for all seeds)
        yield (dataclasses.replace(cfg, train=train), generator.unstack(i),
               discriminator.unstack(i) if isinstance(discriminator, Stacked) else discriminator)
