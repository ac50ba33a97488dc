"""Data sources, as a registry of named datasets with declared properties.

Each ``DatasetSpec`` says what kind of data it is (``mixture``: vectors with exact
densities; ``images``: (C, H, W) tensors), whether it has class labels, whether it
needs ``data.root``, and how to load a split. Evaluation picks its metrics by ``kind``
(``gankit.evaluate.SAMPLE_METRICS``); the config's allowed ``data.name`` values and the
cross-field rules read these properties. A new dataset of an existing kind is one
``register`` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gankit.data.images import load_images
from gankit.data.mixtures import PRESETS, GaussianMixture, mixture
from gankit.data.user import load_points, load_user_images, user_mixture
from gankit.errors import GankitError

__all__ = ["DATASETS", "DatasetSpec", "GaussianMixture", "dataset_spec", "mixture",
           "register", "PRESETS"]


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: ``load(data_config, split)`` returns an object with
    ``sample(n, generator, device)`` and ``shape`` (one sample's)."""

    name: str
    kind: str  # "mixture" | "images" | "points"
    load: Callable
    labels: bool = False  # class labels (semi-supervised GAN)
    needs_root: bool = False  # data.root: the directory of the user's files
    user: tuple[str, ...] = ()  # the [data] fields the user fills in (path; means, stds)
    evaluation: str = ""  # its entry in gankit.evaluate.SAMPLE_METRICS (default: kind)

    @property
    def images(self) -> bool:
        return self.kind == "images"

    @property
    def evaluated_as(self) -> str:
        return self.evaluation or self.kind


DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    DATASETS[spec.name] = spec
    return spec


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise GankitError(f"data.name: unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    return DATASETS[name]


for _name in PRESETS:
    register(DatasetSpec(_name, "mixture", lambda d, split="train", _n=_name: mixture(_n)))
for _name, _labels in (("digits", True), ("mnist5k", True), ("mnist", True),
                       ("stacked-mnist", False)):
    register(DatasetSpec(_name, "images", lambda d, split="train", _n=_name: load_images(
        _n, split, d.root or None, d.source), labels=_labels, needs_root=_name == "mnist"))
# the user's own data: read from data.path, or a mixture written in the config
register(DatasetSpec("points", "points", load_points, user=("path", "test_fraction")))
register(DatasetSpec("images", "images", load_user_images,
                     user=("path", "test_fraction", "features"),
                     evaluation="user-images"))
register(DatasetSpec("mixture", "mixture", user_mixture, user=("means", "stds", "weights")))
