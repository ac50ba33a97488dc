"""Multi-process training: 2 gloo processes on the CPU, launched as a user would (torchrun)."""

import os
import subprocess
import sys

import pytest
import torch

from gankit.build import build_models, build_target
from gankit.config import load_config
from gankit.io import load_checkpoint, read_metrics
from gankit.losses.objectives import get_objective
from gankit.nets.mlp import sample_latent
from gankit.training.costs import Batch, discriminator_cost, generator_cost
from gankit.training.distributed import RANK_SEED_OFFSET
from gankit.training.loop import make_optimizers
from gankit.training.step import discriminator_step, generator_step

# one worker runs these one after another: two torchrun launches at once compete for ports
pytestmark = pytest.mark.xdist_group("torchrun")

SETTINGS = ["model.g_width=16", "model.d_width=16", "train.batch_size=16",
            "train.log_every=1", "train.checkpoint_every=1", "train.device='cpu'",
            "train.eval_samples=100", "train.lr_d=1e-3"]


def torchrun(out, steps: int, *extra: str) -> None:
    sets = [a for s in SETTINGS + [f"train.steps={steps}"] for a in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    config = out.parent / "defaults.toml"
    config.write_text("")  # every field at its default, then SETTINGS
    # checkpoint_every = 1: before every checkpoint the loop checks that both ranks hold
    # identical parameters, so this run checks it after every step
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--standalone", "-m", "gankit", "train", str(config), "--out", str(out), "--no-progress",
         *sets, *extra], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def single_process_on_both_batches(steps: int) -> dict:
    """The same training in one process, each step on rank 0's and rank 1's batches joined."""
    cfg = load_config(None, SETTINGS + [f"train.steps={steps}"])
    target = build_target(cfg)
    g, d = build_models(cfg, target.shape)
    opt_g, opt_d = make_optimizers(cfg, g, d)
    objective = get_objective(cfg.objective.name)
    d_cost, g_cost = discriminator_cost(cfg, objective), generator_cost(cfg, objective)
    rngs = [torch.Generator().manual_seed(cfg.train.seed + r * RANK_SEED_OFFSET) for r in (0, 1)]
    n = cfg.train.batch_size
    for _ in range(steps):
        draws = [(target.sample(n, r, "cpu"), sample_latent(n, cfg.model.z_dim, "normal", r))
                 for r in rngs]
        real, z = torch.cat([a for a, _ in draws]), torch.cat([b for _, b in draws])
        batch = discriminator_step(g, d, opt_d, d_cost, Batch(real, z, rng=rngs[0]))
        generator_step(g, d, opt_g, g_cost, batch)
    return {**{f"g.{k}": v for k, v in g.state_dict().items()},
            **{f"d.{k}": v for k, v in d.state_dict().items()}}


def params(run):
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2
    return {**{f"g.{k}": v for k, v in state["generator"].items()},
            **{f"d.{k}": v for k, v in state["discriminator"].items()}}


def test_two_processes_equal_one_process_on_the_combined_batch(tmp_path):
    torchrun(tmp_path / "run", 12)
    ours, ref = params(tmp_path / "run"), single_process_on_both_batches(12)
    for k in ref:  # up to the order of float additions in the all-reduce
        torch.testing.assert_close(ours[k], ref[k], atol=1e-5, rtol=1e-4, msg=k)
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 13))  # rank 0 alone wrote
    assert (tmp_path / "run" / "summary.json").exists()


def test_two_process_resume_equals_uninterrupted(tmp_path):
    torchrun(tmp_path / "full", 10)
    torchrun(tmp_path / "split", 6)
    torchrun(tmp_path / "split", 10, "--resume")
    a, b = params(tmp_path / "full"), params(tmp_path / "split")
    for k in a:
        assert torch.equal(a[k], b[k]), k
