import pytest

TINY = [
    "model.g_width=16", "model.d_width=16", "train.steps=30", "train.batch_size=32",
    "train.log_every=5", "train.checkpoint_every=10", "train.eval_samples=200",
    "train.device='cpu'",
]


@pytest.fixture
def tiny():
    """Overrides that make any mixture config train in well under a second."""
    return list(TINY)


def pytest_configure(config):
    import os

    from hypothesis import settings

    # CI: the same examples every run (a red run should be reproducible), no database.
    settings.register_profile("ci", derandomize=True, database=None)
    if os.environ.get("CI"):
        settings.load_profile("ci")
