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
    assert d.features(x).shape == (5, 16 * (size // 4) ** 2)


def test_discriminator_verdict_does_not_depend_on_the_batch():
    torch.manual_seed(0)
    d = DCGANDiscriminator(28, 1, width=8)
    a, b = torch.randn(3, 1, 28, 28), torch.randn(4, 1, 28, 28)
    assert torch.allclose(d(torch.cat([a, b]))[:3], d(a), atol=1e-6)


@pytest.mark.parametrize("size", [(16, 16), (32, 24), (12, 20)])
def test_any_height_and_width_that_are_multiples_of_4(size):
    g, d = DCGANGenerator(size, 3, z_dim=8, width=4), DCGANDiscriminator(size, 3, width=4)
    x = g(torch.randn(5, 8))
    assert x.shape == (5, 3, *size) and d(x).shape == (5,)


@pytest.mark.parametrize("size", [30, (16, 18), 2])
def test_unsupported_size(size):
    with pytest.raises(GankitError, match="allowed: height and width multiples of 4"):
        DCGANGenerator(size)


def test_infogan_networks_fully_connected_layer_and_batch_norm():
    """hidden = 1024-style layers (InfoGAN's MNIST networks): D's features are that layer;
    with batch_norm a train-mode verdict depends on the batch, an eval-mode one does not."""
    torch.manual_seed(0)
    g = DCGANGenerator(28, 1, z_dim=16, width=8, hidden=32)
    d = DCGANDiscriminator(28, 1, width=8, hidden=24, batch_norm=True)
    assert isinstance(g.project[0], torch.nn.Linear) and g.project[0].out_features == 32
    x = g.sample(6)
    assert x.shape == (6, 1, 28, 28)
    assert d.features(x).shape == (6, 24) and d(x).shape == (6,)
    norms = [m for m in d.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    assert len(norms) == 2  # the second convolution and the hidden layer
    a, b = torch.randn(3, 1, 28, 28), torch.randn(4, 1, 28, 28)
    assert not torch.allclose(d(torch.cat([a, b]))[:3], d(a), atol=1e-4)
    d.eval()
    assert torch.allclose(d(torch.cat([a, b]))[:3], d(a), atol=1e-5)
    plain = DCGANDiscriminator(28, 1, width=8, hidden=24)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.modules())


def test_channel_paths_share_z_and_the_projection_but_no_filter():
    """With channel_paths, each output channel is a function of the shared projection
    through filters of its own: a channel's output has no gradient in another channel's
    filters, and every channel has gradient in the shared projection."""
    torch.manual_seed(0)
    g = DCGANGenerator(28, 3, z_dim=16, width=8, hidden=32, channel_paths=True)
    x = g.sample(5)
    assert x.shape == (5, 3, 28, 28) and x.abs().max() <= 1
    expand, up1, up2 = (m for m in g.net if isinstance(m, (torch.nn.Conv2d,
                                                             torch.nn.ConvTranspose2d)))
    assert expand.out_channels == 3 * 8 and up1.groups == up2.groups == 3
    def filters(layer, k):  # (grouped: channel k's rows are its input maps' block)
        rows = layer.weight.shape[0] // 3
        return layer.weight.grad[k * rows:(k + 1) * rows]

    for c in range(3):
        g.zero_grad()
        x[:, c].sum().backward(retain_graph=True)
        for k in range(3):
            for layer in (up1, up2):
                assert (filters(layer, k).abs().sum() > 0) == (k == c)
        assert g.project[-3].weight.grad.abs().sum() > 0  # the shared projection
    plain = DCGANGenerator(28, 3, z_dim=16, width=8)
    assert not any(getattr(m, "groups", 1) > 1 for m in plain.modules())


def test_channel_paths_are_a_dcgan_generator_option():
    from gankit.config import load_config

    cfg = load_config(None, ["data.name='stacked-mnist'", "model.generator='dcgan'",
                             "model.discriminator='dcgan'", "model.g_channel_paths=true"])
    assert cfg.model.g_channel_paths
    with pytest.raises(GankitError) as e:
        load_config(None, ["data.name='stacked-mnist'", "model.g_channel_paths=true"])
    assert str(e.value).startswith("model.g_channel_paths: True is for the dcgan networks")
