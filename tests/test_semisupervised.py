"""Semi-supervised (K+1)-class GAN: the loss against its written formula, the D step
against the loss, the labelled subset, and a run with its labelled-only baseline."""

import math

import pytest
import torch

from gankit.build import build_models
from gankit.config import load_config
from gankit.data.images import labelled_subset
from gankit.errors import GankitError
from gankit.losses.objectives import get_objective
from gankit.losses.semisupervised import k_plus_one_loss
from gankit.metrics.semisupervised import classification_error
from gankit.nets.heads import ClassifierCritic
from gankit.runs import train
from gankit.training.costs import Batch, discriminator_cost
from gankit.training.step import discriminator_step

TINY_IMAGES = ["model.g_width=8", "model.d_width=8", "model.z_dim=8", "train.steps=6",
               "train.batch_size=8", "train.log_every=2", "train.checkpoint_every=2",
               "train.device='cpu'"]


def test_k_plus_one_loss_on_a_hand_computed_batch():
    # K = 2, all logits 0: Z = 2, p(generated) = 1/3, p(y | x, real) = 1/2
    # L = log 2 − log(2/3) − log(1/3) = log 9
    zeros = torch.zeros(1, 2)
    loss = k_plus_one_loss(zeros, torch.tensor([1]), zeros, zeros)
    assert float(loss) == pytest.approx(math.log(9))
    # logits (log 3, 0): Z = 4; labelled y = 0: p(0 | real) = 3/4; real: D = 4/5;
    # fake with logits (0, log 2): Z = 3, p(generated) = 1/4
    lab = torch.tensor([[math.log(3), 0.0]])
    fake = torch.tensor([[0.0, math.log(2)]])
    loss = k_plus_one_loss(lab, torch.tensor([0]), lab, fake)
    expected = -math.log(3 / 4) - math.log(4 / 5) - math.log(1 / 4)
    assert float(loss) == pytest.approx(expected)


def test_k_plus_one_loss_is_the_written_formula_with_an_explicit_generated_class():
    g = torch.Generator().manual_seed(0)
    lab, real, fake = (4 * torch.randn(16, 10, generator=g, dtype=torch.float64)
                       for _ in range(3))
    y = torch.randint(10, (16,), generator=g)

    def probs(logits):  # softmax over K + 1 classes, the last with logit 0
        return torch.cat([logits, torch.zeros(len(logits), 1, dtype=logits.dtype)], 1) \
            .softmax(1)

    p_lab = probs(lab)
    sup = -(p_lab[torch.arange(16), y] / (1 - p_lab[:, -1])).log().mean()
    unsup = -(1 - probs(real)[:, -1]).log().mean() - probs(fake)[:, -1].log().mean()
    assert float(k_plus_one_loss(lab, y, real, fake)) == pytest.approx(float(sup + unsup))


def test_classifier_critic_logit_is_the_real_probability():
    net = torch.nn.Linear(3, 4)
    critic = ClassifierCritic(net, 4)
    x = torch.randn(6, 3)
    logits = net(x).double()
    p_generated = 1 / (logits.exp().sum(1) + 1)
    assert torch.allclose(torch.sigmoid(critic(x).double()), 1 - p_generated, atol=1e-6)
    assert torch.equal(critic.classify(x), net(x))
    noisy = ClassifierCritic(net, 4, input_noise=0.5)
    assert not torch.equal(noisy.classify(x), net(x))  # noise in training mode
    assert torch.equal(noisy.eval().classify(x), net(x))  # and none at test time


def test_d_step_cost_is_half_the_k_plus_one_loss():
    cfg = load_config("configs/mnist5k-ssl.toml", TINY_IMAGES + [
        "semisupervised.input_noise=0", "semisupervised.hidden_noise=0", "data.name='digits'"])
    g, d = build_models(cfg, (1, 8, 8))
    rng = torch.Generator().manual_seed(0)
    real, z = torch.rand(8, 1, 8, 8, generator=rng), torch.randn(8, 8, generator=rng)
    xl, yl = torch.rand(8, 1, 8, 8, generator=rng), torch.randint(10, (8,), generator=rng)
    g.eval()  # batch norm: the same G(z) twice
    with torch.no_grad():
        expected = 0.5 * k_plus_one_loss(d.classify(xl), yl, d.classify(real),
                                         d.classify(g(z)))
    stats: dict = {}
    cost = discriminator_cost(cfg, get_objective("nonsaturating"))
    assert cost.names == ["objective", "supervised"]
    discriminator_step(g, d, torch.optim.SGD(d.parameters(), lr=0.0), cost,
                       Batch(real, z, labelled=(xl, yl), rng=rng), stats=stats)
    assert float(stats["loss_d"]) == pytest.approx(float(expected), rel=1e-5)


