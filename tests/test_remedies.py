"""Mode-collapse remedies: unrolling, minibatch discrimination, feature matching, label
smoothing, historical averaging, virtual batch norm — and that they compose."""

import pytest
import torch
from torch import nn

from gankit.config import load_config
from gankit.errors import GankitError
from gankit.losses import objectives as obj
from gankit.losses import penalties
from gankit.nets.layers import MinibatchDiscrimination
from gankit.nets.mlp import MLPDiscriminator, MLPGenerator
from gankit.runs import train
from gankit.training.costs import Batch, discriminator_cost
from gankit.training.step import discriminator_step
from gankit.training.tricks import HistoricalAverage, Unroll, unrolled_critic


def d_cost(history=None):
    """D's cross-entropy cost (and its historical average), as a run builds it."""
    return discriminator_cost(load_config(None), obj.get_objective("nonsaturating"), history)


def tiny_pair(dtype=torch.float64):
    torch.manual_seed(0)
    g = MLPGenerator(1, z_dim=1, width=3, depth=1, activation="tanh").to(dtype)
    d = MLPDiscriminator(1, width=4, depth=1, activation="tanh").to(dtype)
    opt_d = torch.optim.Adam(d.parameters(), lr=0.05, betas=(0.5, 0.9))
    real = torch.randn(16, 1, dtype=dtype) * 0.5 + 1
    z = torch.randn(16, 1, dtype=dtype)
    # one real D step so that the inner Adam starts from real moments
    discriminator_step(g, d, opt_d, d_cost(), Batch(real, z))
    return g, d, opt_d, real, z


def unrolled_g_cost(g, d, opt_d, real, z, k, detach=False):
    fake = g(z)
    critic = unrolled_critic(d, Unroll(k, opt_d, d_cost()),
                             Batch(real, z, fake=fake.detach() if detach else fake))
    return obj.nonsaturating(critic(fake))


def test_unroll_zero_is_the_plain_discriminator():
    g, d, opt_d, real, z = tiny_pair()
    critic = unrolled_critic(d, Unroll(0, opt_d, d_cost()), Batch(real, z, fake=g(z)))
    x = torch.randn(10, 1, dtype=torch.float64)
    assert torch.equal(critic(x), d(x))


@pytest.mark.parametrize("k", [1, 3])
def test_unrolled_gradient_matches_finite_differences(k):
    g, d, opt_d, real, z = tiny_pair()
    params = list(g.parameters())
    grads = torch.autograd.grad(unrolled_g_cost(g, d, opt_d, real, z, k), params)
    eps = 1e-6
    for p, grad in zip(params, grads):
        for idx in range(p.numel()):
            flat = p.data.view(-1)
            old = flat[idx].item()
            flat[idx] = old + eps
            up = unrolled_g_cost(g, d, opt_d, real, z, k).item()
            flat[idx] = old - eps
            down = unrolled_g_cost(g, d, opt_d, real, z, k).item()
            flat[idx] = old
            assert grad.view(-1)[idx].item() == pytest.approx((up - down) / (2 * eps),
                                                              rel=1e-4, abs=1e-8)
    # and it is not the cheap approximation that detaches G from D's unrolled updates
    cheap = torch.autograd.grad(unrolled_g_cost(g, d, opt_d, real, z, k, detach=True), params)
    assert any(not torch.allclose(a, b, atol=1e-8) for a, b in zip(grads, cheap))


@pytest.mark.parametrize("history_weight", [0.0, 0.5])
def test_unrolled_inner_step_is_adam(history_weight):
    # One inner step from D's Adam state equals D's own Adam step on the same batch,
    # historical-averaging penalty included.
    g, d, opt_d, real, z = tiny_pair()
    history = HistoricalAverage(d, history_weight) if history_weight else None
    if history is not None:
        with torch.no_grad():
            for v in history.mean.values():
                v.add_(0.3)  # a past mean away from the current parameters
    fake = g(z).detach()
    critic = unrolled_critic(d, Unroll(1, opt_d, d_cost(history)), Batch(real, z, fake=fake))
    x = torch.randn(7, 1, dtype=torch.float64)
    expected_after = critic(x).detach()
    discriminator_step(g, d, opt_d, d_cost(history), Batch(real, z), history=history)
    assert torch.allclose(d(x), expected_after, atol=1e-10)


