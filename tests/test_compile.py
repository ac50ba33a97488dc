"""``train.compile_optimizer``: each player's Adam step compiled by torch.compile — the
same numbers as the fused eager Adam within float tolerance, compiled once per run (the
learning-rate schedule changes a tensor in place), resumed exactly. ``train.compile_update``:
the whole update compiled, held to the eager step the same way."""

import copy
import json
from pathlib import Path

import pytest
import torch
import torch._dynamo.utils

from gankit.build import build_objective, build_players, build_target
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.io import load_checkpoint, read_metrics
from gankit.rules import NOT_COMPILED, combination_problems
from gankit.runs import train
from gankit.training.compiled import CompiledUpdate, adam_state
from gankit.training.costs import Batch, discriminator_cost, generator_cost
from gankit.training.loop import make_optimizers
from gankit.training.step import discriminator_step, generator_step


def _params(run_dir):
    state = load_checkpoint(run_dir / "checkpoint.pt")
    return {**{f"g.{k}": v for k, v in state["generator"].items()},
            **{f"d.{k}": v for k, v in state["discriminator"].items()}}


def test_a_compiled_adam_step_is_the_fused_one():
    torch.manual_seed(0)
    nets = [torch.nn.Linear(8, 4) for _ in range(4)]
    for a, b in ((nets[0], nets[2]), (nets[1], nets[3])):
        b.load_state_dict(a.state_dict())
    cfg = load_config(None, ["train.lr_d=0.01", "train.lr_g=0.02"])
    fused = make_optimizers(cfg, nets[0], nets[1])
    compiled = make_optimizers(load_config(None, ["train.lr_d=0.01", "train.lr_g=0.02",
                                                  "train.compile_optimizer=true"]),
                               nets[2], nets[3])
    assert isinstance(compiled[0].param_groups[0]["lr"], torch.Tensor)
    x = torch.randn(16, 8)
    for _ in range(3):
        for opts, pair in ((fused, nets[:2]), (compiled, nets[2:])):
            for opt, net in zip(opts, pair):
                opt.zero_grad()
                net(x).square().mean().backward()
                opt.step()
    for a, b in ((nets[0], nets[2]), (nets[1], nets[3])):
        for p, q in zip(a.parameters(), b.parameters()):
            # (the compiled kernel rounds differently: 3 updates of size ~lr = 0.02)
            torch.testing.assert_close(p, q, rtol=1e-5, atol=2e-6)
    assert not torch.equal(nets[0].weight, torch.nn.Linear(8, 4).weight)


def test_compiled_adam_trains_like_eager_compiles_once_and_resumes_exactly(tmp_path, tiny):
    run = tiny + ["train.seeds=2", "train.lr_schedule='linear'"]  # seeds stacked
    compiled = run + ["train.compile_optimizer=true"]
    train(load_config(None, run), tmp_path / "eager", progress=False)
    before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    train(load_config(None, compiled), tmp_path / "full", progress=False)
    # one graph per player for the whole run: the schedule's 30 rates did not recompile
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - before == 2
    eager, full = _params(tmp_path / "eager"), _params(tmp_path / "full")
    for k in eager:
        torch.testing.assert_close(eager[k], full[k], rtol=1e-4, atol=1e-5)
    losses = [[r["loss_d"] for r in read_metrics(tmp_path / n / "metrics.jsonl")]
              for n in ("eager", "full")]
    torch.testing.assert_close(torch.tensor(losses[0]), torch.tensor(losses[1]), rtol=1e-4,
                               atol=1e-5)
    assert train(load_config(None, compiled), tmp_path / "split", progress=False,
                 stop_after=13) is None
    train(load_config(None, compiled), tmp_path / "split", resume=True, progress=False)
    split = _params(tmp_path / "split")
    assert all(torch.equal(full[k], split[k]) for k in full)


# ``train.compile_update``: D's and G's updates as one function of tensors (torch.func),
# compiled as one graph.

def _pair(cfg):
    """Two copies of the config's players, their optimizers and costs, and its data."""
    target = build_target(cfg)
    torch.manual_seed(0)
    g, d = build_players(cfg, target.shape)
    players = [(g, d), (copy.deepcopy(g), copy.deepcopy(d))]
    objective = build_objective(cfg)
    costs = discriminator_cost(cfg, objective), generator_cost(cfg, objective)
    return target, players, [make_optimizers(cfg, *p) for p in players], costs


