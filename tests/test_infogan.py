"""InfoGAN: the mutual-information bound, the codes in the latent, the Hungarian accuracy,
the Q term in both players' steps, and runs on a mixture and on images."""

import json
import math

import pytest
import torch

from gankit.build import build_models, latent_dim
from gankit.cli import main
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.losses.info import (
    categorical_nll,
    code_entropy,
    gaussian_nll,
    info_loss,
    mi_lower_bound,
)
from gankit.losses.objectives import get_objective
from gankit.metrics.infogan import hungarian_accuracy
from gankit.runs import load_run, train
from gankit.training.costs import Batch, discriminator_cost, generator_cost
from gankit.training.step import discriminator_step, generator_step

TINY_IMAGES = ["model.g_width=8", "model.d_width=8", "model.z_dim=8", "train.steps=4",
               "train.batch_size=8", "train.log_every=2", "train.checkpoint_every=2",
               "train.device='cpu'", "infogan.q_width=8"]


def test_mi_bound_never_exceeds_entropy_and_reaches_it_for_an_exact_q():
    g = torch.Generator().manual_seed(0)
    sizes = [10, 3]
    codes = torch.stack([torch.randint(k, (500,), generator=g) for k in sizes], dim=1)
    h = code_entropy(sizes, 0)[0]
    assert h == pytest.approx(math.log(30))
    for scale in (0.1, 1.0, 10.0, 100.0):  # any Q, however confident
        logits = [scale * torch.randn(500, k, generator=g) for k in sizes]
        assert mi_lower_bound(logits, codes, sizes) <= h + 1e-9
    exact = [40.0 * torch.nn.functional.one_hot(codes[:, i], k).float()
             for i, k in enumerate(sizes)]
    assert mi_lower_bound(exact, codes, sizes) == pytest.approx(h, abs=1e-6)
    uniform = [torch.zeros(500, k) for k in sizes]  # Q that knows nothing: bound 0
    assert mi_lower_bound(uniform, codes, sizes) == pytest.approx(0.0, abs=1e-6)


def test_gaussian_nll_is_the_normal_log_density():
    c, mean, log_var = torch.tensor([[0.3, -0.5]]), torch.tensor([[0.1, 0.0]]), \
        torch.tensor([[0.2, -1.0]])
    expected = -torch.distributions.Normal(mean, (0.5 * log_var).exp()).log_prob(c).sum()
    assert float(gaussian_nll(mean, log_var, c)) == pytest.approx(float(expected), rel=1e-6)
    assert float(categorical_nll([torch.zeros(4, 5)], torch.zeros(4, 1, dtype=torch.long))) \
        == pytest.approx(math.log(5))


def test_fixed_std_q_outputs_means_only_and_its_cost_is_half_the_squared_error():
    from gankit.nets.heads import InfoDiscriminator

    torch.manual_seed(0)
    body = torch.nn.Linear(6, 6)
    body.features = body.forward  # its feature layer is its output
    learned = InfoDiscriminator(body, 6, [3], 2, width=8)
    fixed = InfoDiscriminator(body, 6, [3], 2, width=8, fixed_std=True)
    assert learned.q_head[-1].out_features == 3 + 2 * 2
    assert fixed.q_head[-1].out_features == 3 + 2  # no log-variance outputs
    x, c = torch.randn(50, 6), torch.rand(50, 2) * 2 - 1
    _, mean, log_var = fixed.q(x)
    assert torch.equal(log_var, torch.zeros(50, 2))
    # −log N(c; μ, 1) = ½(c − μ)² + ½ log 2π per code
    expected = (0.5 * (c - mean).square() + 0.5 * math.log(2 * math.pi)).sum(-1).mean()
    assert float(gaussian_nll(mean, log_var, c)) == pytest.approx(float(expected), rel=1e-6)
    assert load_config("configs/mnist5k-infogan.toml", ["infogan.fixed_std=true"]).infogan.fixed_std


