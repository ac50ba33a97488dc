"""Seeds in parallel: ``train.seeds = S`` must reproduce S single-seed runs."""

import json

import pytest
import torch

from gankit.build import build_players
from gankit.config import load_config
from gankit.generate import seed_players
from gankit.io import load_checkpoint
from gankit.nets.stacked import Stacked
from gankit.runs import load_run, train


def assert_close_state(a: dict, b: dict, atol: float, skip: tuple = ()) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if k not in skip:
            torch.testing.assert_close(a[k], b[k], atol=atol, rtol=1e-3,
                                       msg=lambda m, k=k: f"{k}: {m}")


# Every trick that acts inside D or G (pack, minibatch discrimination, VBN), one that
# draws extra randomness (gradient penalty), and the ones with state or 2nd-order terms.
CASES = {
    "plain": [],
    "pack+linear": ["tricks.pack=2", "train.lr_schedule='linear'"],
    "wgan-gp+d_steps": ["objective.name='wasserstein_gp'", "train.d_steps=2"],
    "minibatch+vbn": ["tricks.minibatch_discrimination=4", "tricks.virtual_batch_norm=true"],
    "unroll+history+fm": ["tricks.unroll_steps=2", "tricks.historical_averaging=0.01",
                          "tricks.feature_matching=true"],
    "mmd-gan+clip": ["objective.name='mmd-gan'", "objective.weight_clip=0.3"],
    "gmmn": ["objective.name='gmmn'", "objective.bandwidths=[0.1, 1.0]"],
    "infogan": ["infogan.categorical=[5, 3]", "infogan.continuous=1", "infogan.q_width=8"],
}


@pytest.mark.parametrize("extra", CASES.values(), ids=CASES.keys())
def test_stacked_seeds_reproduce_single_runs(tmp_path, tiny, extra):
    seeds = 3
    cfg = load_config(None, tiny + extra + ["train.steps=20", "train.seed=5",
                                            f"train.seeds={seeds}"])
    summary = train(cfg, tmp_path / "stacked", progress=False)
    _, g_stacked, d_stacked, _ = load_run(tmp_path / "stacked")
    players = list(seed_players(cfg, g_stacked, d_stacked))
    assert [c.train.seed for c, _, _ in players] == [5, 6, 7]
    for i, (_, g, d) in enumerate(players):
        single = load_config(None, tiny + extra + ["train.steps=20", f"train.seed={5 + i}"])
        s = train(single, tmp_path / f"single{i}", progress=False)
        _, g_ref, d_ref, _ = load_run(tmp_path / f"single{i}")
        # Same weights up to float reduction order (batched vs single matmuls). A bias
        # right before virtual batch norm has zero gradient in exact arithmetic (the
        # normalisation cancels it), so Adam's g/(|g| + ε) turns rounding noise into
        # steps of up to lr there; the networks' outputs do not depend on it.
        skip = ("net.0.bias", "net.2.bias") if "tricks.virtual_batch_norm=true" in extra else ()
        assert_close_state(g.state_dict(), g_ref.state_dict(), atol=5e-5, skip=skip)
        # Likewise MMD-GAN's kernel sees only differences of embeddings, so the bias of
        # D's output layer (a translation of the embedding) has zero exact gradient; and
        # hidden units the kernel barely uses get gradients near rounding level, which
        # Adam scales up the same way (seen: 4e-4 on one hidden bias after 20 steps of
        # lr 1e-4, on one machine and not another): for MMD-GAN, D's weights agree to
        # a few Adam steps and its function (below) to 1e-3.
        mmd = "objective.name='mmd-gan'" in extra
        assert_close_state(d.state_dict(), d_ref.state_dict(), atol=1e-3 if mmd else 5e-5,
                           skip=("net.4.bias",) if mmd else ())
        z, x = torch.randn(64, g.z_dim), torch.randn(64, 2)  # (InfoGAN: z and the codes)
        torch.testing.assert_close(g(z), g_ref(z), atol=1e-3, rtol=0)
        centre = (lambda out: out - out.mean(0)) if mmd else (lambda out: out)
        torch.testing.assert_close(centre(d(x)), centre(d_ref(x)), atol=1e-3, rtol=0)
        assert summary["per_seed"][i]["seed"] == 5 + i
        ours, alone = summary["per_seed"][i]["metrics"], dict(s["metrics"])
        counts = ours.pop("mode_counts"), alone.pop("mode_counts")
        assert ours == pytest.approx(alone, abs=2e-3)
        assert sum(abs(a - b) for a, b in zip(*counts)) <= 2  # (a sample near a 3σ edge)
    m = [p["metrics"]["high_quality"] for p in summary["per_seed"]]
    assert summary["metrics"]["high_quality"] == pytest.approx(sum(m) / seeds)


