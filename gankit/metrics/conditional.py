"""Metrics of a class-conditional generator, per class, in an evaluation classifier.

- ``class_accuracy``: the fraction of samples G drew for class y that the classifier
  labels y (AC-GAN's "discriminability"; Odena et al. 2017 report it for ImageNet).
- ``intra_class_fd``: the Fréchet distance between G's samples of class y and the real
  images of class y, averaged over the classes (the intra-FID of Miyato & Koyama 2018).
  It is low only if each class is right, which the FD of the mixture alone does not see
  (a G that swaps two classes keeps the mixture's FD).
"""

from __future__ import annotations

import torch

from gankit.metrics.images import frechet_distance

__all__ = ["class_accuracy", "intra_class_fd"]


def class_accuracy(predicted: torch.Tensor, intended: torch.Tensor) -> float:
    """Fraction of samples whose predicted class is the class they were drawn for."""
    return float((predicted.cpu() == intended.cpu()).double().mean())


def intra_class_fd(fake: torch.Tensor, fake_labels: torch.Tensor, real: torch.Tensor,
                   real_labels: torch.Tensor) -> float:
    """Mean over the classes of FD(features of G's class-y samples, features of the real
    class-y examples); classes with fewer than 2 examples on either side are skipped."""
    values = []
    for y in torch.unique(real_labels):
        a, b = fake[fake_labels == y], real[real_labels == y]
        if len(a) >= 2 and len(b) >= 2:
            values.append(frechet_distance(a, b))
    return float(sum(values) / len(values)) if values else float("nan")
