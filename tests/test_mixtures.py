import math

import numpy as np
import pytest
import torch
from scipy import stats

from gankit.data.mixtures import GaussianMixture, mixture
from gankit.errors import GankitError


def test_log_prob_matches_scipy_1d():
    p = GaussianMixture([-1.0, 2.0], [0.5, 1.5], [0.3, 0.7])
    x = np.linspace(-5, 6, 51)
    ref = np.log(0.3 * stats.norm.pdf(x, -1, 0.5) + 0.7 * stats.norm.pdf(x, 2, 1.5))
    assert np.allclose(p.log_prob(torch.tensor(x)).numpy(), ref, rtol=1e-10)


def test_log_prob_matches_scipy_2d_presets():
    rng = np.random.default_rng(0)
    for name in ("ring8", "grid25", "ring8-wide"):
        p = mixture(name)
        x = p.sample(200, torch.Generator().manual_seed(1)).double() + 0.01 * torch.tensor(
            rng.standard_normal((200, 2)))
        sd = float(p.stds[0])
        dens = sum(stats.multivariate_normal.pdf(x.numpy(), m.numpy(), sd**2) for m in p.means)
        ref = np.log(dens / p.num_modes)
        assert np.allclose(p.log_prob(x).numpy(), ref, rtol=1e-8)


def test_log_prob_far_away_is_finite():
    p = mixture("ring8")
    lp = p.log_prob(torch.tensor([[100.0, 100.0]]))
    assert torch.isfinite(lp).all() and lp.item() < -1e6


def test_presets_follow_design():
    ring = mixture("ring8")
    angles = torch.atan2(ring.means[:, 1], ring.means[:, 0]) % (2 * math.pi)
    assert torch.allclose(angles.sort().values, torch.arange(8).double() * math.pi / 4)
    assert torch.allclose(ring.means.norm(dim=1), torch.ones(8, dtype=torch.float64))
    assert torch.all(ring.stds == 0.01)
    assert torch.cdist(ring.means, ring.means).add(torch.eye(8)).min() > 0.7  # all distinct
    grid = mixture("grid25")
    assert sorted({round(v) for v in grid.means.flatten().tolist()}) == [-4, -2, 0, 2, 4]
    assert grid.num_modes == 25 and torch.all(grid.stds == 0.05)
    wide = mixture("ring8-wide")
    assert torch.allclose(wide.means.norm(dim=1), 2 * torch.ones(8, dtype=torch.float64))
    assert torch.all(wide.stds == 0.02)


def test_sampling_is_seeded_and_matches_moments():
    p = GaussianMixture([[0.0, 0.0], [10.0, 0.0]], [1.0, 0.5], [0.25, 0.75])
    a, labels = p.sample(40000, torch.Generator().manual_seed(3), return_labels=True)
    b = p.sample(40000, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert labels.float().mean().item() == pytest.approx(0.75, abs=0.01)
    assert a[labels == 1].std(dim=0).mean().item() == pytest.approx(0.5, rel=0.03)
    assert a[:, 0].mean().item() == pytest.approx(7.5, abs=0.1)


def test_bad_mixtures_are_user_errors():
    with pytest.raises(GankitError, match="stds"):
        GaussianMixture([0.0, 1.0], [1.0, -1.0])
    with pytest.raises(GankitError, match="weights"):
        GaussianMixture([0.0, 1.0], 1.0, [1.0])
    with pytest.raises(GankitError, match="allowed: ring8"):
        mixture("ring9")
