"""``train.compile_optimizer``: each player's Adam step compiled by torch.compile — the
same numbers as the fused eager Adam within float tolerance, compiled once per run (the
learning-rate schedule changes a tensor in place), resumed exactly."""

import torch
import torch._dynamo.utils

from gankit.config import load_config
from gankit.io import load_checkpoint, read_metrics
from gankit.runs import train
from gankit.training.loop import make_optimizers


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
