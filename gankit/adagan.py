"""AdaGAN: boosting GANs into a mixture that covers the modes one GAN misses.

Tolstikhin, Gelly, Bousquet, Simon-Gabriel & Schölkopf (2017), "AdaGAN: Boosting
Generative Models". Step t trains a new component Q_t (any gankit GAN) on the training
set reweighted towards the points the current mixture P_{t−1} covers badly, and mixes it
in with weight β_t: P_t = (1 − β_t) P_{t−1} + β_t Q_t. The weights come from a classifier
D trained to tell the data from P_{t−1}: h(x) = (1 − D(x)) / D(x) = exp(−logit) estimates
dP_{t−1}/dP_data, and the paper's closed form (its eq. 9 and §3.4) is

    w_i = (p_i / β_t) · (λ* − (1 − β_t) h(x_i))₊,   λ* chosen so that Σ_i w_i = 1,

zero where the mixture already has more mass than the data (h large). β_t = 1/t (every
component ends with weight 1/T) unless ``adagan.beta`` fixes it.

A run directory of ``gankit train`` with ``adagan.components = T > 1`` holds one ordinary
run per component (``component1/`` …, each resumable), ``adagan.jsonl`` (the mixture's
metrics after each component), ``checkpoint.pt`` (the mixture: it samples, saves, loads
and evaluates like any generator), ``samples.png`` and ``adagan.png``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
from torch import nn

from gankit import io
from gankit.build import build_models, build_target, resolve_device
from gankit.config import Config, from_dict
from gankit.errors import GankitError
from gankit.evaluate import evaluate_generator, finish
from gankit.generate import EVAL_SEED_OFFSET
from gankit.nets.mlp import sample_latent
from gankit.plots import plot_adagan, plot_samples, run_title
from gankit.sampling.refit import fit_density_ratio
from gankit.training.loop import run_training

__all__ = ["WEIGHTS_SEED_OFFSET", "mixture_weight", "data_weights", "Mixture", "WeightedData",
           "training_points", "classifier_logits", "build_mixture", "component_seed",
           "component_config", "train_adagan", "step_panels", "load_adagan"]


Tensor = torch.Tensor
WEIGHTS_SEED_OFFSET = 7_000_003  # the classifiers' draws, apart from training and eval


def mixture_weight(t: int, beta: float) -> float:
    """β_t, the weight of component t (1-based) in P_t: 1 for the first, then ``beta``,
    or 1/t when ``beta`` is 0 (all components equal in the end)."""
    return 1.0 if t == 1 else (beta or 1.0 / t)


def data_weights(h: Tensor, beta: float, p: Tensor | None = None) -> Tensor:
    """AdaGAN's weights over the training points, w_i = p_i (λ* − (1 − β) h_i)₊ / β with
    Σ w_i = 1 (Tolstikhin et al. 2017, Theorem 1 and §3.4).

    ``h``: the density ratio dP_model/dP_data at each point; ``p``: the points' current
    probabilities (uniform by default); ``beta``: the new component's weight β ∈ (0, 1].
    With the k points of smallest h active, Σ w = 1 gives λ_k = (β + (1 − β) Σ_{i≤k} p_i
    h_i) / Σ_{i≤k} p_i; λ* is λ_k for the largest k whose k-th point is still active.
    """
    h = h.double()
    p = torch.full_like(h, 1 / len(h)) if p is None else p.double()
    order = torch.argsort(h)
    hs, ps = h[order], p[order]
    lam = (beta + (1 - beta) * torch.cumsum(ps * hs, 0)) / torch.cumsum(ps, 0)
    active = lam > (1 - beta) * hs
    k = int(active.nonzero().max()) if active.any() else 0
    return p * (lam[k] - (1 - beta) * h).clamp_min(0) / beta


class Mixture(nn.Module):
    """A mixture of generators with weights: itself a generator of latent size z_dim + 1,
    whose last latent coordinate picks the component (through its CDF, so a fixed latent
    batch always gives the same components)."""

    def __init__(self, components: list[nn.Module], weights: list[float], z_dim: int,
                 z_dist: str) -> None:
        super().__init__()
        self.components = nn.ModuleList(components)
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float64))
        self.z_dim, self.z_dist = z_dim + 1, z_dist

    def component_of(self, z: Tensor) -> Tensor:
        u = z[:, -1].double()
        u = torch.special.ndtr(u) if self.z_dist == "normal" else (u + 1) / 2  # → U[0, 1]
        edges = torch.cumsum(self.weights, 0)[:-1]
        return torch.searchsorted(edges, u.contiguous(), right=True)

    def forward(self, z: Tensor, components: bool = False) -> Tensor:
        which = self.component_of(z)
        parts = {t: self.components[t](z[which == t, :-1]) for t in range(len(self.components))
                 if (which == t).any()}
        first = next(iter(parts.values()))
        out = first.new_empty((len(z), *first.shape[1:]))
        for t, x in parts.items():
            out[which == t] = x
        return (out, which) if components else out


class WeightedData:
    """A finite training set drawn with replacement according to ``weights``."""

    def __init__(self, points: Tensor, weights: Tensor) -> None:
        self.points, self.weights = points, weights.float()
        self.shape = tuple(points.shape[1:])

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> Tensor:
        idx = torch.multinomial(self.weights.to(generator.device if generator else "cpu"),
                                n, replacement=True, generator=generator)
        return self.points.to(idx.device)[idx].to(device)


def training_points(cfg: Config, target) -> Tensor:
    """The finite training set AdaGAN reweights: an image dataset's train split, or
    ``adagan.train_points`` draws from a mixture (fixed by ``train.seed``)."""
    if hasattr(target, "images"):
        return target.images
    g = torch.Generator().manual_seed(cfg.train.seed + WEIGHTS_SEED_OFFSET)
    return target.sample(cfg.adagan.train_points, g)


def classifier_logits(cfg: Config, mixture: Mixture, points: Tensor, seed: int,
                      device: torch.device) -> tuple[Tensor, nn.Module]:
    """A fresh D fitted for ``adagan.classifier_steps`` to tell the training points from
    the mixture's samples (``gankit.sampling.fit_density_ratio``); return its logits on
    the points, l ≈ log dP_data/dP_mixture, and D itself."""
    mixture = mixture.eval()

    def draw_points(n: int, g: torch.Generator) -> Tensor:
        return points[torch.randint(len(points), (n,), generator=g)]

    def draw_mixture(n: int, g: torch.Generator) -> Tensor:
        return mixture(sample_latent(n, mixture.z_dim, mixture.z_dist, g).to(device))

    d = fit_density_ratio(cfg, draw_points, draw_mixture, steps=cfg.adagan.classifier_steps,
                          seed=seed, device=device)
    with torch.no_grad():
        logits = torch.cat([d(c.to(device)).float().cpu() for c in points.split(4096)])
    return logits, d


def build_mixture(cfg: Config, data_shape, states: list[dict], betas: list[float]) -> Mixture:
    """The mixture of the components whose state dicts are ``states``, added with
    weights ``betas`` (β_1 = 1, β_2, …)."""
    weights: list[float] = []
    for b in betas:  # P_t = (1 − β_t) P_{t−1} + β_t Q_t
        weights = [w * (1 - b) for w in weights] + [b]
    components = []
    for t, state in enumerate(states):
        g, _ = build_models(cfg, data_shape, component_seed(cfg, t + 1))
        g.load_state_dict(state)
        components.append(g)
    return Mixture(components, weights, cfg.model.z_dim, cfg.model.z_dist)


def component_seed(cfg: Config, t: int) -> int:
    return cfg.train.seed + 1000 * (t - 1)  # components differ in init and noise


def component_config(cfg: Config, t: int) -> Config:
    """Component t trains as an ordinary one-component run with its own seed."""
    return dataclasses.replace(
        cfg, adagan=dataclasses.replace(cfg.adagan, components=1),
        train=dataclasses.replace(cfg.train, seed=component_seed(cfg, t)))


def train_adagan(cfg: Config, out: str | Path, *, resume: bool = False,
                 progress: bool = True) -> dict:
    """Train ``adagan.components`` components into ``out`` (see the module docstring);
    return the summary. ``resume`` continues an interrupted run where it stopped."""
    out, a = Path(out), cfg.adagan
    ckpt_path = out / "checkpoint.pt"
    device = resolve_device(cfg.train.device)
    if resume and not ckpt_path.exists() and not (out / "component1").exists():
        raise GankitError(f"{ckpt_path}: --resume given but no checkpoint to resume from")
    if not resume and out.exists() and any(out.iterdir()):
        raise GankitError(f"{out}: already holds a run; pass --resume or choose another --out")
    target = build_target(cfg)  # (bad data: one line, nothing written)
    out.mkdir(parents=True, exist_ok=True)
    points = training_points(cfg, target)
    # per component: its generator's weights, β_t, and the data weights it trained on
    state = {"states": [], "betas": [], "data_weights": [
        torch.full((len(points),), 1 / len(points), dtype=torch.float64)]}
    if resume and ckpt_path.exists():
        state = io.load_checkpoint(ckpt_path)
        if from_dict(state["config"], str(ckpt_path)) != cfg:
            raise GankitError(f"--resume: config differs from the one in {ckpt_path}")
    io.atomic_write_text(out / "config.toml", cfg.to_toml())
    run_info = {"seed": cfg.train.seed, "device": str(device), "versions": io.versions(),
                "components": a.components}
    io.write_json(out / "run.json", run_info)
    log = io.MetricsLog(out / "adagan.jsonl", keep_until_step=len(state["states"]))
    # The clock counts every chunk of a resumed run: the seconds recorded at the last
    # finished component, plus the training seconds an interrupted component has saved.
    elapsed = state.get("wall_time", 0.0)  # (checkpoints before 2026-12-05 have none)
    partial = out / f"component{len(state['states']) + 1}" / "checkpoint.pt"
    if resume and partial.exists():
        elapsed += io.load_checkpoint(partial).get("wall_time", 0.0)
    wall0 = time.perf_counter() - elapsed
    for t in range(len(state["states"]) + 1, a.components + 1):  # (after a resume: the rest)
        weights = state["data_weights"][t - 1]
        comp_dir = out / f"component{t}"
        component = component_config(cfg, t)
        trained = run_training(component, comp_dir, progress=progress,
                               resume=(comp_dir / "checkpoint.pt").exists(),
                               data=WeightedData(points, weights))
        finish(comp_dir, trained)
        g_state = io.load_checkpoint(comp_dir / "checkpoint.pt")["generator"]
        state["states"].append(g_state)
        state["betas"].append(mixture_weight(t, a.beta))
        mixture = build_mixture(cfg, target.shape, state["states"], state["betas"]).to(device)
        # the classifier of data vs the new mixture gives the next component's weights
        logits, d = classifier_logits(cfg, mixture, points,
                                      cfg.train.seed + WEIGHTS_SEED_OFFSET + t, device)
        h = torch.exp(-logits.double().clamp(-50, 50))  # dP_mixture / dP_data
        next_beta = mixture_weight(t + 1, a.beta)
        state["data_weights"].append(data_weights(h, next_beta))
        state["discriminator"] = d.state_dict()
        metrics, samples = evaluate_generator(cfg, mixture, target)
        state["wall_time"] = time.perf_counter() - wall0
        record = {"step": t, "beta": state["betas"][-1],
                  "mixture_weights": mixture.weights.tolist(), **metrics,
                  "zero_weight_points": float((state["data_weights"][-1] == 0).double().mean()),
                  "wall_time": state["wall_time"]}
        log.write(record)
        io.save_checkpoint(ckpt_path, {**state, "config": cfg.to_dict(), "step": t,
                                       "generator": mixture.state_dict()})
    mixture = build_mixture(cfg, target.shape, state["states"], state["betas"]).to(device)
    metrics, samples = evaluate_generator(cfg, mixture, target)
    records = io.read_metrics(out / "adagan.jsonl")
    if target.shape == (2,):  # 2-D mixtures: per-step panels coloured by component
        plot_adagan(step_panels(cfg, state, target, device), points, target,
                    out / "adagan.png")
    plot_samples(samples, target, None, out / "samples.png",
                 title=run_title(cfg))
    summary = {"metrics": metrics, "per_component": records, "steps":
               cfg.train.steps * cfg.adagan.components,
               "wall_time_s": time.perf_counter() - wall0, **run_info}
    io.write_json(out / "summary.json", summary)
    return summary


@torch.no_grad()
def step_panels(cfg: Config, state: dict, target, device, n: int = 1000) -> list[tuple]:
    """For t = 1 … T: (samples of the mixture of the first t components, their component,
    the data weights component t trained on), samples from one fixed latent batch."""
    g = torch.Generator().manual_seed(cfg.train.seed + EVAL_SEED_OFFSET)
    z = sample_latent(n, cfg.model.z_dim + 1, cfg.model.z_dist, g).to(device)
    panels = []
    for t in range(1, len(state["states"]) + 1):
        mixture = build_mixture(cfg, target.shape, state["states"][:t], state["betas"][:t])
        x, which = mixture.to(device).eval()(z, components=True)
        panels.append((x.cpu(), which.cpu(), state["data_weights"][t - 1]))
    return panels


def load_adagan(state: dict, cfg: Config, device) -> tuple[Mixture, nn.Module]:
    """The mixture and the last classifier (data vs mixture) of an AdaGAN run."""
    target = build_target(cfg)
    mixture = build_mixture(cfg, target.shape, state["states"], state["betas"])
    plain = dataclasses.replace(cfg, tricks=type(cfg.tricks)(), objective=type(cfg.objective)())
    _, d = build_models(plain, target.shape)
    d.load_state_dict(state["discriminator"])
    return mixture.to(device), d.to(device)
