"""Fully connected generator and discriminator for low-dimensional (and flattened) data."""

from __future__ import annotations

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.nets.layers import MinibatchDiscrimination, VirtualBatchNorm

__all__ = ["ACTIVATIONS", "LATENT_DISTRIBUTIONS", "mlp", "sample_latent", "MLPGenerator",
           "MLPDiscriminator", "ImageOutput", "FlatInput"]


ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}
LATENT_DISTRIBUTIONS = ("normal", "uniform")


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none at the end)."""
    if activation not in ACTIVATIONS:
        raise GankitError(
            f"model.activation: unknown activation {activation!r}; "
            f"allowed: {', '.join(ACTIVATIONS)}"
        )
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def sample_latent(
    n: int,
    z_dim: int,
    dist: str = "normal",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """z ~ N(0, I) (``normal``) or U[−1, 1]^z_dim (``uniform``), shape (n, z_dim)."""
    if device is None:
        device = generator.device if generator is not None else "cpu"
    if dist == "normal":
        return torch.randn(n, z_dim, generator=generator, device=device)
    if dist == "uniform":
        return 2 * torch.rand(n, z_dim, generator=generator, device=device) - 1
    raise GankitError(
        f"model.z_dist: unknown latent distribution {dist!r}; "
        f"allowed: {', '.join(LATENT_DISTRIBUTIONS)}"
    )


class MLPGenerator(nn.Module):
    """G: z (z_dim) → ``depth`` hidden layers of ``width`` → x (out_dim), linear output.

    With ``virtual_batch_norm`` every hidden layer is followed by ``VirtualBatchNorm``
    over a reference batch of ``reference_size`` latents drawn once at construction.
    """

    any_leading_dims = True  # (S, n, ...) inputs run as they are: seeds stack without vmap

    def __init__(
        self,
        out_dim: int,
        z_dim: int = 2,
        width: int = 128,
        depth: int = 2,
        activation: str = "relu",
        z_dist: str = "normal",
        virtual_batch_norm: bool = False,
        reference_size: int = 64,
    ) -> None:
        super().__init__()
        self.z_dim, self.z_dist = z_dim, z_dist
        self.net = mlp([z_dim] + [width] * depth + [out_dim], activation)
        self.vbn = None
        if virtual_batch_norm:
            self.vbn = nn.ModuleList(VirtualBatchNorm(width) for _ in range(depth))
            self.register_buffer("reference_z", sample_latent(reference_size, z_dim, z_dist))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.vbn is None:
            return self.net(z)
        n_ref = self.reference_z.shape[0]
        h = torch.cat([self.reference_z, z])
        layers = list(self.net)
        for i, vbn in enumerate(self.vbn):  # Linear, VBN, activation per hidden layer
            h = layers[2 * i + 1](vbn(layers[2 * i](h), n_ref))
        return layers[-1](h)[n_ref:]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n generated points, latent drawn with ``generator``."""
        device = next(self.parameters()).device
        z = sample_latent(n, self.z_dim, self.z_dist, generator, device)
        return self(z)


class MLPDiscriminator(nn.Module):
    """D: x (in_dim) → ``depth`` hidden layers of ``width`` → one logit σ⁻¹(D(x)) (or
    ``out_dim`` outputs: an embedding, for MMD-GAN).

    ``features(x)`` returns the last hidden layer (for feature matching).
    With ``minibatch_kernels = B > 0`` a ``MinibatchDiscrimination`` layer adds B
    batch-similarity features before the output layer.
    """

    any_leading_dims = True  # (S, n, ...) inputs run as they are: seeds stack without vmap

    def __init__(
        self,
        in_dim: int,
        width: int = 128,
        depth: int = 2,
        activation: str = "relu",
        minibatch_kernels: int = 0,
        minibatch_kernel_dim: int = 5,
        out_dim: int = 1,
    ) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.net = mlp([in_dim] + [width] * depth + [out_dim], activation)
        self.mbd = None
        if minibatch_kernels:
            self.mbd = MinibatchDiscrimination(width, minibatch_kernels, minibatch_kernel_dim)
            self.net[-1] = nn.Linear(width + minibatch_kernels, out_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (before minibatch discrimination)."""
        h = x
        for i in range(len(self.net) - 1):
            h = self.net[i](h)
        return h

    @property
    def head(self) -> nn.Module | None:
        """The output layer on ``features(x)`` (None with minibatch discrimination, whose
        layer comes between them)."""
        return self.net[-1] if self.mbd is None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        if self.mbd is not None:
            h = torch.cat([h, self.mbd(h)], dim=1)
        out = self.net[-1](h)
        return out.squeeze(-1) if self.out_dim == 1 else out


class ImageOutput(nn.Module):
    """An MLP generator for images: its flat output reshaped to ``shape`` (C, H, W)."""

    any_leading_dims = True  # (S, n, ...) inputs run as they are: seeds stack without vmap

    def __init__(self, net: MLPGenerator, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.net, self.shape = net, tuple(shape)
        self.z_dim, self.z_dist = net.z_dim, net.z_dist

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).unflatten(-1, self.shape)


class FlatInput(nn.Module):
    """An MLP discriminator for images: reads its ``dims``-dimensional inputs flattened
    (a pack of m images stacked along channels becomes one m·C·H·W vector)."""

    any_leading_dims = True  # (S, n, ...) inputs run as they are: seeds stack without vmap

    def __init__(self, net: MLPDiscriminator, dims: int = 3) -> None:
        super().__init__()
        self.net, self.dims, self.out_dim = net, dims, net.out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(-self.dims))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x.flatten(-self.dims))

    @property
    def head(self) -> nn.Module | None:
        return self.net.head
