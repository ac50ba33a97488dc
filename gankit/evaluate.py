"""Evaluate a generator the way its data asks, and finish a run: its summary and pictures.

Which metrics a run gets is declared, not tested by name: each data kind (a dataset's
``kind`` in ``gankit.data``) has its sample metrics in ``SAMPLE_METRICS``, and each
variant that adds metrics of its own (InfoGAN, the semi-supervised GAN) has an entry in
``RUN_METRICS`` saying when it applies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from gankit import io
from gankit.build import build_models, build_target
from gankit.config import Config
from gankit.data import dataset_spec
from gankit.data.images import labelled_data
from gankit.errors import GankitError
from gankit.generate import EVAL_SEED_OFFSET, generate, seed_players
from gankit.metrics.classifier import embed, load_classifier, predict
from gankit.metrics.conditional import class_accuracy, intra_class_fd
from gankit.metrics.images import eval_samples, image_metrics, real_data_floor
from gankit.metrics.infogan import info_metrics, traversal
from gankit.metrics.mmd import mixture_mmd
from gankit.metrics.modes import coverage, mode_histogram, mode_metrics
from gankit.metrics.semisupervised import classification_error, train_labelled_only
from gankit.metrics.stats import mean_and_stderr
from gankit.metrics.twosample import (
    RandomFeatures,
    feature_metrics,
    train_label_classifier,
    two_sample_metrics,
)
from gankit.nets.mlp import sample_latent
from gankit.plots import (
    plot_class_grid,
    plot_codes,
    plot_fixed_z,
    plot_losses,
    plot_nearest_neighbours,
    plot_samples,
    plot_traversal,
    run_title,
)
from gankit.training.loop import Trained

__all__ = ["real_data_floor_of", "evaluate", "evaluate_generator", "sample_metrics",
           "summarize_seeds", "variant_metrics", "class_view", "conditional_metrics", "finish",
           "SAMPLE_METRICS", "RUN_METRICS"]


def mixture_sample_metrics(cfg: Config, samples: torch.Tensor, target) -> dict:
    """Modes / high quality / reverse KL, AdaGAN's coverage and the MMD two-sample test."""
    target = target if target is not None else build_target(cfg)
    seed = cfg.train.seed
    return {**mode_metrics(samples, target), "coverage": coverage(samples, target, seed=seed),
            **mixture_mmd(samples, target, seed=seed)}


def image_sample_metrics(cfg: Config, samples: torch.Tensor, target) -> dict:
    """FD, KID, precision, recall, classifier score, modes and KL in the features of the
    dataset's evaluation classifier."""
    return image_metrics(samples, cfg.data.name, cfg.data.root or None)


def points_sample_metrics(cfg: Config, samples: torch.Tensor, target) -> dict:
    """The user's vectors: two-sample metrics against the held-out split."""
    return two_sample_metrics(samples, build_target(cfg, "test").points, seed=cfg.train.seed)


_LABEL_CLASSIFIERS: dict[tuple, torch.nn.Module] = {}  # per data file and split, in-process


def label_classifier(cfg: Config) -> torch.nn.Module:
    """A small CNN trained on the class sub-folders of your image folder (once per data
    file and split in a process)."""
    train = build_target(cfg)
    key = (train.info["sha256"], cfg.data.test_fraction)
    if key not in _LABEL_CLASSIFIERS:
        _LABEL_CLASSIFIERS[key] = train_label_classifier(train, build_target(cfg, "test"))
    return _LABEL_CLASSIFIERS[key]


def feature_network(cfg: Config, channels: int) -> tuple[torch.nn.Module, str]:
    """The network whose features the image metrics compare, and its name: ``data.
    features`` (a TorchScript file); else, when the folder has class sub-folders, a
    small classifier trained on those labels; else the seeded random CNN."""
    classes = build_target(cfg).num_classes
    if not cfg.data.features and classes > 1:
        net = label_classifier(cfg)
        return net, (f"classifier of your {classes} classes (held-out accuracy "
                     f"{net.test_accuracy:.3f})")
    if not cfg.data.features:
        return RandomFeatures(channels), "random CNN (seed 0)"
    path = Path(cfg.data.features).expanduser()
    try:
        return torch.jit.load(str(path), map_location="cpu").eval(), str(path)
    except (RuntimeError, ValueError, OSError) as e:
        raise GankitError(f"data.features: {str(path)!r} is not a readable TorchScript file "
                          f"({str(e).splitlines()[0][:100]})") from None