@pytest.mark.parametrize("overrides", [
    ["data.name='grid25'"],
    ["data.name='grid25'", "tricks.feature_matching=true", "objective.name='least_squares'"],
    ["data.name='digits'", "model.generator='dcgan'", "model.discriminator='dcgan'",
     "model.d_norm='batch'", "model.d_hidden=32", "tricks.pack=2", "objective.name='rpgan'"],
])
def test_the_update_function_is_the_eager_step(overrides, tiny):
    cfg = load_config(None, [*tiny, *overrides, "train.compile_update=true"])
    target, (eager, ours), (opt_e, opt_o), (d_cost, g_cost) = _pair(cfg)
    update = CompiledUpdate(*ours, *opt_o, d_cost, g_cost, compile=False)  # the same function
    rng = torch.Generator().manual_seed(1)
    for _ in range(3):
        n = cfg.train.batch_size * cfg.tricks.pack
        batch = Batch(target.sample(n, rng), torch.randn(n, cfg.model.z_dim, generator=rng))
        want, got = {}, {}
        fake = discriminator_step(*eager, opt_e[1], d_cost, batch, stats=want, detailed=True)
        generator_step(*eager, opt_e[0], g_cost, fake, stats=want, detailed=True)
        update(batch, got, detailed=True)
        assert want.keys() == got.keys()
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-6)
    for a, b in zip(eager, ours):
        for (name, p), q in zip(a.named_parameters(), b.parameters()):
            # Adam's first steps are ±lr wherever the gradient is rounding noise: the biases
            # that feed a batch norm (their true gradient is 0) may differ by a few lr
            tol = 5e-3 if name.endswith("bias") and "dcgan" in str(overrides) else 1e-5
            torch.testing.assert_close(q, p, rtol=0, atol=tol)
        for x, y in zip(a.buffers(), b.buffers()):  # batch norm's statistics: updated once
            torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-6)
    assert int(opt_o[0].state[next(ours[0].parameters())]["step"]) == 3


def test_compiled_update_trains_like_eager_compiles_twice_and_resumes_exactly(tmp_path, tiny):
    run = [*tiny, "data.name='grid25'", "train.seeds=2", "train.lr_schedule='linear'",
           "train.log_every=2", "tricks.generator_ema=0.9"]
    compiled = run + ["train.compile_update=true"]
    train(load_config(None, run), tmp_path / "eager", progress=False)
    before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    train(load_config(None, compiled), tmp_path / "full", progress=False)
    # one graph per kind of step (logging or not) for the whole run: the schedule's 30
    # learning rates did not recompile it
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - before == 2
    losses = [[[r[k] for k in ("loss_d", "loss_g", "grad_norm_d")]
               for r in read_metrics(tmp_path / n / "metrics.jsonl")] for n in ("eager", "full")]
    # the first steps agree to float rounding (later ones drift apart as roundings do)
    torch.testing.assert_close(torch.tensor(losses[1][:3]), torch.tensor(losses[0][:3]),
                               rtol=1e-4, atol=1e-6)
    assert len(losses[1]) == 15
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert summary["compile_update_first_step_s"] > 0
    assert train(load_config(None, compiled), tmp_path / "split", progress=False,
                 stop_after=13) is None
    train(load_config(None, compiled), tmp_path / "split", resume=True, progress=False)
    full, split = _params(tmp_path / "full"), _params(tmp_path / "split")
    assert all(torch.equal(full[k], split[k]) for k in full)


@pytest.mark.parametrize("field, override", [
    ("train.compile", "train.compile=true"),
    ("train.compile_optimizer", "train.compile_optimizer=true"),
    ("objective.name", "objective.name='wasserstein_gp'"),
    ("objective.r1", "objective.r1=1.0"),
    ("objective.r2", "objective.r2=1.0"),
    ("objective.weight_clip", "objective.weight_clip=0.01"),
    ("tricks.unroll_steps", "tricks.unroll_steps=2"),
    ("tricks.historical_averaging", "tricks.historical_averaging=0.1"),
    ("tricks.top_k", "tricks.top_k=0.99"),
    ("train.d_steps", "train.d_steps=2"),
    ("train.g_steps", "train.g_steps=2")])
def test_what_the_compiled_update_cannot_trace_is_one_line(field, override, tiny):
    assert {f for f, _, _ in NOT_COMPILED} >= {field}
    cfg = load_config(None, [*tiny, override])  # fine without compile_update
    assert not [p for p in combination_problems(cfg) if "compile_update" in p]
    with pytest.raises(GankitError) as e:
        load_config(None, [*tiny, override, "train.compile_update=true"])
    problem = str(e.value)
    assert problem.startswith(f"{field}: ") and "train.compile_update" in problem
    assert "\n" not in problem


