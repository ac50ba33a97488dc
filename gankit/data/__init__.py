"""Data sources: Gaussian mixtures with exact densities (``mixtures``)."""

from gankit.data.mixtures import PRESETS, GaussianMixture, mixture

__all__ = ["PRESETS", "GaussianMixture", "mixture"]