def user_image_metrics(cfg: Config, samples: torch.Tensor, target) -> dict:
    """The user's images: FD, KID, precision, recall, MMD², C2ST against the held-out
    split in the features of ``feature_network``."""
    test = build_target(cfg, "test")
    features, name = feature_network(cfg, test.shape[0])
    return {**feature_metrics(samples.cpu(), test.images, features, seed=cfg.train.seed),
            "features": name}


# how each kind of data is evaluated (``DatasetSpec.evaluated_as``): (number of samples to
# draw, metrics of those samples, the real-data floor or None)
SAMPLE_METRICS: dict[str, tuple[Callable[[Config], int], Callable]] = {
    "mixture": (lambda cfg: cfg.train.eval_samples, mixture_sample_metrics),
    # images: as many as the real-data floor uses (see ``images.eval_samples``)
    "images": (lambda cfg: eval_samples(cfg.data.name, cfg.data.root or None),
               image_sample_metrics),
    "points": (lambda cfg: cfg.train.eval_samples, points_sample_metrics),
    "user-images": (lambda cfg: cfg.train.eval_samples, user_image_metrics),
}


def real_data_floor_of(cfg: Config) -> dict | None:
    """What real data scores: the held-out split against the training split, in the same
    metrics as the run's samples (None for mixtures, whose metrics need no floor)."""
    kind = dataset_spec(cfg.data.name).evaluated_as
    if kind == "images":
        return real_data_floor(cfg.data.name, cfg.data.root or None)
    if kind == "points":
        return points_sample_metrics(cfg, build_target(cfg).points, None)
    if kind == "user-images":
        return user_image_metrics(cfg, build_target(cfg).images, None)
    return None


def evaluate_generator(cfg: Config, generator, target=None) -> tuple[dict, torch.Tensor]:
    """Metrics on fixed-seed samples, and the samples."""
    count, _ = SAMPLE_METRICS[dataset_spec(cfg.data.name).evaluated_as]
    samples = generate(cfg, generator, count(cfg), cfg.train.seed + EVAL_SEED_OFFSET)
    return sample_metrics(cfg, samples, target), samples


def evaluate(cfg: Config, generator: torch.nn.Module) -> dict:
    """The metrics of ``generator`` for the run ``cfg`` describes, on fixed-seed samples:
    those its data asks for (``SAMPLE_METRICS``) and those its variants add."""
    metrics, _ = evaluate_generator(cfg, generator)
    return metrics


def sample_metrics(cfg: Config, samples: torch.Tensor, target=None) -> dict:
    """The metrics that fit the run's data (see ``SAMPLE_METRICS``)."""
    _, metrics = SAMPLE_METRICS[dataset_spec(cfg.data.name).evaluated_as]
    return metrics(cfg, samples, target)


def summarize_seeds(per_seed: list[dict]) -> dict:
    """``metrics``: the mean over seeds of each metric, ``metrics_stderr``: its standard
    error (a metric undefined for some seeds, like reverse_kl, over the others)."""
    mean, stderr = {}, {}
    for k in per_seed[0]:
        values = [m[k] for m in per_seed if m[k] is not None]
        if any(isinstance(v, list) for v in values):  # per-mode counts: see per_seed
            continue
        if any(isinstance(v, str) for v in values):  # a label (dataset, classifier)
            mean[k], stderr[k] = values[0] if len(set(values)) == 1 else None, None
            continue
        mean[k], stderr[k] = (None, None) if not values else (values[0], None) \
            if len(values) == 1 else mean_and_stderr(torch.tensor(values, dtype=torch.float64))
    return {"metrics": mean, "metrics_stderr": stderr}


