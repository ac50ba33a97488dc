"""InfoGAN (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by
Information Maximizing Generative Adversarial Nets").

G takes latent codes c beside the noise z: categorical codes (K values each, uniform)
and continuous codes (uniform on [−1, 1]). A head Q on D's last hidden layer outputs
q(c | x): logits for each categorical code, a Gaussian mean and log-variance for each
continuous one. Both G and Q maximise the variational lower bound on the mutual
information (paper eq. 4 and Lemma 5.1)

    L_I(G, Q) = E_{c ~ p(c), x ~ G(z, c)} [log Q(c | x)] + H(c)  ≤  I(c; G(z, c)),

so the game is min_{G,Q} max_D V(D, G) − λ L_I. In gankit D's cost gets λ·(−log Q) on
its (detached) fake batch, which trains Q and the body it shares with D, and G's cost
gets the same term on the batch it generates.

The codes are functions of an ordinary latent vector: ``InfoGenerator`` takes
u ∈ R^(z_dim + #codes) drawn like any latent (normal or uniform), keeps the first z_dim
coordinates as noise and maps each remaining one through its distribution's CDF to a
uniform categorical value or a uniform value in [−1, 1]. So sampling, evaluation and
density-ratio correction see a plain generator, and ``codes(u)`` recovers c from u.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from gankit.nets.mlp import sample_latent

Tensor = torch.Tensor


def uniform_from_latent(u: Tensor, z_dist: str) -> Tensor:
    """A latent coordinate → U(0, 1): Φ(u) for normal coordinates, (u + 1)/2 for
    uniform ones on [−1, 1]."""
    p = 0.5 * (1 + torch.erf(u / math.sqrt(2))) if z_dist == "normal" else (u + 1) / 2
    return p.clamp(0.0, 1.0 - 1e-7)


class InfoGenerator(nn.Module):
    """G(z, c) over a latent u = (z, one coordinate per code); see the module docstring.

    ``net`` is any generator whose input has z_dim + Σ K + #continuous coordinates
    (the noise, the one-hot categorical codes and the continuous codes).
    """

    def __init__(self, net: nn.Module, noise_dim: int, categorical: list[int],
                 continuous: int, z_dist: str = "normal") -> None:
        super().__init__()
        self.net, self.noise_dim = net, noise_dim
        self.categorical, self.continuous, self.z_dist = list(categorical), continuous, z_dist
        self.z_dim = noise_dim + len(self.categorical) + continuous  # what u has

    def codes(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """(categorical values (n, #cat) int64, continuous codes (n, #cont) in [−1, 1])."""
        p = uniform_from_latent(u[..., self.noise_dim:], self.z_dist)
        n_cat = len(self.categorical)
        sizes = torch.tensor(self.categorical, device=u.device)
        cat = (p[..., :n_cat] * sizes).long()
        return cat, 2 * p[..., n_cat:] - 1

    def decode(self, z: Tensor, categorical: Tensor, continuous: Tensor) -> Tensor:
        """G on explicit codes: ``continuous`` may leave [−1, 1] (traversals)."""
        # (a comparison, not F.one_hot: it checks values, which vmap over seeds forbids)
        onehots = [(categorical[..., i, None] == torch.arange(k, device=z.device)).to(z.dtype)
                   for i, k in enumerate(self.categorical)]
        return self.net(torch.cat([z, *onehots, continuous.to(z.dtype)], dim=-1))

    def forward(self, u: Tensor) -> Tensor:
        cat, cont = self.codes(u)
        return self.decode(u[..., :self.noise_dim], cat, cont)


class InfoDiscriminator(nn.Module):
    """D with the Q head of InfoGAN on its last hidden layer (``features=True``).

    ``forward`` is D's as before; ``q(x)`` returns (list of categorical logits, mean,
    log-variance) of q(c | x). With ``fixed_std`` the continuous codes' Gaussians have
    unit variance (log-variance 0) and Q outputs only their means, as in the InfoGAN
    authors' MNIST code: −log Q is then ½(c − μ)² + const, whose pull does not grow as Q
    sharpens (a learned variance of e⁻⁴ weighs the continuous codes ~55× more).
    """

    def __init__(self, net: nn.Module, feature_dim: int, categorical: list[int],
                 continuous: int, width: int = 128, fixed_std: bool = False,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.net, self.categorical, self.continuous = net, list(categorical), continuous
        self.fixed_std = fixed_std
        self.out_dim = getattr(net, "out_dim", 1)
        outputs = sum(categorical) + (1 if fixed_std else 2) * continuous
        norm = [nn.BatchNorm1d(width)] if batch_norm else []  # (InfoGAN's Q has it)
        self.q_head = nn.Sequential(nn.Linear(feature_dim, width), *norm, nn.LeakyReLU(0.2),
                                    nn.Linear(width, outputs))

    def forward(self, x: Tensor, features: bool = False, q: bool = False):
        """D's logit (its features with ``features``), or with ``q`` what ``q(x)`` returns
        (the form ``Stacked`` seeds can call)."""
        return self.q(x) if q else self.net(x, features=features)

    def q(self, x: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
        out = self.q_head(self.net(x, features=True))
        n_cat = sum(self.categorical)
        logits = list(out[..., :n_cat].split(self.categorical, dim=-1))
        if self.fixed_std:
            mean = out[..., n_cat:]
            return logits, mean, torch.zeros_like(mean)
        mean, log_var = out[..., n_cat:].chunk(2, dim=-1)
        return logits, mean, log_var.clamp(-10.0, 10.0)


def code_entropy(categorical: list[int], continuous: int) -> tuple[float, float]:
    """H(c) in nats: (Σ log K of the categorical codes, continuous codes' differential
    entropy #cont · log 2 of U[−1, 1])."""
    return float(sum(math.log(k) for k in categorical)), continuous * math.log(2.0)


def categorical_nll(logits: list[Tensor], codes: Tensor) -> Tensor:
    """−E log Q(c_cat | x), summed over the categorical codes (nats); the mean runs over
    every leading dimension (samples, or seeds × samples)."""
    return sum((F.cross_entropy(lg.flatten(0, -2), codes[..., i].flatten())
                for i, lg in enumerate(logits)),
               torch.zeros((), device=codes.device))


def gaussian_nll(mean: Tensor, log_var: Tensor, codes: Tensor) -> Tensor:
    """−E log N(c_cont; mean, exp(log_var)), summed over the continuous codes (nats; the
    mean over every leading dimension)."""
    if codes.shape[-1] == 0:
        return torch.zeros((), device=codes.device)
    nll = 0.5 * (log_var + (codes - mean).square() / log_var.exp() + math.log(2 * math.pi))
    return nll.sum(-1).mean()


def info_loss(discriminator: InfoDiscriminator, fake: Tensor, categorical: Tensor,
              continuous: Tensor, continuous_weight: float = 1.0) -> Tensor:
    """−L_I + H(c) = E[−log Q(c | x)] on generated x with codes c, the continuous part
    weighted by ``continuous_weight``."""
    logits, mean, log_var = discriminator(fake, q=True)
    return categorical_nll(logits, categorical) + \
        continuous_weight * gaussian_nll(mean, log_var, continuous)


def mi_lower_bound(logits: list[Tensor], codes: Tensor, categorical: list[int]) -> float:
    """The categorical codes' L_I = H(c) − E[−log Q(c | x)] in nats: at most H(c) =
    Σ log K (cross-entropy is ≥ 0), equal to it when Q recovers c exactly."""
    return code_entropy(categorical, 0)[0] - float(categorical_nll(logits, codes))


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
def info_metrics(generator: InfoGenerator, discriminator: InfoDiscriminator,
                 classify, num_classes: int, n: int, seed: int) -> dict:
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
    logits, _, _ = discriminator.q(x)
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
