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


def test_coverage_of_the_data_and_of_a_collapsed_model():
    from gankit.metrics.modes import coverage

    grid = mixture("grid25")
    g = torch.Generator().manual_seed(3)
    # the model is the data: 95% of the data lies in the model's 95% region
    assert coverage(grid.sample(2500, g), grid, seed=1) == pytest.approx(0.95, abs=0.02)
    # all mass on one of 25 modes: about 1/25 of the data is covered
    one = grid.means[7] + 0.05 * torch.randn(2500, 2, generator=g, dtype=torch.float64)
    assert coverage(one, grid, seed=1) == pytest.approx(1 / 25, abs=0.015)
    assert coverage(torch.full((10, 2), float("nan")), grid) == 0.0


def test_mixture_mmd_tells_a_shifted_model_from_the_data():
    from gankit.metrics.mmd import mixture_mmd

    ring = mixture("ring8")
    g = torch.Generator().manual_seed(4)
    same = mixture_mmd(ring.sample(1000, g), ring, seed=5)
    shifted = mixture_mmd(ring.sample(1000, g) + 0.05, ring, seed=5)
    assert same["mmd_p"] > 0.05 and shifted["mmd_p"] < 0.01
    assert shifted["mmd2"] > 10 * abs(same["mmd2"])


def test_well_covered_modes_needs_a_quarter_of_the_fair_share():
    from gankit.data.mixtures import mixture
    from gankit.metrics.modes import mode_metrics

    grid = mixture("grid25")
    g = torch.Generator().manual_seed(0)
    # 24 modes with 100 samples each, one with 10: the papers' count says 25 covered
    per_mode = [100] * 24 + [10]
    x = torch.cat([grid.means[k] + 0.01 * torch.randn(n, 2, generator=g)
                   for k, n in enumerate(per_mode)])
    m = mode_metrics(x, grid)
    assert m["modes"] == 25 and m["well_covered_modes"] == 24  # 10 < 2410/25/4 ≈ 24.1
    assert m["mode_counts"] == per_mode
    x = torch.cat([x, grid.means[24] + 0.01 * torch.randn(15, 2, generator=g)])  # 25 there
    assert mode_metrics(x, grid)["well_covered_modes"] == 25  # 25 ≥ 2425/25/4 ≈ 24.25


def test_formatted_values_say_what_a_reader_needs():
    from gankit.metrics.describe import direction, format_value

    assert format_value("mmd_p", 1 / 201) == "≤ 1/201 (floor)"
    assert format_value("mmd_p", 3 / 201) == f"{3 / 201:.4g}"
    assert format_value("reverse_kl", None) == "—"
    assert format_value("modes", 24.5, 0.17) == "24.5 ± 0.17"
    assert direction("fd") == "↓" and direction("precision") == "↑"