def test_hungarian_mapping_of_a_permuted_labelling_is_exact():
    labels = torch.arange(1000) % 10
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    codes = perm[labels]  # code value perm[y] for class y
    accuracy, mapping = hungarian_accuracy(codes, labels, 10, 10)
    assert accuracy == 1.0
    assert [mapping[int(perm[y])] for y in range(10)] == list(range(10))
    noisy = codes.clone()
    noisy[:100] = (noisy[:100] + 1) % 10  # 10% of the codes moved: 90% at best
    assert hungarian_accuracy(noisy, labels, 10, 10)[0] == pytest.approx(0.9)


def test_codes_come_from_the_latent_with_their_distributions():
    cfg = load_config(None, ["infogan.categorical=[4, 3]", "infogan.continuous=2"])
    g, _ = build_models(cfg, (2,))
    assert latent_dim(cfg) == cfg.model.z_dim + 4 == g.z_dim
    u = torch.randn(40000, g.z_dim, generator=torch.Generator().manual_seed(1))
    cat, cont = g.codes(u)
    for i, k in enumerate((4, 3)):
        freq = torch.bincount(cat[:, i], minlength=k).double() / len(u)
        assert torch.allclose(freq, torch.full((k,), 1 / k, dtype=torch.float64), atol=0.01)
    assert cont.min() >= -1 and cont.max() <= 1
    assert float(cont.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(cont.var()) == pytest.approx(1 / 3, abs=0.01)  # U[−1, 1]
    # what G's network is fed: the noise, exact one-hots of the codes, the continuous codes
    seen = []
    g.net.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    g(u[:500])
    fed, z_dim = seen[0], cfg.model.z_dim
    assert torch.equal(fed[:, :z_dim], u[:500, :z_dim])
    for lo, k, i in ((z_dim, 4, 0), (z_dim + 4, 3, 1)):
        assert torch.equal(fed[:, lo:lo + k], torch.nn.functional.one_hot(cat[:500, i], k).float())
    assert torch.equal(fed[:, -2:], cont[:500])
    # decode takes continuous codes beyond [−1, 1] too (traversals)
    assert g.decode(u[:2, :2], cat[:2], torch.full((2, 2), 2.0)).shape == (2, 2)
    uniform = load_config(None, ["infogan.categorical=[4]", "model.z_dist='uniform'"])
    gu, _ = build_models(uniform, (2,))
    cu, _ = gu.codes(2 * torch.rand(40000, gu.z_dim) - 1)
    assert torch.bincount(cu[:, 0]).min() > 9000  # uniform latent coordinates too


def test_q_term_trains_q_in_the_d_step_and_g_in_the_g_step():
    small = ["model.g_width=16", "model.d_width=16"]
    cfg = load_config(None, ["infogan.categorical=[5]", "infogan.continuous=1",
                             "infogan.weight=0.5", *small])
    g, d = build_models(cfg, (2,))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-2)
    objective = get_objective("nonsaturating")
    d_cost, g_cost = discriminator_cost(cfg, objective), generator_cost(cfg, objective)
    assert d_cost.names == ["objective", "information"] == g_cost.names
    rng = torch.Generator().manual_seed(0)
    real, z = torch.randn(64, 2, generator=rng), torch.randn(64, g.z_dim, generator=rng)
    codes = g.codes(z)
    q_before = [p.clone() for p in d.q_head.parameters()]
    stats: dict = {}
    batch = discriminator_step(g, d, opt_d, d_cost, Batch(real, z, codes=codes, rng=rng),
                               stats=stats)
    assert all(not torch.equal(a, b) for a, b in zip(q_before, d.q_head.parameters()))
    # D's loss with the term is its loss without it plus ½λ·(−log Q) (before the update;
    # ½ because gankit's D cost is ½ of the paper's −V)
    g2, d2 = build_models(cfg, (2,))
    plain: dict = {}
    plain_cost = discriminator_cost(load_config(None, small), objective)
    discriminator_step(g2, d2, torch.optim.SGD(d2.parameters(), lr=0.0), plain_cost,
                       Batch(real, z, rng=rng), stats=plain)
    expected = plain["loss_d"] + 0.25 * info_loss(d2.q(g2(z).detach()), codes, 0.1)
    assert float(stats["loss_d"]) == pytest.approx(float(expected.detach()), rel=1e-5)
    # G's update follows the gradient of its cost + ½λ·(−log Q), sign included
    g3, d3 = build_models(cfg, (2,))
    generator_step(g3, d3, torch.optim.SGD(g3.parameters(), lr=0.0), g_cost,
                   Batch(real, z, fake=g3(z), codes=codes))
    assert all(p.grad is None for p in d3.parameters())  # G's step leaves D alone
    x = g3(z)
    cost = objective.generator(d3(x)) + 0.25 * info_loss(d3.q(x), codes, 0.1)
    expected = torch.autograd.grad(cost, list(g3.parameters()))
    for p, e in zip(g3.parameters(), expected):
        torch.testing.assert_close(p.grad, e)
    plain_grad = torch.autograd.grad(objective.generator(d3(g3(z))), list(g3.parameters()))
    assert not torch.allclose(plain_grad[0], expected[0])
    assert batch.fake.shape == (64, 2) and batch.codes is codes


