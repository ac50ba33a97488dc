"""Data a user brings: vectors from a file (``points``), images from a folder or an array
file (``images``), and a Gaussian mixture written in the config (``mixture``).

Every file is read and checked before anything is trained or written: a missing or
unreadable file, an array of the wrong rank, NaN or infinite values, mixed image sizes
in a folder (the first offending file and its size are named), an empty folder, a file
that is not an image, a CSV with a text column: each is one ``GankitError`` line naming
the file and what is allowed.

A fixed share of the data (``data.test_fraction``, default 0.2, drawn with seed
``SPLIT_SEED`` whatever the run's seed) is held out for evaluation: generated samples are
compared with data the GAN never saw, beside the real-data floor (held-out against
train). ``info`` records the file's SHA-256 and the split in the run's run.json.
"""

from __future__ import annotations

import csv
import hashlib
import zipfile
from functools import cache
from pathlib import Path

import numpy as np
import torch

from gankit.data.images import ImageData
from gankit.data.mixtures import GaussianMixture
from gankit.errors import GankitError
from gankit.io import npz_array_bytes
from gankit.limits import memory_limit

__all__ = ["SPLIT_SEED", "IMAGE_SUFFIXES", "PointData", "load_points", "load_user_images",
           "user_mixture", "read_array", "sha256"]

SPLIT_SEED = 0  # the held-out split depends on the data alone, not on the run's seed
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
Tensor = torch.Tensor


class PointData:
    """A fixed set of vectors (N, d): ``sample`` draws with replacement, like the
    mixtures; ``info`` describes where they came from."""

    def __init__(self, points: Tensor, split: str, info: dict) -> None:
        self.points, self.split, self.info = points, split, info

    @property
    def shape(self) -> tuple[int]:
        return (self.points.shape[1],)

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    def __len__(self) -> int:
        return self.points.shape[0]

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> Tensor:
        gen_device = generator.device if generator is not None else torch.device("cpu")
        index = torch.randint(len(self), (n,), generator=generator, device=gen_device)
        device = device if device is not None else gen_device
        return self.points[index.cpu()].to(device=device, dtype=dtype)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(path)).encode())
            h.update(f.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def _stamp(path: Path) -> tuple:
    """What the cache keys on: the file (or folder tree) and its modification times."""
    if not path.exists():
        raise GankitError(f"data.path: {str(path)!r} not found")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)


def _read_csv(path: Path) -> np.ndarray:
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    except UnicodeDecodeError:
        raise GankitError(f"{path}: not a text CSV file") from None
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows:
        raise GankitError(f"{path}: empty CSV file")

    def numeric(row: list[str]) -> bool:
        return all(_is_number(c) for c in row)

    header = not numeric(rows[0])  # one header line of column names is allowed
    for i, row in enumerate(rows[1:] if header else rows, start=2 if header else 1):
        if not numeric(row):
            bad = next(c for c in row if not _is_number(c))
            raise GankitError(f"{path}: line {i} has a text value {bad!r}; allowed: numbers "
                              "only (one header line of names may come first)")
        if len(row) != len(rows[-1]):
            raise GankitError(f"{path}: line {i} has {len(row)} columns, the last line "
                              f"{len(rows[-1])}; allowed: the same number on every line")
    return np.array([[float(c) for c in r] for r in (rows[1:] if header else rows)])


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _check_size(path: Path, suffix: str) -> None:
    """Refuse before reading a file that is not a regular one (/dev/zero, a FIFO) or whose
    arrays would take more than a quarter of the memory budget (an .npz is sized by its
    arrays' headers: a small one can inflate to anything; text takes ~10x in memory)."""
    if not path.is_file():
        raise GankitError(f"{path}: not a regular file; allowed: an .npy, .npz or .csv file")
    limit = memory_limit() // 4
    size = path.stat().st_size * (10 if suffix == ".csv" else 1)
    if suffix == ".npz":
        try:
            with zipfile.ZipFile(path) as archive:
                size = sum(npz_array_bytes(archive, n[:-4]) for n in archive.namelist()
                           if n.endswith(".npy"))
        except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as e:
            raise GankitError(f"{path}: not a readable .npz file ({str(e)[:120]})") from None
    if size > limit:
        raise GankitError(f"{path}: its data would take about {size / 1e9:.3g} GB of memory, "
                          f"more than a quarter of the {limit * 4 / 1e9:.3g} GB budget; allowed: "
                          "a smaller file, or a larger --memory-limit")


