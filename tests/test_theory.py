import math

import pytest
import torch

from gankit import theory as th
from gankit.data.mixtures import GaussianMixture, mixture
from gankit.errors import GankitError
from gankit.losses import objectives as obj
from gankit.theory.report import ml_gradient_section, one_d_pair

P, Q = one_d_pair()


def test_optimal_discriminator_hand_computed():
    p, q = GaussianMixture([0.0], [1.0]), GaussianMixture([1.0], [1.0])
    d = th.optimal_discriminator(p, q)
    # p/q = exp(−x²/2 + (x−1)²/2) = exp(½ − x): D* = 1 / (1 + exp(x − ½))
    for x in (-2.0, 0.0, 0.5, 3.0):
        assert d(torch.tensor([[x]])).item() == pytest.approx(1 / (1 + math.exp(x - 0.5)))
    # far in the tails the log-space form stays in [0, 1] without NaN
    far = d(torch.tensor([[-60.0], [60.0]]))
    assert torch.isfinite(far).all() and far[0] == pytest.approx(1) and far[1] < 1e-20


def test_value_at_optimal_d_is_minus_log4_plus_2jsd():
    jsd = th.divergence("jsd", P, Q).value
    assert th.value_at_optimum(P, Q) == pytest.approx(-2 * math.log(2) + 2 * jsd, abs=1e-8)
    # and D* maximises V: any other D does worse (here a shifted logit)
    x_p = P.sample(200_000, torch.Generator().manual_seed(0))
    x_q = Q.sample(200_000, torch.Generator().manual_seed(1))
    logit = th.optimal_logit(P, Q)
    v_star = obj.value(logit(x_p), logit(x_q)).item()
    v_off = obj.value(logit(x_p) + 0.5, logit(x_q) + 0.5).item()
    assert v_off < v_star


def test_kl_between_gaussians_matches_closed_form():
    m1, s1, m2, s2 = 0.3, 0.7, -1.0, 1.6
    p, q = GaussianMixture([m1], [s1]), GaussianMixture([m2], [s2])
    closed = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    assert th.divergence("kl", p, q).value == pytest.approx(closed, rel=1e-8)
    assert th.divergence("reverse_kl", q, p).value == pytest.approx(closed, rel=1e-8)
    # squared Hellinger ∫(√p − √q)² = 2 − 2 BC, closed form Bhattacharyya coefficient
    bc = math.sqrt(2 * s1 * s2 / (s1**2 + s2**2)) * math.exp(-((m1 - m2) ** 2)
                                                             / (4 * (s1**2 + s2**2)))
    assert th.divergence("squared_hellinger", p, q).value == pytest.approx(2 - 2 * bc, rel=1e-7)


def test_monte_carlo_in_2d_agrees_with_closed_form_and_reports_stderr():
    p = GaussianMixture([[0.0, 0.0]], [1.0])
    q = GaussianMixture([[1.0, 0.5]], [1.0])
    est = th.divergence("kl", p, q, n=100_000)
    closed = 0.5 * (1.0**2 + 0.5**2)
    assert est.stderr > 0 and abs(est.value - closed) < 4 * est.stderr + 1e-3


@pytest.mark.parametrize("name", th.DIVERGENCES)
def test_conjugate_swaps_arguments(name):
    f = th.f_function(name)
    a = th.divergence(name, P, Q).value
    b = th.divergence(th.conjugate(f), Q, P).value
    assert a == pytest.approx(b, rel=1e-6, abs=1e-9)


def test_user_f_and_known_relations():
    # the user's own f = u log u gives KL
    kl = th.divergence(lambda u: u * torch.log(u), P, Q).value
    assert kl == pytest.approx(th.divergence("kl", P, Q).value, rel=1e-7)
    # JSD ≤ log 2, TV ≤ 1, Pinsker KL ≥ 2 TV², squared Hellinger ≤ 2 TV... (Le Cam)
    jsd, tv = th.divergence("jsd", P, Q).value, th.divergence("total_variation", P, Q).value
    hel = th.divergence("squared_hellinger", P, Q).value
    assert 0 < jsd < math.log(2) and 0 < tv < 1
    assert kl >= 2 * tv**2
    assert hel / 2 <= tv <= math.sqrt(hel * (1 - hel / 4))
    assert set(th.HILBERTIAN) == {"jsd", "squared_hellinger", "total_variation"}


def test_divergences_of_a_distribution_with_itself_are_zero():
    for name in th.DIVERGENCES:
        assert th.divergence(name, P, P).value == pytest.approx(0, abs=1e-8)


def test_bad_divergence_inputs():
    with pytest.raises(GankitError, match="allowed: kl, reverse_kl, jsd"):
        th.divergence("wasserstein", P, Q)
    with pytest.raises(GankitError, match=r"f\(1\) must be 0"):
        th.divergence(lambda u: u**2, P, Q)
    with pytest.raises(GankitError, match="dimension"):
        th.divergence("kl", P, mixture("ring8"))


