"""The semi-supervised GAN's evaluation: the test error of D's classifier, and the
baseline of the same network trained on the labelled examples alone."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankit.nets.heads import ClassifierCritic
from gankit.nets.layers import call

__all__ = ["classification_error", "train_labelled_only"]


Tensor = torch.Tensor










@torch.no_grad()
def classification_error(critic: ClassifierCritic, images: Tensor, labels: Tensor,
               batch_size: int = 1000) -> float:
    """Fraction of ``images`` whose arg-max class logit is not their label."""
    was = critic.training
    critic.eval()
    device = next(critic.parameters()).device
    wrong = 0
    for i in range(0, len(images), batch_size):
        pred = call(critic, "classify", images[i:i + batch_size].to(device)).argmax(-1).cpu()
        wrong += int((pred != labels[i:i + batch_size]).sum())
    critic.train(was)
    return wrong / max(1, len(images))


def train_labelled_only(critic: ClassifierCritic, images: Tensor, labels: Tensor, *, steps: int,
                        batch_size: int, lr: float, betas: tuple[float, float],
                        seed: int, schedule: str = "constant") -> ClassifierCritic:
    """The baseline: the same network trained by cross-entropy on the labelled examples
    alone, with the GAN's optimizer, batch size, learning-rate schedule (``constant`` or
    ``linear`` decay to 0) and number of D updates."""
    device = next(critic.parameters()).device
    images, labels = images.to(device), labels.to(device)
    opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=betas)
    g = torch.Generator(device).manual_seed(seed)
    critic.train()
    for step in range(steps):
        if schedule == "linear":
            opt.param_groups[0]["lr"] = lr * (1 - step / steps)
        i = torch.randint(len(images), (batch_size,), generator=g, device=device)
        loss = F.cross_entropy(call(critic, "classify", images[i]), labels[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return critic