def test_grid25_infogan_trains_and_reports_its_code_metrics(tmp_path, tiny, capsys):
    cfg = load_config("configs/grid25-infogan.toml", tiny + ["train.steps=60"])
    summary = train(cfg, tmp_path / "run", progress=False)
    m = summary["metrics"]
    assert 0.0 <= m["categorical_accuracy"] <= 1.0
    assert m["mi_max"] == pytest.approx(math.log(25))
    assert m["mi_bound"] <= m["mi_max"]
    assert (tmp_path / "run" / "codes.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["metrics"]["categorical_accuracy"] == pytest.approx(m["categorical_accuracy"])
    _, g, d, _ = load_run(tmp_path / "run")
    assert g.z_dim == 3 and d.q(g(torch.randn(4, 3)))[0][0].shape == (4, 25)
    # the run resumes to the same numbers
    cfg2 = load_config("configs/grid25-infogan.toml", tiny + ["train.steps=60"])
    assert train(cfg2, tmp_path / "a", progress=False, stop_after=30) is None
    resumed = train(cfg2, tmp_path / "a", resume=True, progress=False)
    assert resumed["metrics"] == m


def test_training_raises_the_mutual_information_bound(tmp_path):
    """With λ > 0 Q learns to read the code off G's samples (the bound nears H(c) =
    log 25: 3.1 here); with λ = 0 nothing makes the code readable (≈ 0)."""
    bounds = {}
    for weight in (2.0, 0.0):
        cfg = load_config("configs/grid25-infogan.toml",
                          ["train.steps=600", "train.batch_size=64", "model.g_width=128",
                           "model.d_width=128", "train.eval_samples=500", "train.device='cpu'",
                           f"infogan.weight={weight}"])
        bounds[weight] = train(cfg, tmp_path / str(weight), progress=False)["metrics"]["mi_bound"]
    assert bounds[2.0] > 0.6 * math.log(25) > 0.2 > bounds[0.0]


def test_mnist5k_infogan_config_draws_traversals(tmp_path, small_classifiers):
    cfg = load_config("configs/mnist5k-infogan.toml", TINY_IMAGES)
    summary = train(cfg, tmp_path / "run", progress=False)
    m = summary["metrics"]
    assert {"categorical_accuracy", "mi_bound", "mi_max", "fd"} <= set(m)
    assert m["mi_max"] == pytest.approx(math.log(10))
    assert (tmp_path / "run" / "traversal.png").stat().st_size > 0


def test_infogan_refuses_what_it_does_not_combine_with():
    for extra, field in ((["tricks.pack=2"], "tricks.pack"),
                         (["objective.name='gmmn'"], "objective.name"),
                         (["infogan.categorical=[1]"], "infogan.categorical"),
                         (["infogan.categorical=[2.5]"], "infogan.categorical"),
                         (["tricks.virtual_batch_norm=true"], "tricks.virtual_batch_norm"),
                         (["objective.weight_clip=0.1"], "objective.weight_clip")):
        with pytest.raises(GankitError, match=field):
            load_config("configs/grid25-infogan.toml", extra)
