"""InfoGAN's evaluation: how well the categorical code matches the data's classes
(Hungarian accuracy), the mutual-information bound, and latent traversals."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from gankit.losses.info import code_entropy, mi_lower_bound
from gankit.nets.heads import InfoDiscriminator, InfoGenerator
from gankit.nets.layers import call
from gankit.nets.mlp import sample_latent

Tensor = torch.Tensor
__all__ = ["hungarian_accuracy", "info_metrics", "traversal"]


def hungarian_accuracy(codes: Tensor, labels: Tensor, num_codes: int,
                       num_classes: int) -> tuple[float, list[int]]:
    """Accuracy of code values as class predictions under the best one-to-one map of
    code values to classes (Hungarian assignment on the code × class counts); returns
    (accuracy, class of each code value, −1 for an unmatched one)."""
    counts = np.zeros((num_codes, num_classes))
    np.add.at(counts, (codes.cpu().numpy(), labels.cpu().numpy()), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    mapping = [-1] * num_codes
    for r, c in zip(rows, cols):
        mapping[r] = int(c)
    return float(counts[rows, cols].sum() / max(1, len(codes))), mapping


@torch.no_grad()
def info_metrics(generator: InfoGenerator, discriminator: InfoDiscriminator, classify, *,
                 num_classes: int, n: int, seed: int) -> dict:
    """``categorical_accuracy``: the first categorical code's Hungarian accuracy against
    ``classify``'s labels of the samples (the evaluation classifier, or the nearest mode
    of a mixture); ``mi_bound`` and ``mi_max``: the categorical codes' L_I and H(c)."""
    device = next(generator.parameters()).device
    was = generator.training, discriminator.training
    generator.eval(), discriminator.eval()
    rng = torch.Generator().manual_seed(seed)
    u = sample_latent(n, generator.z_dim, generator.z_dist, rng, "cpu").to(device)
    cat, _ = generator.codes(u)
    x = generator(u)
    logits, _, _ = call(discriminator, "q", x)  # (through DiffAugment and the like)
    metrics = {"mi_bound": mi_lower_bound(logits, cat, generator.categorical),
               "mi_max": code_entropy(generator.categorical, 0)[0]}
    if generator.categorical:
        acc, _ = hungarian_accuracy(cat[:, 0], classify(x), generator.categorical[0],
                                    num_classes)
        metrics["categorical_accuracy"] = acc
    generator.train(was[0]), discriminator.train(was[1])
    return metrics


@torch.no_grad()
def traversal(generator: InfoGenerator, steps: int = 9, span: float = 2.0,
              seed: int = 0) -> list[Tensor]:
    """Latent traversals, one grid per continuous code (or one grid without them): rows
    the values of the first categorical code, columns that code swept over
    [−span, span] with the noise and the other codes fixed. Returns tensors
    (rows, steps, *sample shape)."""
    device = next(generator.parameters()).device
    was = generator.training
    generator.eval()
    rng = torch.Generator().manual_seed(seed)
    rows = generator.categorical[0] if generator.categorical else 1
    z = sample_latent(1, generator.noise_dim, generator.z_dist, rng, "cpu").to(device)
    cat = torch.zeros(rows, max(1, len(generator.categorical)), dtype=torch.long,
                      device=device)[:, :len(generator.categorical)]
    if generator.categorical:
        cat[:, 0] = torch.arange(rows, device=device)
    sweep = torch.linspace(-span, span, steps, device=device)
    grids = []
    for j in range(max(1, generator.continuous)):
        cont = torch.zeros(rows, steps, generator.continuous, device=device)
        if generator.continuous:
            cont[..., j] = sweep
        x = generator.decode(z.expand(rows * steps, -1),
                             cat.repeat_interleave(steps, 0),
                             cont.reshape(rows * steps, generator.continuous))
        grids.append(x.cpu().reshape(rows, steps, *x.shape[1:]))
    generator.train(was)
    return grids
