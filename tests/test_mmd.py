"""MMD: the estimator's unbiasedness and formula, the permutation test's level and power,
and GMMN / MMD-GAN training."""

import itertools

import pytest
import torch

from gankit.config import load_config
from gankit.errors import GankitError
from gankit.io import load_checkpoint
from gankit.losses.mmd import (
    gaussian_kernel,
    make_kernel,
    mmd2,
    mmd_test,
    rational_quadratic_kernel,
    squared_distances,
    witness,
)
from gankit.losses.objectives import get_objective
from gankit.runs import load_run, train

KERNEL = gaussian_kernel([0.5, 1.0, 2.0])


def test_mmd2_is_the_written_u_statistic():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 3, generator=g), torch.randn(4, 3, generator=g) + 0.3
    k = lambda a, b: KERNEL((a - b).square().sum())  # noqa: E731
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(5), 2)) / 20
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(4), 2)) / 12
    xy = sum(k(a, b) for a in x for b in y) / 20
    torch.testing.assert_close(mmd2(x, y, KERNEL), xx + yy - 2 * xy)


def test_mmd2_is_unbiased_and_grows_with_a_mean_shift():
    g = torch.Generator().manual_seed(1)
    # 400 independent pairs from one distribution, estimated in one batched call each
    same = [mmd2(torch.randn(400, 20, 2, generator=g), torch.randn(400, 20, 2, generator=g),
                 KERNEL)]
    x, y = torch.randn(400, 20, 2, generator=g), torch.randn(400, 20, 2, generator=g)
    per_pair = torch.stack([mmd2(x[i], y[i], KERNEL) for i in range(400)])
    torch.testing.assert_close(per_pair.mean(), mmd2(x, y, KERNEL))  # batched = mean
    se = per_pair.std() / 20
    assert abs(per_pair.mean()) < 3 * se and abs(same[0]) < 3 * se
    # the biased V-statistic (diagonal kept) is visibly positive on the same pairs
    biased = (KERNEL(squared_distances(x, x)).mean((-2, -1)) + KERNEL(squared_distances(
        y, y)).mean((-2, -1)) - 2 * KERNEL(squared_distances(x, y)).mean((-2, -1))).mean()
    assert biased > 10 * se
    shifts = [mmd2(torch.randn(500, 2, generator=g) + s, torch.randn(500, 2, generator=g),
                   KERNEL) for s in (0.25, 0.5, 1.0, 2.0)]
    assert 0 < shifts[0] < shifts[1] < shifts[2] < shifts[3]


def test_kernels():
    d2 = torch.tensor([0.0, 1.0, 4.0])
    torch.testing.assert_close(gaussian_kernel([1.0, 2.0])(d2),
                               torch.exp(-d2 / 2) + torch.exp(-d2 / 8))
    # rational quadratic → Gaussian as α → ∞
    d2 = d2.double()
    torch.testing.assert_close(rational_quadratic_kernel([1e5])(d2), torch.exp(-d2 / 2),
                               rtol=1e-4, atol=1e-6)
    assert make_kernel("rational_quadratic", [0.2, 1.0])(torch.tensor(0.0)) == 2.0
    x = torch.randn(7, 3)
    torch.testing.assert_close(squared_distances(x, x).diagonal(), torch.zeros(7), atol=1e-5,
                               rtol=0)
    # the witness is positive where the first sample has the mass
    a, b = torch.randn(300, 1) - 2, torch.randn(300, 1) + 2
    w = witness(torch.tensor([[-2.0], [2.0]]), a, b, KERNEL)
    assert w[0] > 0 > w[1]


def test_permutation_test_level_and_power():
    g = torch.Generator().manual_seed(2)
    same = [mmd_test(torch.randn(40, 2, generator=g), torch.randn(40, 2, generator=g),
                     KERNEL, 99, g)[1] for _ in range(100)]
    shifted = [mmd_test(torch.randn(40, 2, generator=g) + 1, torch.randn(40, 2, generator=g),
                        KERNEL, 99, g)[1] for _ in range(20)]
    # at level 5%: about 5 of 100 identical pairs rejected (binomial: ≤ 12 with p > 0.99)
    assert sum(p <= 0.05 for p in same) <= 12
    assert all(p <= 0.05 for p in shifted)
    assert min(same) >= 1 / 100  # (1 + count) / (1 + permutations)
    x, y = torch.randn(30, 2, generator=g), torch.randn(25, 2, generator=g)
    value, _ = mmd_test(x, y, KERNEL, 10, g)
    assert value == pytest.approx(mmd2(x.double(), y.double(), KERNEL).item())


