"""Everything a run's checkpoint holds about training, in one object.

``TrainState.state_dict()`` and ``load_state_dict()`` are the only code that writes and
reads these parts of a checkpoint, so save and restore cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.io import error_line
from gankit.seeds import Rng
from gankit.training.tricks import GeneratorEMA, HistoricalAverage

__all__ = ["TrainState", "rng_state", "set_rng_state"]


def rng_state(rng: Rng):
    return rng.get_state() if isinstance(rng, torch.Generator) else [g.get_state() for g in rng]


def set_rng_state(rng: Rng, state) -> None:
    for g, s in ([(rng, state)] if isinstance(rng, torch.Generator) else zip(rng, state)):
        g.set_state(s.cpu())


@dataclass
class TrainState:
    """G, D, their optimizers, the run's random streams, the weight average and the
    historical averages, and where training is: the step, the learning-rate scale (halved
    by each NaN rollback), the rollbacks used and the training seconds so far."""

    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None  # (None: a fixed D, as in GMMN)
    rng: Rng
    ema: GeneratorEMA | None = None
    history: dict[str, HistoricalAverage] = field(default_factory=dict)  # "d", "g"
    step: int = 0
    lr_scale: float = 1.0
    rollbacks: int = 0
    elapsed: float = 0.0

    @property
    def sampler(self) -> nn.Module:
        """What samples and evaluation use: G, or the moving average of its weights."""
        return self.ema.sampler() if self.ema is not None else self.generator

    def state_dict(self) -> dict:
        """The checkpoint's training part (the run adds its config and metadata)."""
        device = next(iter(self.generator.parameters())).device
        return {
            "step": self.step, "lr_scale": self.lr_scale, "rollbacks": self.rollbacks,
            "wall_time": self.elapsed, "rng": rng_state(self.rng),
            # torch's global stream: only D's input / hidden noise (semi-supervised) draws on it
            "torch_rng": torch.get_rng_state(),
            "torch_cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            **{f"history_{k}": h.state_dict() for k, h in self.history.items()},
            # (what samples use: with standing statistics, θ̄'s own batch-norm statistics)
            **({"generator_ema": self.sampler.state_dict()} if self.ema is not None else {}),
            # (only with the ramp, whose β depends on it: older checkpoints stay as they were)
            **({"generator_ema_updates": self.ema.updates}
               if self.ema is not None and self.ema.rampup else {}),
        }

    def load_state_dict(self, state: dict, rank: int | None = None) -> None:
        """Restore from a checkpoint; ``rank`` (under torchrun) picks that process's stream.
        A part that does not fit this run (a missing key, a tensor of another shape, an
        optimizer with other groups, a malformed random state) is a GankitError naming
        it."""
        for part, restore in self._restorers(state, rank):
            try:
                restore()
            except (KeyError, RuntimeError, ValueError, TypeError, AttributeError,
                    IndexError) as e:
                why = f"no {e.args[0]!r}" if isinstance(e, KeyError) else error_line(e)
                raise GankitError(f"{part} does not fit this run ({why})") from None
        for part, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            if opt is not None and (problem := _optimizer_shape_problem(opt)):
                raise GankitError(f"{part} does not fit this run ({problem})")

    def _restorers(self, state: dict, rank: int | None):
        """(part, function restoring it) for each part of the checkpoint, in order."""
        for obj, key in ((self.generator, "generator"), (self.discriminator, "discriminator"),
                         (self.opt_g, "opt_g"), (self.opt_d, "opt_d")):
            if obj is not None:
                yield key, lambda obj=obj, key=key: obj.load_state_dict(state[key])
        yield "rng", lambda: set_rng_state(
            self.rng, state["rng"] if rank is None else state["rng_ranks"][rank])
        if "torch_rng" in state:
            yield "torch_rng", lambda: torch.set_rng_state(state["torch_rng"].cpu())
        device = next(iter(self.generator.parameters())).device
        if state.get("torch_cuda_rng") is not None and device.type == "cuda":
            yield "torch_cuda_rng", lambda: torch.cuda.set_rng_state_all(
                [s.cpu() for s in state["torch_cuda_rng"]])
        for key, h in self.history.items():
            yield f"history_{key}", lambda h=h, key=key: h.load_state_dict(state[f"history_{key}"])
        if self.ema is not None:
            yield "generator_ema", lambda: (self.ema.module.load_state_dict(state["generator_ema"]),
                                            setattr(self.ema, "stale", True))
            if self.ema.rampup:
                yield "generator_ema_updates", lambda: setattr(
                    self.ema, "updates", int(state["generator_ema_updates"]))
        yield "training counters", lambda: self._restore_counters(state)

    def _restore_counters(self, state: dict) -> None:
        self.step, self.lr_scale = int(state["step"]), state["lr_scale"]
        self.rollbacks = state["rollbacks"]
        self.elapsed = state.get("wall_time", 0.0)  # (checkpoints before 2026-12-05 have none)


def _optimizer_shape_problem(opt: torch.optim.Optimizer) -> str | None:
    """Adam's moments must have their parameter's shape (``load_state_dict`` does not
    check: a wrong one fails only inside the next step)."""
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") and (
                        not isinstance(value, torch.Tensor) or value.shape != p.shape):
                    shape = tuple(value.shape) if isinstance(value, torch.Tensor) else value
                    return f"{key} of shape {shape} for a parameter of shape {tuple(p.shape)}"
    return None
