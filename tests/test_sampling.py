"""Density-ratio-corrected sampling: DRS and MH move generator samples toward the data."""

import json

import pytest
import torch

from gankit import theory as th
from gankit.cli import main
from gankit.config import load_config
from gankit.data.mixtures import GaussianMixture
from gankit.errors import GankitError
from gankit.sampling import metropolis_hastings, packs, rejection_sample
from gankit.sampling.refit import density_ratio_logit

# Data: two modes equally likely. "Generator": the same modes with weights 0.9 / 0.1.
P = GaussianMixture([[-3.0], [3.0]], 0.5, [0.5, 0.5])
Q = GaussianMixture([[-3.0], [3.0]], 0.5, [0.9, 0.1])
LOGIT = th.optimal_logit(P, Q)  # the optimal discriminator's logit, log p/q


def draw(k, rng):
    return Q.sample(k, rng)


def right_mode_share(x):
    return (x[:, 0] > 0).double().mean().item()


def test_exact_rejection_sampling_recovers_the_data_distribution():
    x, rate = rejection_sample(draw, LOGIT, 20_000, torch.Generator().manual_seed(0),
                               gamma_quantile=None)
    assert right_mode_share(x) == pytest.approx(0.5, abs=0.015)
    # acceptance = E_q[p/q] / max p/q = 1 / 5
    assert rate == pytest.approx(0.2, abs=0.01)


def test_shifted_rejection_sampling_accepts_more_and_still_corrects():
    x, rate = rejection_sample(draw, LOGIT, 20_000, torch.Generator().manual_seed(0))
    # γ = 80th percentile of F: the common mode is accepted with probability ½, the rare
    # one always — share 0.1 / (0.1 + 0.45) ≈ 0.18, acceptance ≈ 0.55
    assert rate == pytest.approx(0.55, abs=0.02)
    assert right_mode_share(x) == pytest.approx(0.1 / 0.55, abs=0.015)


def test_metropolis_hastings_recovers_the_data_distribution():
    x, rate = metropolis_hastings(draw, LOGIT, 20_000, torch.Generator().manual_seed(1),
                                  steps=50)
    assert right_mode_share(x) == pytest.approx(0.5, abs=0.015)
    assert 0 < rate < 1


def test_samplers_over_packs_recover_the_data_distribution():
    """A packed D's optimal logit is Σ_i log p(x_i)/q(x_i) over its pack; DRS and MH over
    packs of m generator samples then target p^⊗m, so every slot is a data sample —
    although each pack mixes common and rare modes."""
    for m in (2, 3):
        draw_packs, pack_logit = packs(draw, lambda x, m=m: LOGIT(x).view(-1, m).sum(1), m)
        assert draw_packs(5, torch.Generator().manual_seed(0)).shape == (5, m, 1)
        x, rate = rejection_sample(draw_packs, pack_logit, 10_000,
                                   torch.Generator().manual_seed(3), gamma_quantile=None)
        assert x.shape == (10_000, m, 1)
        assert right_mode_share(x.flatten(0, 1)) == pytest.approx(0.5, abs=0.015)
        assert rate == pytest.approx(0.2**m, rel=0.1)  # E_q[p/q]^m / (max p/q)^m
    # MH over packs mixes more slowly (the ratio spans its m-th power): 200 steps for m = 2
    draw_pairs, pair_logit = packs(draw, lambda x: LOGIT(x).view(-1, 2).sum(1), 2)
    x, _ = metropolis_hastings(draw_pairs, pair_logit, 10_000,
                               torch.Generator().manual_seed(2), steps=200)
    assert right_mode_share(x.flatten(0, 1)) == pytest.approx(0.5, abs=0.015)


def test_corrections_refuse_discriminators_that_are_not_density_ratios():
    d = torch.nn.Linear(2, 1)
    for extra, match in ((["objective.name='hinge'"], "does not estimate log p/q"),
                         (["tricks.label_smoothing=0.1"], "label smoothing")):
        with pytest.raises(GankitError, match=match):
            density_ratio_logit(load_config(None, extra), d)


def test_sample_and_eval_with_correction_through_the_cli(tmp_path, tiny, capsys):
    sets = [a for s in tiny for a in ("--set", s)]
    assert main(["train", "configs/grid25-nonsaturating.toml", "--out", str(tmp_path / "r"),
                 "--no-progress", *sets]) == 0
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "r"), "-n", "300", "--out", str(tmp_path / "s.npy"),
                 "--correct", "mh", "--mh-steps", "5"]) == 0
    assert "mh: acceptance rate" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "r"), "--json", "--correct", "drs"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["corrected"]["method"] == "drs"
    assert 0 < result["corrected"]["acceptance_rate"] <= 1
    assert result["corrected"]["metrics"]["samples"] == 200 == result["metrics"]["samples"]
    assert main(["eval", str(tmp_path / "r"), "--correct", "mh", "--mh-steps", "0"]) == 2


