"""gankit: train, diagnose and compare generative adversarial networks.

The public API. A run from a config::

    import gankit
    cfg = gankit.load_config("configs/grid25-nonsaturating.toml", ["train.steps=2000"])
    summary = gankit.train(cfg, "runs/grid25")          # trains, evaluates, writes the run
    cfg, G, D, _ = gankit.load_run("runs/grid25")
    x = gankit.generate(cfg, G, 1000, seed=0)
    gankit.evaluate(cfg, G)                              # the metrics its data asks for

One update by hand: ``discriminator_step`` / ``generator_step`` with the costs that
``discriminator_cost`` / ``generator_cost`` build from a config and a ``Batch``.
The registries: ``OBJECTIVES``, ``DATASETS``, ``NETWORKS``; the config rules: ``RULES``.
"""

# (first: Ctrl-C while the command line imports torch is one line, not a traceback)
from gankit import startup  # noqa: F401  isort: skip
from gankit.build import (
    build_models,
    build_objective,
    build_players,
    build_target,
    resolve_classes,
)
from gankit.callbacks import Callback, JsonlLog, TensorBoard
from gankit.config import Config, load_config
from gankit.data import DATASETS, DatasetSpec, GaussianMixture, mixture
from gankit.errors import GankitError
from gankit.evaluate import evaluate, evaluate_generator, sample_metrics
from gankit.generate import generate
from gankit.losses.objectives import OBJECTIVES, Objective, get_objective, with_label_smoothing
from gankit.losses.penalties import feature_matching, gradient_penalty
from gankit.metrics.images import frechet_distance, kernel_distance, precision_recall
from gankit.metrics.modes import coverage, mode_metrics
from gankit.nets import NETWORKS, NetworkSpec, features
from gankit.nets.layers import MinibatchDiscrimination, Packed, VirtualBatchNorm
from gankit.rules import RULES
from gankit.runs import fit, load_run, train
from gankit.training import (
    Batch,
    Cost,
    TrainState,
    discriminator_cost,
    discriminator_step,
    generator_cost,
    generator_step,
)
from gankit.training.tricks import GeneratorEMA, HistoricalAverage, Unroll, unrolled_critic
from gankit.version import __version__

__all__ = [
    "__version__", "GankitError",
    # runs
    "Config", "load_config", "train", "fit", "load_run", "generate", "evaluate",
    "evaluate_generator", "Callback", "JsonlLog", "TensorBoard",
    "sample_metrics",
    # building blocks
    "build_target", "resolve_classes", "build_objective", "build_players", "build_models",
    # registries
    "OBJECTIVES", "Objective", "get_objective", "DATASETS", "DatasetSpec", "NETWORKS",
    "NetworkSpec", "RULES",
    # one update
    "Batch", "Cost", "TrainState", "discriminator_cost", "generator_cost",
    "discriminator_step", "generator_step",
    # remedies
    "Packed", "MinibatchDiscrimination", "VirtualBatchNorm", "HistoricalAverage",
    "GeneratorEMA", "Unroll", "unrolled_critic", "feature_matching", "gradient_penalty",
    "with_label_smoothing", "features",
    # data and metrics
    "GaussianMixture", "mixture", "mode_metrics", "coverage", "frechet_distance",
    "kernel_distance", "precision_recall",
]


