"""DCGAN-style convolutional generator and discriminator (Radford et al. 2016) for small
images of any height and width that are multiples of 4 (8x8 digits, 28x28 MNIST, 16x16,
32x24, ...), any number of channels (3 for stacked MNIST or RGB).

G: z → linear to 128·h·w → two stride-2 transposed convolutions (batch norm, ReLU) → tanh.
D: two stride-2 convolutions (leaky ReLU 0.2) → linear to one logit. (h, w) = (H/4, W/4)
((7, 7) for 28x28, (2, 2) for 8x8). By default D has no batch norm, so a sample's logit
never depends on its batch.

InfoGAN's MNIST networks (Chen et al. 2016, appendix C.1) are these with ``hidden = 1024``:
a fully connected layer (batch norm, ReLU) before G's projection, one (leaky ReLU) after
D's convolutions, and with ``batch_norm`` D normalises its second convolution and that
layer.

With ``channel_paths`` each output channel has a convolutional path of its own after the
shared projection: a 1x1 convolution maps the projection to ``width`` maps per channel,
and both transposed convolutions are grouped by channel (``width·3/4`` maps per channel
at the middle resolution), so the channels share z and the projection but no filter. It is
for data whose channels are separate images (stacked MNIST): with shared filters one
channel can be drawn well while another is left as blobs.
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.nets.mlp import sample_latent

__all__ = ["DCGANGenerator", "DCGANDiscriminator"]


def _base(size: int | tuple[int, int]) -> tuple[int, int]:
    """(H/4, W/4) of an image size (a square's side, or (H, W))."""
    h, w = (size, size) if isinstance(size, int) else size
    if h % 4 or w % 4 or h < 4 or w < 4:
        raise GankitError(f"model: DCGAN image size {h}x{w} not supported; allowed: height and "
                          "width multiples of 4 (8x8, 16x16, 28x28, 32x32, ...)")
    return h // 4, w // 4


class DCGANGenerator(nn.Module):
    def __init__(self, size: int | tuple[int, int] = 28, channels: int = 1, z_dim: int = 64,
                 width: int = 64, z_dist: str = "normal", hidden: int = 0,
                 channel_paths: bool = False) -> None:
        super().__init__()
        self.z_dim, self.z_dist, self.s, self.width = z_dim, z_dist, _base(size), width
        projected = 2 * width * self.s[0] * self.s[1]
        fc = [nn.Linear(z_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU()] if hidden else []
        self.project = nn.Sequential(*fc, nn.Linear(hidden or z_dim, projected),
                                     nn.BatchNorm1d(projected), nn.ReLU())
        if not channel_paths:
            self.net = nn.Sequential(
                nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
                nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh())
            return
        c, wide, mid = channels, width * channels, width * 3 // 4 * channels
        self.net = nn.Sequential(
            nn.Conv2d(2 * width, wide, 1), nn.BatchNorm2d(wide), nn.ReLU(),
            nn.ConvTranspose2d(wide, mid, 4, 2, 1, groups=c), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.ConvTranspose2d(mid, c, 4, 2, 1, groups=c), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(-1, 2 * self.width, *self.s)
        return self.net(h)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.parameters()).device
        return self(sample_latent(n, self.z_dim, self.z_dist, generator, device))


class DCGANDiscriminator(nn.Module):
    def __init__(self, size: int | tuple[int, int] = 28, channels: int = 1, width: int = 64,
                 out_dim: int = 1, hidden: int = 0, batch_norm: bool = False) -> None:
        super().__init__()
        (h, w), self.out_dim = _base(size), out_dim
        flat = 2 * width * h * w
        fc = [nn.Linear(flat, hidden), *([nn.BatchNorm1d(hidden)] if batch_norm else []),
              nn.LeakyReLU(0.2)] if hidden else []
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            *([nn.BatchNorm2d(2 * width)] if batch_norm else []), nn.LeakyReLU(0.2),
            nn.Flatten(), *fc)
        self.head = nn.Linear(hidden or flat, out_dim)  # a logit, or an MMD-GAN embedding

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.body(x))
        return out.squeeze(-1) if self.out_dim == 1 else out