def test_labelled_subset_is_class_balanced_and_seeded():
    labels = torch.arange(1000) % 10
    a = labelled_subset(labels, 10, 10, seed=0)
    assert len(a) == 100 and len(set(a.tolist())) == 100
    assert torch.equal(torch.bincount(labels[a]), torch.full((10,), 10))
    assert torch.equal(a, labelled_subset(labels, 10, 10, seed=0))
    assert not torch.equal(a, labelled_subset(labels, 10, 10, seed=1))
    with pytest.raises(GankitError, match="labels_per_class"):
        labelled_subset(labels, 101, 10, seed=0)


def test_test_error_counts_the_wrong_argmax():
    net = torch.nn.Linear(10, 10, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.eye(10))
    critic = ClassifierCritic(net, 10)
    x = torch.eye(10).repeat(5, 1)
    y = torch.arange(10).repeat(5)
    assert classification_error(critic, x, y) == 0.0
    assert classification_error(critic, x, (y + 1) % 10) == 1.0


def test_ssl_config_trains_with_its_labelled_only_baseline(tmp_path, small_classifiers,
                                                           monkeypatch):
    from gankit.training import loop

    batches = []

    def spy(*args, **kwargs):  # every D step gets a labelled batch of the labelled set
        batches.append(args[4].labelled)
        return discriminator_step(*args, **kwargs)

    monkeypatch.setattr(loop, "discriminator_step", spy)
    cfg = load_config("configs/mnist5k-ssl.toml", TINY_IMAGES + ["data.name='digits'"])
    summary = train(cfg, tmp_path / "run", progress=False)
    assert len(batches) == cfg.train.steps
    from gankit.build import build_target
    from gankit.data.images import labelled_data

    chosen = labelled_data(build_target(cfg), 10, cfg.train.seed)
    for x, y in batches:
        assert x.shape == (8, 1, 8, 8) and y.shape == (8,)
        # each labelled example is one of the 100 chosen, with its own label
        match = (x.flatten(1)[:, None] == chosen.images.flatten(1)[None]).all(-1)
        assert match.any(1).all()
        assert torch.equal(chosen.labels[match.float().argmax(1)], y)
    m = summary["metrics"]
    for key in ("test_error", "labelled_only_test_error"):
        assert 0.0 <= m[key] <= 1.0
    assert m["error_ratio"] == pytest.approx(m["test_error"] / m["labelled_only_test_error"])
    assert "fd" in m  # the generator is measured like any other


def test_ssl_refuses_data_without_labels_and_other_objectives():
    with pytest.raises(GankitError, match="no class labels"):
        load_config(None, ["semisupervised.labels_per_class=10"])
    with pytest.raises(GankitError, match="objective.name"):
        load_config("configs/mnist5k-ssl.toml", ["objective.name='wasserstein_gp'"])
    with pytest.raises(GankitError, match="semisupervised.labels_per_class"):
        load_config("configs/mnist5k-ssl.toml", ["infogan.categorical=[10]"])
    with pytest.raises(GankitError, match="tricks.label_smoothing"):
        load_config("configs/mnist5k-ssl.toml", ["tricks.label_smoothing=0.1"])


def test_hidden_noise_perturbs_every_hidden_activation_in_training_only():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                              torch.nn.LeakyReLU(0.2), torch.nn.Linear(64, 3))
    x = torch.randn(4000, 4)
    exact = [net[:2](x), net[:4](x)]  # each activation's output, before any hook
    seen = []
    for layer in (2, 4):  # what the layer after each activation receives
        net[layer].register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    critic = ClassifierCritic(net, 3, hidden_noise=0.5)
    critic.eval()
    torch.testing.assert_close(critic.classify(x), net[4](exact[1]))  # eval: no noise
    seen.clear()
    critic.train()
    critic.classify(x)
    first = seen[0] - exact[0]  # N(0, 0.5²) added to the first activation's output
    assert abs(first.std().item() - 0.5) < 0.02 and abs(first.mean().item()) < 0.02
    # the second activation reads the noisy first layer, then gets its own noise
    second = seen[1] - torch.nn.functional.leaky_relu(net[2](seen[0]), 0.2)
    assert abs(second.std().item() - 0.5) < 0.02 and abs(second.mean().item()) < 0.02


def test_ssl_with_input_and_hidden_noise_resumes_exactly(small_classifiers, assert_resume_exact):
    cfg = load_config("configs/mnist5k-ssl.toml", TINY_IMAGES + [
        "data.name='digits'", "semisupervised.input_noise=0.3",
        "semisupervised.hidden_noise=0.5"])
    assert_resume_exact(cfg, stop_after=3)
