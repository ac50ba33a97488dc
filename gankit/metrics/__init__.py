"""Evaluation metrics: ``modes`` for mixtures."""
