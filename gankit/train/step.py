"""One alternating GAN update, written out: the D step, then the G step.

The fake batch G(z) made for D's last update is reused by G's update (G has not changed
in between, so this is the same forward pass, not an approximation).
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.objectives import Objective, gradient_penalty


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
    rng: torch.Generator,
    gp_weight: float = 10.0,
    stats: dict | None = None,
    detailed: bool = False,
) -> torch.Tensor:
    """Update D once on (real, G(z)); return the fake batch with its graph to G kept.

    D's loss goes into ``stats`` as a tensor (no host sync); with ``detailed`` also mean
    D(real), mean D(fake) and the gradient norm.
    """
    fake = generator(z)
    real_logits = discriminator(real)
    fake_logits = discriminator(fake.detach())
    loss = objective.discriminator(real_logits, fake_logits)
    if objective.gradient_penalty:
        loss = loss + gp_weight * gradient_penalty(discriminator, real, fake, rng)
    opt_d.zero_grad(set_to_none=True)
    loss.backward()
    if stats is not None:
        stats["loss_d"] = loss.detach()
        if detailed:
            stats.update(d_real=torch.sigmoid(real_logits.detach()).mean(),
                         d_fake=torch.sigmoid(fake_logits.detach()).mean(),
                         grad_norm_d=grad_norm(discriminator))
    opt_d.step()
    return fake


def generator_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    objective: Objective,
    fake: torch.Tensor,
    stats: dict | None = None,
    detailed: bool = False,
) -> None:
    """Update G once to lower its cost on D's verdict on ``fake`` (= G(z), graph kept)."""
    loss = objective.generator(discriminator(fake))
    opt_g.zero_grad(set_to_none=True)
    # Gradients for G's parameters only: D's are not needed for this update.
    loss.backward(inputs=list(generator.parameters()))
    if stats is not None:
        stats["loss_g"] = loss.detach()
        if detailed:
            stats["grad_norm_g"] = grad_norm(generator)
    opt_g.step()
