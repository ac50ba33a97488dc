import json

import pytest
import torch

from gankit.config import load_config
from gankit.errors import GankitError
from gankit.io import load_checkpoint, read_metrics
from gankit.nets.layers import Packed, pack
from gankit.runs import train


def params(run_dir):
    state = load_checkpoint(run_dir / "checkpoint.pt")
    return {**{f"g.{k}": v for k, v in state["generator"].items()},
            **{f"d.{k}": v for k, v in state["discriminator"].items()}}


def strip_time(records):
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in records]


@pytest.mark.parametrize("extra", [[], ["objective.name=wasserstein_gp", "train.d_steps=2"],
                                   ["tricks.pack=2", "train.lr_schedule='linear'"],
                                   ["train.g_steps=3"],
                                   # G in the inner loop composes with unrolling and EMA
                                   ["train.g_steps=2", "tricks.unroll_steps=2",
                                    "tricks.generator_ema=0.9"]])
def test_resume_after_stop_equals_uninterrupted(tmp_path, tiny, extra):
    cfg = load_config(None, tiny + extra)
    train(cfg, tmp_path / "full", progress=False)
    assert train(cfg, tmp_path / "split", progress=False, stop_after=13) is None
    assert load_checkpoint(tmp_path / "split" / "checkpoint.pt")["step"] == 13
    train(cfg, tmp_path / "split", resume=True, progress=False)
    a, b = params(tmp_path / "full"), params(tmp_path / "split")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert strip_time(read_metrics(tmp_path / "full" / "metrics.jsonl")) == \
        strip_time(read_metrics(tmp_path / "split" / "metrics.jsonl"))


def test_wall_time_counts_every_chunk_of_a_resumed_run(tmp_path, tiny):
    cfg = load_config(None, tiny)
    train(cfg, tmp_path / "run", progress=False, stop_after=13)
    first = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["wall_time"]
    summary = train(cfg, tmp_path / "run", resume=True, progress=False)
    times = [r["wall_time"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    # the resumed chunk's clock starts where the first chunk's stopped, not at 0
    assert times == sorted(times) and times[1] < first < times[2]
    assert summary["wall_time_s"] >= times[-1] and summary["eval_time_s"] > 0


def test_same_seed_same_numbers_other_seed_differs(tmp_path, tiny):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train(load_config(None, tiny + [f"train.seed={seed}"]), tmp_path / name, progress=False)
    a, b, c = (params(tmp_path / n) for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_run_directory_contents(tmp_path, tiny):
    out = tmp_path / "run"
    summary = train(load_config(None, tiny + ["data.name='ring8'"]), out, progress=False)
    for name in ("config.toml", "metrics.jsonl", "checkpoint.pt", "samples.png", "losses.png",
                 "summary.json", "run.json"):
        assert (out / name).is_file(), name
    assert load_config(out / "config.toml").data.name == "ring8"
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [5, 10, 15, 20, 25, 30]
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g",
                "wall_time"):
        assert key in records[0]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["metrics"] == summary["metrics"] and saved["metrics"]["num_modes"] == 8
    assert saved["seed"] == 0 and saved["device"] == "cpu" and "torch" in saved["versions"]


def test_refuses_to_overwrite_a_run(tmp_path, tiny):
    train(load_config(None, tiny), tmp_path / "r", progress=False)
    with pytest.raises(GankitError, match="already holds a run"):
        train(load_config(None, tiny), tmp_path / "r", progress=False)
    with pytest.raises(GankitError, match=r"config differs .* objective.name"):
        train(load_config(None, tiny + ["objective.name='hinge'"]), tmp_path / "r",
              resume=True, progress=False)


def test_pack_shapes_and_packs_do_not_mix():
    x = torch.arange(12.0).reshape(6, 2)
    assert pack(x, 3).tolist() == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    from gankit.nets.mlp import MLPDiscriminator

    d = Packed(MLPDiscriminator(6, 8, 1), 3)
    assert d(x).shape == (2,) and d.features(x).shape == (2, 8)
    # Changing a sample in the second pack leaves the first pack's verdict unchanged.
    y = x.clone()
    y[4] += 100
    assert torch.equal(d(x)[0], d(y)[0]) and not torch.equal(d(x)[1], d(y)[1])
    with pytest.raises(ValueError):
        pack(torch.zeros(5, 2), 2)


def test_steps_may_grow_on_resume_only_with_a_constant_schedule(tmp_path, tiny):
    train(load_config(None, tiny + ["train.steps=10"]), tmp_path / "c", progress=False)
    train(load_config(None, tiny), tmp_path / "c", resume=True, progress=False)
    assert load_checkpoint(tmp_path / "c" / "checkpoint.pt")["step"] == 30
    lin = ["train.lr_schedule='linear'"]
    train(load_config(None, tiny + lin + ["train.steps=10"]), tmp_path / "l", progress=False)
    with pytest.raises(GankitError, match="train.steps"):
        train(load_config(None, tiny + lin), tmp_path / "l", resume=True, progress=False)


def test_compiled_networks_give_the_eager_losses(tmp_path, tiny):
    cfg = load_config(None, tiny + ["train.steps=6", "train.log_every=1"])
    train(cfg, tmp_path / "eager", progress=False)
    cfg.train.compile = True
    train(cfg, tmp_path / "compiled", progress=False)
    eager, compiled = (read_metrics(tmp_path / r / "metrics.jsonl") for r in ("eager", "compiled"))
    assert len(eager) == len(compiled) == 6
    for a, b in zip(eager, compiled):
        for key in ("loss_d", "loss_g", "d_real", "d_fake"):
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), (a["step"], key)


def test_cuda_only_options_refused_on_the_cpu(tmp_path, tiny):
    for extra, field in ((["train.precision='bfloat16'"], "train.precision"),
                         (["train.channels_last=true"], "train.channels_last")):
        with pytest.raises(GankitError, match=field):
            train(load_config(None, tiny + extra), tmp_path / field, progress=False)
        assert not (tmp_path / field / "checkpoint.pt").exists()
