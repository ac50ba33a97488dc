"""Build the pieces a config names: device, target data, generator and discriminator."""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.config import Config
from gankit.data.images import ImageData, is_image_dataset, load_images
from gankit.data.mixtures import GaussianMixture, mixture
from gankit.errors import GankitError
from gankit.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nets.layers import Packed
from gankit.nets.mlp import FlatInput, ImageOutput, MLPDiscriminator, MLPGenerator
from gankit.nets.stacked import Stacked
from gankit.objectives import KERNEL_OBJECTIVES, Objective, get_objective, with_label_smoothing
from gankit.variants.infogan import InfoDiscriminator, InfoGenerator
from gankit.variants.mmd import AutoencodingCritic, make_kernel
from gankit.variants.semisupervised import ClassifierCritic


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


def build_target(cfg: Config, split: str = "train") -> GaussianMixture | ImageData:
    """The data: a mixture, or the ``split`` of an image dataset. Either has
    ``sample(n, generator, device)`` and ``shape`` (one sample's shape)."""
    d = cfg.data
    if is_image_dataset(d.name):
        return load_images(d.name, split, d.root or None, d.source)
    return mixture(d.name)


def build_objective(cfg: Config) -> Objective:
    """The game ``objective.name`` names, with its kernel (gmmn, mmd-gan) and one-sided
    label smoothing (``tricks.label_smoothing``) applied."""
    o = cfg.objective
    objective = get_objective(o.name)
    if o.name in KERNEL_OBJECTIVES:
        objective = KERNEL_OBJECTIVES[o.name](make_kernel(o.kernel, o.bandwidths))
    return with_label_smoothing(objective, cfg.tricks.label_smoothing)


def latent_dim(cfg: Config) -> int:
    """The size of the latent vector G is fed: z_dim, plus one coordinate per InfoGAN
    code (see ``InfoGenerator``)."""
    return cfg.model.z_dim + len(cfg.infogan.categorical) + cfg.infogan.continuous


def build_players(cfg: Config, data_shape: tuple[int, ...]
                  ) -> tuple[torch.nn.Module, torch.nn.Module]:
    """G and D for training: with ``train.seeds = S > 1`` each is a ``Stacked`` of the S
    networks that seeds seed, seed + 1, ..., seed + S − 1 would build alone."""
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
    returns n logits, so the training step is unchanged.
    """
    m, tricks, pack, info = cfg.model, cfg.tricks, cfg.tricks.pack, cfg.infogan
    # D's outputs: one logit, the embedding MMD-GAN's kernel compares, or the K class
    # logits of the semi-supervised D
    out_dim = cfg.objective.embedding_dim if cfg.objective.name == "mmd-gan" else \
        10 if cfg.semisupervised_on else 1
    torch.manual_seed(cfg.train.seed if seed is None else seed)
    flat = math.prod(data_shape)  # MLPs see images (C, H, W) flattened
    channels, size = data_shape[0], data_shape[-1]  # (of images)

    def generator_net(z_dim: int, width: int, depth: int, vbn: bool = False) -> nn.Module:
        if m.generator == "dcgan":
            return DCGANGenerator(size, channels, z_dim, width, m.z_dist, m.g_hidden)
        g = MLPGenerator(flat, z_dim, width, depth, m.activation, m.z_dist, vbn,
                         tricks.vbn_reference_size)
        return ImageOutput(g, data_shape) if len(data_shape) > 1 else g

    # (InfoGAN's G also reads its codes: one-hot categorical and continuous values)
    generator = generator_net(m.z_dim + sum(info.categorical) + info.continuous, m.g_width,
                              m.g_depth, tricks.virtual_batch_norm)
    if cfg.infogan_on:
        generator = InfoGenerator(generator, m.z_dim, info.categorical, info.continuous,
                                  m.z_dist)
    if m.discriminator == "dcgan":
        discriminator = DCGANDiscriminator(size, channels * pack, m.d_width, out_dim,
                                           m.d_hidden, m.d_norm == "batch")
    else:
        discriminator = MLPDiscriminator(flat * pack, m.d_width, m.d_depth, m.activation,
                                         tricks.minibatch_discrimination,
                                         tricks.minibatch_kernel_dim, out_dim)
        if len(data_shape) > 1:
            discriminator = FlatInput(discriminator, len(data_shape))
    if cfg.objective.autoencoder_weight:  # mmd-gan: a decoder from the embedding back to x
        discriminator = AutoencodingCritic(discriminator,
                                           generator_net(out_dim, m.d_width, m.d_depth))
    if cfg.semisupervised_on:  # D's logit is log Σ exp(class logits)
        discriminator = ClassifierCritic(discriminator, out_dim, cfg.semisupervised.input_noise,
                                         cfg.semisupervised.hidden_noise)
    if cfg.infogan_on:  # Q reads D's last hidden layer
        with torch.no_grad():  # (eval: a probe must not move batch-norm statistics)
            feature_dim = discriminator.eval()(torch.zeros(2, *data_shape),
                                               features=True).shape[-1]
        discriminator.train()
        discriminator = InfoDiscriminator(discriminator, feature_dim, info.categorical,
                                          info.continuous, info.q_width, info.fixed_std,
                                          m.d_norm == "batch")
    if cfg.objective.name == "gmmn":  # the kernel compares the data themselves, flattened
        discriminator = torch.nn.Flatten(-len(data_shape))
    return generator, (Packed(discriminator, pack, len(data_shape)) if pack > 1 else
                       discriminator)