def read_array(path: Path) -> np.ndarray:
    """The array in an .npy, .npz (its only array, or the one named ``x``) or .csv file."""
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz", ".csv"):
        raise GankitError(f"{path}: unknown file type {suffix or '(none)'!r}; allowed: .npy, "
                          ".npz, .csv (points), a folder of PNG/JPEG images (images)")
    _check_size(path, suffix)
    if suffix == ".csv":
        return _read_csv(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise GankitError(f"{path}: not a readable {suffix} file ({str(e)[:120]})") from None
    if suffix == ".npz":
        keys = list(data.keys())
        if not keys:
            raise GankitError(f"{path}: the .npz file holds no array")
        if len(keys) > 1 and "x" not in keys:
            raise GankitError(f"{path}: holds arrays {', '.join(keys)}; allowed: one array, "
                              "or one named 'x'")
        data = data["x" if "x" in keys else keys[0]]
    if data.dtype.kind not in "biuf":
        raise GankitError(f"{path}: array of {data.dtype}; allowed: numbers")
    return data


def _split(n: int, test_fraction: float, path: Path) -> tuple[Tensor, Tensor]:
    n_test = int(round(n * test_fraction))
    if test_fraction > 0 and (n_test < 1 or n - n_test < 2):
        raise GankitError(f"{path}: {n} examples cannot be split with data.test_fraction = "
                          f"{test_fraction}; allowed: at least 2 training and 1 held-out")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return order[n_test:], order[:n_test]


def _split_info(path: Path, train: Tensor, test: Tensor, test_fraction: float) -> dict:
    """What run.json records of the user's file: its hash and the held-out split."""
    return {"path": str(path), "sha256": sha256(path), "examples": len(train) + len(test),
            "train": len(train), "test": len(test), "test_fraction": test_fraction,
            "split_seed": SPLIT_SEED}


@cache
def _points(path: str, test_fraction: float, stamp: tuple) -> dict[str, PointData]:
    p = Path(path)
    x = read_array(p)
    if x.ndim != 2:
        raise GankitError(f"{p}: array of shape {x.shape}; allowed: (N, d) vectors "
                          "(data.name = 'images' reads (N, H, W) and (N, C, H, W) arrays)")
    if x.shape[0] < 3 or x.shape[1] < 1:
        raise GankitError(f"{p}: {x.shape[0]} vectors of {x.shape[1]} values; allowed: at "
                          "least 3 vectors of at least 1 value")
    if not np.isfinite(x).all():
        row = int(np.argwhere(~np.isfinite(x))[0, 0])
        raise GankitError(f"{p}: row {row} holds NaN or infinity; allowed: finite numbers")
    points = torch.as_tensor(x, dtype=torch.float32)
    train, test = _split(len(points), test_fraction, p)
    info = _split_info(p, train, test, test_fraction)
    return {"train": PointData(points[train], "train", info),
            "test": PointData(points[test], "test", info)}


def load_points(data, split: str = "train") -> PointData:
    """``data.path`` as vectors: the ``split`` ("train" or "test") of its examples."""
    if not data.path:
        raise GankitError("data.path: points need a file; allowed: an .npy, .npz or .csv of "
                          "(N, d) numbers")
    path = Path(data.path).expanduser()
    return _points(str(path), data.test_fraction, _stamp(path))[split]


def _image_array(x: np.ndarray, path: Path) -> Tensor:
    """(N, H, W), (N, C, H, W) or (N, H, W, C) numbers → (N, C, H, W) float32 in [−1, 1]."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # channels last
    elif x.ndim != 4 or x.shape[1] not in (1, 3):
        raise GankitError(f"{path}: array of shape {x.shape}; allowed: (N, H, W), "
                          "(N, C, H, W) or (N, H, W, C) with C = 1 or 3")
    if not np.isfinite(x).all():
        raise GankitError(f"{path}: holds NaN or infinity; allowed: finite pixel values")
    if x.dtype == np.uint8:
        return torch.as_tensor(x, dtype=torch.float32) / 127.5 - 1
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0 and hi <= 1:  # [0, 1]
        return torch.as_tensor(x, dtype=torch.float32) * 2 - 1
    if lo >= -1 and hi <= 1:
        return torch.as_tensor(x, dtype=torch.float32)
    if lo >= 0 and hi <= 255:
        return torch.as_tensor(x, dtype=torch.float32) / 127.5 - 1
    raise GankitError(f"{path}: pixel values from {lo:g} to {hi:g}; allowed: uint8, or "
                      "floats in [0, 1], [−1, 1] or [0, 255]")


def _image_folder(path: Path) -> tuple[Tensor, Tensor, list[str]]:
    from PIL import Image, UnidentifiedImageError

    files = sorted(f for f in path.rglob("*") if f.is_file() and not f.name.startswith("."))
    if not files:
        raise GankitError(f"{path}: empty folder; allowed: PNG or JPEG images, one sub-folder "
                          "per class for labels")
    classes = sorted({f.parent.relative_to(path).parts[0] for f in files
                      if f.parent != path})
    images, labels, size = [], [], None
    for f in files:
        if f.suffix.lower() not in IMAGE_SUFFIXES:
            raise GankitError(f"{f}: not an image file; allowed: {', '.join(IMAGE_SUFFIXES)}")
        try:
            with Image.open(f) as im:
                im.load()
                rgb = im.mode not in ("L", "1", "I;16", "I", "F", "LA")
                arr = np.asarray(im.convert("RGB" if rgb else "L"))
        except (UnidentifiedImageError, OSError) as e:
            raise GankitError(f"{f}: not a readable image ({str(e)[:100]})") from None
        if size is None:
            size, first = arr.shape, f
        elif arr.shape[:2] != size[:2]:
            raise GankitError(f"{f}: {arr.shape[1]}x{arr.shape[0]} pixels, but {first.name} "
                              f"is {size[1]}x{size[0]}; allowed: one size for every image")
        images.append(arr if arr.ndim == 3 else arr[..., None])
        labels.append(classes.index(f.parent.relative_to(path).parts[0])
                      if f.parent != path else 0)
    channels = 3 if any(a.shape[2] == 3 and not (a == a[..., :1]).all() for a in images) else 1
    x = np.stack([a if a.shape[2] == channels else (a[..., :1] if channels == 1 else
                                                    np.repeat(a, 3, axis=2)) for a in images])
    pixels = torch.as_tensor(x.transpose(0, 3, 1, 2).copy(), dtype=torch.float32) / 127.5 - 1
    return pixels, torch.as_tensor(labels, dtype=torch.int64), classes


@cache
def _user_images(path: str, test_fraction: float, stamp: tuple) -> dict[str, ImageData]:
    p = Path(path)
    if p.is_dir():
        images, labels, classes = _image_folder(p)
    else:
        images = _image_array(read_array(p), p)
        labels, classes = torch.zeros(len(images), dtype=torch.int64), []
    if len(images) < 3:
        raise GankitError(f"{p}: {len(images)} images; allowed: at least 3")
    train, test = _split(len(images), test_fraction, p)
    info = {**_split_info(p, train, test, test_fraction), "classes": classes,
            "shape": list(images.shape[1:])}
    out = {}
    for split, index in (("train", train), ("test", test)):
        data = ImageData("images", split, images[index], labels[index], max(1, len(classes)))
        data.info = info
        out[split] = data
    return out


def load_user_images(data, split: str = "train") -> ImageData:
    """``data.path`` as images: a folder of PNG/JPEG files (recursive; one sub-folder per
    class gives labels) or an .npy/.npz array; the ``split`` of its examples."""
    if not data.path:
        raise GankitError("data.path: images need a folder of PNG/JPEG files or an .npy/.npz "
                          "array of images")
    path = Path(data.path).expanduser()
    return _user_images(str(path), data.test_fraction, _stamp(path))[split]


def user_mixture(data, split: str = "train") -> GaussianMixture:
    """The Gaussian mixture of ``data.means`` (K vectors), ``data.stds`` (one σ, or K) and
    ``data.weights`` (K, or [] for uniform): exact densities, so the mode metrics apply."""
    if not data.means:
        raise GankitError("data.means: a mixture needs its means, e.g. means = [[0, 0], "
                          "[3, 0]]; allowed: a list of K equal-length vectors")
    if not data.stds:
        raise GankitError("data.stds: a mixture needs its standard deviations; allowed: one "
                          "σ for every component, or one per component")
    stds = data.stds
    try:
        mixture = GaussianMixture(data.means, stds if len(stds) > 1 else stds[0],
                                  data.weights or None)
    except GankitError as e:
        raise GankitError(f"data.{e}") from None
    except RuntimeError as e:  # stds of the wrong length
        raise GankitError(f"data.stds: {len(stds)} values for {len(data.means)} means; "
                          f"allowed: 1 or {len(data.means)} ({str(e)[:60]})") from None
    mixture.info = {"means": data.means, "stds": stds, "weights": data.weights}
    return mixture