def test_minibatch_discrimination_shapes_and_signal():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(8, kernels=6, kernel_dim=3)
    same = torch.ones(10, 8)
    varied = torch.randn(10, 8) * 3
    o_same, o_varied = layer(same), layer(varied)
    assert o_same.shape == (10, 6)
    # identical samples: every c_b = 1, so o = n − 1 for every kernel
    assert torch.allclose(o_same, torch.full((10, 6), 9.0))
    assert (o_varied < 9.0 - 1e-3).all()
    d = MLPDiscriminator(2, 16, 2, minibatch_kernels=6)
    assert d(torch.randn(5, 2)).shape == (5,)


def test_virtual_batch_norm_output_does_not_depend_on_the_rest_of_the_batch():
    torch.manual_seed(0)
    g = MLPGenerator(2, z_dim=3, width=8, depth=2, virtual_batch_norm=True, reference_size=16)
    z0, z1, z2 = torch.randn(1, 3), torch.randn(4, 3), torch.randn(9, 3) * 5
    a, b = g(torch.cat([z0, z1])), g(torch.cat([z0, z2]))
    assert torch.allclose(a[0], b[0], atol=1e-6)
    # ordinary batch norm would not pass this test
    bn = nn.BatchNorm1d(3)
    assert not torch.allclose(bn(torch.cat([z0, z1]))[0], bn(torch.cat([z0, z2]))[0])


def test_label_smoothing_optimal_discriminator():
    # Pointwise a[(1−α)(−log D) + α(−log(1−D))] + b(−log(1−D)) is minimised at
    # D = a(1−α)/(a+b): smoothing only real labels never rewards samples where a = 0.
    a, b, alpha = 0.6, 0.3, 0.2
    loss_fn = obj.smoothed_discriminator_loss(alpha)
    logit = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([logit], max_iter=200)

    def closure():
        opt.zero_grad()
        # real-only and fake-only batches weighted a and b (the other side's term ~ 0)
        loss = a * (loss_fn(logit[None], torch.tensor([-1e9]))) + \
            b * (loss_fn(torch.tensor([1e9]), logit[None]) - 0.5 * alpha * 1e9)
        loss.backward()
        return loss

    opt.step(closure)
    assert torch.sigmoid(logit).item() == pytest.approx(a * (1 - alpha) / (a + b), abs=1e-4)


def test_label_smoothing_only_where_there_is_a_real_target():
    assert load_config(None, ["tricks.label_smoothing=0.1"]).tricks.label_smoothing == 0.1
    load_config(None, ["tricks.label_smoothing=0.1", "objective.name='least_squares'"])
    with pytest.raises(GankitError, match="tricks.label_smoothing: 'hinge' has no real target"):
        load_config(None, ["tricks.label_smoothing=0.1", "objective.name='hinge'"])


def test_feature_matching_formula():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    # means (2, 3) and (1, 1): ‖(1, 2)‖² = 5
    assert penalties.feature_matching(real, fake).item() == pytest.approx(5.0)
    assert penalties.feature_matching(real, real.flip(0)).item() == 0


def test_historical_average_is_the_mean_of_past_parameters():
    lin = nn.Linear(2, 1)
    h = HistoricalAverage(lin, weight=0.5)
    seen = [lin.weight.detach().clone()]
    for _ in range(4):
        with torch.no_grad():
            lin.weight.add_(torch.randn_like(lin.weight))
        seen.append(lin.weight.detach().clone())
        h.update(lin)
    assert torch.allclose(h.mean["weight"], torch.stack(seen).mean(0), atol=1e-6)
    with torch.no_grad():
        expected = 0.5 * sum((p - h.mean[n]).square().sum() for n, p in lin.named_parameters())
    assert h.penalty(dict(lin.named_parameters())).item() == pytest.approx(expected.item())


ALL_TRICKS = ["tricks.unroll_steps=2", "tricks.pack=2", "tricks.minibatch_discrimination=4",
              "tricks.feature_matching=true", "tricks.historical_averaging=0.01",
              "tricks.virtual_batch_norm=true", "tricks.vbn_reference_size=8"]


