"""gankit.fit: the user's own modules and data, with the config route's run directory,
resume, evaluation against held-out data, and callbacks (JSONL, TensorBoard)."""


import pytest
import torch
from torch import nn

import gankit
from gankit.cli import main


def moons(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n // 2, generator=g) * torch.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    return torch.cat([upper, 1 - upper - torch.tensor([0.0, 0.5])])


def players(seed=0, pack=1):
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
    D = nn.Sequential(nn.Linear(2 * pack, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    return G, D


FAST = {"train.batch_size": 32, "train.log_every": 10, "train.checkpoint_every": 20,
        "train.eval_samples": 200, "train.device": "cpu"}


def test_fit_trains_user_modules_with_packing_and_feature_matching(tmp_path, capsys):
    class Recorder(gankit.Callback):
        def __init__(self):
            self.steps, self.logged, self.checkpoints, self.evals = 0, [], [], []

        def on_step_end(self, run, stats):
            self.steps += 1

        def on_log(self, run, record):
            self.logged.append(record["step"])

        def on_checkpoint(self, run, path):
            self.checkpoints.append(run.state.step)

        def on_eval(self, run_dir, summary):
            self.evals.append(summary["steps"])

    G, D = players(pack=2)
    rec = Recorder()
    summary = gankit.fit(G, D, moons(), tricks={"pack": 2, "feature_matching": True},
                         steps=40, out=tmp_path / "run", settings=FAST,
                         callbacks=(rec, gankit.JsonlLog(tmp_path / "mine.jsonl")))
    m = summary["metrics"]
    assert m["held_out"] == 120 and 0 <= m["c2st_accuracy"] <= 1 and "num_modes" not in m
    assert rec.steps == 40 and rec.logged == [10, 20, 30, 40]
    assert rec.checkpoints == [20, 40] and rec.evals == [40]
    assert len((tmp_path / "mine.jsonl").read_text().splitlines()) == 4
    # the run is a run: the command line reads it back (G and D as TorchScript traces)
    cfg, g, d, _ = gankit.load_run(tmp_path / "run")
    assert cfg.model.generator == "user" and cfg.tricks.pack == 2
    assert gankit.generate(cfg, g, 7, seed=1).shape == (7, 2)
    with torch.no_grad():  # the trace is the trained G
        torch.testing.assert_close(g(torch.ones(3, 4)), G.cpu().eval()(torch.ones(3, 4)))
    assert main(["eval", str(tmp_path / "run")]) == 0
    assert "real floor" in capsys.readouterr()[0]
    assert main(["sample", str(tmp_path / "run"), "-n", "50", "--out",
                 str(tmp_path / "s.png")]) == 0


def test_fit_resumes_exactly(tmp_path):
    # 30 steps at once equal 20 steps, then a resume with fresh modules to 30, bit for bit
    data = moons()
    G, D = players()
    gankit.fit(G, D, data, steps=30, out=tmp_path / "full", settings=FAST)
    G2, D2 = players()
    gankit.fit(G2, D2, data, steps=20, out=tmp_path / "split", settings=FAST)
    G3, D3 = players(seed=7)  # a new process: fresh modules, and the run directory
    with pytest.raises(gankit.GankitError, match="already holds a run"):
        gankit.fit(G3, D3, data, steps=30, out=tmp_path / "split", settings=FAST)
    gankit.fit(G3, D3, data, steps=30, out=tmp_path / "split", settings=FAST, resume=True,
               )
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    split = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    for part in ("generator", "discriminator"):
        for key, value in full[part].items():
            assert torch.equal(value, split[part][key]), (part, key)


def test_fit_refuses_what_needs_gankit_layers(tmp_path):
    G, D = players()
    with pytest.raises(gankit.GankitError, match="minibatch_discrimination"):
        gankit.fit(G, D, moons(), tricks={"minibatch_discrimination": 8}, out=tmp_path / "r")
    with pytest.raises(gankit.GankitError, match="virtual_batch_norm"):
        gankit.fit(G, D, moons(), tricks={"virtual_batch_norm": True}, out=tmp_path / "r")
    with pytest.raises(gankit.GankitError, match="data: examples of shape"):
        gankit.fit(G, D, torch.zeros(10, 2, 3), out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_tensorboard_writer_records_scalars_and_samples(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code = main(["train", "configs/ring8-nonsaturating.toml", "--out", str(tmp_path / "r"),
                 "--tensorboard", str(tmp_path / "tb"), "--no-progress",
                 "--set", "train.steps=20", "--set", "train.log_every=10", "--set",
                 "train.checkpoint_every=10", "--set", "train.batch_size=32", "--set",
                 "train.eval_samples=200", "--set", "model.g_width=16", "--set",
                 "model.d_width=16"])
    assert code == 0
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0}).Reload()
    assert [e.step for e in events.Scalars("train/loss_d")] == [10, 20]
    assert events.Scalars("eval/modes")[0].value >= 0
    assert [e.step for e in events.Images("samples")] == [10, 20]


def test_the_python_example_of_docs_your_data_runs_verbatim(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "your-data.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    monkeypatch.chdir(tmp_path)
    code = code.replace("steps=1500", "steps=60")  # (the page's 1,500 steps take ~10 s)
    namespace: dict = {}
    exec(compile(code, "docs/your-data.md", "exec"), namespace)
    assert namespace["x"].shape == (1000, 2)
    assert (tmp_path / "runs" / "moons" / "generator.ts").exists()
    assert len((tmp_path / "runs" / "moons-log.jsonl").read_text().splitlines()) == 1
