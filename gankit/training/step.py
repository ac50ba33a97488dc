"""One alternating GAN update, written out: the D step, then the G step.

The fake batch G(z) made for D's last update is reused by G's update (G has not changed
in between, so this is the same forward pass, not an approximation). Each step takes
the player's cost (``gankit.training.costs``), built once, and a ``Batch``; tricks are
options of these two functions, not forks of the loop.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from gankit.nets.stacked import num_seeds
from gankit.training.costs import Batch, Cost
from gankit.training.distributed import unwrap
from gankit.training.tricks import HistoricalAverage, Unroll, unrolled_critic

__all__ = ["discriminator_step", "generator_step", "grad_norm"]


def grad_norm(module: nn.Module) -> torch.Tensor:
    """‖∇θ‖₂ over the module's parameters (0 if none has a gradient)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def discriminator_step(
    generator: nn.Module, discriminator: nn.Module, opt_d: torch.optim.Optimizer,
    cost: Cost, batch: Batch, *, stats: dict | None = None, detailed: bool = False,
    history: HistoricalAverage | None = None, weight_clip: float = 0.0,
) -> Batch:
    """Update D once on (real, G(z)); return ``batch`` with the fake batch, its graph to
    G kept, for G's update.

    D's cost sees the fake batch detached. ``history`` (historical averaging) is updated
    after the step; ``weight_clip = c > 0`` clamps D's weights to [−c, c] after it (WGAN's
    and MMD-GAN's way of keeping D Lipschitz / its embedding bounded).

    D's loss goes into ``stats`` as a tensor (no host sync); with ``detailed`` also mean
    D(real), mean D(fake) and the gradient norm. With S seeds in parallel (``Stacked``
    players, one generator per seed in ``batch.rng``) the figures are means over seeds.
    """
    seeds = num_seeds(discriminator)
    fake = generator(batch.z)
    logs: dict = {}
    loss = cost(discriminator, dataclasses.replace(batch, fake=fake.detach()),
                dict(unwrap(discriminator).named_parameters()), seeds, logs)
    opt_d.zero_grad(set_to_none=True)
    loss.backward()
    if stats is not None:
        stats["loss_d"] = loss.detach() / seeds if seeds > 1 else loss.detach()
        if detailed:
            stats.update(d_real=torch.sigmoid(logs["real_logits"].detach()).mean(),
                         d_fake=torch.sigmoid(logs["fake_logits"].detach()).mean(),
                         grad_norm_d=grad_norm(discriminator))
    opt_d.step()
    if weight_clip:
        with torch.no_grad():
            for p in discriminator.parameters():
                p.clamp_(-weight_clip, weight_clip)
    if history is not None:
        history.update(discriminator)
    return dataclasses.replace(batch, fake=fake)


def generator_step(
    generator: nn.Module, discriminator: nn.Module, opt_g: torch.optim.Optimizer,
    cost: Cost, batch: Batch, *, stats: dict | None = None, detailed: bool = False,
    history: HistoricalAverage | None = None, unroll: Unroll | None = None,
) -> None:
    """Update G once to lower its cost on D's verdict on ``batch.fake`` (= G(z), graph
    kept; made here from ``batch.z`` when there was no D step, as for GMMN).

    ``unroll``: the verdict is that of D after ``unroll.steps`` differentiable updates on
    (real, fake). ``history``: G's historical average, updated after the step.
    """
    seeds = num_seeds(generator)
    if batch.fake is None:
        batch = dataclasses.replace(batch, fake=generator(batch.z))
    critic = discriminator if unroll is None else unrolled_critic(discriminator, unroll, batch)
    loss = cost(critic, batch, dict(unwrap(generator).named_parameters()), seeds)
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