def test_stacked_resume_equals_uninterrupted(tmp_path, tiny):
    cfg = load_config(None, tiny + ["train.seeds=2", "objective.name='wasserstein_gp'"])
    train(cfg, tmp_path / "full", progress=False)
    assert train(cfg, tmp_path / "split", progress=False, stop_after=13) is None
    train(cfg, tmp_path / "split", resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "full" / "checkpoint.pt"), \
        load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    for key in ("generator", "discriminator"):
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), k
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and len(summary["per_seed"]) == 2
    assert set(summary["metrics_stderr"]) == set(summary["metrics"])
    assert (tmp_path / "full" / "samples_seed1.png").exists()


def test_stacked_gradients_are_per_seed(tiny):
    """Each copy's gradient is the gradient of its own loss only."""
    cfg = load_config(None, tiny + ["train.seeds=2"])
    g, d = build_players(cfg, (2,))
    assert isinstance(d, Stacked) and d.seeds == 2
    x = torch.randn(2, 8, 2)
    out = d(x)
    assert out.shape == (2, 8)
    out[1].sum().backward()
    grads = [p.grad for p in d.parameters()]
    assert all(gr[0].abs().max() == 0 for gr in grads)
    assert any(gr[1].abs().max() > 0 for gr in grads)
    # copy i of the stack is the network seed i builds alone
    for i in range(2):
        torch.testing.assert_close(d.unstack(i)(x[i]), out[i].detach())


def test_eval_and_sample_of_a_stacked_run(tmp_path, tiny, capsys):
    from gankit.cli import main

    cfg = load_config(None, tiny + ["train.seeds=2", "train.seed=3"])
    summary = train(cfg, tmp_path / "run", progress=False)
    assert main(["eval", str(tmp_path / "run"), "--json", "--correct", "drs"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert [p["seed"] for p in r["per_seed"]] == [3, 4]
    assert [p["metrics"] for p in r["per_seed"]] == [p["metrics"] for p in summary["per_seed"]]
    assert r["metrics"] == summary["metrics"] and "acceptance_rate" in r["corrected"]
    assert main(["eval", str(tmp_path / "run")]) == 0
    assert "± " in capsys.readouterr().out
    out = tmp_path / "s.npy"
    assert main(["sample", str(tmp_path / "run"), "-n", "10", "--out", str(out),
                 "--run-seed", "4"]) == 0
    assert main(["sample", str(tmp_path / "run"), "-n", "10", "--out", str(out),
                 "--run-seed", "7"]) == 2
    assert "--run-seed" in capsys.readouterr().err


def test_plain_mlps_skip_vmap_with_the_same_outputs_and_gradients(tiny):
    """Stacked plain (and packed) MLPs run one batched matmul per layer instead of vmap;
    the arithmetic is the same, so outputs and every gradient match the vmap path."""
    cfg = load_config(None, tiny + ["tricks.pack=2", "train.seeds=3"])
    g, d = build_players(cfg, (2,))
    assert g._batched is not None and d._batched is not None
    z = torch.randn(3, 16, cfg.model.z_dim, generator=torch.Generator().manual_seed(0))
    results = []
    for fast in (True, False):
        if not fast:  # the general path: vmap over functional_call
            g.__dict__["_batched"] = d.__dict__["_batched"] = None
        g.zero_grad(), d.zero_grad()
        x = g(z)
        out = d(x)
        assert x.shape == (3, 16, 2) and out.shape == (3, 8)  # 8 packs of 2 per seed
        (out.square().sum() + d.features(x).sum()).backward()
        results.append([out.detach()] + [p.grad.clone() for p in [*g.parameters(),
                                                                  *d.parameters()]])
    for fast, slow in zip(*results):
        torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    # a D whose layer compares the samples of a batch keeps vmap (per-seed batches)
    cfg = load_config(None, tiny + ["tricks.minibatch_discrimination=4", "train.seeds=3"])
    assert build_players(cfg, (2,))[1]._batched is None