def infogan_metrics(cfg: Config, generator, discriminator, *, out: Path | None = None,
                    baseline: bool = False) -> dict:
    """``categorical_accuracy``, ``mi_bound``, ``mi_max``; with ``out``, ``traversal.png``
    (images) or ``codes.png`` (2-D points)."""
    target = build_target(cfg)
    if len(target.shape) == 3:  # images: the evaluation classifier's labels
        classifier = load_classifier(cfg.data.name, cfg.data.root or None).to("cpu")
        num_classes = 10

        def classify(x):
            return predict(classifier, x.cpu()[:, :1])
    else:  # mixtures: the nearest mode
        num_classes = target.num_modes

        def classify(x):
            return mode_histogram(x.cpu(), target)[2]
    seed = cfg.train.seed + EVAL_SEED_OFFSET
    metrics = info_metrics(generator, discriminator, classify, num_classes=num_classes,
                           n=cfg.train.eval_samples, seed=seed)
    if out is not None:
        if len(target.shape) == 3:
            plot_traversal(traversal(generator, seed=seed), Path(out) / "traversal.png")
        elif target.dim == 2 and generator.categorical:
            samples = generate(cfg, generator, 2500, seed)
            # generate draws its latent from the seed just so: the same u, its codes
            u = sample_latent(2500, generator.z_dim, generator.z_dist,
                              torch.Generator().manual_seed(seed), "cpu")
            plot_codes(samples, generator.codes(u)[0][:, 0], target, Path(out) / "codes.png")
    return metrics


def semisupervised_metrics(cfg: Config, generator, discriminator, *, out: Path | None = None,
                           baseline: bool = False) -> dict:
    """``test_error`` of D's classifier on the test split; with ``baseline``, also the
    same network trained on the labelled examples alone (``labelled_only_test_error``)
    and ``error_ratio`` = the first over the second."""
    test = build_target(cfg, "test")
    metrics = {"test_error": classification_error(discriminator, test.images, test.labels)}
    if baseline:
        t = cfg.train
        labelled = labelled_data(build_target(cfg), cfg.semisupervised.labels_per_class, t.seed)
        # the same network from the same initial weights, on the same device
        _, critic = build_models(cfg, test.shape)
        critic.to(next(discriminator.parameters()).device)
        train_labelled_only(critic, labelled.images, labelled.labels, steps=t.steps * t.d_steps,
                            batch_size=t.batch_size, lr=t.lr_d, betas=tuple(t.betas_d),
                            seed=t.seed, schedule=t.lr_schedule)
        metrics["labelled_only_test_error"] = classification_error(critic, test.images,
                                                                   test.labels)
        metrics["error_ratio"] = metrics["test_error"] / max(
            metrics["labelled_only_test_error"], 1e-12)
    return metrics


def class_view(cfg: Config) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """images → (features, predicted classes) of the classifier that evaluates a
    conditional run: the dataset's evaluation classifier, or for your own image folder
    the classifier of its class sub-folders (``feature_network``)."""
    if dataset_spec(cfg.data.name).evaluated_as == "images":
        classifier = load_classifier(cfg.data.name, cfg.data.root or None).to("cpu")

        def view(x):
            e = embed(classifier, x)
            return e.features, e.labels
        return view
    features, _ = feature_network(cfg, build_target(cfg).shape[0])
    classifier = label_classifier(cfg)

    @torch.no_grad()
    def view(x):
        x = x.cpu()
        return features(x), classifier.logits(x).argmax(1)
    return view


