"""Generator and discriminator networks, as a registry of named architectures.

Discriminators return logits (or MMD-GAN's embedding) from ``forward(x)`` and expose
their feature layer through ``features(x)`` (see ``gankit.nets.layers``). Each
``NetworkSpec`` builds both players from the config's ``[model]`` and ``[tricks]``
sections and declares what it supports (``images_only``, ``tricks``, ``stackable``),
which the config rules read. A new architecture is one ``register`` call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from gankit.errors import GankitError
from gankit.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nets.layers import Packed, call, features
from gankit.nets.mlp import FlatInput, ImageOutput, MLPDiscriminator, MLPGenerator, sample_latent

__all__ = ["NETWORKS", "NetworkSpec", "network_spec", "register", "MLPDiscriminator",
           "MLPGenerator", "Packed", "call", "features", "sample_latent"]


@dataclass(frozen=True)
class NetworkSpec:
    """A named architecture.

    ``generator(model, tricks, shape, z_dim)`` → G from z (z_dim) to one sample of
    ``shape``; ``discriminator(model, tricks, shape, pack, out_dim)`` → D reading packs of
    ``pack`` samples of ``shape`` and returning ``out_dim`` values (a squeezed logit for
    1); ``decoder(model, shape, in_dim)`` → a G-like network from D's ``in_dim`` outputs
    back to a sample (MMD-GAN's autoencoding critic). ``images_only``: it needs (C, H, W)
    data. ``tricks``: the ``[tricks]`` options it implements beyond the generic ones.
    ``options``: the ``[model]`` fields only it reads. ``stackable``: seeds can train
    stacked in one process (no layer keeps running statistics).
    """

    name: str
    generator: Callable[..., nn.Module]
    discriminator: Callable[..., nn.Module]
    decoder: Callable[..., nn.Module] | None = None
    images_only: bool = False
    tricks: frozenset[str] = frozenset()
    options: frozenset[str] = frozenset()
    stackable: bool = True


NETWORKS: dict[str, NetworkSpec] = {}


def register(spec: NetworkSpec) -> NetworkSpec:
    NETWORKS[spec.name] = spec
    return spec


def network_spec(name: str) -> NetworkSpec:
    if name not in NETWORKS:
        raise GankitError(f"model: unknown network {name!r}; allowed: {', '.join(NETWORKS)}")
    return NETWORKS[name]


def _mlp_generator(m, tricks, shape: tuple[int, ...], z_dim: int) -> nn.Module:
    g = MLPGenerator(math.prod(shape), z_dim, m.g_width, m.g_depth, m.activation, m.z_dist,
                     tricks.virtual_batch_norm, tricks.vbn_reference_size)
    return ImageOutput(g, shape) if len(shape) > 1 else g  # MLPs see images flattened


def _mlp_discriminator(m, tricks, shape: tuple[int, ...], pack: int, out_dim: int) -> nn.Module:
    d = MLPDiscriminator(math.prod(shape) * pack, m.d_width, m.d_depth, m.activation,
                         tricks.minibatch_discrimination, tricks.minibatch_kernel_dim, out_dim)
    return FlatInput(d, len(shape)) if len(shape) > 1 else d


def _mlp_decoder(m, shape: tuple[int, ...], in_dim: int) -> nn.Module:
    g = MLPGenerator(math.prod(shape), in_dim, m.d_width, m.d_depth, m.activation, m.z_dist)
    return ImageOutput(g, shape) if len(shape) > 1 else g


def _dcgan_generator(m, tricks, shape: tuple[int, ...], z_dim: int) -> nn.Module:
    return DCGANGenerator(tuple(shape[1:]), shape[0], z_dim, m.g_width, m.z_dist, m.g_hidden,
                          m.g_channel_paths)


def _dcgan_discriminator(m, tricks, shape: tuple[int, ...], pack: int, out_dim: int
                         ) -> nn.Module:
    return DCGANDiscriminator(tuple(shape[1:]), shape[0] * pack, m.d_width, out_dim, m.d_hidden,
                              m.d_norm == "batch")


def _dcgan_decoder(m, shape: tuple[int, ...], in_dim: int) -> nn.Module:
    return DCGANGenerator(tuple(shape[1:]), shape[0], in_dim, m.g_width, m.z_dist, m.g_hidden)


register(NetworkSpec("mlp", _mlp_generator, _mlp_discriminator, _mlp_decoder,
                     tricks=frozenset({"minibatch_discrimination", "virtual_batch_norm"})))
# (G's batch norm updates running statistics in place: one seed per process)
register(NetworkSpec("dcgan", _dcgan_generator, _dcgan_discriminator, _dcgan_decoder,
                     images_only=True,
                     options=frozenset({"d_hidden", "g_hidden", "d_norm", "g_channel_paths"}),
                     stackable=False))


def _user_network(*args, **kwargs) -> nn.Module:
    raise GankitError("model: 'user' networks are the modules given to gankit.fit; rebuild "
                      "and resume them from Python with gankit.fit(..., resume=True)")


# the user's own modules (gankit.fit): nothing to build, no gankit-specific layers
register(NetworkSpec("user", _user_network, _user_network, _user_network, stackable=False))
