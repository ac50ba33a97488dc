"""Evaluate a generator the way its data asks (mixtures: modes / high quality / reverse KL)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import torch

from gankit import io
from gankit.build import build_players, build_target
from gankit.config import Config, from_dict
from gankit.data.images import is_image_dataset
from gankit.errors import GankitError
from gankit.metrics.modes import coverage, mode_metrics
from gankit.nets.mlp import sample_latent
from gankit.nets.stacked import Stacked
from gankit.theory import mean_and_stderr
from gankit.variants.mmd import mixture_mmd

EVAL_SEED_OFFSET = 1_000_003  # evaluation noise is fixed per run, apart from training noise


@torch.no_grad()
def generate(
    cfg: Config, generator: torch.nn.Module, n: int, seed: int | torch.Generator
) -> torch.Tensor:
    """n samples from ``generator`` (in eval mode), latent noise drawn on the CPU from
    ``seed`` — or from a CPU ``torch.Generator`` to continue its stream."""
    rng = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    out = []
    for start in range(0, n, 65536):
        # (an AdaGAN mixture's latent has one more coordinate: the component)
        z_dim = getattr(generator, "z_dim", cfg.model.z_dim)
        z = sample_latent(min(65536, n - start), z_dim, cfg.model.z_dist, rng, "cpu")
        out.append(generator(z.to(device)).float().cpu())
    generator.train(was_training)
    return torch.cat(out)


def evaluate_generator(cfg: Config, generator, target=None) -> tuple[dict, torch.Tensor]:
    """Metrics on fixed-seed samples, and the samples: mixtures ``cfg.train.eval_samples``
    samples; images as many as the real-data floor uses (see ``images.eval_samples``)."""
    n = cfg.train.eval_samples
    if is_image_dataset(cfg.data.name):
        from gankit.metrics.images import eval_samples

        n = eval_samples(cfg.data.name, cfg.data.root or None)
    samples = generate(cfg, generator, n, cfg.train.seed + EVAL_SEED_OFFSET)
    return sample_metrics(cfg, samples, target), samples


def sample_metrics(cfg: Config, samples: torch.Tensor, target=None) -> dict:
    """The metrics that fit the run's data: modes / high quality / reverse KL and the MMD
    two-sample test on mixtures;
    FD, KID, precision, recall, classifier score, modes and KL on images."""
    if is_image_dataset(cfg.data.name):
        from gankit.metrics.images import image_metrics

        return image_metrics(samples, cfg.data.name, cfg.data.root or None)
    target = target if target is not None else build_target(cfg)
    seed = cfg.train.seed
    return {**mode_metrics(samples, target), "coverage": coverage(samples, target, seed=seed),
            **mixture_mmd(samples, target, seed=seed)}


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


def summarize_seeds(per_seed: list[dict]) -> dict:
    """``metrics``: the mean over seeds of each metric, ``metrics_stderr``: its standard
    error (a metric undefined for some seeds, like reverse_kl, over the others)."""
    mean, stderr = {}, {}
    for k in per_seed[0]:
        values = [m[k] for m in per_seed if m[k] is not None]
        if any(isinstance(v, str) for v in values):  # a label (dataset, classifier)
            mean[k], stderr[k] = values[0] if len(set(values)) == 1 else None, None
            continue
        mean[k], stderr[k] = (None, None) if not values else (values[0], None) \
            if len(values) == 1 else mean_and_stderr(torch.tensor(values, dtype=torch.float64))
    return {"metrics": mean, "metrics_stderr": stderr}


def load_run(run_dir: str | Path, device: str | torch.device = "cpu"):
    """(config, generator, discriminator, checkpoint state) of a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GankitError(f"{run_dir}: run directory not found")
    state = io.load_checkpoint(run_dir / "checkpoint.pt", map_location=device)
    cfg = from_dict(state["config"], str(run_dir / "checkpoint.pt"))
    if cfg.adagan.components > 1:  # the mixture, and the classifier of data vs mixture
        from gankit.variants.adagan import load_adagan

        return (cfg, *load_adagan(state, cfg, device), state)
    target = build_target(cfg)
    generator, discriminator = build_players(cfg, target.shape)
    try:
        # with generator_ema, samples come from the averaged weights (as in training)
        generator.load_state_dict(state.get("generator_ema", state["generator"]))
        discriminator.load_state_dict(state["discriminator"])
    except (RuntimeError, KeyError, TypeError) as e:
        msg = str(e).splitlines()[0][:200]
        raise GankitError(f"{run_dir / 'checkpoint.pt'}: weights do not fit its config ({msg})") \
            from None
    return cfg, generator.to(device), discriminator.to(device), state
