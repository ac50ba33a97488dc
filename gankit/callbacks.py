"""Hooks into a run: objects with any of these methods, passed as ``callbacks`` to
``gankit.train`` / ``gankit.fit`` (``--tensorboard DIR`` on ``gankit train``):

- ``on_step_end(run, stats)``: after every step; ``stats`` holds that step's loss tensors
  (reading them with ``float`` syncs the device, so a callback that does it every step
  slows training on a GPU).
- ``on_log(run, record)``: at every logging step, with the line metrics.jsonl gets.
- ``on_checkpoint(run, path)``: after each checkpoint is written.
- ``on_eval(run_dir, summary)``: after the final evaluation, with summary.json's content.

``run`` is the ``gankit.training.loop.Run``: ``run.state`` holds G, D, the optimizers,
the step; ``run.cfg`` the config. Two built-ins: ``JsonlLog`` and ``TensorBoard``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.errors import GankitError
from gankit.generate import EVAL_SEED_OFFSET, generate, seed_players
from gankit.io import MetricsLog
from gankit.plots import image_grid, plot_samples, plt

__all__ = ["Callback", "JsonlLog", "TensorBoard"]


class Callback:
    """The hook interface, all no-ops: subclass it and override what you need."""

    def on_step_end(self, run, stats: dict) -> None:
        pass

    def on_log(self, run, record: dict) -> None:
        pass

    def on_checkpoint(self, run, path: Path) -> None:
        pass

    def on_eval(self, run_dir: Path, summary: dict) -> None:
        pass


class JsonlLog(Callback):
    """The logged lines (losses, D's outputs, gradient norms) appended to a JSONL file of
    your choice, each line flushed and synced (the run's own metrics.jsonl is written
    whatever the callbacks)."""

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.log = MetricsLog(path)

    def on_log(self, run, record: dict) -> None:
        self.log.write(record)


class TensorBoard(Callback):
    """A TensorBoard event file in ``log_dir``: every logged scalar; at each checkpoint
    the first seed's samples from fixed latents (an image grid, or for 2-D data the points
    over D(x)); the final metrics. Needs the ``tensorboard`` package (``pip install
    gankit[tensorboard]``)."""

    def __init__(self, log_dir: str | Path, samples: int = 64) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GankitError("--tensorboard: the tensorboard package is not installed; "
                              "pip install 'gankit[tensorboard]'") from None
        self.writer, self.samples = SummaryWriter(str(log_dir)), samples

    def on_log(self, run, record: dict) -> None:
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)):
                self.writer.add_scalar(f"train/{key}", value, record["step"])
        self.writer.flush()

    def on_checkpoint(self, run, path: Path) -> None:
        cfg, state = run.cfg, run.state
        _, g, d = next(seed_players(cfg, state.sampler, state.discriminator))
        x = generate(cfg, g, self.samples if len(run.target.shape) == 3 else 1000,
                     cfg.train.seed + EVAL_SEED_OFFSET)
        if x.ndim == 4:
            grid = torch.as_tensor(image_grid(x))
            self.writer.add_image("samples", grid if grid.ndim == 2 else grid.permute(2, 0, 1),
                                  state.step, dataformats="HW" if grid.ndim == 2 else "CHW")
        elif x.shape[1] == 2:
            png = Path(path).with_name(".tensorboard-samples.png")
            plot_samples(x, run.target, d, png, title=f"step {state.step}")
            self.writer.add_image("samples", plt.imread(png), state.step, dataformats="HWC")
            png.unlink(missing_ok=True)
        self.writer.flush()

    def on_eval(self, run_dir: Path, summary: dict) -> None:
        for key, value in summary.get("metrics", {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"eval/{key}", value, summary.get("steps", 0))
        self.writer.flush()
