"""Two-sample metrics for data gankit has never seen: generated samples against held-out
real ones, in the data's own coordinates (vectors) or in a feature space (images).

- ``mmd2`` and ``mmd_p``: the unbiased MMD² under a sum of Gaussian kernels whose
  bandwidths are the median distance between held-out points times {¼, 1, 4} (the median
  heuristic, Gretton et al. 2012), and its permutation-test p-value.
- ``c2st_accuracy``: a classifier two-sample test (Lopez-Paz & Oquab 2017): a small MLP
  learns to tell generated from held-out points on half of each, and is scored on the
  other half. 0.5 means it cannot tell them apart; 1.0 that it always can.
- ``precision`` and ``recall``: k-NN manifolds (Kynkäänniemi et al. 2019, k = 3).
- in features (images): ``fd`` and ``kid`` as well.

``floor`` metrics are the same with the training data in place of the generated samples:
what real data scores against held-out data at this sample size.
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.losses.mmd import gaussian_kernel, mmd_test, squared_distances
from gankit.metrics.images import frechet_distance, kernel_distance, precision_recall
from gankit.metrics.mmd import PERMUTATIONS

__all__ = ["MAX_SAMPLES", "two_sample_metrics", "c2st_accuracy", "RandomFeatures",
           "LabelClassifier", "train_label_classifier", "feature_metrics"]

MAX_SAMPLES = 2000  # of each set: the k-NN and permutation tests are O(n²)
Tensor = torch.Tensor


def c2st_accuracy(fake: Tensor, real: Tensor, *, seed: int = 0, steps: int = 300) -> float:
    """Held-out accuracy of an MLP (2 × 64, ReLU) trained to tell ``fake`` from ``real``
    (the first half of each trains it, the second half scores it); inputs standardised
    by the real half's mean and standard deviation."""
    g = torch.Generator().manual_seed(seed)
    n = min(len(fake), len(real)) // 2 * 2
    fake, real = fake[torch.randperm(len(fake), generator=g)[:n]].float(), \
        real[torch.randperm(len(real), generator=g)[:n]].float()
    mean, std = real.mean(0), real.std(0).clamp_min(1e-8)
    x = (torch.cat([fake, real]) - mean) / std
    y = torch.cat([torch.zeros(n), torch.ones(n)])
    train = torch.cat([torch.arange(n // 2), n + torch.arange(n // 2)])
    test = torch.cat([torch.arange(n // 2, n), n + torch.arange(n // 2, n)])
    with torch.random.fork_rng(devices=[]), torch.enable_grad():  # (callers may not)
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                            nn.Linear(64, 1))
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(steps):
            loss = nn.functional.binary_cross_entropy_with_logits(net(x[train]).squeeze(1),
                                                                  y[train])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            guess = (net(x[test]).squeeze(1) > 0).float()
    return float((guess == y[test]).float().mean())


def two_sample_metrics(fake: Tensor, real: Tensor, *, seed: int = 0) -> dict:
    """MMD² and its p-value, C2ST accuracy, precision and recall of ``fake`` (n, d)
    against ``real`` (m, d), at most ``MAX_SAMPLES`` of each."""
    g = torch.Generator().manual_seed(seed)
    fake = fake.reshape(len(fake), -1).double()
    real = real.reshape(len(real), -1).double()
    fake = torch.where(torch.isfinite(fake), fake, 1e6)  # a broken sample is far from all
    n = min(len(fake), len(real), MAX_SAMPLES)
    if n < 4:  # too few held-out examples for a test or a k-NN manifold
        return {"mmd2": None, "mmd_p": None, "c2st_accuracy": None, "precision": None,
                "recall": None, "held_out": n}
    x = fake[torch.randperm(len(fake), generator=g)[:n]]
    y = real[torch.randperm(len(real), generator=g)[:n]]
    d2 = squared_distances(y, y)
    median = float(d2[d2 > 0].median().sqrt()) if bool((d2 > 0).any()) else 1.0
    mmd2, p = mmd_test(x, y, gaussian_kernel([median * s for s in (0.25, 1.0, 4.0)]),
                       PERMUTATIONS, g)
    precision, recall = precision_recall(y, x, k=min(3, n - 1))
    return {"mmd2": mmd2, "mmd_p": p, "c2st_accuracy": c2st_accuracy(x, y, seed=seed),
            "precision": precision, "recall": recall, "held_out": n}


class RandomFeatures(nn.Module):
    """A fixed, seeded random CNN as a feature map for images no trained network knows:
    three 3×3 stride-2 convolutions (ReLU) and a global average: 128 features.

    Random convolutional features respond to local intensity, edges and their layout at a
    few scales, so FD, KID, precision and recall in them see blur, noise, wrong contrast,
    missing strokes and a lack of variety; they carry no notion of what an image shows
    (no class), so a sample that mixes two classes can score like a real one. Give
    ``data.features`` (a TorchScript file mapping (n, C, H, W) images in [−1, 1] to
    (n, f) features) to measure in a network that knows your data.
    """

    def __init__(self, channels: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, 2, 1) for a, b in
                                   ((channels, 32), (32, 64), (64, 128)))
        with torch.no_grad():
            for conv in self.convs:
                fan_in = conv.in_channels * 9
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2 / fan_in) ** .5)
                conv.bias.zero_()
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = torch.relu(conv(x))
        return x.mean((2, 3))


class LabelClassifier(nn.Module):
    """A small CNN trained on the user's class labels, whose penultimate layer is the
    feature space of the image metrics: two 3×3 stride-2 convolutions (32, 64, ReLU), a
    global average, a 128-wide layer (the features, ReLU), the class logits."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, 32, 3, 2, 1), nn.ReLU(),
                                  nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 128),
                                  nn.ReLU())
        self.head = nn.Linear(128, num_classes)
        self.test_accuracy: float | None = None

    def forward(self, x: Tensor) -> Tensor:
        """The features (what the metrics compare)."""
        return self.body(x)

    def logits(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def train_label_classifier(train, test, *, steps: int = 1500, seed: int = 0
                           ) -> LabelClassifier:
    """A ``LabelClassifier`` trained on the labelled ``train`` split (Adam 1e-3 decayed
    to 0, batch 64); its accuracy on ``test`` is kept in ``test_accuracy``. The global
    random stream is left as it was."""
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        model = LabelClassifier(train.shape[0], train.num_classes)
        g = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)
        for _ in range(steps):
            x, y = train.sample(64, g, "cpu", return_labels=True)
            loss = nn.functional.cross_entropy(model.logits(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval().requires_grad_(False)
    with torch.no_grad():
        guess = torch.cat([model.logits(c).argmax(1) for c in test.images.split(500)])
    model.test_accuracy = float((guess == test.labels).float().mean())
    return model


@torch.no_grad()
def feature_metrics(fake: Tensor, real: Tensor, features: nn.Module, *, seed: int = 0
                    ) -> dict:
    """FD, KID, precision, recall, MMD², C2ST of images ``fake`` against ``real`` in the
    outputs of ``features`` (at most ``MAX_SAMPLES`` of each)."""
    g = torch.Generator().manual_seed(seed)
    n = min(len(fake), len(real), MAX_SAMPLES)
    fake = fake[torch.randperm(len(fake), generator=g)[:n]]
    real = real[torch.randperm(len(real), generator=g)[:n]]

    def embed(x: Tensor) -> Tensor:
        return torch.cat([features(c.float()).double() for c in x.split(500)])

    fx, fy = embed(fake), embed(real)
    if n < 4:
        return {"fd": None, "kid": None, "kid_se": None, **two_sample_metrics(fx, fy)}
    kid, kid_se = kernel_distance(fx, fy, subsets=min(100, max(1, n // 2)),
                                  subset_size=min(1000, n), generator=g)
    return {"fd": frechet_distance(fx, fy), "kid": kid, "kid_se": kid_se,
            **two_sample_metrics(fx, fy, seed=seed)}
