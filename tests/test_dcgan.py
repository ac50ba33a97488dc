import pytest
import torch

from gankit.errors import GankitError
from gankit.nets.dcgan import DCGANDiscriminator, DCGANGenerator


@pytest.mark.parametrize("size, channels", [(8, 1), (28, 1), (28, 3)])
def test_shapes_range_and_logits(size, channels):
    torch.manual_seed(0)
    g = DCGANGenerator(size, channels, z_dim=16, width=8)
    d = DCGANDiscriminator(size, channels, width=8)
    x = g.sample(5)
    assert x.shape == (5, channels, size, size)
    assert x.abs().max() <= 1
    logits = d(x)
    assert logits.shape == (5,) and torch.isfinite(logits).all()
    assert d(x, features=True).shape == (5, 16 * (size // 4) ** 2)


def test_discriminator_verdict_does_not_depend_on_the_batch():
    torch.manual_seed(0)
    d = DCGANDiscriminator(28, 1, width=8)
    a, b = torch.randn(3, 1, 28, 28), torch.randn(4, 1, 28, 28)
    assert torch.allclose(d(torch.cat([a, b]))[:3], d(a), atol=1e-6)


def test_unsupported_size():
    with pytest.raises(GankitError, match="allowed: 8, 28"):
        DCGANGenerator(32)
