import pytest
import torch

from gankit.data import images as image_data
from gankit.metrics import classifier as clf
from gankit.metrics import images

TINY = [
    "model.g_width=16", "model.d_width=16", "train.steps=30", "train.batch_size=32",
    "train.log_every=5", "train.checkpoint_every=10", "train.eval_samples=200",
    "train.device='cpu'",
]


@pytest.fixture
def assert_resume_exact(tmp_path):
    """check(cfg, stop_after): a run stopped after ``stop_after`` steps and resumed ends
    with bit-for-bit the weights of the uninterrupted run."""
    from gankit.io import load_checkpoint
    from gankit.runs import train

    def check(cfg, stop_after: int) -> None:
        train(cfg, tmp_path / "full", progress=False)
        train(cfg, tmp_path / "split", progress=False, stop_after=stop_after)
        train(cfg, tmp_path / "split", resume=True, progress=False)
        a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
        b = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
        for part in ("generator", "discriminator"):
            for k in a[part]:
                assert torch.equal(a[part][k], b[part][k]), (part, k)

    return check


@pytest.fixture
def tiny():
    """Overrides that make any mixture config train in well under a second."""
    return list(TINY)


@pytest.fixture
def small_classifiers(tmp_path, monkeypatch):
    """Evaluation classifiers trained for a few steps in a temporary cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(clf.STEPS, 8, 30)
    monkeypatch.setitem(clf.STEPS, 28, 30)
    monkeypatch.setattr(clf, "_LOADED", {})
    monkeypatch.setattr(images, "STACKED_EVAL_SAMPLES", 500)  # PacGAN's 26,000 take ~30 s
    # stacked MNIST's fixed reference set: its k-NN radii at 10,000 stacks take ~40 s
    monkeypatch.setattr(image_data, "STACKED_FIXED_SIZE", 1000)
    image_data._stacked.cache_clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    image_data._stacked.cache_clear()


def pytest_configure(config):
    import os

    # pytest-xdist runs one worker per core (addopts): one thread each, or they contend
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)

    from hypothesis import settings

    # CI: the same examples every run (a red run should be reproducible), no database.
    settings.register_profile("ci", derandomize=True, database=None)
    if os.environ.get("CI"):
        settings.load_profile("ci")
