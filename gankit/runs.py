"""Runs as a user sees them: ``train`` a config into a run directory (a single GAN or
an AdaGAN mixture) and ``load_run`` one back as objects."""

from __future__ import annotations

from pathlib import Path

import torch

from gankit import io
from gankit.adagan import load_adagan, train_adagan
from gankit.build import build_players, build_target
from gankit.config import Config, from_dict
from gankit.errors import GankitError
from gankit.evaluate import finish
from gankit.training.loop import run_training

__all__ = ["train", "load_run"]


def train(cfg: Config, out: str | Path, *, resume: bool = False, progress: bool = True,
          stop_after: int | None = None, data=None) -> dict | None:
    """Train the GAN ``cfg`` describes into run directory ``out``, evaluate it and return
    its summary (what ``summary.json`` holds).

    ``resume`` continues the run in ``out`` from its checkpoint. ``stop_after = s`` stops
    after step s with a checkpoint and returns None (training in chunks). ``data``: draw
    real batches from this object (``sample(n, generator, device)``) instead of the
    config's data; evaluation is against the config's data. With ``adagan.components >
    1`` the run is an AdaGAN mixture (``gankit.adagan``). Under torchrun, ranks other
    than 0 return None.
    """
    if cfg.adagan.components > 1:
        return train_adagan(cfg, out, resume=resume, progress=progress)
    trained = run_training(cfg, out, resume=resume, progress=progress, stop_after=stop_after,
                           data=data)
    return None if trained is None else finish(cfg, out, trained)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu"):
    """(config, generator, discriminator, checkpoint state) of a run directory. The
    generator is the one samples come from (the weight average with
    ``tricks.generator_ema``; the mixture for AdaGAN)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GankitError(f"{run_dir}: run directory not found")
    state = io.load_checkpoint(run_dir / "checkpoint.pt", map_location=device)
    cfg = from_dict(state["config"], str(run_dir / "checkpoint.pt"))
    if cfg.adagan.components > 1:  # the mixture, and the classifier of data vs mixture
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
