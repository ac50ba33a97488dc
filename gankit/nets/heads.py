"""Heads and wrappers that give a network the extra outputs a variant needs.

- InfoGAN (Chen et al. 2016): ``InfoGenerator`` reads latent codes c beside the noise z
  (categorical codes, K values each, uniform; continuous codes uniform on [−1, 1]);
  ``InfoDiscriminator`` adds the head Q on D's feature layer that outputs q(c | x):
  logits for each categorical code, a Gaussian mean and log-variance for each continuous
  one (the information term is ``gankit.losses.info``). The codes are functions of an
  ordinary latent vector: ``InfoGenerator`` takes u ∈ R^(z_dim + #codes) drawn like any
  latent (normal or uniform), keeps the first z_dim coordinates as noise and maps each
  remaining one through its distribution's CDF to a uniform categorical value or a
  uniform value in [−1, 1]. So sampling, evaluation and density-ratio correction see a
  plain generator, and ``codes(u)`` recovers c from u.
- Semi-supervised GAN (Salimans et al. 2016, §5): ``ClassifierCritic`` turns a K-class
  classifier into a discriminator whose logit is log Σ_k exp(l_k)
  (``gankit.losses.semisupervised``).
- MMD-GAN (Li et al. 2017): ``AutoencodingCritic`` adds a decoder to the feature network.
- Class-conditional GANs: ``ConditionalGenerator`` reads a class y beside z, drawn from
  one more latent coordinate like an InfoGAN code (with the data's class frequencies);
  ``ProjectionCritic`` is the projection discriminator (Miyato & Koyama 2018),
  ``AuxiliaryClassifierCritic`` AC-GAN's D with a class head (Odena et al. 2017). Both
  critics take ``forward(x, y)``.
- Channel critics: ``WithChannelCritics`` puts ``ChannelCritics``, one small convolutional
  D per image channel, beside any D; ``channel_logits(x)`` is their verdicts, each on its
  channel alone.

Every discriminator here follows gankit's protocol: ``forward(x)`` is D's output and
``features(x)`` its feature layer (the input of its last layer; see ``gankit.nets.layers``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.nets.layers import call, features, head_of
from gankit.nets.mlp import ACTIVATIONS

__all__ = ["uniform_from_latent", "InfoGenerator", "InfoDiscriminator", "ClassifierCritic",
           "GaussianNoise", "AutoencodingCritic", "ConditionalGenerator", "ProjectionCritic",
           "AuxiliaryClassifierCritic", "ChannelCritics", "WithChannelCritics"]


Tensor = torch.Tensor


def uniform_from_latent(u: Tensor, z_dist: str) -> Tensor:
    """A latent coordinate → U(0, 1): Φ(u) for normal coordinates, (u + 1)/2 for
    uniform ones on [−1, 1]."""
    p = 0.5 * (1 + torch.erf(u / math.sqrt(2))) if z_dist == "normal" else (u + 1) / 2
    return p.clamp(0.0, 1.0 - 1e-7)


def one_hot(y: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    # (a comparison, not F.one_hot: it checks values, which vmap over seeds forbids)
    return (y[..., None] == torch.arange(num_classes, device=y.device)).to(dtype)


class InfoGenerator(nn.Module):
    """G(z, c) over a latent u = (z, one coordinate per code); see the module docstring.

    ``net`` is any generator whose input has z_dim + Σ K + #continuous coordinates
    (the noise, the one-hot categorical codes and the continuous codes).
    """

    any_leading_dims = True  # (S, n, ...) inputs run as they are: seeds stack without vmap

    def __init__(self, net: nn.Module, noise_dim: int, categorical: list[int],
                 continuous: int, z_dist: str = "normal") -> None:
        super().__init__()
        self.net, self.noise_dim = net, noise_dim
        self.categorical, self.continuous, self.z_dist = list(categorical), continuous, z_dist
        self.z_dim = noise_dim + len(self.categorical) + continuous  # what u has

    def codes(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """(categorical values (n, #cat) int64, continuous codes (n, #cont) in [−1, 1])."""
        p = uniform_from_latent(u[..., self.noise_dim:], self.z_dist)
        n_cat = len(self.categorical)
        sizes = torch.tensor(self.categorical, device=u.device)
        cat = (p[..., :n_cat] * sizes).long()
        return cat, 2 * p[..., n_cat:] - 1

    def decode(self, z: Tensor, categorical: Tensor, continuous: Tensor) -> Tensor:
        """G on explicit codes: ``continuous`` may leave [−1, 1] (traversals)."""
        onehots = [one_hot(categorical[..., i], k, z.dtype)
                   for i, k in enumerate(self.categorical)]
        return self.net(torch.cat([z, *onehots, continuous.to(z.dtype)], dim=-1))

    def forward(self, u: Tensor) -> Tensor:
        cat, cont = self.codes(u)
        return self.decode(u[..., :self.noise_dim], cat, cont)


class InfoDiscriminator(nn.Module):
    """D with the Q head of InfoGAN on its feature layer.

    ``forward`` is D's as before; ``q(x)`` returns (list of categorical logits, mean,
    log-variance) of q(c | x). With ``fixed_std`` the continuous codes' Gaussians have
    unit variance (log-variance 0) and Q outputs only their means, as in the InfoGAN
    authors' MNIST code: −log Q is then ½(c − μ)² + const, whose pull does not grow as Q
    sharpens (a learned variance of e⁻⁴ weighs the continuous codes ~55× more).
    """

    def __init__(self, net: nn.Module, feature_dim: int, categorical: list[int],
                 continuous: int, width: int = 128, fixed_std: bool = False,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.net, self.categorical, self.continuous = net, list(categorical), continuous
        self.fixed_std = fixed_std
        self.out_dim = getattr(net, "out_dim", 1)
        outputs = sum(categorical) + (1 if fixed_std else 2) * continuous
        norm = [nn.BatchNorm1d(width)] if batch_norm else []  # (InfoGAN's Q has it)
        self.q_head = nn.Sequential(nn.Linear(feature_dim, width), *norm, nn.LeakyReLU(0.2),
                                    nn.Linear(width, outputs))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def features(self, x: Tensor) -> Tensor:
        return features(self.net, x)

    def q(self, x: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
        out = self.q_head(features(self.net, x))
        n_cat = sum(self.categorical)
        logits = list(out[..., :n_cat].split(self.categorical, dim=-1))
        if self.fixed_std:
            mean = out[..., n_cat:]
            return logits, mean, torch.zeros_like(mean)
        mean, log_var = out[..., n_cat:].chunk(2, dim=-1)
        return logits, mean, log_var.clamp(-10.0, 10.0)


class ClassifierCritic(nn.Module):
    """A K-output network as GAN discriminator: ``forward`` gives the real/fake logit
    log Σ_k exp(l_k(x)), ``classify`` the K class logits, ``features`` the
    network's feature layer. In training mode ``input_noise = σ`` adds N(0, σ²) to
    the inputs and ``hidden_noise = σ_h`` adds N(0, σ_h²) to the output of every hidden
    activation of ``net`` (Salimans et al.'s MNIST discriminator: σ = 0.3, σ_h = 0.5)."""

    def __init__(self, net: nn.Module, num_classes: int, input_noise: float = 0.0,
                 hidden_noise: float = 0.0) -> None:
        super().__init__()
        self.net, self.num_classes, self.out_dim = net, num_classes, 1
        self.noise = GaussianNoise(input_noise)
        if hidden_noise:
            # a hook on each activation module, so any D (MLP or DCGAN) takes it unchanged
            hidden = GaussianNoise(hidden_noise)
            # the activation types gankit's networks use (DCGAN's LeakyReLU among them)
            kinds = tuple({type(make()) for make in ACTIVATIONS.values()})
            for module in net.modules():
                if isinstance(module, kinds):
                    module.register_forward_hook(lambda mod, args, out: hidden(out)
                                                 if mod.training else out)

    def classify(self, x: Tensor) -> Tensor:
        return self.net(self.noise(x))

    def features(self, x: Tensor) -> Tensor:
        return features(self.net, self.noise(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(x).logsumexp(-1)


class GaussianNoise(nn.Module):
    """Additive N(0, σ²) noise in training mode only (the paper's D regulariser)."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or not self.std:
            return x
        return x + self.std * torch.randn_like(x)


class AutoencodingCritic(torch.nn.Module):
    """MMD-GAN's feature network with a decoder: ``forward(x)`` is the embedding f(x);
    ``reconstruction_error(x)`` is ‖x − dec(f(x))‖² / dim per sample, the autoencoder
    term Li et al. (2017, §3) subtract from D's objective so that f stays injective (a
    kernel on a non-injective f is not characteristic)."""

    def __init__(self, encoder: torch.nn.Module, decoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def features(self, x: Tensor) -> Tensor:
        return features(self.encoder, x)

    def reconstruction_error(self, x: Tensor) -> Tensor:
        error = self.decoder(self.encoder(x)) - x
        return error.square().flatten(1).mean(1)


class ConditionalGenerator(nn.Module):
    """G(z, y) over a latent u = (z, one coordinate for the class): ``labels(u)`` maps
    that coordinate through its CDF to a class drawn with probabilities ``class_prior``
    (a buffer, set to the training data's class frequencies), and ``decode(z, y)`` runs
    ``net`` on z and one-hot(y) (Mirza & Osindero 2014). So ``forward(u)``, sampling and
    evaluation see a plain generator whose samples are a mixture of the classes.

    ``net`` is any generator whose input has z_dim + num_classes coordinates.
    """

    any_leading_dims = True

    def __init__(self, net: nn.Module, noise_dim: int, num_classes: int,
                 z_dist: str = "normal") -> None:
        super().__init__()
        self.net, self.noise_dim, self.num_classes = net, noise_dim, num_classes
        self.z_dim, self.z_dist = noise_dim + 1, z_dist
        self.register_buffer("class_prior", torch.full((num_classes,), 1.0 / num_classes))

    def labels(self, u: Tensor) -> Tensor:
        """The class (int64) each latent u encodes."""
        p = uniform_from_latent(u[..., -1], self.z_dist)
        bounds = self.class_prior.cumsum(0)[:-1].to(p.dtype)
        return torch.searchsorted(bounds, p.contiguous(), right=True)

    def decode(self, z: Tensor, y: Tensor) -> Tensor:
        """Images of classes ``y`` (int64, one per row of ``z``)."""
        return self.net(torch.cat([z, one_hot(y, self.num_classes, z.dtype)], dim=-1))

    def forward(self, u: Tensor) -> Tensor:
        return self.decode(u[..., :self.noise_dim], self.labels(u))


def _linear_init(weight: Tensor) -> Tensor:
    """nn.Linear's default scale, U(±1/√fan_in): ⟨embed(y), φ(x)⟩ starts as large as
    ψ(φ(x)) (a unit-normal embedding would dwarf it by √fan_in)."""
    bound = 1 / math.sqrt(weight.shape[1])
    return nn.init.uniform_(weight, -bound, bound)


class ProjectionCritic(nn.Module):
    """The projection discriminator (Miyato & Koyama 2018, "cGANs with Projection
    Discriminator", eq. 3): D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩, φ D's feature layer and
    ψ its head. It is the form of the optimal D when p(y|x) is log-linear in φ(x): the
    class enters as an inner product, not as an input D could ignore."""

    def __init__(self, net: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.net, self.num_classes, self.out_dim = net, num_classes, 1
        self.embed = nn.Embedding(num_classes, feature_dim)
        _linear_init(self.embed.weight)

    def features(self, x: Tensor) -> Tensor:
        return features(self.net, x)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = features(self.net, x)
        out = head_of(self.net)(h).squeeze(-1)
        if y is None:  # (a picture of D's verdict without a class: ψ alone)
            return out
        return out + (self.embed(y) * h).sum(-1)


class AuxiliaryClassifierCritic(nn.Module):
    """AC-GAN's discriminator (Odena, Olah & Shlens 2017, "Conditional Image Synthesis
    with Auxiliary Classifier GANs"): D's real/fake logit as before (it ignores y), and
    ``classify(x)``, the class logits of a linear head on D's feature layer."""

    def __init__(self, net: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.net, self.num_classes = net, num_classes
        self.out_dim = getattr(net, "out_dim", 1)
        self.classifier = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        return features(self.net, x)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(x)

    def classify(self, x: Tensor) -> Tensor:
        return self.classifier(features(self.net, x))


def _halved(n: int) -> int:  # a 4x4 convolution of stride 2, padding 1
    return (n + 2 - 4) // 2 + 1


class ChannelCritics(nn.Module):
    """One small convolutional D for each of an image's C channels, each reading its
    channel alone: 4x4 convolutions of stride 2 to ``width`` then 2·``width`` maps
    (LeakyReLU 0.2, batch norm after the second if ``batch_norm``), then a linear logit.
    The C critics are one network of grouped convolutions (groups = C), so no weight is
    shared between channels. (..., n, C, H, W) → (..., n, C) logits. They judge single
    samples: with PacGAN's packing only the joint D reads packs.

    Why: a D reading all channels at once can judge the image by its easiest channel and
    leave G's worst one without a useful gradient. On stacked MNIST (three digits, one per
    channel) G then draws two channels well and one as smudges. A critic per channel
    matches each channel's marginal distribution to the data's; the joint D still judges
    how the channels go together. Both optima are at p_G = p_data.
    """

    def __init__(self, shape: tuple[int, int, int], width: int = 32,
                 batch_norm: bool = False) -> None:
        super().__init__()
        c, h, w = shape
        self.channels = c
        h, w = _halved(_halved(h)), _halved(_halved(w))
        bn = [nn.BatchNorm2d(c * 2 * width)] if batch_norm else []
        self.net = nn.Sequential(
            nn.Conv2d(c, c * width, 4, 2, 1, groups=c), nn.LeakyReLU(0.2),
            nn.Conv2d(c * width, c * 2 * width, 4, 2, 1, groups=c), *bn, nn.LeakyReLU(0.2),
            nn.Conv2d(c * 2 * width, c, (h, w), groups=c))  # a linear logit per channel

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.reshape(-1, *x.shape[-3:])).reshape(*x.shape[:-3], self.channels)


class WithChannelCritics(nn.Module):
    """D beside ``ChannelCritics``: ``forward``, ``features`` and every other head are
    D's; ``channel_logits(x)`` is the channel critics' (n, C) logits."""

    def __init__(self, discriminator: nn.Module, critics: ChannelCritics) -> None:
        super().__init__()
        self.discriminator, self.critics = discriminator, critics

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.discriminator(x) if y is None else self.discriminator(x, y)

    def features(self, x: Tensor) -> Tensor:
        return features(self.discriminator, x)

    def channel_logits(self, x: Tensor) -> Tensor:
        return self.critics(x)

    def call_method(self, name: str, x: Tensor):
        return self.critics(x) if name == "channel_logits" else call(self.discriminator, name, x)

    def pointwise(self, x: Tensor) -> Tensor:
        return getattr(self.discriminator, "pointwise", self.discriminator)(x)
