"""R1 / R2, relativistic losses, spectral normalisation, DiffAugment and top-k training:
each against its formula, and resume stays bit-exact with each on."""

import math

import pytest
import torch
from torch import nn

import gankit
from gankit.losses import objectives as obj
from gankit.losses.penalties import zero_centred_penalty
from gankit.nets.layers import DiffAugment, spectral_norm_layers
from gankit.training.costs import Batch, top_k_fraction


def test_r1_on_a_linear_critic_is_half_gamma_times_the_squared_weight_norm():
    w = torch.tensor([0.6, -1.2, 2.0])
    critic = lambda x: x @ w + 0.3  # noqa: E731
    x = torch.randn(50, 3)
    assert zero_centred_penalty(critic, x).item() == pytest.approx(float(w @ w))
    cfg = gankit.load_config(None, ["objective.r1=10", "objective.r2=4"])
    cost = gankit.discriminator_cost(cfg, gankit.build_objective(cfg))
    assert cost.names == ["objective", "r1", "r2"]
    d = nn.Linear(3, 1)
    real, fake = torch.randn(8, 3), torch.randn(8, 3)
    total = cost(lambda x: d(x).squeeze(-1), Batch(real, None, fake=fake), {})
    plain = obj.discriminator_loss(d(real).squeeze(-1), d(fake).squeeze(-1))
    norm2 = float(d.weight.square().sum())
    assert total.item() == pytest.approx(plain.item() + (10 / 2 + 4 / 2) * norm2, rel=1e-5)


def test_relativistic_losses_on_hand_logits_and_their_gradients():
    real = torch.tensor([2.0, -1.0, 0.5], requires_grad=True)
    fake = torch.tensor([0.0, 1.0, -2.0], requires_grad=True)
    rp = obj.relativistic_pairing_discriminator(real, fake)
    expected = sum(math.log1p(math.exp(f - r)) for r, f in ((2, 0), (-1, 1), (0.5, -2))) / 3
    assert rp.item() == pytest.approx(expected)
    (gr,) = torch.autograd.grad(rp, real)
    # d/dr softplus(f − r) = −σ(f − r), over 3 pairs
    torch.testing.assert_close(gr, -torch.sigmoid(fake.detach() - real.detach()) / 3)
    assert obj.relativistic_pairing_generator(fake, real).item() == pytest.approx(
        sum(math.log1p(math.exp(r - f)) for r, f in ((2, 0), (-1, 1), (0.5, -2))) / 3)
    ra = obj.relativistic_average_discriminator(real, fake)
    mr, mf = 0.5, -1 / 3  # the means of real and fake
    expected = sum(math.log1p(math.exp(mf - r)) for r in (2, -1, 0.5)) / 3 + \
        sum(math.log1p(math.exp(f - mr)) for f in (0, 1, -2)) / 3
    assert ra.item() == pytest.approx(expected)
    (gf,) = torch.autograd.grad(ra, fake)
    rd, fd = real.detach(), fake.detach()
    # d/df_j: Σ_i σ(mean f − r_i) / 3 · (1/3) + σ(f_j − mean r) / 3
    want = torch.sigmoid(fd.mean() - rd).sum() / 9 + torch.sigmoid(fd - rd.mean()) / 3
    torch.testing.assert_close(gf, want)
    for name in ("rpgan", "ragan"):
        assert gankit.OBJECTIVES[name].needs_real


def test_spectral_norm_brings_each_layers_largest_singular_value_to_one():
    torch.manual_seed(0)
    d = spectral_norm_layers(nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1)))
    conv = spectral_norm_layers(nn.Conv2d(3, 8, 3))
    for _ in range(30):  # power iterations, one per training forward
        d(torch.randn(4, 6)), conv(torch.randn(2, 3, 8, 8))
    for layer in (d[0], d[2]):
        assert torch.linalg.matrix_norm(layer.weight, 2).item() == pytest.approx(1, rel=1e-2)
    assert torch.linalg.matrix_norm(conv.weight.flatten(1), 2).item() == pytest.approx(
        1, rel=1e-2)


def test_diffaugment_reaches_g_and_augments_real_and_fake_alike():
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(x.detach().clone())
            return x.mean((1, 2, 3))

    d = DiffAugment(Spy(), ("cutout",), seed=0)
    real, fake_g = torch.ones(6, 1, 8, 8), nn.Linear(4, 64)
    fake = fake_g(torch.randn(6, 4)).view(6, 1, 8, 8)
    d(real), d(fake).sum().backward()
    assert fake_g.weight.grad is not None and fake_g.weight.grad.abs().sum() > 0
    for x in seen:  # each image, real or fake, has a 4x4 hole of zeros
        assert ((x == 0).flatten(1).sum(1) >= 16).all()
    a, b = DiffAugment(Spy(), ("translation", "color"), seed=1), None
    x = torch.randn(5, 3, 8, 8)
    first = a.augment(x)
    b = DiffAugment(Spy(), ("translation", "color"), seed=1)
    torch.testing.assert_close(first, b.augment(x))  # its draws follow its seed
    assert not torch.equal(a.augment(x), first)  # and move on


