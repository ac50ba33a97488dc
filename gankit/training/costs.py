"""The players' costs, built once from the config: each a sum of named terms.

D's cost is the objective's D loss plus what the run turns on (the gradient penalty,
R1/R2, MMD-GAN's reconstruction term, InfoGAN's information term, the semi-supervised
cross-entropy, AC-GAN's class cross-entropy, the channel critics' loss), then the
historical-averaging penalty on D's parameters. G's cost is the objective's G loss (or
feature matching) plus the channel critics', InfoGAN's or AC-GAN's term and its own
historical average. In a conditional run every call of D
passes the classes of the images it judges (``judge``). The step and the unrolled critic
call the same cost.

A term is ``term(critic, batch, logs) -> scalar`` and returns a mean over seeds;
``Cost`` multiplies the sum by S when S seeds train together (the sum of the S seeds'
costs gives each seed's weights exactly its own gradient) and then adds the parameter
penalties, which are already sums over seeds. Adding a term to a player is one entry in
``discriminator_cost`` or ``generator_cost`` and its config field.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from gankit.config import Config
from gankit.losses.info import info_loss
from gankit.losses.objectives import Objective
from gankit.losses.penalties import feature_matching, gradient_penalty, zero_centred_penalty
from gankit.losses.semisupervised import supervised_loss
from gankit.nets.layers import call, features
from gankit.nets.stacked import num_seeds
from gankit.seeds import Rng
from gankit.training.distributed import unwrap
from gankit.training.tricks import HistoricalAverage

Tensor = torch.Tensor
__all__ = ["Batch", "Cost", "judge", "discriminator_cost", "generator_cost"]


@dataclass(frozen=True)
class Batch:
    """What one update reads: real data, the latent z, and G(z) once made (``fake``);
    InfoGAN's codes in z, the semi-supervised labelled examples and a conditional run's
    classes (of real, of fake) where the run has them; ``rng``, the stream of the
    penalties' own noise."""

    real: Tensor
    z: Tensor
    fake: Tensor | None = None
    codes: tuple[Tensor, Tensor] | None = None
    labelled: tuple[Tensor, Tensor] | None = None
    rng: Rng = None
    step: int = 0  # the training step (for options annealed over training)
    classes: tuple[Tensor, Tensor] | None = None

    def class_of(self, which: str) -> Tensor | None:
        """The classes of the ``"real"`` or ``"fake"`` batch (None if unconditional)."""
        return None if self.classes is None else self.classes[which == "fake"]


def judge(critic: Callable, b: Batch, which: str) -> Callable[[Tensor], Tensor]:
    """D as a function of x alone: in a conditional run, D(·, y) with the classes of
    ``b``'s ``which`` batch (a penalty differentiates it in x with y held)."""
    y = b.class_of(which)
    return critic if y is None else functools.partial(critic, y=y)


Term = Callable[[Callable, Batch, dict], Tensor]
ParameterPenalty = Callable[[Mapping[str, Tensor]], Tensor]


@dataclass
class Cost:
    """Σ_i w_i · term_i (means over seeds) × S seeds, + Σ parameter penalties.

    ``terms``: (name, weight or None for 1, term). ``penalties``: (name, penalty of the
    player's named parameters)."""

    terms: list[tuple[str, float | None, Term]]
    penalties: list[tuple[str, ParameterPenalty]] = field(default_factory=list)

    def __call__(self, critic: Callable, batch: Batch, params: Mapping[str, Tensor],
                 seeds: int = 1, logs: dict | None = None) -> Tensor:
        logs = {} if logs is None else logs
        loss = None
        for _, weight, term in self.terms:
            value = term(critic, batch, logs)
            value = value if weight is None else weight * value
            loss = value if loss is None else loss + value
        if seeds > 1:  # (no extra op for one seed)
            loss = seeds * loss
        for _, penalty in self.penalties:
            loss = loss + penalty(params)
        return loss

    @property
    def names(self) -> list[str]:
        return [n for n, _, _ in self.terms] + [n for n, _ in self.penalties]


# D's terms ---------------------------------------------------------------------------

