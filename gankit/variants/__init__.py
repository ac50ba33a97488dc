"""Variants of the GAN game: MMD (GMMN, MMD-GAN), AdaGAN, InfoGAN, semi-supervised."""

from __future__ import annotations

from pathlib import Path


def variant_metrics(cfg, generator, discriminator, out: Path | None = None,
                    baseline: bool = False) -> dict:
    """What InfoGAN and the semi-supervised GAN add to a run's metrics (nothing for the
    other runs). InfoGAN: ``categorical_accuracy``, ``mi_bound``, ``mi_max``; with
    ``out``, ``traversal.png`` (images) or ``codes.png`` (2-D points). Semi-supervised:
    ``test_error`` of D's classifier on the test split; with ``baseline``, also the same
    network trained on the labelled examples alone (``labelled_only_test_error``) and
    ``error_ratio`` = the first over the second."""
    if cfg.infogan_on:
        return _infogan_metrics(cfg, generator, discriminator, out)
    if cfg.semisupervised_on:
        return _semisupervised_metrics(cfg, discriminator, baseline)
    return {}


def _infogan_metrics(cfg, generator, discriminator, out):
    import torch

    from gankit.build import build_target
    from gankit.evaluate import EVAL_SEED_OFFSET, generate
    from gankit.nets.mlp import sample_latent
    from gankit.variants.infogan import info_metrics, traversal

    target = build_target(cfg)
    if len(target.shape) == 3:  # images: the evaluation classifier's labels
        from gankit.metrics.classifier import load_classifier, predict

        classifier = load_classifier(cfg.data.name, cfg.data.root or None).to("cpu")
        num_classes = 10

        def classify(x):
            return predict(classifier, x.cpu()[:, :1])
    else:  # mixtures: the nearest mode
        from gankit.metrics.modes import mode_histogram

        num_classes = target.num_modes

        def classify(x):
            return mode_histogram(x.cpu(), target)[2]
    seed = cfg.train.seed + EVAL_SEED_OFFSET
    metrics = info_metrics(generator, discriminator, classify, num_classes,
                           cfg.train.eval_samples, seed)
    if out is not None:
        from gankit.report import plot_codes, plot_traversal

        if len(target.shape) == 3:
            plot_traversal(traversal(generator, seed=seed), Path(out) / "traversal.png")
        elif target.dim == 2 and generator.categorical:
            samples = generate(cfg, generator, 2500, seed)
            # generate draws its latent from the seed just so: the same u, its codes
            u = sample_latent(2500, generator.z_dim, generator.z_dist,
                              torch.Generator().manual_seed(seed), "cpu")
            plot_codes(samples, generator.codes(u)[0][:, 0], target, Path(out) / "codes.png")
    return metrics


def _semisupervised_metrics(cfg, discriminator, baseline):
    from gankit.build import build_models, build_target
    from gankit.variants.semisupervised import (
        classification_error,
        labelled_data,
        train_labelled_only,
    )

    test = build_target(cfg, "test")
    metrics = {"test_error": classification_error(discriminator, test.images, test.labels)}
    if baseline:
        t = cfg.train
        labelled = labelled_data(build_target(cfg), cfg.semisupervised.labels_per_class, t.seed)
        # the same network from the same initial weights, on the same device
        _, critic = build_models(cfg, test.shape)
        critic.to(next(discriminator.parameters()).device)
        train_labelled_only(critic, labelled.images, labelled.labels, t.steps * t.d_steps,
                            t.batch_size, t.lr_d, tuple(t.betas_d), t.seed, t.lr_schedule)
        metrics["labelled_only_test_error"] = classification_error(critic, test.images,
                                                                   test.labels)
        metrics["error_ratio"] = metrics["test_error"] / max(
            metrics["labelled_only_test_error"], 1e-12)
    return metrics
