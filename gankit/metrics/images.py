"""Image metrics in the evaluation classifier's feature space.

Each metric is a pure function of feature / label tensors:

- ``frechet_distance``: FD between Gaussians fitted to two feature sets (Heusel et al.
  2017, the FID with a digit classifier in place of Inception-v3).
- ``kernel_distance``: KID, the unbiased MMD² with a cubic polynomial kernel, averaged
  over subsets (Bińkowski et al. 2018).
- ``precision_recall``: improved precision and recall with k-NN manifolds (Kynkäänniemi
  et al. 2019).
- ``classifier_score``: the Inception-Score-style exp E KL(p(y|x) ‖ p(y)) (Salimans et
  al. 2016).
- ``label_histogram``: modes covered and KL(p̂ ‖ uniform) of the predicted labels
  (stacked MNIST: 1000 modes, as in Lin et al. 2018, PacGAN, and Metz et al. 2017).

``image_metrics`` computes all of them for generated images against a reference split,
``real_data_floor`` the same for the held-out test split against the train split: what a
perfect generator would score with as many samples. FD, KID and precision/recall depend
on the sample sizes, so compare a run with the floor at equal sizes (``eval_samples``).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from gankit.data.images import StackedImageData, load_images
from gankit.errors import GankitError
from gankit.metrics.classifier import (
    Embedding,
    ImageClassifier,
    classifier_dataset,
    embed,
    embed_data,
    load_classifier,
)
from gankit.metrics.modes import DISTANCE_CHUNK

__all__ = ["STACKED_EVAL_SAMPLES", "gaussian_stats", "frechet_distance_from_stats",
           "frechet_distance", "polynomial_kernel", "mmd2_unbiased", "kernel_distance",
           "precision_recall", "classifier_score", "label_histogram", "feature_metrics",
           "eval_samples", "reference_embedding", "image_metrics", "real_data_floor"]


STACKED_EVAL_SAMPLES = 26_000  # PacGAN's stacked-MNIST protocol


def gaussian_stats(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean μ (d,) and unbiased covariance Σ (d, d) of ``features`` (n, d), in float64."""
    x = torch.as_tensor(features).double().cpu().numpy()
    if x.ndim != 2 or len(x) < 2:
        raise GankitError(f"features: need (n, d) with n >= 2, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                                sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """FD = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^{1/2}), the squared 2-Wasserstein
    distance between N(μ₁, Σ₁) and N(μ₂, Σ₂) (Dowson & Landau 1982; Heusel et al. 2017).

    (Σ₁Σ₂)^{1/2} by ``scipy.linalg.sqrtm``; Σ₁Σ₂ is similar to the PSD Σ₁^{1/2}Σ₂Σ₁^{1/2},
    so its root is real and any imaginary part is rounding error, dropped. If the root is
    not finite (singular covariances), ``eps``·I is added to both, as in pytorch-fid.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    with warnings.catch_warnings():  # a singular product (e.g. one repeated image) is fine
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = eps * np.eye(len(sigma1))
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    diff = mu1 - mu2
    fd = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean).real
    return max(0.0, float(fd))  # rounding can leave −1e−12 for equal Gaussians


def frechet_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """FD between Gaussians fitted to feature sets x (n, d) and y (m, d); see
    ``frechet_distance_from_stats``. Biased upwards at small n (Chong & Forsyth 2020):
    compare values only at equal sample sizes."""
    return frechet_distance_from_stats(*gaussian_stats(x), *gaussian_stats(y))


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """k(x, y) = (x·y / d + 1)³ for all pairs: (n, m), float64 (the product in float32
    first: its rounding averages out, while the cube must not lose the small MMD²)."""
    d = x.shape[1]
    return (x.float() @ y.float().T).double().div(d).add(1.0).pow(3)


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """The unbiased estimate of MMD²(P, Q) from x ~ P (m, d) and y ~ Q (n, d):

    MMD²_u = Σ_{i≠j} k(xᵢ,xⱼ) / (m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ) / (n(n−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ) / (mn)

    (Gretton et al. 2012, eq. 3), with the cubic polynomial kernel of KID. Its
    expectation is exactly MMD², so it is ≈ 0 (and may be negative) when P = Q.
    """
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise GankitError(f"features: MMD needs at least 2 points per set, got {m} and {n}")
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    xx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(xx + yy - 2 * kxy.mean())


