"""The order of play: G's best response to a frozen D (maximin's inner problem),
``train.g_steps`` (G in the inner loop) and ``gankit bench order``."""

import json
import re
from pathlib import Path

import pytest
import torch

from gankit import theory as th
from gankit.bench import order
from gankit.cli import main
from gankit.config import load_config
from gankit.data.mixtures import GaussianMixture
from gankit.io import load_checkpoint
from gankit.runs import train
from gankit.theory.report import one_d_pair


def test_golden_point_closed_form_is_the_argmax_of_optimal_d():
    p, q = GaussianMixture([1.0], [0.5]), GaussianMixture([0.0], [1.0])
    x_star = th.gaussian_golden_point(1.0, 0.5, 0.0, 1.0)
    assert x_star == pytest.approx(4 / 3)
    grid = th.argmax_on_grid(th.optimal_discriminator(p, q), -6, 6, 1, 120_001, torch.float64)
    assert float(grid[0]) == pytest.approx(x_star, abs=1e-4)
    # beyond p's mean, away from q: not p's mode
    assert x_star > 1.0
    with pytest.raises(th.GankitError, match="p_std < q_std"):
        th.gaussian_golden_point(1.0, 1.0, 0.0, 0.5)


def test_g_trained_against_a_frozen_d_collapses_onto_its_argmax():
    p, q = GaussianMixture([1.0], [0.5]), GaussianMixture([0.0], [1.0])
    g = th.best_response(th.optimal_logit(p, q), 1, steps=400, seed=0)
    with torch.no_grad():
        x = g(torch.randn(4000, 1, generator=torch.Generator().manual_seed(1))).double()
    assert th.fraction_near(x, torch.tensor([4 / 3]), 0.05) > 0.99
    assert float(x.std()) < 0.02  # (N(0, 1) noise in: all of it mapped to one point)


def test_best_response_on_a_two_maximum_d_lands_on_a_local_maximum():
    """Gradient descent finds the maximum whose basin G starts in; all mass moves together."""
    p, q = one_d_pair()
    logit = th.optimal_logit(p, q)
    g = th.best_response(logit, 1, steps=400, seed=0)
    with torch.no_grad():
        x = g(torch.randn(4000, 1, generator=torch.Generator().manual_seed(1))).double()
    m = x.mean().reshape(1, 1).requires_grad_(True)
    (slope,) = torch.autograd.grad(logit(m).sum(), m)
    assert float(x.std()) < 0.02 and abs(float(slope)) < 0.05  # a stationary point of D
    for h in (-0.1, 0.1):  # ... and a maximum
        assert float(logit(m.detach() + h)) < float(logit(m.detach()))


@pytest.mark.parametrize("d_steps,g_steps", [(3, 1), (1, 3), (2, 2)])
def test_each_step_is_d_steps_d_updates_then_g_steps_g_updates(tmp_path, tiny, d_steps,
                                                              g_steps):
    cfg = load_config(None, tiny + [f"train.d_steps={d_steps}", f"train.g_steps={g_steps}"])
    train(cfg, tmp_path / "r", progress=False)
    state = load_checkpoint(tmp_path / "r" / "checkpoint.pt")
    adam_steps = {name: int(next(iter(state[name]["state"].values()))["step"])
                  for name in ("opt_d", "opt_g")}
    assert adam_steps == {"opt_d": cfg.train.steps * d_steps, "opt_g": cfg.train.steps * g_steps}


def test_g_steps_one_is_the_alternating_step(tmp_path, tiny):
    """g_steps = 1 changes nothing: the same numbers as a config without the field."""
    train(load_config(None, tiny), tmp_path / "a", progress=False)
    train(load_config(None, tiny + ["train.g_steps=1"]), tmp_path / "b", progress=False)
    a, b = (load_checkpoint(tmp_path / n / "checkpoint.pt")["generator"] for n in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)
    train(load_config(None, tiny + ["train.g_steps=2"]), tmp_path / "c", progress=False)
    c = load_checkpoint(tmp_path / "c" / "checkpoint.pt")["generator"]
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_bench_order_table_trace_and_pictures(tmp_path, capsys):
    assert main(["bench", "order", "--dataset", "ring8", "--seeds", "2", "--steps", "160",
                 "--methods", "D inner d_steps=5,G inner g_steps=20", "--out",
                 str(tmp_path / "o"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r["arm"]: r for r in result["rows"]}
    assert rows["D inner d_steps=5"]["d_updates"] == 800
    assert rows["G inner g_steps=20"]["d_updates"] == 8
    for row in rows.values():
        assert row["g_updates"] == 160 and len(row["golden_trace"]) == 8
        assert all(0 <= f <= 1 for _, f in row["golden_trace"])
        assert 0 <= row["golden"] <= 1 and 0 <= row["beyond"] <= 1 and row["modes"] is not None
    assert (tmp_path / "o" / "order-ring8.png").stat().st_size > 10_000
    trace = json.loads((tmp_path / "o" / "ring8-G-inner-g-steps-20" / order.TRACE).read_text())
    assert [t["g_updates"] for t in trace] == [20 * k for k in range(1, 9)]
    assert sum("picture" in t for t in trace) == 4 and len(trace[-1]["fractions"]) == 2


def test_bench_order_refuses_bad_arms_and_budgets(capsys):
    assert main(["bench", "order", "--methods", "G first"]) == 2
    assert "unknown arm 'G first'" in capsys.readouterr().err
    assert main(["bench", "order", "--steps", "100"]) == 2
    assert "multiple of 160" in capsys.readouterr().err


def test_the_docs_python_example_runs():
    root = Path(__file__).resolve().parent.parent
    (code,) = re.findall(r"```python\n(.*?)```", (root / "docs" / "order-of-play.md").read_text(),
                         flags=re.S)
    namespace: dict = {}
    exec(compile(code, "docs/order-of-play.md", "exec"), namespace)
    assert float(namespace["x_star"][0]) == pytest.approx(4 / 3, abs=1e-3)