# (gmmn has no discriminator: the tricks acting on D are refused for it, test_mmd.py)
@pytest.mark.parametrize("objective", [n for n, o in obj.OBJECTIVES.items() if o.adversarial])
def test_all_tricks_compose_with_every_objective(tmp_path, tiny, objective):
    smooth = ["tricks.label_smoothing=0.1"] if objective in (
        "minimax", "nonsaturating", "max_likelihood", "least_squares") else []
    cfg = load_config(None, tiny + ALL_TRICKS + smooth + [
        f"objective.name='{objective}'", "train.steps=6", "train.log_every=3",
        "train.checkpoint_every=3", "train.eval_samples=50", "train.lr_d=1e-4",
        "train.lr_g=1e-4"])
    summary = train(cfg, tmp_path / "r", progress=False)
    assert summary["metrics"]["samples"] == 50


@pytest.mark.parametrize("extra", [["tricks.historical_averaging=0.1"],
                                   ["tricks.unroll_steps=3", "tricks.virtual_batch_norm=true",
                                    "tricks.minibatch_discrimination=4"]])
def test_resume_with_stateful_tricks_equals_uninterrupted(tiny, extra, assert_resume_exact):
    assert_resume_exact(load_config(None, tiny + extra), stop_after=13)


def test_minibatch_discrimination_fast_and_double_backward_paths_agree():
    from gankit.autodiff import double_backward

    torch.manual_seed(1)
    layer = MinibatchDiscrimination(8, kernels=4, kernel_dim=3)
    f = torch.randn(12, 8)
    with double_backward():
        slow = layer(f)
    assert torch.allclose(layer(f), slow, atol=1e-5)


def test_generator_ema_rampup_forgets_the_initial_weights(tmp_path, tiny):
    from gankit.io import load_checkpoint
    from gankit.training.tricks import GeneratorEMA

    g = torch.nn.Linear(3, 2)
    ema = GeneratorEMA(g, 0.999, rampup=True)
    init = ema.module.weight.clone()
    with torch.no_grad():
        g.weight.add_(1.0)  # G moves away from its initial weights, then stays
    betas = []
    for _ in range(100):
        betas.append(ema.current_beta())
        ema.update(g)
    # β_t = min(β, (1 + t)/(10 + t)), and the initial weights keep the product of the β_t
    assert betas[:3] == [1 / 10, 2 / 11, 3 / 12] and ema.updates == 100
    kept = torch.tensor(betas, dtype=torch.float64).prod().item()
    torch.testing.assert_close(ema.module.weight, g.weight + kept * (init - g.weight))
    assert kept < 1e-3 < 0.999 ** 100  # without the ramp 90% of the initial weights remain
    assert GeneratorEMA(g, 0.05, rampup=True).current_beta() == 0.05  # β caps the ramp

    cfg = load_config(None, tiny + ["tricks.generator_ema=0.9", "tricks.generator_ema_rampup=true",
                                    "train.g_steps=2"])
    train(cfg, tmp_path / "full", progress=False)
    train(cfg, tmp_path / "split", progress=False, stop_after=13)
    train(cfg, tmp_path / "split", resume=True, progress=False)
    full, split = (load_checkpoint(tmp_path / n / "checkpoint.pt") for n in ("full", "split"))
    assert full["generator_ema_updates"] == split["generator_ema_updates"] == 2 * full["step"]
    for k in full["generator_ema"]:  # the resumed ramp continues where it stopped
        assert torch.equal(full["generator_ema"][k], split["generator_ema"][k])


def test_generator_ema_is_the_moving_average_and_what_samples_use(tmp_path, tiny):
    from gankit.io import load_checkpoint
    from gankit.runs import load_run
    from gankit.training.tricks import GeneratorEMA

    g = torch.nn.Linear(3, 2)
    ema = GeneratorEMA(g, 0.9)
    before = ema.module.weight.clone()
    with torch.no_grad():
        g.weight.add_(1.0)
    ema.update(g)
    torch.testing.assert_close(ema.module.weight, 0.9 * before + 0.1 * g.weight)
    assert not ema.module.weight.requires_grad

    cfg = load_config(None, tiny + ["tricks.generator_ema=0.9"])
    train(cfg, tmp_path / "full", progress=False)
    state = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    _, generator, _, _ = load_run(tmp_path / "full")
    for k, v in generator.state_dict().items():  # eval and samples use the average
        assert torch.equal(v, state["generator_ema"][k])
    assert any(not torch.equal(state["generator"][k], state["generator_ema"][k])
               for k in state["generator"])
    train(cfg, tmp_path / "split", progress=False, stop_after=13)
    train(cfg, tmp_path / "split", resume=True, progress=False)
    split = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    for k in state["generator_ema"]:
        assert torch.equal(state["generator_ema"][k], split["generator_ema"][k])
