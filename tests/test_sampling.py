"""Density-ratio-corrected sampling: DRS and MH move generator samples toward the data."""

import json

import pytest
import torch

from gankit import theory as th
from gankit.cli import main
from gankit.config import load_config
from gankit.data.mixtures import GaussianMixture
from gankit.errors import GankitError
from gankit.sampling import density_ratio_logit, metropolis_hastings, rejection_sample

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


def test_corrections_refuse_discriminators_that_are_not_density_ratios():
    d = torch.nn.Linear(2, 1)
    for extra, match in ((["objective.name='hinge'"], "does not estimate log p/q"),
                         (["tricks.pack=2"], "packed D"),
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