def test_top_k_uses_exactly_k_fakes():
    cfg = gankit.load_config(None, ["tricks.top_k=0.9", "tricks.top_k_min=0.5"])
    cost = gankit.generator_cost(cfg, gankit.build_objective(cfg))
    fake = torch.randn(40, 2, requires_grad=True)
    critic = lambda x: x.sum(-1)  # noqa: E731
    for step, fraction in ((0, 1.0), (3000, 0.9 ** 3), (20_000, 0.5)):
        assert top_k_fraction(step, 0.9, 0.5) == pytest.approx(fraction)
        logs: dict = {}
        loss = cost(critic, Batch(None, None, fake=fake, step=step), {}, 1, logs)
        (g,) = torch.autograd.grad(loss, fake)
        k = math.ceil(40 * fraction)
        assert logs.get("top_k", k) == k and int((g.abs().sum(1) > 0).sum()) == k
        kept = critic(fake).detach().topk(k).indices  # the k D scores highest
        assert set(torch.nonzero(g.abs().sum(1)).flatten().tolist()) == set(kept.tolist())


@pytest.mark.parametrize("extra", [
    ["objective.name='rpgan'", "objective.r1=1.0", "objective.r2=1.0"],
    ["objective.name='ragan'", "model.spectral_norm=true"],
    ["tricks.top_k=0.99"],
    ["data.name='digits'", "model.generator='dcgan'", "model.discriminator='dcgan'",
     "model.z_dim=8", "tricks.diffaugment='color,translation,cutout'", "objective.r1=0.1"],
], ids=["rpgan+r1+r2", "ragan+sn", "top-k", "diffaugment+dcgan"])
def test_resume_is_bit_exact_with_each_method(assert_resume_exact, tiny, extra,
                                              small_classifiers):
    assert_resume_exact(gankit.load_config(None, tiny + extra), stop_after=13)


def test_lazy_r1_applies_every_k_steps_k_times_heavier():
    cfg = gankit.load_config(None, ["objective.r1=2", "objective.r_every=4"])
    cost = gankit.discriminator_cost(cfg, gankit.build_objective(cfg))
    d = nn.Linear(3, 1)
    real, fake = torch.randn(8, 3), torch.randn(8, 3)

    def critic(x):
        return d(x).squeeze(-1)

    plain = obj.discriminator_loss(critic(real), critic(fake)).item()
    norm2 = float(d.weight.square().sum())
    for step, expected in ((4, plain + 4 * (2 / 2) * norm2), (5, plain), (8, None)):
        got = cost(critic, Batch(real, None, fake=fake, step=step), {}).item()
        assert got == pytest.approx(expected if expected is not None else
                                    plain + 4 * norm2, rel=1e-5)


def test_review_regressions_heads_eval_mode_and_rules(tmp_path, tiny, small_classifiers):
    # DiffAugment outermost still reaches the variants' heads (InfoGAN's Q here)
    cfg = gankit.load_config(None, tiny + [
        "data.name='digits'", "model.generator='dcgan'", "model.discriminator='dcgan'",
        "model.z_dim=8", "tricks.diffaugment='cutout'", "infogan.categorical=[10]",
        "train.steps=3"])
    gankit.train(cfg, tmp_path / "info", progress=False)
    # in eval mode D's verdict is the plain one, and drawing D leaves its state alone
    d = DiffAugment(spectral_norm_layers(nn.Sequential(nn.Flatten(), nn.Linear(64, 1))),
                    ("color", "cutout"))
    x = torch.randn(5, 1, 8, 8)
    d.eval()
    torch.testing.assert_close(d(x), d(x))
    from gankit.plots import _discriminator_map
    points = spectral_norm_layers(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1),
                                                nn.Flatten(0)))
    before = {k: v.clone() for k, v in points.state_dict().items()}
    _discriminator_map(points, -1.0, 1.0, n=20)
    assert all(torch.equal(before[k], v) for k, v in points.state_dict().items())
    assert points.training
    # a user's (n, 1) head is one logit per input, so averages and ranks run over the batch
    from gankit.nets.layers import Logits
    assert Logits(nn.Linear(2, 1))(torch.randn(7, 2)).shape == (7,)
    for extra, words in (
            (["data.name='points'", "data.path='x.npy'", "infogan.categorical=[3]"],
             "data.name: not available with infogan"),
            (["data.name='points'", "data.path='x.npy'", "data.test_fraction=0"],
             "data.test_fraction"),
            (["model.generator='user'", "model.discriminator='user'",
              "infogan.categorical=[3]"], "model.generator: your own modules"),
            (["objective.name='gmmn'", "objective.r1=1"], "objective.r1: "),
            (["data.name='digits'", "model.generator='dcgan'", "model.discriminator='dcgan'",
              "model.d_norm='batch'", "objective.r1=1"], "model.d_norm: 'batch'")):
        with pytest.raises(gankit.GankitError, match=words):
            gankit.load_config(None, extra)
