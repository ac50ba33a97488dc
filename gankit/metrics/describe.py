"""What each metric means and which way is better: for tables a person reads (``gankit
eval``, the HTML report, the bench tables)."""

from __future__ import annotations

from typing import Any

from gankit.metrics.mmd import PERMUTATIONS

__all__ = ["METRICS", "direction", "meaning", "format_value"]

# key -> (direction: "↑" higher is better, "↓" lower is better, "" neither; one line)
METRICS: dict[str, tuple[str, str]] = {
    "modes": ("↑", "modes with at least one high-quality sample (the papers' count)"),
    "well_covered_modes": ("↑", "modes holding at least a quarter of their fair share n/K"),
    "num_modes": ("", "modes of the data (K)"),
    "high_quality": ("↑", "fraction of samples within 3σ of their nearest mode"),
    "reverse_kl": ("↓", "KL(p̂ ‖ uniform) of the high-quality samples' modes, nats"),
    "coverage": ("↑", "data mass inside the region holding 95% of the model's (AdaGAN's C)"),
    "mmd2": ("↓", "unbiased MMD² between samples and real data (multi-scale Gaussian kernel)"),
    "mmd_p": ("↑", "p-value of the MMD permutation test of 'same distribution'"),
    "samples": ("", "generated samples evaluated"),
    "held_out": ("", "held-out real examples the samples are compared with"),
    "c2st_accuracy": ("↓", "accuracy of an MLP telling samples from held-out data (0.5: it "
                           "cannot; best)"),
    "mode_counts": ("", "high-quality samples per mode (JSON and pictures)"),
    "fd": ("↓", "Fréchet distance of Gaussians fitted to samples' and data's features"),
    "kid": ("↓", "kernel inception distance (unbiased MMD², cubic kernel) in those features"),
    "kid_se": ("", "standard error of KID over subsets"),
    "precision": ("↑", "fraction of samples inside the data's k-NN manifold (quality)"),
    "recall": ("↑", "fraction of data inside the samples' k-NN manifold (diversity)"),
    "classifier_score": ("↑", "exp E KL(p(y|x) ‖ p(y)) of the evaluation classifier"),
    "kl": ("↓", "KL(p̂ ‖ uniform) of the predicted classes, nats"),
    "reference_samples": ("", "real images the samples are compared with"),
    "classifier_accuracy": ("", "the evaluation classifier's test accuracy"),
    "categorical_accuracy": ("↑", "InfoGAN: first code's accuracy as a class (best matching)"),
    "mi_bound": ("↑", "InfoGAN: variational lower bound on I(c; G(z, c)), nats"),
    "mi_max": ("", "InfoGAN: H(c), the bound's ceiling, nats"),
    "class_accuracy": ("↑", "conditional: fraction of samples drawn for class y that the "
                            "classifier labels y"),
    "intra_fd": ("↓", "conditional: FD of each class's samples to its real images, averaged "
                      "over the classes"),
    "intra_fd_floor": ("", "conditional: the same for training images (what real data "
                           "scores)"),
    "test_error": ("↓", "semi-supervised: D's classification error on the test split"),
    "labelled_only_test_error": ("↓", "the same network trained on the labels alone"),
    "error_ratio": ("↓", "test_error / labelled_only_test_error"),
}


def direction(key: str) -> str:
    return METRICS.get(key, ("", ""))[0]


def meaning(key: str) -> str:
    return METRICS.get(key, ("", ""))[1]


def format_value(key: str, value: Any, stderr: float | None = None) -> str:
    """A value as a person reads it: 4 significant digits, ``—`` for none, and a p-value at
    the permutation test's floor as ``≤ 1/201 (floor)``: no permutation reached the
    observed statistic, and 200 permutations cannot say more."""
    if value is None:
        return "—"
    if key == "mmd_p" and isinstance(value, float) and value * (PERMUTATIONS + 1) < 1 + 1e-9:
        return f"≤ 1/{PERMUTATIONS + 1} (floor)"
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, list):
        text = " ".join(str(v) for v in value)
    else:
        text = str(value)
    return text + (f" ± {stderr:.2g}" if stderr is not None else "")
