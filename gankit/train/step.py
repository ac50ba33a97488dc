"""One alternating GAN update, written out: the D step, then the G step.

The fake batch G(z) made for D's last update is reused by G's update (G has not changed
in between, so this is the same forward pass, not an approximation). Tricks are options
of these two functions, not forks of the loop.
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.nets.stacked import Rng, num_seeds
from gankit.objectives import Objective, feature_matching, gradient_penalty
from gankit.train.distributed import unwrap
from gankit.train.tricks import HistoricalAverage, unrolled_critic
from gankit.variants.infogan import info_loss

# InfoGAN's term on a step: (codes of the fake batch, λ, weight of the continuous codes)
Info = tuple[tuple[torch.Tensor, torch.Tensor], float, float]


def grad_norm(module: nn.Module) -> torch.Tensor:
    """‖∇θ‖₂ over the module's parameters (0 if none has a gradient)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def discriminator_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_d: torch.optim.Optimizer,
    objective: Objective,
    real: torch.Tensor,
    z: torch.Tensor,
    rng: Rng,
    gp_weight: float = 10.0,
    stats: dict | None = None,
    detailed: bool = False,
    history: HistoricalAverage | None = None,
    weight_clip: float = 0.0,
    autoencoder_weight: float = 0.0,
    info: Info | None = None,
    labelled: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Update D once on (real, G(z)); return the fake batch with its graph to G kept.

    ``info = ((categorical, continuous), λ, w)`` (InfoGAN) adds ½λ·E[−log Q(c | G(z, c))]
    on the detached fake batch, which trains the Q head and D's body under it (½: D's
    cost is ½ of the paper's −V, so λ weighs L_I against V as in Chen et al.).

    ``labelled = (x, y)`` (semi-supervised GAN, D a ``ClassifierCritic``) adds half the
    cross-entropy of D's class logits on that batch: with the cross-entropy objective D's
    cost is then ½ (L_sup + L_unsup) of Salimans et al. (2016).

    ``autoencoder_weight = λ > 0`` (MMD-GAN with an ``AutoencodingCritic``) adds λ times
    D's reconstruction error on both batches to its cost.

    ``weight_clip = c > 0`` clamps D's weights to [−c, c] after the update (WGAN's and
    MMD-GAN's way of keeping D Lipschitz / its embedding bounded).

    D's loss goes into ``stats`` as a tensor (no host sync); with ``detailed`` also mean
    D(real), mean D(fake) and the gradient norm. With S seeds in parallel (``Stacked``
    players, one generator per seed in ``rng``) the logged figures are means over seeds.
    """
    seeds = num_seeds(discriminator)
    fake = generator(z)
    real_logits = discriminator(real)
    fake_logits = discriminator(fake.detach())
    loss = objective.discriminator(real_logits, fake_logits)  # mean over seeds
    if objective.gradient_penalty:
        # the bare D: DDP does not support the penalty's input gradient (create_graph)
        loss = loss + gp_weight * gradient_penalty(unwrap(discriminator), real, fake, rng)
    if autoencoder_weight:
        errors = [discriminator(x, reconstruction_error=True).mean() for x in (real, fake.detach())]
        loss = loss + autoencoder_weight * (errors[0] + errors[1])
    if info is not None:
        (categorical, continuous), weight, continuous_weight = info
        # ½λ: gankit's costs are ½ of the paper's V (see objectives), so λ keeps its scale
        loss = loss + 0.5 * weight * info_loss(unwrap(discriminator), fake.detach(),
                                               categorical, continuous, continuous_weight)
    if labelled is not None:
        loss = loss + 0.5 * torch.nn.functional.cross_entropy(
            unwrap(discriminator).classify(labelled[0]), labelled[1])
    # The sum of the S seeds' costs gives each seed's weights exactly its own gradient.
    if seeds > 1:  # (no extra op for one seed)
        loss = seeds * loss
    if history is not None:  # already a sum over seeds
        loss = loss + history.penalty(discriminator)
    opt_d.zero_grad(set_to_none=True)
    loss.backward()
    if stats is not None:
        stats["loss_d"] = loss.detach() / seeds if seeds > 1 else loss.detach()
        if detailed:
            stats.update(d_real=torch.sigmoid(real_logits.detach()).mean(),
                         d_fake=torch.sigmoid(fake_logits.detach()).mean(),
                         grad_norm_d=grad_norm(discriminator))
    opt_d.step()
    if weight_clip:
        with torch.no_grad():
            for p in discriminator.parameters():
                p.clamp_(-weight_clip, weight_clip)
    if history is not None:
        history.update(discriminator)
    return fake


def generator_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    objective: Objective,
    fake: torch.Tensor,
    stats: dict | None = None,
    detailed: bool = False,
    *,
    real: torch.Tensor | None = None,
    match_features: bool = False,
    unroll_steps: int = 0,
    opt_d: torch.optim.Adam | None = None,
    gp_weight: float = 10.0,
    rng: Rng = None,
    history: HistoricalAverage | None = None,
    history_d: HistoricalAverage | None = None,
    info: Info | None = None,
) -> None:
    """Update G once to lower its cost on D's verdict on ``fake`` (= G(z), graph kept).

    ``unroll_steps = k``: the verdict is that of D after k differentiable updates on
    (``real``, ``fake``) (needs ``opt_d``). ``match_features``: G's cost is feature
    matching against ``real`` in D's last hidden layer instead of the objective's cost.
    ``info`` (InfoGAN): G's cost also gets ½λ·E[−log Q(c | G(z, c))], as D's does.
    """
    seeds = num_seeds(generator)
    critic = discriminator
    if unroll_steps:
        critic = unrolled_critic(discriminator, opt_d, objective, real, fake, unroll_steps,
                                 gp_weight, rng, history_d)
    if match_features:
        loss = feature_matching(critic(real, features=True).detach(),
                                critic(fake, features=True))
    elif objective.needs_real:  # MMD: G's batch is compared with a real one
        loss = objective.generator(critic(fake), critic(real).detach())
    else:
        loss = objective.generator(critic(fake))
    if info is not None:
        (categorical, continuous), weight, continuous_weight = info
        loss = loss + 0.5 * weight * info_loss(unwrap(critic), fake, categorical, continuous,
                                         continuous_weight)
    if seeds > 1:  # sum over seeds: each seed's own gradient (see discriminator_step)
        loss = seeds * loss
    if history is not None:
        loss = loss + history.penalty(generator)
    opt_g.zero_grad(set_to_none=True)
    # Gradients for G's parameters only: D's are not needed for this update.
    loss.backward(inputs=list(generator.parameters()))
    if stats is not None:
        stats["loss_g"] = loss.detach() / seeds if seeds > 1 else loss.detach()
        if detailed:
            stats["grad_norm_g"] = grad_norm(generator)
    opt_g.step()
    if history is not None:
        history.update(generator)
