"""The public API: a user's own modules train through it, and the registries extend
gankit without touching its central files."""

import dataclasses
import math

import pytest
import torch
from torch import nn

import gankit
from gankit.data import DATASETS, DatasetSpec
from gankit.data.mixtures import ring
from gankit.losses import objectives


def test_public_names_are_exported_with_docstrings():
    for name in gankit.__all__:
        obj = getattr(gankit, name)
        if callable(obj) and not isinstance(obj, dict):
            assert obj.__doc__, f"gankit.{name} has no docstring"
    assert {"train", "load_run", "load_config", "generate", "evaluate", "OBJECTIVES",
            "discriminator_step", "generator_step", "Packed", "mode_metrics"} <= set(gankit.__all__)


def test_a_users_sequential_discriminator_trains_with_packing_and_feature_matching():
    # The user's own networks: plain nn.Sequential, no gankit keyword on forward.
    torch.manual_seed(0)
    cfg = gankit.load_config(None, ["data.name='ring8'", "tricks.pack=2",
                                    "tricks.feature_matching=true"])
    G = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                      nn.Linear(64, 2))
    D = gankit.Packed(nn.Sequential(nn.Linear(4, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64),
                                    nn.LeakyReLU(0.2), nn.Linear(64, 1)), m=2)
    assert gankit.features(D, torch.zeros(8, 2)).shape == (4, 64)  # all layers but the last
    objective = gankit.build_objective(cfg)
    d_cost = gankit.discriminator_cost(cfg, objective)
    g_cost = gankit.generator_cost(cfg, objective)
    assert g_cost.names == ["feature_matching"]
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    target, rng = gankit.mixture("ring8"), torch.Generator().manual_seed(0)

    def radius_error() -> float:
        with torch.no_grad():
            x = G(torch.randn(2000, 2, generator=torch.Generator().manual_seed(1)))
        return float((x.norm(dim=1) - 1).abs().mean())

    before, stats = radius_error(), {}
    for _ in range(600):
        n = 2 * 64  # 64 packs of 2
        batch = gankit.Batch(target.sample(n, rng), torch.randn(n, 2, generator=rng), rng=rng)
        batch = gankit.discriminator_step(G, D, opt_d, d_cost, batch, stats=stats)
        gankit.generator_step(G, D, opt_g, g_cost, batch, stats=stats)
        assert math.isfinite(stats["loss_d"]) and math.isfinite(stats["loss_g"])
    # G moved its mass onto the ring: its samples' mean distance to radius 1 fell from
    # 0.81 to 0.21 here
    assert radius_error() < before / 3, (before, radius_error())


def test_an_objective_registered_in_one_place_trains_from_a_config(tmp_path, monkeypatch, tiny):
    # A logit objective is one entry of the registry: config, rules, cost and the
    # evaluation pick it up from there.
    def softplus_hinge_d(real, fake):
        """A smooth hinge: E softplus(1 − D(x)) + E softplus(1 + D(G(z)))."""
        return (nn.functional.softplus(1 - real).mean()
                + nn.functional.softplus(1 + fake).mean())

    new = objectives.Objective("softplus_hinge", softplus_hinge_d, objectives.hinge_generator)
    monkeypatch.setitem(objectives.OBJECTIVES, new.name, new)
    cfg = gankit.load_config(None, tiny + ["objective.name='softplus_hinge'"])
    summary = gankit.train(cfg, tmp_path / "run", progress=False)
    assert summary["metrics"]["num_modes"] == 25
    with pytest.raises(gankit.GankitError, match="has no real target to smooth"):
        gankit.load_config(None, ["objective.name='softplus_hinge'",
                                  "tricks.label_smoothing=0.1"])


def test_a_dataset_registered_in_one_place_is_trained_and_evaluated(tmp_path, monkeypatch,
                                                                    tiny):
    spec = DatasetSpec("ring5", "mixture", lambda d, split="train": ring(5, 1.0, 0.02))
    monkeypatch.setitem(DATASETS, spec.name, spec)
    cfg = gankit.load_config(None, tiny + ["data.name='ring5'"])
    summary = gankit.train(cfg, tmp_path / "run", progress=False)
    assert summary["metrics"]["num_modes"] == 5  # evaluated against ring5, not a preset


def test_the_unrolled_critic_minimises_ds_own_cost_reconstruction_term_included():
    # One inner step of the unrolled critic equals D's own Adam step, for MMD-GAN with
    # its autoencoding critic (the old copy of D's cost left the reconstruction out).
    cfg = gankit.load_config(None, ["data.name='ring8'", "objective.name='mmd-gan'",
                                    "objective.autoencoder_weight=2.0", "tricks.unroll_steps=1",
                                    "model.g_width=8", "model.d_width=8"])
    g, d = (m.double() for m in gankit.build_models(cfg, (2,)))
    objective = gankit.build_objective(cfg)
    d_cost = gankit.discriminator_cost(cfg, objective)
    assert d_cost.names == ["objective", "reconstruction"]
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-2)
    rng = torch.Generator().manual_seed(0)
    real, z = torch.randn(32, 2, generator=rng).double(), torch.randn(32, 2, generator=rng)
    z = z.double()
    gankit.discriminator_step(g, d, opt_d, d_cost, gankit.Batch(real, z))  # Adam moments
    critic = gankit.unrolled_critic(d, gankit.Unroll(1, opt_d, d_cost),
                                    gankit.Batch(real, z, fake=g(z).detach()))
    x = torch.randn(7, 2, dtype=torch.float64)
    expected = critic(x).detach()
    gankit.discriminator_step(g, d, opt_d, d_cost, gankit.Batch(real, z))
    torch.testing.assert_close(d(x), expected, atol=1e-10, rtol=0)
    # and without the term the inner step goes elsewhere
    bare = dataclasses.replace(d_cost, terms=d_cost.terms[:1])
    other = gankit.unrolled_critic(d, gankit.Unroll(1, opt_d, bare),
                                   gankit.Batch(real, z, fake=g(z).detach()))
    assert not torch.allclose(other(x), gankit.unrolled_critic(
        d, gankit.Unroll(1, opt_d, d_cost), gankit.Batch(real, z, fake=g(z).detach()))(x))
