"""How much memory a run will take, estimated before anything is built, and the budget
it must fit.

A config the validator allows can still ask for more memory than any machine has (a
generator 65,536 wide and 64 deep: a terabyte of weights), and a crafted checkpoint can
carry such a config. ``check_memory`` refuses those in one line before a tensor is
allocated. The estimate builds the networks on PyTorch's ``meta`` device (shapes, no
storage) to count their parameters exactly, bounds one batch's activations from their
layers' sizes, and adds the optimizer state, the tricks' copies of the weights and the
evaluation samples.

The budget is ``--memory-limit GB`` on the command line, else the environment variable
``GANKIT_MEMORY_LIMIT_GB``, else 80% of the machine's physical memory.
"""

from __future__ import annotations

import dataclasses
import math
import os

import torch
from torch import nn

from gankit.config import Config
from gankit.errors import GankitError

__all__ = ["MEMORY_LIMIT_ENV", "set_memory_limit", "memory_limit", "estimate_memory",
           "check_memory"]

MEMORY_LIMIT_ENV = "GANKIT_MEMORY_LIMIT_GB"
FLOAT_BYTES = 4
# activations kept for the backward pass, their gradients, and a gradient penalty's
# second backward pass
ACTIVATION_FACTOR = 3
EVAL_BATCH = 65536  # gankit.generate draws samples in batches of this size
EVAL_COPIES = 4  # the samples, a float64 copy, and the metrics' working copies

_limit_gb: float | None = None  # set by --memory-limit


def set_memory_limit(gb: float | None) -> None:
    """The budget for this process in GB (None: the environment's, or the default)."""
    global _limit_gb
    _limit_gb = gb


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # (not on every platform)
        return 16 << 30


def memory_limit() -> int:
    """The budget in bytes: ``--memory-limit``, ``GANKIT_MEMORY_LIMIT_GB``, else 80% of
    the physical memory."""
    if _limit_gb is not None:
        return int(_limit_gb * 1e9)
    text = os.environ.get(MEMORY_LIMIT_ENV)
    if text is not None:
        try:
            gb = float(text)
        except ValueError:
            gb = -1.0
        if not (math.isfinite(gb) and gb > 0):
            raise GankitError(f"{MEMORY_LIMIT_ENV}: got {text[:40]!r}; allowed: a positive "
                              "number of GB")
        return int(gb * 1e9)
    return int(0.8 * _physical_memory())


def _meta_players(cfg: Config, data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """One seed's G and D with shapes and no storage (the global random stream is left
    as it was: building seeds it)."""
    from gankit.build import build_models  # (build checks memory: it imports this module)

    one = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seeds=1))
    if one.conditional_on and not one.conditional.classes:  # (not resolved yet: a guess)
        one = dataclasses.replace(one, conditional=dataclasses.replace(one.conditional,
                                                                       classes=10))
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return build_models(one, data_shape)


def _output_numel(net: nn.Module, data_shape: tuple[int, ...]) -> int:
    """The outputs of a network's layers for one sample, from their sizes alone: a
    linear layer's width, a convolution's channels at the data's full spatial size (an
    upper bound: convolutions shrink towards or grow from it). No forward pass: it would
    run (and show up as) arithmetic."""
    pixels = math.prod(data_shape[1:]) if len(data_shape) == 3 else 1
    total = 0
    for m in net.modules():
        if isinstance(m, nn.Linear):
            total += m.out_features
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            total += m.out_channels * pixels
    return total


def estimate_memory(cfg: Config, data_shape: tuple[int, ...]) -> dict[str, int]:
    """Bytes the run will need: ``weights`` (G and D with their gradients, Adam's two
    moments and the tricks' copies), ``activations`` (one training batch, forward and
    backward) and ``evaluation`` (the evaluation samples and one batch of G)."""
    from gankit.build import latent_dim

    t, tricks = cfg.train, cfg.tricks
    generator, discriminator = _meta_players(cfg, data_shape)
    g_params = sum(p.numel() for p in generator.parameters())
    d_params = sum(p.numel() for p in discriminator.parameters())
    copies = 4  # weights, gradients, Adam's two moments
    weights = (g_params + d_params) * copies + g_params * bool(tricks.generator_ema) \
        + (g_params + d_params) * bool(tricks.historical_averaging) \
        + d_params * 2 * tricks.unroll_steps
    batch = t.batch_size * tricks.pack
    g_numel = _output_numel(generator, data_shape) + latent_dim(cfg)
    d_numel = _output_numel(discriminator, data_shape) + math.prod(data_shape)
    # D reads a real and a fake batch; an unrolled G reads k more D passes
    per_sample = g_numel + d_numel * 2 * (1 + tricks.unroll_steps)
    activations = batch * per_sample * ACTIVATION_FACTOR
    evaluation = t.eval_samples * math.prod(data_shape) * EVAL_COPIES \
        + min(t.eval_samples, EVAL_BATCH) * g_numel
    return {"weights": weights * FLOAT_BYTES * t.seeds,
            "activations": activations * FLOAT_BYTES * t.seeds,
            "evaluation": evaluation * FLOAT_BYTES}


# the fields that make each part large, as a message names them
FIELDS = {"weights": "model.g_width, model.g_depth, model.d_width, model.d_depth, "
                     "train.seeds",
          "activations": "train.batch_size, tricks.pack, model.g_width, model.d_width, "
                         "train.seeds",
          "evaluation": "train.eval_samples"}


def _gb(n: int) -> str:
    return f"{n / 1e9:.3g} GB"


def check_memory(cfg: Config, data_shape: tuple[int, ...]) -> None:
    """Refuse, in one line naming the fields, a run whose estimate exceeds the budget."""
    parts = estimate_memory(cfg, data_shape)
    total, limit = sum(parts.values()), memory_limit()
    if total <= limit:
        return
    largest = max(parts, key=parts.get)
    raise GankitError(
        f"{FIELDS[largest]}: the run would need about {_gb(total)} of memory ("
        + ", ".join(f"{k} {_gb(v)}" for k, v in parts.items()) + f"), more than the "
        f"{_gb(limit)} budget; allowed: smaller values, or --memory-limit GB (or "
        f"{MEMORY_LIMIT_ENV}) on a machine that has the memory")