def objective_d_term(objective: Objective) -> Term:
    """The objective's D loss on D's outputs for (real, fake); keeps them in ``logs``."""

    def term(critic, b: Batch, logs: dict) -> Tensor:
        logs["real_logits"] = real = judge(critic, b, "real")(b.real)
        logs["fake_logits"] = fake = judge(critic, b, "fake")(b.fake)
        return objective.discriminator(real, fake)

    return term


def gradient_penalty_term(critic, b: Batch, logs: dict) -> Tensor:
    # the bare D: DDP does not support the penalty's input gradient (create_graph);
    # a conditional D judges the interpolates as of the real batch's classes
    return gradient_penalty(judge(unwrap(critic), b, "real"), b.real, b.fake, b.rng)


def _batch_dims(critic) -> int:
    return 2 if num_seeds(critic) > 1 else 1  # (S, n, ...) with S seeds stacked


def zero_centred_term(on: str, every: int = 1) -> Term:
    """R1 (``on = "real"``) or R2 (``"fake"``); with ``every = k`` > 1 only at steps that
    are multiples of k and k times heavier, so its expected pull is the same (lazy
    regularisation, Karras et al. 2020, "Analyzing and Improving the Image Quality of
    StyleGAN", §4)."""

    def term(critic, b: Batch, logs: dict) -> Tensor:
        x = b.real if on == "real" else b.fake
        if every > 1 and b.step % every:
            return torch.zeros((), device=x.device)
        value = zero_centred_penalty(judge(unwrap(critic), b, on), x, _batch_dims(critic))
        return value if every == 1 else every * value

    return term


def reconstruction_term(critic, b: Batch, logs: dict) -> Tensor:
    errors = [call(unwrap(critic), "reconstruction_error", x).mean() for x in (b.real, b.fake)]
    return errors[0] + errors[1]


def information_term(continuous_weight: float) -> Term:
    def term(critic, b: Batch, logs: dict) -> Tensor:
        return info_loss(call(unwrap(critic), "q", b.fake), b.codes, continuous_weight)

    return term


def supervised_term(critic, b: Batch, logs: dict) -> Tensor:
    x, y = b.labelled
    return supervised_loss(call(unwrap(critic), "classify", x), y)


def class_term(on: tuple[str, ...]) -> Term:
    """AC-GAN's class cross-entropy (Odena et al. 2017, L_C): of D's classifier on the
    real and fake batches (D's term), or on the fake batch (G's), averaged over them."""

    def term(critic, b: Batch, logs: dict) -> Tensor:
        losses = [F.cross_entropy(call(unwrap(critic), "classify", getattr(b, which)),
                                  b.class_of(which)) for which in on]
        return sum(losses) / len(losses)

    return term


def channel_verdict(critic, b: Batch, which: str) -> Tensor:
    """The channel critics' logits on ``b``'s ``which`` batch as (..., C, n): the batch
    last, where the objectives take their batch means (RaGAN's)."""
    return call(unwrap(critic), "channel_logits", getattr(b, which)).transpose(-1, -2)


def channel_critics_d_term(objective: Objective) -> Term:
    """The objective's D loss on the channel critics' verdicts, each channel of each
    sample judged alone (``gankit.nets.heads.ChannelCritics``)."""
    return lambda critic, b, logs: objective.discriminator(channel_verdict(critic, b, "real"),
                                                           channel_verdict(critic, b, "fake"))