def test_divergences_from_exact_logit_match_exact_values():
    rng = torch.Generator().manual_seed(0)
    xp, xq = P.sample(200_000, rng), Q.sample(200_000, rng)
    est = th.divergences_from_discriminator(th.optimal_logit(P, Q), xp, xq)
    for name in ("kl", "reverse_kl", "jsd"):
        exact = th.divergence(name, P, Q).value
        assert abs(est[name].value - exact) < 4 * est[name].stderr + 1e-3, name


@pytest.mark.parametrize("name", th.DIVERGENCES)
def test_fgan_bound_with_any_critic_never_exceeds_divergence(name):
    # The bound holds for every T: check random critics and the trained one below.
    rng = torch.Generator().manual_seed(3)
    xp, xq = P.sample(100_000, rng).float(), Q.sample(100_000, rng).float()
    exact = th.divergence(name, P, Q).value
    for seed in range(3):
        torch.manual_seed(seed)
        critic = th.small_critic(1)
        with torch.no_grad():
            b = obj.fgan_bound(name, critic(xp).double(), critic(xq).double()).item()
        assert b <= exact + 0.01


def test_fgan_estimates_within_10_percent_and_below_exact():
    for name in th.DIVERGENCES:
        est = th.estimate_divergence(name, P, Q, steps=2000, n_eval=100_000)
        exact = th.divergence(name, P, Q).value
        assert est.value <= exact + 3 * est.stderr, name
        assert abs(est.value - exact) <= 0.1 * exact, (name, est.value, exact)


def test_fgan_gan_row_is_the_original_gan():
    # f-GAN "gan": critic cost = 2 J_D, generator cost = −E softplus(v) = 2 × minimax cost.
    real, fake = torch.randn(50), torch.randn(50)
    d, g = obj.get_objective("f-gan:gan").discriminator, obj.get_objective("f-gan:gan").generator
    assert d(real, fake).item() == pytest.approx(2 * obj.discriminator_loss(real, fake).item())
    assert g(fake).item() == pytest.approx(2 * obj.minimax(fake).item())


def test_fgan_bound_is_tight_at_the_optimal_critic():
    # At T* = f'(p/q) the bound equals D_f (Nguyen et al. 2010): KL: T* = 1 + log(p/q).
    rng = torch.Generator().manual_seed(0)
    xp, xq = P.sample(400_000, rng), Q.sample(400_000, rng)
    logit = th.optimal_logit(P, Q)
    b = obj.fgan_bound("kl", 1 + logit(xp), 1 + logit(xq)).item()
    assert b == pytest.approx(th.divergence("kl", P, Q).value, abs=0.01)
    # JSD: T* = log(2u/(1+u)) = log 2 − softplus(−r), i.e. V = r for the GAN activation.
    b = obj.fgan_bound("jsd", logit(xp), logit(xq)).item()
    assert b == pytest.approx(th.divergence("jsd", P, Q).value, abs=0.003)


def test_max_likelihood_gradient_is_half_kl_gradient():
    rows = ml_gradient_section(P, n=200_000, seed=0)
    for r in rows:
        assert abs(r["max_likelihood_gradient"] - r["half_kl_gradient"]) < \
            4 * r["max_likelihood_stderr"] + 1e-3, r
    # ... while the minimax and non-saturating costs' gradients are not ½ ∇KL
    assert any(abs(r["minimax_gradient"] - r["half_kl_gradient"]) > 0.05 for r in rows)
    assert any(abs(r["nonsaturating_gradient"] - r["half_kl_gradient"]) > 0.05 for r in rows)


def test_theory_command_json(tmp_path, capsys):
    import json

    from gankit.cli import main

    assert main(["theory", "--quick", "--json", "--out", str(tmp_path / "t")]) == 0
    r = json.loads(capsys.readouterr().out)
    v = r["one_d"]["max_d_value"]
    assert abs(v["estimate"] - v["exact"]) < 0.02
    assert (tmp_path / "t" / "theory.png").exists() and (tmp_path / "t" / "theory.json").exists()


def test_narrow_q_gives_finite_divergences_not_nan():
    # Where q underflows to 0 but p does not, q·f(p/q) must not become 0·inf = NaN.
    p, q = GaussianMixture([0.0], [1.0]), GaussianMixture([0.0], [0.5])
    closed = math.log(0.5 / 1.0) + 1.0 / (2 * 0.25) - 0.5
    assert th.divergence("kl", p, q).value == pytest.approx(closed, rel=1e-8)
    for name in ("reverse_kl", "jsd", "squared_hellinger", "total_variation"):
        assert math.isfinite(th.divergence(name, p, q).value), name
    assert th.divergence("pearson_chi2", p, q).value == math.inf  # truly infinite here
