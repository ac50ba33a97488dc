"""Channel critics (tricks.channel_critic_width): a small D for each image channel beside
the joint D, in both players' costs, through packing, augmentation, unrolling and resume."""

import pytest
import torch
from torch import nn

import gankit
from gankit.cli import main
from gankit.nets.heads import ChannelCritics, WithChannelCritics
from gankit.training.costs import Batch

STACKED = ["data.name='stacked-mnist'", "model.generator='dcgan'",
           "model.discriminator='dcgan'", "model.g_width=8", "model.d_width=8",
           "model.z_dim=8", "train.batch_size=8", "train.steps=6", "train.log_every=2",
           "train.checkpoint_every=2", "train.device='cpu'", "tricks.channel_critic_width=4"]


def test_each_critic_reads_its_own_channel_with_its_own_weights():
    torch.manual_seed(0)
    critics = ChannelCritics((3, 12, 12), 4)
    x = torch.randn(5, 3, 12, 12, requires_grad=True)
    out = critics(x)
    assert out.shape == (5, 3)
    for c in range(3):
        (g,) = torch.autograd.grad(out[:, c].sum(), x, retain_graph=True)
        others = [k for k in range(3) if k != c]
        assert g[:, c].abs().sum() > 0 and g[:, others].abs().sum() == 0
    out[:, 1].sum().backward()
    for layer in (critics.net[0], critics.net[2], critics.net[4]):  # grouped by channel
        per_channel = layer.weight.grad.view(3, -1).abs().sum(1)
        assert per_channel[1] > 0 and per_channel[0] == 0 and per_channel[2] == 0
    # leading dimensions (seeds stacked) keep their numbers
    same = critics(x.detach().unsqueeze(0))
    assert same.shape == (1, 5, 3)
    torch.testing.assert_close(same[0], critics(x.detach()))


@pytest.mark.parametrize("name", ["nonsaturating", "ragan"])
def test_each_players_cost_adds_the_objective_on_every_channels_verdicts(name):
    cfg = gankit.load_config(None, STACKED + [f"objective.name='{name}'"])
    objective = gankit.build_objective(cfg)
    d_cost = gankit.discriminator_cost(cfg, objective)
    g_cost = gankit.generator_cost(cfg, objective)
    assert d_cost.names == ["objective", "channel_critics"]
    assert g_cost.names == ["objective", "channel_critics"]
    torch.manual_seed(1)
    joint = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1), nn.Flatten(0))
    critics = ChannelCritics((3, 8, 8), 4)
    critic = WithChannelCritics(joint, critics)
    real, fake = torch.randn(6, 3, 8, 8), torch.randn(6, 3, 8, 8)
    batch = Batch(real, None, fake=fake)
    j_real, j_fake = joint(real), joint(fake)
    c_real, c_fake = critics(real), critics(fake)
    # each channel's critic is a D of its own: the mean of the C objectives, each with
    # its own batch means (RaGAN's), beside the joint D's
    want_d = objective.discriminator(j_real, j_fake) + sum(
        objective.discriminator(c_real[:, c], c_fake[:, c]) for c in range(3)) / 3
    got = d_cost(critic, batch, {})
    assert got.item() == pytest.approx(want_d.item(), rel=1e-6)

    def g_loss(f, r):
        return objective.generator(f, r) if objective.needs_real else objective.generator(f)

    want_g = g_loss(j_fake, j_real) + sum(
        g_loss(c_fake[:, c], c_real[:, c]) for c in range(3)) / 3
    got = g_cost(critic, batch, {})
    assert got.item() == pytest.approx(want_g.item(), rel=1e-6)


def test_packed_d_keeps_its_packs_and_the_critics_read_single_samples(tmp_path,
                                                                      small_classifiers):
    cfg = gankit.load_config(None, STACKED + ["tricks.pack=2", "model.d_norm='batch'"])
    g, d = gankit.build_models(cfg, (3, 28, 28))
    x = torch.randn(8, 3, 28, 28)
    assert d(x).shape == (4,)  # 8 samples, packs of 2
    assert gankit.nets.layers.call(d, "channel_logits", x).shape == (8, 3)
    assert any(isinstance(m, nn.BatchNorm2d) for m in d.critics.modules())
    # spectral normalisation reaches the critics' layers too
    cfg_sn = gankit.load_config(None, STACKED + ["model.spectral_norm=true"])
    _, d_sn = gankit.build_models(cfg_sn, (3, 28, 28))
    assert all(hasattr(layer, "parametrizations") for layer in d_sn.critics.net
               if isinstance(layer, nn.Conv2d))
    summary = gankit.train(cfg, tmp_path / "run", progress=False)
    assert summary["metrics"]["num_modes"] == 1000


@pytest.mark.parametrize("extra", [
    ["tricks.pack=2", "model.d_norm='batch'", "tricks.generator_ema=0.9"],
    ["tricks.diffaugment='translation,cutout'", "tricks.unroll_steps=1",
     "objective.name='rpgan'"],
], ids=["pack+ema", "diffaugment+unrolled+rpgan"])
def test_resume_is_bit_exact_with_channel_critics(assert_resume_exact, extra,
                                                  small_classifiers):
    # (unrolled: the inner D updates call the critics through the augmentation wrapper)
    assert_resume_exact(gankit.load_config(None, STACKED + extra), stop_after=3)


def test_refused_in_one_line_where_it_cannot_act(tmp_path, capsys):
    for config, bad, what in (
            ("grid25-nonsaturating", "train.steps=2", "'grid25'"),
            ("stacked-mnist-pacgan", "objective.name='wasserstein_gp'", "'wasserstein_gp'")):
        code = main(["train", f"configs/{config}.toml", "--set", bad, "--set",
                     "tricks.channel_critic_width=8", "--out", str(tmp_path / "run")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and not (tmp_path / "run" / "checkpoint.pt").exists()
        assert len(err) == 1 and "tricks.channel_critic_width: 8 " in err[0]
        assert what in err[0] and "allowed: 0" in err[0]


def test_user_modules_take_channel_critics_through_fit(tmp_path):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 3 * 8 * 8), nn.Tanh(), nn.Unflatten(1, (3, 8, 8)))
    D = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1))
    x = torch.rand(64, 3, 8, 8) * 2 - 1
    gankit.fit(G, D, x, steps=4, out=tmp_path / "run", tricks={"channel_critic_width": 4},
               settings={"train.batch_size": 16, "train.log_every": 2,
                         "train.checkpoint_every": 2, "train.eval_samples": 32,
                         "train.device": "cpu"})
    ckpt = gankit.io.load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    critics = [k for k in ckpt["discriminator"] if k.startswith("critics.")]
    assert critics and ckpt["step"] == 4  # the critics trained as part of D