def discriminator_cost(cfg: Config, objective: Objective,
                       history: HistoricalAverage | None = None) -> Cost:
    """D's cost for the run ``cfg`` describes (``objective`` built from it)."""
    o, info = cfg.objective, cfg.infogan
    terms: list[tuple[str, float | None, Term]] = [
        ("objective", None, objective_d_term(objective))]
    if objective.gradient_penalty:
        terms.append(("gradient_penalty", o.gp_weight, gradient_penalty_term))
    if cfg.tricks.channel_critic_width:  # as much weight as the joint D's verdict
        terms.append(("channel_critics", None, channel_critics_d_term(objective)))
    if o.r1:  # γ/2 E‖∇D(x)‖² on real data (Mescheder et al. 2018)
        terms.append(("r1", 0.5 * o.r1, zero_centred_term("real", o.r_every)))
    if o.r2:  # the same on generated data (R3GAN)
        terms.append(("r2", 0.5 * o.r2, zero_centred_term("fake", o.r_every)))
    if o.autoencoder_weight:  # MMD-GAN: D's decoder keeps its embedding injective
        terms.append(("reconstruction", o.autoencoder_weight, reconstruction_term))
    if cfg.infogan_on:
        # ½λ: gankit's costs are ½ of the paper's V (see objectives), so λ keeps its scale
        terms.append(("information", 0.5 * info.weight,
                      information_term(info.continuous_weight)))
    if cfg.semisupervised_on:  # with the cross-entropy objective: ½ (L_sup + L_unsup)
        terms.append(("supervised", 0.5, supervised_term))
    if cfg.conditional.method == "acgan":  # ½ of the paper's L_C, as the objective's ½ V
        terms.append(("classes", cfg.conditional.ac_weight, class_term(("real", "fake"))))
    penalties = [("historical_average", history.penalty)] if history is not None else []
    return Cost(terms, penalties)


# G's terms ---------------------------------------------------------------------------

def joint_verdict(critic, b: Batch, which: str) -> Tensor:
    """D's outputs on ``b``'s ``which`` batch (``"real"`` or ``"fake"``)."""
    return judge(critic, b, which)(getattr(b, which))


def objective_g_term(objective: Objective, verdict=joint_verdict) -> Term:
    """The objective's G loss on the verdict on the fake batch (and, for a kernel or
    relativistic objective, on the real batch, held fixed): D's outputs, or with
    ``verdict = channel_verdict`` the channel critics'."""
    if objective.needs_real:  # MMD: G's batch is compared with a real one
        return lambda critic, b, logs: objective.generator(
            verdict(critic, b, "fake"), verdict(critic, b, "real").detach())
    return lambda critic, b, logs: objective.generator(verdict(critic, b, "fake"))


def top_k_fraction(step: int, gamma: float, floor: float) -> float:
    """The share of the fakes G's update keeps at ``step``: γ^(step/1000), never below
    ``floor`` (Sinha et al. 2020 decay k by γ each epoch; gankit's epoch is 1000 steps)."""
    return max(floor, gamma ** (step / 1000))


def top_k_term(objective: Objective, gamma: float, floor: float) -> Term:
    """Top-k training (Sinha et al. 2020, "Top-k Training of GANs: Improving GAN
    Performance by Throwing Away Bad Samples"): G's loss on the k fakes D scores highest
    (the most realistic), k = ⌈n · top_k_fraction⌉, so G is not pulled by its worst
    samples; the gradient reaches only those k."""

    def term(critic, b: Batch, logs: dict) -> Tensor:
        logits = judge(critic, b, "fake")(b.fake)
        n = logits.shape[-1]
        k = max(1, math.ceil(n * top_k_fraction(b.step, gamma, floor)))
        logs["top_k"] = k
        return objective.generator(logits.topk(k, dim=-1).values)

    return term


def feature_matching_term(critic, b: Batch, logs: dict) -> Tensor:
    return feature_matching(features(critic, b.real).detach(), features(critic, b.fake))


def generator_cost(cfg: Config, objective: Objective,
                   history: HistoricalAverage | None = None) -> Cost:
    """G's cost for the run ``cfg`` describes: the objective's (or feature matching
    instead), InfoGAN's information term, G's historical average."""
    t = cfg.tricks
    terms: list[tuple[str, float | None, Term]] = [
        ("feature_matching", None, feature_matching_term) if t.feature_matching
        else ("top_k", None, top_k_term(objective, t.top_k, t.top_k_min)) if t.top_k
        else ("objective", None, objective_g_term(objective))]
    if t.channel_critic_width:
        terms.append(("channel_critics", None, objective_g_term(objective, channel_verdict)))
    if cfg.infogan_on:
        terms.append(("information", 0.5 * cfg.infogan.weight,
                      information_term(cfg.infogan.continuous_weight)))
    if cfg.conditional.method == "acgan":
        terms.append(("classes", 0.5 * cfg.conditional.ac_weight, class_term(("fake",))))
    penalties = [("historical_average", history.penalty)] if history is not None else []
    return Cost(terms, penalties)