def test_mmd_objectives():
    x = torch.randn(64, 2)
    fake = (torch.randn(64, 2) + 1).requires_grad_(True)
    gmmn, gan = get_objective("gmmn"), get_objective("mmd-gan")
    assert not gmmn.adversarial and gmmn.discriminator is None and gmmn.needs_real
    cost = gmmn.generator(fake, x)
    (grad,) = torch.autograd.grad(cost, fake)
    # MMD pulls the fakes towards the data: a step against the gradient lowers the cost
    assert gmmn.generator(fake - 0.5 * grad / grad.norm(), x) < cost
    assert gan.discriminator(x, fake) == -gan.generator(fake, x)


def test_gmmn_and_mmd_gan_train_and_resume(tmp_path, tiny):
    for name in ("gmmn", "mmd-gan"):
        cfg = load_config(None, tiny + [f"objective.name='{name}'", "objective.weight_clip=0.1",
                                        "objective.embedding_dim=4", "data.name='ring8'",
                                        "objective.kernel='rational_quadratic'"])
        summary = train(cfg, tmp_path / f"{name}-full", progress=False)
        assert {"modes", "mmd2", "mmd_p"} <= set(summary["metrics"])
        train(cfg, tmp_path / f"{name}-split", progress=False, stop_after=12)
        train(cfg, tmp_path / f"{name}-split", resume=True, progress=False)
        a, b = (load_checkpoint(tmp_path / f"{name}-{k}" / "checkpoint.pt")
                for k in ("full", "split"))
        for k in a["generator"]:
            assert torch.equal(a["generator"][k], b["generator"][k]), k
        _, _, d, state = load_run(tmp_path / f"{name}-full")
        if name == "gmmn":  # no discriminator, no optimizer for one
            assert state["opt_d"] is None and not list(d.parameters())
        else:  # weight clipping holds; D embeds into embedding_dim
            assert all(p.abs().max() <= 0.1 for p in d.parameters())
            assert d(torch.randn(5, 2)).shape == (5, 4)
        assert (tmp_path / f"{name}-full" / "samples.png").exists()


def test_mmd_config_errors(tiny):
    with pytest.raises(GankitError, match="tricks.pack: 2 acts on a discriminator"):
        load_config(None, tiny + ["objective.name='gmmn'", "tricks.pack=2"])
    with pytest.raises(GankitError, match="objective.bandwidths: expected a list of one or more"):
        load_config(None, tiny + ["objective.name='gmmn'", "objective.bandwidths=[]"])
    with pytest.raises(GankitError, match="objective.kernel: got 'laplace'; allowed: gaussian"):
        load_config(None, tiny + ["objective.kernel='laplace'"])


def test_mmd_gan_autoencoder_regulariser(tmp_path, tiny):
    from gankit.build import build_players
    from gankit.nets.heads import AutoencodingCritic

    over = tiny + ["objective.name='mmd-gan'", "objective.autoencoder_weight=8.0",
                   "data.name='ring8'", "train.lr_d=1e-3", "train.steps=60"]
    cfg = load_config(None, over)
    _, d = build_players(cfg, (2,))
    assert isinstance(d, AutoencodingCritic)
    x = torch.randn(10, 2)
    assert d(x).shape == (10, 16)
    torch.testing.assert_close(d.reconstruction_error(x),
                               (d.decoder(d.encoder(x)) - x).square().mean(1))
    real = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    before = d.reconstruction_error(real).mean()
    train(cfg, tmp_path / "run", progress=False)
    _, _, trained, _ = load_run(tmp_path / "run")
    # D's decoder learned to reconstruct the data from the embedding
    assert trained.reconstruction_error(real).mean() < 0.5 * before
    with pytest.raises(GankitError, match="objective.autoencoder_weight: 8.0 needs D's"):
        load_config(None, tiny + ["objective.autoencoder_weight=8.0"])