def kernel_distance(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | None = None,
    blocks: int = 10,
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018, "Demystifying MMD GANs", §4) and its standard error.

    KID is the mean of ``mmd2_unbiased`` over ``subsets`` random subsets of
    min(subset_size, n, m) points of each set (without replacement within a subset).

    The SE is that of the mean of ``mmd2_unbiased`` over ``blocks`` disjoint blocks (each
    set randomly cut into that many equal parts, part b of x against part b of y), whose
    estimates are independent: SE = sd(block estimates) / √blocks. Random subsets
    overlap (the whole test split is in every subset when it has ≤ subset_size images),
    so their spread / √subsets would be far too small. Both estimators are unbiased and
    about equally variable when P ≠ Q (simulated: block SE within ~20% of the spread of
    KID over repeated samples); when P = Q the blocks, using fewer pairs, err large
    (by up to √blocks), never small.
    ``generator`` (CPU) makes the draws reproducible.
    """
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    size = min(subset_size, len(x), len(y))
    kid = sum(mmd2_unbiased(x[torch.randperm(len(x), generator=g)[:size]],
                            y[torch.randperm(len(y), generator=g)[:size]])
              for _ in range(subsets)) / subsets
    blocks = min(blocks, len(x) // 2, len(y) // 2)
    if blocks < 2:
        return kid, float("nan")
    xs = x[torch.randperm(len(x), generator=g)].tensor_split(blocks)
    ys = y[torch.randperm(len(y), generator=g)].tensor_split(blocks)
    estimates = torch.tensor([mmd2_unbiased(a, b) for a, b in zip(xs, ys)], dtype=torch.float64)
    return kid, float(estimates.std() / math.sqrt(blocks))


def _rows_per_chunk(columns: int, chunk: int) -> int:
    """Rows of a distance matrix computed at once: at most ``chunk``, and about
    ``DISTANCE_CHUNK`` distances in all, so memory is O(n), never n × n."""
    return max(1, min(chunk, DISTANCE_CHUNK // max(columns, 1)))


def _kth_neighbour_distance(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance from each point of x to its k-th nearest neighbour in x, itself excluded."""
    if len(x) <= k:
        raise GankitError(f"features: k-NN radii need more than k = {k} points, got {len(x)}")
    rows = _rows_per_chunk(len(x), chunk)
    out = torch.empty(len(x), dtype=x.dtype)  # (one buffer: see ``modes.coverage``)
    for i in range(0, len(x), rows):
        out[i:i + rows] = torch.cdist(x[i:i + rows], x).kthvalue(k + 1, dim=1).values  # +1:
    return out  # itself, at distance 0


def _inside_manifold(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor,
                     chunk: int) -> torch.Tensor:
    """Whether each point lies in at least one ball B(centre_j, radius_j)."""
    rows = _rows_per_chunk(len(centres), chunk)
    out = torch.empty(len(points), dtype=torch.bool)
    for i in range(0, len(points), rows):
        out[i:i + rows] = (torch.cdist(points[i:i + rows], centres) <= radii).any(dim=1)
    return out


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3,
                     chunk: int = 1000) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), with k = 3 as there.

    Each set's manifold is the union of balls around its points, each ball reaching
    the point's k-th nearest neighbour in its own set. Precision = the fraction of fake
    points inside the real manifold (sample quality); recall = the fraction of real
    points inside the fake manifold (coverage).

    Distances are computed in float64 on features centred on the real mean: the fast
    ‖a‖² + ‖b‖² − 2a·b form loses the small differences of features that share a large
    offset in float32 (at an offset of 300, 1–2% of the memberships flipped).
    Memory is O(n · chunk).
    """
    centre = real.double().mean(0)
    real, fake = real.double() - centre, fake.double() - centre
    real_radii = _kth_neighbour_distance(real, k, chunk)
    fake_radii = _kth_neighbour_distance(fake, k, chunk)
    precision = _inside_manifold(fake, real, real_radii, chunk).double().mean()
    recall = _inside_manifold(real, fake, fake_radii, chunk).double().mean()
    return float(precision), float(recall)


def classifier_score(log_probs: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) ‖ p(y))) with p(y) = E_x p(y|x): the Inception Score (Salimans
    et al. 2016) with the evaluation classifier. Between 1 (every image gets the same
    prediction) and K (confident predictions spread evenly over K classes).
    ``log_probs`` (n, K) is log p(y|x)."""
    lp = torch.as_tensor(log_probs).double()
    log_marginal = torch.logsumexp(lp, dim=0) - math.log(len(lp))
    p = lp.exp()
    kl = torch.where(p > 0, p * (lp - log_marginal), torch.zeros_like(p)).sum(dim=1)
    return float(kl.mean().exp())