def test_a_refitted_discriminator_estimates_the_log_density_ratio():
    """fit_density_ratio's D approaches D*: its logit near each mode is log p/q there."""
    from gankit.sampling.refit import fit_density_ratio

    cfg = load_config(None, ["model.d_width=32", "train.batch_size=256", "train.lr_d=3e-3"])
    d = fit_density_ratio(cfg, P.sample, draw, steps=1500, seed=0)
    x = torch.tensor([[-3.0], [-2.7], [3.0], [3.3]])
    with torch.no_grad():
        assert torch.allclose(d(x), LOGIT(x).float(), atol=0.25)  # log 5/9 and log 5


def test_fourier_features_keep_x_and_are_fixed_by_their_seed():
    from gankit.nets.layers import FourierFeatures

    f = FourierFeatures(2, 8, scale=1.0, seed=3)
    x = torch.randn(5, 2)
    y = f(x)
    assert y.shape == (5, 2 + 16) == (5, f.out_dim) and torch.equal(y[:, :2], x)
    torch.testing.assert_close(y[:, 2:10] ** 2 + y[:, 10:] ** 2, torch.ones(5, 8))
    assert torch.equal(FourierFeatures(2, 8, seed=3).B, f.B)  # part of the architecture
    assert not torch.equal(FourierFeatures(2, 8, seed=4).B, f.B)


def test_a_refit_on_fourier_features_resolves_narrow_modes():
    """Data modes of σ = 0.05 against a generator's of σ = 0.15 at the same means: log p/q
    is +log 3 at a mean and −6 at 0.2 from it. Within 600 steps a D on Fourier features
    follows that; the same D on raw coordinates (spectral bias) does not."""
    from gankit.sampling.refit import fit_density_ratio

    p = GaussianMixture([[-1.0], [1.0]], 0.05, [0.5, 0.5])
    q = GaussianMixture([[-1.0], [1.0]], 0.15, [0.5, 0.5])
    x = torch.tensor([[1.0], [1.1], [1.2], [-1.0], [-0.8]])
    exact = th.optimal_logit(p, q)(x).float()
    cfg = load_config(None, ["model.d_width=64", "train.lr_d=3e-3"])
    errors = {}
    for fourier in (0, 32):
        d = fit_density_ratio(cfg, p.sample, q.sample, steps=600, seed=0, batch=256, decay=True,
                              fourier=fourier)
        with torch.no_grad():
            errors[fourier] = (d(x) - exact).abs().max().item()
    assert errors[32] < 1.0 < errors[0], errors
    with pytest.raises(GankitError, match="--refit-fourier"):
        fit_density_ratio(cfg, lambda n, g: torch.zeros(n, 1, 8, 8), q.sample, steps=1, seed=0,
                          fourier=4)


def test_a_packed_run_is_corrected_by_its_own_or_a_refitted_discriminator(tmp_path, tiny, capsys):
    sets = [a for s in tiny for a in ("--set", s)]
    run = str(tmp_path / "r")
    assert main(["train", "configs/grid25-pacgan4.toml", "--out", run, "--no-progress",
                 *sets]) == 0
    capsys.readouterr()
    assert main(["eval", run, "--json", "--correct", "mh", "--mh-steps", "5"]) == 0
    own = json.loads(capsys.readouterr().out)["corrected"]  # its own D, over packs of 4
    assert own["method"] == "mh" and own["metrics"]["samples"] == 200
    assert 0 < own["acceptance_rate"] <= 1
    assert main(["eval", run, "--json", "--correct", "drs", "--refit-d", "50"]) == 0
    corrected = json.loads(capsys.readouterr().out)["corrected"]
    assert corrected["method"] == "drs (D refit 50 steps)"
    assert 0 < corrected["acceptance_rate"] <= 1 and corrected["metrics"]["samples"] == 200
    assert main(["sample", run, "-n", "100", "--out", str(tmp_path / "s.npy"),
                 "--correct", "mh", "--mh-steps", "3", "--refit-d", "20",
                 "--refit-fourier", "8"]) == 0
    assert "mh (D refit 20 steps, 8 Fourier features): acceptance rate" in \
        capsys.readouterr().out
    assert main(["eval", run, "--correct", "mh", "--refit-fourier", "8"]) == 2
    assert "--refit-fourier: expected 0 to 65536 features, with --refit-d; got 8 without " \
        "--refit-d" in capsys.readouterr().err
    assert main(["eval", run, "--correct", "drs", "--refit-d", "-1"]) == 2
    assert "--refit-d: expected" in capsys.readouterr().err
