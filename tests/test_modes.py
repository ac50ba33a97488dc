import math

import pytest
import torch

from gankit.data.mixtures import mixture
from gankit.metrics.modes import mode_metrics


def test_all_modes_equally_gives_zero_reverse_kl():
    grid = mixture("grid25")
    samples = grid.means.repeat(100, 1)  # exactly on each mean, 100 each
    m = mode_metrics(samples, grid)
    assert m["modes"] == 25 and m["high_quality"] == 1.0
    assert m["reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_one_mode_gives_log_k():
    ring = mixture("ring8")
    samples = ring.means[3] + 0.005 * torch.randn(500, 2, dtype=torch.float64)
    m = mode_metrics(samples, ring)
    assert m["modes"] == 1 and m["high_quality"] == 1.0
    assert m["reverse_kl"] == pytest.approx(math.log(8))


def test_off_mode_points_are_low_quality_and_cover_nothing():
    ring = mixture("ring8")  # σ = 0.01, so 3σ = 0.03
    on = ring.means[:2] + torch.tensor([[0.029, 0.0], [0.0, -0.029]], dtype=torch.float64)
    off = ring.means[2:6] + torch.tensor([[0.031, 0.0]], dtype=torch.float64)
    m = mode_metrics(torch.cat([on, off, torch.zeros(4, 2, dtype=torch.float64)]), ring)
    assert m["modes"] == 2
    assert m["high_quality"] == pytest.approx(2 / 10)
    assert m["reverse_kl"] == pytest.approx(math.log(8) - math.log(2))


def test_unbalanced_histogram_reverse_kl():
    grid = mixture("grid25")
    samples = torch.cat([grid.means[:1].repeat(3, 1), grid.means[1:2]])
    p = torch.tensor([0.75, 0.25], dtype=torch.float64)
    m = mode_metrics(samples, grid)
    assert m["reverse_kl"] == pytest.approx(math.log(25) + float((p * p.log()).sum()))


def test_no_high_quality_sample_and_non_finite_samples():
    ring = mixture("ring8")
    m = mode_metrics(torch.tensor([[5.0, 5.0], [float("nan"), 0.0], [float("inf"), 1.0]]), ring)
    assert m["modes"] == 0 and m["high_quality"] == 0.0 and m["reverse_kl"] is None