def label_histogram(labels: torch.Tensor, num_classes: int) -> dict[str, float | int]:
    """``modes``: classes predicted at least once; ``kl``: KL(p̂ ‖ uniform) = log K − H(p̂)
    of the predicted-label histogram p̂ (nats). For stacked MNIST (K = 1000, labels
    100·a + 10·b + c) this is PacGAN's protocol (Lin et al. 2018, Table 3)."""
    labels = torch.as_tensor(labels).long().flatten().cpu()
    if len(labels) == 0:
        raise GankitError("labels: no samples to count")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise GankitError(f"labels: expected values in 0..{num_classes - 1}, got "
                          f"{int(labels.min())}..{int(labels.max())}")
    counts = torch.bincount(labels, minlength=num_classes)
    p = counts[counts > 0].double() / len(labels)
    return {"modes": int((counts > 0).sum()), "num_modes": num_classes,
            "kl": max(0.0, math.log(num_classes) + float((p * p.log()).sum()))}


def feature_metrics(
    fake: Embedding,
    real: Embedding,
    *,
    k: int = 3,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_samples: int = 10_000,
    seed: int = 0,
) -> dict[str, float | int]:
    """Every metric of ``fake`` against ``real`` (both from ``classifier.embed``).
    Precision and recall use the first ``pr_samples`` of each set: their k-NN balls
    cost O(n²) and shrink with n, so they are compared at this fixed size."""
    kid, kid_se = kernel_distance(fake.features, real.features, subsets=kid_subsets,
                                  subset_size=kid_subset_size,
                                  generator=torch.Generator().manual_seed(seed))
    precision, recall = precision_recall(real.features[:pr_samples],
                                         fake.features[:pr_samples], k)
    return {
        "fd": frechet_distance(fake.features, real.features),
        "kid": kid, "kid_se": kid_se, "precision": precision, "recall": recall,
        "classifier_score": classifier_score(fake.log_probs),
        **label_histogram(fake.labels, fake.num_classes),
        "samples": len(fake), "reference_samples": len(real),
    }


def eval_samples(name: str, root: str | Path | None = None) -> int:
    """How many generated images to evaluate on ``name``: 26,000 on stacked MNIST
    (PacGAN), else the size of the test split, so a run compares with the real-data floor
    at equal sample sizes."""
    if name == "stacked-mnist":
        return STACKED_EVAL_SAMPLES
    return len(load_images(name, "test", root))


_REFERENCES: dict[tuple, tuple[ImageClassifier, Embedding]] = {}


def reference_embedding(name: str, split: str = "train", root: str | Path | None = None,
                        classifier: ImageClassifier | None = None) -> Embedding:
    """The classifier's view of a whole real split (stacked MNIST: its fixed set of
    10,000 stacks), computed once per process."""
    classifier = classifier if classifier is not None else load_classifier(name, root)
    key = (name, split, str(root), id(classifier))
    cached = _REFERENCES.get(key)
    if cached is None or cached[0] is not classifier:
        cached = (classifier, embed_data(classifier, load_images(name, split, root)))
        _REFERENCES[key] = cached
    return cached[1]


def image_metrics(
    images: torch.Tensor,
    name: str,
    root: str | Path | None = None,
    reference: str = "train",
    classifier: ImageClassifier | None = None,
    **options,
) -> dict[str, float | int | str | None]:
    """FD, KID (± SE), precision, recall, classifier score, modes and KL of generated
    ``images`` (n, C, H, W) in [−1, 1], against the ``reference`` split of dataset
    ``name``, with the classifier's test accuracy beside them. ``options`` go to
    ``feature_metrics``."""
    classifier = classifier if classifier is not None else load_classifier(name, root)
    expected = load_images(name, reference, root).shape
    if tuple(images.shape[1:]) != tuple(expected):
        raise GankitError(f"images: {name} needs shape (n, {', '.join(map(str, expected))}), "
                          f"got {tuple(images.shape)}")
    real = reference_embedding(name, reference, root, classifier)
    return {**feature_metrics(embed(classifier, images), real, **options),
            "dataset": name, "classifier": classifier_dataset(name, root),
            "classifier_accuracy": classifier.test_accuracy}


def real_data_floor(
    name: str,
    root: str | Path | None = None,
    n: int | None = None,
    classifier: ImageClassifier | None = None,
    **options,
) -> dict[str, float | int | str | None]:
    """The metrics of real held-out data: the test split against the train split (the
    reference of ``image_metrics``), on the first ``n`` test images (default
    ``eval_samples``; at most the whole split). Stacked MNIST draws ``n`` fresh stacks of
    test digits (default 26,000)."""
    classifier = classifier if classifier is not None else load_classifier(name, root)
    test = load_images(name, "test", root)
    n = eval_samples(name, root) if n is None else n
    if isinstance(test, StackedImageData):
        fake = embed_data(classifier, test, n, seed=1)
    else:
        fake = embed(classifier, test.images[:n])
    real = reference_embedding(name, "train", root, classifier)
    return {**feature_metrics(fake, real, **options), "dataset": name,
            "classifier": classifier_dataset(name, root),
            "classifier_accuracy": classifier.test_accuracy}