def conditional_metrics(cfg: Config, generator, discriminator, *, out: Path | None = None,
                        baseline: bool = False) -> dict:
    """``class_accuracy`` and ``intra_fd`` of G's samples of each class (as many as the
    test split holds of it) against the test split, and ``intra_fd_floor``, the training
    split's images in their place; with ``out``, ``classes.png`` (a row per class)."""
    train, test = build_target(cfg), build_target(cfg, "test")
    view, seed = class_view(cfg), cfg.train.seed + EVAL_SEED_OFFSET
    classes = cfg.conditional.classes
    counts = torch.bincount(test.labels, minlength=classes).tolist()
    fake = torch.cat([generate(cfg, generator, c, seed + y, label=y)
                      for y, c in enumerate(counts) if c])
    intended = torch.cat([torch.full((c,), y) for y, c in enumerate(counts) if c])
    g = torch.Generator().manual_seed(0)  # the floor: as many training images per class
    floor_index = torch.cat([torch.nonzero(train.labels == y)[:, 0][
        torch.randperm(int((train.labels == y).sum()), generator=g)[:c]]
        for y, c in enumerate(counts) if c])
    (f_fake, predicted), (f_test, _) = view(fake), view(test.images)
    f_floor, _ = view(train.images[floor_index])
    if out is not None:
        grid = torch.stack([generate(cfg, generator, 10, seed, label=y) for y in range(classes)])
        plot_class_grid(grid, Path(out) / "classes.png", title=run_title(cfg))
    return {"class_accuracy": class_accuracy(predicted, intended),
            "intra_fd": intra_class_fd(f_fake, intended, f_test, test.labels),
            "intra_fd_floor": intra_class_fd(f_floor, train.labels[floor_index], f_test,
                                             test.labels)}


# (when the run has it, its metrics): what variants add beside the data's own metrics
RUN_METRICS: list[tuple[Callable[[Config], bool], Callable]] = [
    (lambda cfg: cfg.infogan_on, infogan_metrics),
    (lambda cfg: cfg.semisupervised_on, semisupervised_metrics),
    (lambda cfg: cfg.conditional_on, conditional_metrics),
]


def variant_metrics(cfg: Config, generator, discriminator, out: Path | None = None,
                    baseline: bool = False) -> dict:
    """What the run's variants add to its metrics (``RUN_METRICS``; nothing for the
    others)."""
    metrics: dict = {}
    for applies, compute in RUN_METRICS:
        if applies(cfg):
            metrics.update(compute(cfg, generator, discriminator, out=out, baseline=baseline))
    return metrics


def finish(out: str | Path, trained: Trained) -> dict:
    """Evaluate each seed of the run ``trained.cfg`` describes (as resolved from its data),
    draw the pictures and write summary.json: ``metrics`` (over S > 1 seeds their mean,
    with ``metrics_stderr`` and ``per_seed``), ``wall_time_s`` (the training loop, every
    chunk of a resumed run) and ``eval_time_s`` (this)."""
    cfg, out, start, target = trained.cfg, Path(out), time.perf_counter(), trained.target
    per_seed = []
    for seed_cfg, g, d in seed_players(cfg, trained.generator, trained.discriminator):
        metrics, samples = evaluate_generator(seed_cfg, g, target)
        per_seed.append({"seed": seed_cfg.train.seed, "metrics": metrics})
        first = seed_cfg.train.seed == cfg.train.seed
        plot_samples(samples, target, d, out / ("samples.png" if first else
                                                f"samples_seed{seed_cfg.train.seed}.png"),
                     title=run_title(seed_cfg))
        # (pictures of the first seed)
        metrics.update(variant_metrics(seed_cfg, g, d, out if first else None, baseline=True))
    result = {"metrics": metrics} if len(per_seed) == 1 else \
        {**summarize_seeds([p["metrics"] for p in per_seed]), "per_seed": per_seed}
    plot_losses(io.read_metrics(out / "metrics.jsonl"), out / "losses.png")
    if len(target.shape) == 3:  # images (one seed): memorisation check, fixed-z grid
        plot_nearest_neighbours(samples, target.images, out / "neighbours.png")
        if (out / "snapshots.npz").exists():
            plot_fixed_z(*io.read_snapshots(out / "snapshots.npz"), out / "fixed_z.png")
    summary = {**result, "steps": cfg.train.steps, "wall_time_s": trained.wall_time,
               "eval_time_s": time.perf_counter() - start, **trained.run_info}
    io.write_json(out / "summary.json", summary)
    return summary