def test_the_compiled_recipe_config_is_the_recipe_compiled():
    configs = Path(__file__).parent.parent / "configs"
    base = load_config(configs / "grid25-recipe-10seeds.toml").to_dict()
    ours = load_config(configs / "grid25-recipe-10seeds-compiled.toml").to_dict()
    assert ours["train"].pop("compile_update") and not base["train"].pop("compile_update")
    assert ours == base


@pytest.mark.parametrize("config, overrides", [
    ("grid25-infogan.toml", []),
    ("digits-conditional.toml", []),
    ("digits-conditional.toml", ["conditional.method='acgan'"]),
])
def test_the_compiled_update_runs_the_extra_terms_like_eager(tmp_path, monkeypatch, config,
                                                             overrides, tiny):
    """InfoGAN's information term, the projection head and AC-GAN's class terms, through
    the loop (torch.compile replaced by the function itself: the wiring, not inductor)."""
    monkeypatch.setattr(torch, "compile", lambda f, **kwargs: f)
    path = Path(__file__).parent.parent / "configs" / config
    run = [*tiny, *overrides, "train.steps=3", "train.log_every=1"]
    for name, extra in (("eager", []), ("ours", ["train.compile_update=true"])):
        train(load_config(path, run + extra), tmp_path / name, progress=False)
    eager, ours = (read_metrics(tmp_path / n / "metrics.jsonl") for n in ("eager", "ours"))
    assert len(eager) == len(ours) == 3
    for a, b in zip(eager, ours):
        for k in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g"):
            assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6), k


def test_cuda_graphs_are_refused_off_cuda_and_need_the_compiled_update(tmp_path, tiny):
    with pytest.raises(GankitError) as e:
        load_config(None, [*tiny, "train.cuda_graphs=true"])
    assert str(e.value).startswith("train.cuda_graphs: ") and "compile_update" in str(e.value)
    cfg = load_config(None, [*tiny, "train.cuda_graphs=true", "train.compile_update=true",
                             "train.device='cpu'"])
    with pytest.raises(GankitError, match=r"^train.cuda_graphs: true is a CUDA option and the "
                                          r"device is cpu; allowed here: false$"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_the_cuda_graph_update_on_a_cpu_is_the_compiled_update(tiny):
    """The CUDA-graph variant's own code (static marks, per-step begin, copied outputs)
    runs on a CPU, where torch.compile's reduce-overhead mode records no graph: the same
    numbers as the eager step."""
    cfg = load_config(None, [*tiny, "data.name='grid25'", "train.compile_update=true"])
    target, (eager, ours), (opt_e, opt_o), (d_cost, g_cost) = _pair(cfg)
    update = CompiledUpdate(*ours, *opt_o, d_cost, g_cost, cuda_graphs=True)
    rng = torch.Generator().manual_seed(1)
    kept = []
    for _ in range(3):
        n = cfg.train.batch_size
        batch = Batch(target.sample(n, rng), torch.randn(n, cfg.model.z_dim, generator=rng))
        want, got = {}, {}
        fake = discriminator_step(*eager, opt_e[1], d_cost, batch, stats=want)
        generator_step(*eager, opt_e[0], g_cost, fake, stats=want)
        update(batch, got)
        kept.append((got["loss_d"], want["loss_d"]))
        torch.testing.assert_close(got["loss_g"], want["loss_g"], rtol=1e-4, atol=1e-6)
    for got, want in kept:  # a step's statistics outlive the next steps (copied out)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    for a, b in zip(eager, ours):
        for p, q in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(q, p, rtol=0, atol=1e-5)


def test_a_capturable_adam_keeps_its_step_counts_beside_its_parameters():
    # (the meta device stands in for a GPU: CUDA graphs need every tensor the update
    # writes on the device, the step counts included; a plain Adam keeps them on the CPU)
    for capturable, where in ((True, "meta"), (False, "cpu")):
        p = torch.nn.Parameter(torch.empty(3, device="meta"))
        opt = torch.optim.Adam([p], lr=0.1, foreach=False,
                               capturable=capturable)
        params, exp_avgs, exp_avg_sqs, steps = adam_state(opt)
        assert params == [p] and exp_avgs[0].device.type == "meta"
        assert exp_avg_sqs[0].device.type == "meta" and steps[0].device.type == where
