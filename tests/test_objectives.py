import math

import pytest
import torch

from gankit.losses import objectives as obj
from gankit.losses import penalties

EXTREME = torch.tensor([-50.0, -10.0, 0.0, 10.0, 50.0])


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_value_and_discriminator_loss_against_hand_computed():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5])
    v = (math.log(sig(2.0)) + math.log(sig(-1.0))) / 2 + math.log(1 - sig(0.5))
    assert obj.value(real, fake).item() == pytest.approx(v, rel=1e-6)
    assert obj.discriminator_loss(real, fake).item() == pytest.approx(-0.5 * v, rel=1e-6)


def test_generator_costs_against_hand_computed():
    fake = torch.tensor([-1.0, 0.0, 3.0])
    p = [sig(x) for x in fake.tolist()]
    assert obj.minimax(fake).item() == pytest.approx(
        0.5 * sum(math.log(1 - q) for q in p) / 3, rel=1e-6)
    assert obj.nonsaturating(fake).item() == pytest.approx(
        -0.5 * sum(math.log(q) for q in p) / 3, rel=1e-6)
    # exp(σ⁻¹(D)) = D / (1 − D)
    assert obj.max_likelihood(fake).item() == pytest.approx(
        -0.5 * sum(q / (1 - q) for q in p) / 3, rel=1e-6)


def test_other_games_against_hand_computed():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.3])
    assert obj.least_squares_discriminator(real, fake).item() == pytest.approx(
        0.5 * ((0.25 + 1.0) / 2 + (4.0 + 0.09) / 2))
    assert obj.least_squares_generator(fake).item() == pytest.approx(0.5 * (9 + 0.49) / 2)
    assert obj.hinge_discriminator(real, fake).item() == pytest.approx(0.25 + (0 + 1.3) / 2)
    assert obj.hinge_generator(fake).item() == pytest.approx(0.85)
    assert obj.wasserstein_critic(real, fake).item() == pytest.approx(-0.85 - 1.25)
    assert obj.wasserstein_generator(fake).item() == pytest.approx(0.85)


# the games on D's logits (gmmn and mmd-gan compare batches of embeddings: test_mmd.py)
@pytest.mark.parametrize("name", [n for n, o in obj.OBJECTIVES.items() if not o.needs_real])
def test_finite_values_and_gradients_at_extreme_logits(name):
    o = obj.get_objective(name)
    for real_val in EXTREME:
        real = real_val.repeat(3).requires_grad_(True)
        fake = EXTREME.clone().requires_grad_(True)
        d = o.discriminator(real, fake)
        g = o.generator(fake)
        rg, fg = torch.autograd.grad(d + g, [real, fake])
        for t in (d, g, rg, fg):
            assert torch.isfinite(t).all(), (name, real_val, t)


def grad_at(cost, logit):
    x = torch.tensor([logit], requires_grad=True)
    (g,) = torch.autograd.grad(cost(x), x)
    return g.item()


def test_minimax_saturates_when_d_rejects_fakes_nonsaturating_does_not():
    # D confidently rejects the fakes: logit -> -inf, D(G(z)) -> 0.
    assert abs(grad_at(obj.minimax, -50.0)) < 1e-20
    assert grad_at(obj.nonsaturating, -50.0) == pytest.approx(-0.5)
    # Where D is fooled the roles swap: non-saturating's gradient vanishes instead.
    assert grad_at(obj.minimax, 50.0) == pytest.approx(-0.5)
    assert abs(grad_at(obj.nonsaturating, 50.0)) < 1e-20


@pytest.mark.parametrize("cost", [obj.minimax, obj.nonsaturating, obj.max_likelihood])
@pytest.mark.parametrize("logit", [-5.0, -1.0, 0.0, 2.0])
def test_every_generator_cost_pushes_d_of_fake_up(cost, logit):
    # Minimising the cost raises D(G(z)): the gradient with respect to the logit is negative.
    assert grad_at(cost, logit) < 0


def test_max_likelihood_gradient_is_minus_half_density_ratio():
    # d/dl of −½ exp(l) is −½ exp(l) = −½ D/(1−D): weighted by the estimated p/q.
    for logit in (-3.0, 0.0, 1.5):
        assert grad_at(obj.max_likelihood, logit) == pytest.approx(-0.5 * math.exp(logit))


def test_discriminator_loss_minimised_by_optimal_discriminator():
    # Pointwise: a·(−log D) + b·(−log(1−D)) is minimised at D = a / (a + b).
    a, b = 0.7, 0.2
    logit = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([logit], max_iter=100)

    def closure():
        opt.zero_grad()
        loss = a * obj.discriminator_loss(logit[None], torch.tensor([-1e9])) + \
            b * obj.discriminator_loss(torch.tensor([1e9]), logit[None])
        loss.backward()
        return loss

    opt.step(closure)
    assert torch.sigmoid(logit).item() == pytest.approx(a / (a + b), abs=1e-4)


def test_gradient_penalty_on_linear_critic():
    # D(x) = w·x has ‖∇D‖ = ‖w‖ everywhere, so the penalty is (‖w‖ − 1)².
    w = torch.tensor([3.0, 4.0])
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    gp = penalties.gradient_penalty(lambda x: x @ w, real, fake, torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx(16.0)
    w1 = torch.tensor([0.6, 0.8])
    gp1 = penalties.gradient_penalty(lambda x: x @ w1, real, fake)
    assert gp1.item() == pytest.approx(0, abs=1e-10)


def test_gradient_penalty_is_differentiable_in_critic_parameters():
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    gp = penalties.gradient_penalty(lambda x: x @ w, torch.randn(4, 2), torch.randn(4, 2))
    (g,) = torch.autograd.grad(gp, w)
    # d/dw (‖w‖ − 1)² = 2 (‖w‖ − 1) w / ‖w‖ = 2·4·(0.6, 0.8)
    assert torch.allclose(g, torch.tensor([4.8, 6.4]))


def test_unknown_objective_names_the_allowed_ones():
    with pytest.raises(obj.GankitError, match="allowed: minimax, nonsaturating"):
        obj.get_objective("vanilla")
