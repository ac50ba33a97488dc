"""Build the pieces a config names: device, target data, the objective, G and D.

Everything is looked up in a registry (``gankit.data.DATASETS``,
``gankit.losses.objectives.OBJECTIVES``, ``gankit.nets.NETWORKS``) and composed from the
properties those declare; no name is checked here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import nn

from gankit.config import Config
from gankit.data import dataset_spec
from gankit.errors import GankitError
from gankit.limits import MEMORY_LIMIT_ENV, memory_limit
from gankit.losses.mmd import make_kernel
from gankit.losses.objectives import Objective, get_objective, with_label_smoothing
from gankit.nets import network_spec
from gankit.nets.heads import (
    AutoencodingCritic,
    AuxiliaryClassifierCritic,
    ChannelCritics,
    ClassifierCritic,
    ConditionalGenerator,
    InfoDiscriminator,
    InfoGenerator,
    ProjectionCritic,
    WithChannelCritics,
)
from gankit.nets.layers import DiffAugment, Packed, call, features, spectral_norm_layers
from gankit.nets.stacked import Stacked

__all__ = ["resolve_device", "build_target", "resolve_classes", "build_objective", "latent_dim",
           "build_players", "build_models", "estimate_memory", "check_memory"]

CONDITIONAL_CRITICS = {"projection": ProjectionCritic, "acgan": AuxiliaryClassifierCritic}


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; an unavailable device is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GankitError(f"train.device: {name!r} requested but CUDA is not available; "
                          "allowed here: auto, cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise GankitError("train.device: 'mps' requested but not available; "
                          "allowed here: auto, cpu")
    return torch.device(name)


def build_target(cfg: Config, split: str = "train"):
    """The data ``data.name`` names (the ``split`` of an image dataset): an object with
    ``sample(n, generator, device)`` and ``shape`` (one sample's shape)."""
    return dataset_spec(cfg.data.name).load(cfg.data, split)


def resolve_classes(cfg: Config, target) -> Config:
    """``cfg`` with ``conditional.classes`` set to the number of classes of ``target`` (the
    training data) for a conditional run; a dataset without class labels is refused."""
    if not cfg.conditional_on:
        return cfg
    found = getattr(target, "num_classes", 0)  # (mixtures and points have no classes)
    if found < 2:
        raise GankitError(f"conditional.method: {cfg.conditional.method!r} needs class labels "
                          f"and data.name = {cfg.data.name!r} has none here (an image folder "
                          "gives labels by its class sub-folders); allowed: \"\"")
    if cfg.conditional.classes not in (0, found):
        raise GankitError(f"conditional.classes: {cfg.conditional.classes} given, the data has "
                          f"{found} classes; allowed: 0 or {found}")
    conditional = dataclasses.replace(cfg.conditional, classes=found)
    return dataclasses.replace(cfg, conditional=conditional)


def build_objective(cfg: Config) -> Objective:
    """The game ``objective.name`` names, under its kernel (``objective.with_kernel``) and
    with one-sided label smoothing (``tricks.label_smoothing``) applied."""
    o = cfg.objective
    objective = get_objective(o.name)
    if objective.with_kernel is not None:
        objective = objective.with_kernel(make_kernel(o.kernel, o.bandwidths))
    return with_label_smoothing(objective, cfg.tricks.label_smoothing)


def latent_dim(cfg: Config) -> int:
    """The size of the latent vector G is fed: z_dim, plus one coordinate per InfoGAN
    code (see ``InfoGenerator``) or for the class (``ConditionalGenerator``)."""
    return cfg.model.z_dim + len(cfg.infogan.categorical) + cfg.infogan.continuous \
        + int(cfg.conditional_on)


def _feature_dim(discriminator: nn.Module, data_shape: tuple[int, ...]) -> int:
    with torch.no_grad():  # (eval: a probe must not move batch-norm statistics)
        dim = features(discriminator.eval(), torch.zeros(2, *data_shape)).shape[-1]
    discriminator.train()
    return dim


def build_players(cfg: Config, data_shape: tuple[int, ...]
                  ) -> tuple[torch.nn.Module, torch.nn.Module]:
    """G and D for training: with ``train.seeds = S > 1`` each is a ``Stacked`` of the S
    networks that seeds seed, seed + 1, ..., seed + S − 1 would build alone. A run that
    would not fit the memory budget is refused first (``gankit.memory``)."""
    check_memory(cfg, data_shape)
    if cfg.train.seeds == 1:
        return build_models(cfg, data_shape)
    pairs = [build_models(cfg, data_shape, cfg.train.seed + i) for i in range(cfg.train.seeds)]
    discriminator = pairs[0][1]  # without parameters (gmmn) it acts on any leading dims
    if any(True for _ in discriminator.parameters()):
        discriminator = Stacked([d for _, d in pairs])
    return Stacked([g for g, _ in pairs]), discriminator


def build_models(
    cfg: Config, data_shape: tuple[int, ...], seed: int | None = None
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """G and D as the config describes them, initialised from ``torch.manual_seed(seed)``
    (default ``train.seed``).

    With ``tricks.pack = m > 1`` D is wrapped in ``Packed``: it takes m·n samples and
    returns n logits, so the training step is unchanged. The variants wrap the networks
    in their heads (``gankit.nets.heads``).
    """
    m, tricks, pack, info = cfg.model, cfg.tricks, cfg.tricks.pack, cfg.infogan
    classes = cfg.conditional.classes if cfg.conditional_on else 0
    if cfg.conditional_on and not classes:
        raise GankitError("conditional.classes: 0 (resolve it from the data first: "
                          "gankit.build.resolve_classes)")
    objective = get_objective(cfg.objective.name)
    # D's outputs: one logit, the embedding MMD-GAN's kernel compares, or the K class
    # logits of the semi-supervised D
    out_dim = cfg.objective.embedding_dim if objective.embedding else \
        10 if cfg.semisupervised_on else 1
    torch.manual_seed(cfg.train.seed if seed is None else seed)
    g_net, d_net = network_spec(m.generator), network_spec(m.discriminator)
    # (InfoGAN's G also reads its codes: one-hot categorical and continuous values; a
    # conditional G the one-hot class)
    generator = g_net.generator(m, tricks, data_shape,
                                m.z_dim + sum(info.categorical) + info.continuous + classes)
    if classes:
        generator = ConditionalGenerator(generator, m.z_dim, classes, m.z_dist)
    if cfg.infogan_on:
        generator = InfoGenerator(generator, m.z_dim, info.categorical, info.continuous,
                                  m.z_dist)
    # (also built for a non-adversarial objective, and dropped below: its draws keep the
    # global random stream as every earlier version left it)
    discriminator = d_net.discriminator(m, tricks, data_shape, pack, out_dim)
    if classes:  # D reads the class: by projection, or classifies x beside judging it
        discriminator = CONDITIONAL_CRITICS[cfg.conditional.method](
            discriminator, _feature_dim(discriminator, data_shape), classes)
    if m.spectral_norm:
        discriminator = spectral_norm_layers(discriminator)
    if not objective.adversarial:  # a fixed kernel compares the data themselves, flattened
        return generator, nn.Flatten(-len(data_shape))
    if cfg.objective.autoencoder_weight:  # mmd-gan: a decoder from the embedding back to x
        discriminator = AutoencodingCritic(discriminator,
                                           g_net.decoder(m, data_shape, out_dim))
    if cfg.semisupervised_on:  # D's logit is log Σ exp(class logits)
        discriminator = ClassifierCritic(discriminator, out_dim, cfg.semisupervised.input_noise,
                                         cfg.semisupervised.hidden_noise)
    if cfg.infogan_on:  # Q reads D's feature layer
        discriminator = InfoDiscriminator(
            discriminator, _feature_dim(discriminator, data_shape), info.categorical,
            info.continuous, info.q_width, info.fixed_std, m.d_norm == "batch")
    if pack > 1:
        discriminator = Packed(discriminator, pack, len(data_shape))
    discriminator = with_channel_critics(discriminator, cfg, data_shape)
    if tricks.diffaugment:  # the outermost: each image augmented before D packs or reads it
        discriminator = DiffAugment(discriminator, tricks.diffaugment.split(","),
                                    seed=cfg.train.seed if seed is None else seed)
    return generator, discriminator


def with_channel_critics(discriminator: nn.Module, cfg: Config,
                         data_shape: tuple[int, ...]) -> nn.Module:
    """D beside a critic for each image channel (``tricks.channel_critic_width``; batch
    norm and spectral normalisation as D's), or D itself when that is 0."""
    width, m = cfg.tricks.channel_critic_width, cfg.model
    if not width:
        return discriminator
    critics = ChannelCritics(data_shape, width, m.d_norm == "batch")
    return WithChannelCritics(discriminator,
                              spectral_norm_layers(critics) if m.spectral_norm else critics)


# ---- memory: estimated before anything is built ------------------------------------------
# A config the validator allows can still ask for more memory than any machine has (a
# generator 65,536 wide and 64 deep: terabytes of weights), and a crafted checkpoint can
# carry such a config. The estimate builds the networks on PyTorch's ``meta`` device
# (shapes, no storage) to count their parameters exactly, counts one batch's activations
# from a forward pass of those networks (shapes only), and adds the optimizer state, the
# tricks' copies of the weights and the evaluation samples; the budget is
# ``gankit.limits.memory_limit``.

FLOAT_BYTES = 4
# activations kept for the backward pass, their gradients, and a gradient penalty's
# second backward pass
ACTIVATION_FACTOR = 3
EVAL_BATCH = 65536  # gankit.generate draws samples in batches of this size
EVAL_COPIES = 4  # the samples, a float64 copy, and the metrics' working copies

def _meta_players(cfg: Config, data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """One seed's G and D with shapes and no storage (the global random stream is left
    as it was: building seeds it)."""
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
    t, tricks = cfg.train, cfg.tricks
    generator, discriminator = _meta_players(cfg, data_shape)
    g_params = sum(p.numel() for p in generator.parameters())
    d_params = sum(p.numel() for p in discriminator.parameters())
    copies = 4  # weights, gradients, Adam's two moments
    weights = (g_params + d_params) * copies + g_params * bool(tricks.generator_ema) \
        + (g_params + d_params) * bool(tricks.historical_averaging) \
        + d_params * 2 * tricks.unroll_steps
    batch = t.batch_size * tricks.pack
    z_dim = latent_dim(cfg)
    # (2 samples, 2 packs: batch norm trains on a batch)
    g_numel = z_dim + _layer_numel(
        generator, lambda: generator(torch.zeros(2, z_dim, device="meta")), 2,
        lambda: _output_numel(generator, data_shape))
    x = torch.zeros(2 * tricks.pack, *data_shape, device="meta")
    d_numel = math.prod(data_shape) + _layer_numel(
        discriminator, lambda: (discriminator(x), tricks.channel_critic_width
                                and call(discriminator, "channel_logits", x)),
        2 * tricks.pack, lambda: _output_numel(discriminator, data_shape))
    # D reads a real and a fake batch; an unrolled G reads k more D passes
    per_sample = g_numel + d_numel * 2 * (1 + tricks.unroll_steps)
    activations = batch * per_sample * ACTIVATION_FACTOR
    evaluation = t.eval_samples * math.prod(data_shape) * EVAL_COPIES \
        + min(t.eval_samples, EVAL_BATCH) * g_numel
    return {"weights": weights * FLOAT_BYTES * t.seeds,
            "activations": activations * FLOAT_BYTES * t.seeds,
            "evaluation": evaluation * FLOAT_BYTES}


def _layer_numel(net: nn.Module, forward: Callable[[], object], samples: int,
                 fallback: Callable[[], int]) -> int:
    """The outputs of ``net``'s linear and convolutional layers per sample at their true
    sizes, from ``forward()``, a pass of the meta-device network on ``samples`` samples
    (shapes only, no arithmetic); where that pass fails (a module whose forward needs
    more than x, as a conditional D its classes), ``fallback()``, a static bound."""
    sizes: list[int] = []
    layers = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    hooks = [m.register_forward_hook(lambda m, args, out: sizes.append(out.numel()))
             for m in net.modules() if isinstance(m, layers)]
    try:
        forward()
    except Exception:  # noqa: BLE001 (any failure: the static bound instead)
        return fallback()
    finally:
        for h in hooks:
            h.remove()
    return sum(sizes) // samples


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
