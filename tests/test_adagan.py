"""AdaGAN: the closed-form data weights, the mixture as a generator, and a boosted run."""

import json

import pytest
import torch
from torch import nn

from gankit import adagan
from gankit.adagan import Mixture, data_weights, mixture_weight, train_adagan
from gankit.cli import main
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.io import load_checkpoint, save_checkpoint
from gankit.runs import load_run


@pytest.mark.parametrize("beta", [0.5, 0.2, 1 / 3])
def test_data_weights_closed_form(beta):
    g = torch.Generator().manual_seed(0)
    h = torch.rand(1000, generator=g, dtype=torch.float64) * 4  # density ratio p_model/p_data
    w = data_weights(h, beta)
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    # w_i = p_i (λ − (1 − β) h_i)₊ / β: recover λ from an active point, check every point
    active = w > 0
    lam = (w[active][0] * 1000 * beta + (1 - beta) * h[active][0]).item()
    expected = ((lam - (1 - beta) * h).clamp_min(0) / (beta * 1000))
    torch.testing.assert_close(w, expected)
    # zero exactly where the mixture over-covers enough: (1 − β) h ≥ λ
    assert torch.equal(~active, (1 - beta) * h >= lam)
    assert (~active).any() and active.any()
    # more weight where the mixture has less mass than the data
    assert w[h.argmin()] == w.max()


def test_data_weights_are_uniform_when_the_mixture_matches_the_data():
    p = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    torch.testing.assert_close(data_weights(torch.ones(4, dtype=torch.float64), 0.3, p), p)
    assert mixture_weight(1, 0.0) == 1 and mixture_weight(4, 0.0) == 0.25
    assert mixture_weight(4, 0.3) == 0.3


class Constant(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))

    def forward(self, z):
        return self.value.expand(len(z), 1)


@pytest.mark.parametrize("z_dist", ["normal", "uniform"])
def test_mixture_samples_each_component_in_proportion(z_dist):
    from gankit.nets.mlp import sample_latent

    weights = [0.2, 0.5, 0.3]
    mixture = Mixture([Constant(float(t)) for t in range(3)], weights, 2, z_dist)
    n = 40000
    z = sample_latent(n, mixture.z_dim, z_dist, torch.Generator().manual_seed(1))
    x, which = mixture(z, components=True)
    assert torch.equal(x[:, 0], which.float())  # each row from its own component
    for t, w in enumerate(weights):
        share = (which == t).double().mean().item()
        assert abs(share - w) < 4 * (w * (1 - w) / n) ** 0.5
    torch.testing.assert_close(mixture(z), x)  # the latent fixes the component


ADA = ["data.name='ring8'", "adagan.components=2", "adagan.classifier_steps=20",
       "adagan.train_points=500"]


def test_adagan_run_eval_sample_and_resume(tmp_path, tiny, monkeypatch, capsys):
    cfg = load_config(None, tiny + ADA)
    summary = train_adagan(cfg, tmp_path / "full", progress=False)
    records = [json.loads(line) for line in (tmp_path / "full" / "adagan.jsonl").open()]
    assert [r["step"] for r in records] == [1, 2]
    assert records[1]["mixture_weights"] == pytest.approx([0.5, 0.5])
    assert {"modes", "coverage", "mmd2"} <= set(summary["metrics"])
    for name in ("adagan.png", "samples.png", "component2/checkpoint.pt"):
        assert (tmp_path / "full" / name).exists()
    # the mixture loads, evaluates and samples like any run
    assert main(["eval", str(tmp_path / "full"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"] == summary["metrics"]
    assert main(["sample", str(tmp_path / "full"), "-n", "7", "--out",
                 str(tmp_path / "s.npy"), "--correct", "drs"]) == 0
    _, mixture, _, _ = load_run(tmp_path / "full")
    assert isinstance(mixture, Mixture) and len(mixture.components) == 2

    # interrupted after component 1 (before its mixture was recorded), then resumed
    real_eval = adagan.evaluate_generator

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(adagan, "evaluate_generator", crash)
    with pytest.raises(KeyboardInterrupt):
        train_adagan(cfg, tmp_path / "split", progress=False)
    monkeypatch.setattr(adagan, "evaluate_generator", real_eval)
    with pytest.raises(GankitError, match="already holds a run"):
        train_adagan(cfg, tmp_path / "split", progress=False)
    # the wall clock counts the interrupted chunk's seconds (here: as if it took 1000 s)
    first = tmp_path / "split" / "component1" / "checkpoint.pt"
    save_checkpoint(first, {**load_checkpoint(first), "wall_time": 1000.0})
    resumed = train_adagan(cfg, tmp_path / "split", resume=True, progress=False)
    assert resumed["metrics"] == summary["metrics"]
    times = [json.loads(line)["wall_time"] for line in (tmp_path / "split" / "adagan.jsonl").open()]
    assert 1000 < times[0] < times[1] < resumed["wall_time_s"] < 1000 + summary["wall_time_s"] + 60
    a, b = (load_run(tmp_path / k)[3] for k in ("full", "split"))
    for sa, sb in zip(a["states"], b["states"]):
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k


def test_adagan_config_errors(tiny):
    with pytest.raises(GankitError, match="train.seeds: AdaGAN trains one seed"):
        load_config(None, tiny + ADA + ["train.seeds=2"])
    with pytest.raises(GankitError, match="adagan.beta: expected a number < 1.0"):
        load_config(None, tiny + ["adagan.beta=1.0"])
