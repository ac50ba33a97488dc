"""Standing statistics of G's weight average (tricks.generator_ema_bn_samples): the
average's batch norms get the statistics of its own activations, not G's copied ones."""

import torch
from torch import nn

from gankit.cli import main
from gankit.config import load_config
from gankit.io import load_checkpoint
from gankit.runs import load_run, train
from gankit.training.loop import standing_statistics_of
from gankit.training.tricks import GeneratorEMA, standing_statistics

DIGITS = ["data.name='digits'", "model.generator='dcgan'", "model.discriminator='dcgan'",
          "model.g_width=8", "model.d_width=8", "model.z_dim=8", "train.batch_size=16",
          "train.steps=8", "train.log_every=2", "train.checkpoint_every=4",
          "train.device='cpu'", "tricks.generator_ema=0.9", "tricks.generator_ema_rampup=true"]


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6, momentum=0.3), nn.ReLU(),
                         nn.Linear(6, 3), nn.BatchNorm1d(3))


def test_the_statistics_are_the_mean_of_each_batchs_own():
    g = net().eval()
    batches = [torch.randn(10, 4) * (k + 1) for k in range(3)]
    standing_statistics(g, batches)
    bn = g[1]
    h = [g[0](z).detach() for z in batches]
    torch.testing.assert_close(bn.running_mean, torch.stack([x.mean(0) for x in h]).mean(0))
    # (batch norm keeps the unbiased variance of each batch)
    torch.testing.assert_close(bn.running_var, torch.stack([x.var(0) for x in h]).mean(0))
    assert bn.momentum == 0.3 and not g.training  # its settings are left as they were
    assert int(bn.num_batches_tracked) == 3
    # the second norm's statistics are of the first's output in training mode
    g2 = [g[3](g[2](nn.functional.batch_norm(x, None, None, bn.weight, bn.bias, True)))
          .detach() for x in h]
    torch.testing.assert_close(g[4].running_mean, torch.stack([x.mean(0) for x in g2]).mean(0))


def test_the_average_gets_its_own_statistics_once_per_update():
    g = net()
    calls = []
    ema = GeneratorEMA(g, 0.5, standing=lambda m: (calls.append(1),
                                                   standing_statistics(m, [torch.randn(8, 4)])))
    g.train()
    g(torch.randn(8, 4) + 3)  # G's running statistics move; the average's are copied
    ema.update(g)
    assert torch.equal(ema.module[1].running_mean, g[1].running_mean)
    sampler = ema.sampler()
    assert not torch.equal(sampler[1].running_mean, g[1].running_mean) and len(calls) == 1
    ema.sampler()
    assert len(calls) == 1  # nothing changed since
    ema.update(g)
    ema.sampler()
    assert len(calls) == 2
    assert GeneratorEMA(g, 0.5).sampler()[1].running_mean.equal(g[1].running_mean)


def test_a_run_saves_and_samples_the_recomputed_statistics_and_trains_the_same(tmp_path):
    on = load_config(None, DIGITS + ["tricks.generator_ema_bn_samples=40"])
    off = load_config(None, DIGITS)
    train(on, tmp_path / "on", progress=False)
    train(off, tmp_path / "off", progress=False)
    a, b = (load_checkpoint(tmp_path / n / "checkpoint.pt") for n in ("on", "off"))
    for part in ("generator", "discriminator"):  # training itself is untouched
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    ema_on, ema_off = a["generator_ema"], b["generator_ema"]
    weights = [k for k in ema_on if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(ema_on[k], ema_off[k]) for k in weights)
    # the saved statistics are those of the average's own samples: 40 latents in 3
    # batches of 16 from the run's standing stream, recomputed here from the saved weights
    _, g, _, _ = load_run(tmp_path / "off")
    standing_statistics_of(on, torch.device("cpu"))(g)
    for k, v in g.state_dict().items():
        assert torch.equal(v, ema_on[k]), k
    assert int(ema_on["project.1.num_batches_tracked"]) == 3
    assert not torch.equal(ema_on["project.1.running_mean"], ema_off["project.1.running_mean"])
    _, sampler, _, _ = load_run(tmp_path / "on")  # samples come from them
    assert all(torch.equal(v, ema_on[k]) for k, v in sampler.state_dict().items())


def test_resume_is_bit_exact_with_standing_statistics(tmp_path, assert_resume_exact):
    cfg = load_config(None, DIGITS + ["tricks.generator_ema_bn_samples=32"])
    assert_resume_exact(cfg, stop_after=3)
    full, split = (load_checkpoint(tmp_path / n / "checkpoint.pt") for n in ("full", "split"))
    for k in full["generator_ema"]:
        assert torch.equal(full["generator_ema"][k], split["generator_ema"][k]), k


def test_refused_in_one_line_without_the_average(tmp_path, capsys):
    sets = [a for s in ["tricks.generator_ema_bn_samples=32", "tricks.generator_ema=0",
                        "tricks.generator_ema_rampup=false"] for a in ("--set", s)]
    code = main(["train", "configs/stacked-mnist-recipe.toml", *sets,
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0, err
    assert "tricks.generator_ema_bn_samples: 32 recomputes" in err and "allowed: 0" in err
    assert not (tmp_path / "r" / "checkpoint.pt").exists()
