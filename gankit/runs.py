"""Runs as a user sees them: ``train`` a config into a run directory (a single GAN or
an AdaGAN mixture) and ``load_run`` one back as objects."""

from __future__ import annotations

import contextlib
import copy as copy_module
import io as io_module
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gankit import io
from gankit.adagan import load_adagan, train_adagan
from gankit.build import build_players, build_target, check_memory, with_channel_critics
from gankit.config import Config, apply_overrides, from_dict
from gankit.errors import GankitError
from gankit.evaluate import finish
from gankit.nets.layers import DiffAugment, Logits, Packed, spectral_norm_layers
from gankit.training.loop import run_training

__all__ = ["train", "fit", "load_run"]


def train(cfg: Config, out: str | Path, *, resume: bool = False, progress: bool = True,
          stop_after: int | None = None, data=None, callbacks: tuple = ()) -> dict | None:
    """Train the GAN ``cfg`` describes into run directory ``out``, evaluate it and return
    its summary (what ``summary.json`` holds).

    ``resume`` continues the run in ``out`` from its checkpoint. ``stop_after = s`` stops
    after step s with a checkpoint and returns None (training in chunks). ``data``: draw
    real batches from this object (``sample(n, generator, device)``) instead of the
    config's data; evaluation is against the config's data. With ``adagan.components >
    1`` the run is an AdaGAN mixture (``gankit.adagan``). ``callbacks``: see
    ``gankit.callbacks``. Under torchrun, ranks other than 0 return None.
    """
    with _removed_unless_started(out):
        if cfg.adagan.components > 1:
            return train_adagan(cfg, out, resume=resume, progress=progress)
        trained = run_training(cfg, out, resume=resume, progress=progress,
                               stop_after=stop_after, data=data, callbacks=callbacks)
    if trained is None:
        return None
    return _evaluated(out, trained, callbacks)


def _started(out: Path, entries: set[Path]) -> bool:
    """Whether training got anywhere in ``entries``: a checkpoint, or a logged step."""
    for entry in entries:
        files = [entry] if entry.is_file() else entry.rglob("*") if entry.is_dir() else []
        for f in files:
            if f.name == "checkpoint.pt" or (f.name in ("metrics.jsonl", "adagan.jsonl")
                                             and f.stat().st_size > 0):
                return True
    return False


@contextlib.contextmanager
def _removed_unless_started(out: str | Path):
    """On any error before training got anywhere (bad data or a budget found once the
    run directory exists, a signal at start-up), remove what this call wrote there —
    ``.lock``, ``config.toml``, ``run.json``, an empty log — and the directory if it
    made it: bad input leaves nothing behind. A run that checkpointed or logged a step
    keeps its files."""
    out = Path(out)
    existed = out.is_dir()
    before = set(out.iterdir()) if existed else set()
    try:
        yield
    except BaseException:
        if out.is_dir():
            new = set(out.iterdir()) - before
            if not _started(out, new | ({out / "checkpoint.pt"} & before)):
                for entry in new:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
                if not existed:
                    with contextlib.suppress(OSError):
                        out.rmdir()
        raise


def _evaluated(out: str | Path, trained, callbacks: tuple) -> dict:
    """``finish`` the run, then tell the callbacks that have ``on_eval``."""
    summary = finish(out, trained)
    for callback in callbacks:
        if hasattr(callback, "on_eval"):
            callback.on_eval(Path(out), summary)
    return summary


def load_run(run_dir: str | Path, device: str | torch.device = "cpu"):
    """(config, generator, discriminator, checkpoint state) of a run directory. The
    generator is the one samples come from (the weight average with
    ``tricks.generator_ema``; the mixture for AdaGAN)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GankitError(f"{run_dir}: run directory not found")
    state = io.load_checkpoint(run_dir / "checkpoint.pt", map_location=device)
    cfg = from_dict(state["config"], str(run_dir / "checkpoint.pt"))  # (checked on loading)
    if cfg.adagan.components > 1:  # the mixture, and the classifier of data vs mixture
        check_memory(cfg, build_target(cfg).shape)  # (its config may ask for anything)
        try:
            return (cfg, *load_adagan(state, cfg, device), state)
        except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise GankitError(f"{run_dir / 'checkpoint.pt'}: weights do not fit its config "
                              f"({io.error_line(e)})") from None
    if cfg.model.generator == "user":  # gankit.fit: the TorchScript traces of the run
        try:
            g, d = (torch.jit.load(str(run_dir / f"{n}.ts"), map_location=device)
                    for n in ("generator", "discriminator"))
        except (RuntimeError, ValueError, OSError) as e:
            raise GankitError(f"{run_dir}: its generator.ts / discriminator.ts cannot be read "
                              f"({str(e).splitlines()[0][:120]})") from None
        return cfg, g, d, state
    target = build_target(cfg)
    generator, discriminator = build_players(cfg, target.shape)
    try:
        # with generator_ema, samples come from the averaged weights (as in training)
        generator.load_state_dict(state.get("generator_ema", state["generator"]))
        discriminator.load_state_dict(state["discriminator"])
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise GankitError(f"{run_dir / 'checkpoint.pt'}: weights do not fit its config "
                          f"({io.error_line(e)})") from None
    return cfg, generator.to(device), discriminator.to(device), state


def _as_tensor(data) -> torch.Tensor:
    """A tensor, numpy array, ``Dataset`` or ``DataLoader`` (of tensors or (x, y) pairs)
    as one float32 tensor of examples."""
    if isinstance(data, torch.utils.data.DataLoader):
        data = data.dataset
    if isinstance(data, np.ndarray):
        data = torch.as_tensor(data)
    if not isinstance(data, torch.Tensor):
        try:
            items = [data[i] for i in range(len(data))]
        except (TypeError, KeyError, IndexError) as e:
            raise GankitError(f"data: a {type(data).__name__} is not a tensor, array, Dataset "
                              f"or DataLoader ({e})") from None
        items = [x[0] if isinstance(x, (tuple, list)) else x for x in items]
        data = torch.stack([torch.as_tensor(x) for x in items])
    return data.detach().float().cpu()


def _latent_size(generator: nn.Module, z_dim: int | None) -> int:
    if z_dim is not None:
        return z_dim
    if getattr(generator, "z_dim", None):
        return int(generator.z_dim)
    first = next((m for m in generator.modules() if isinstance(m, nn.Linear)), None)
    if first is None:
        raise GankitError("model.z_dim: cannot tell the size of the generator's input; pass "
                          "gankit.fit(..., settings={\"model.z_dim\": N})")
    return first.in_features


def _fresh(out: str | Path | None) -> Path:
    if out is not None:
        return Path(out)
    for i in range(1, 10_000):
        candidate = Path("runs") / ("fit" if i == 1 else f"fit-{i}")
        if not (candidate / "checkpoint.pt").exists():
            return candidate
    raise GankitError("out: runs/fit … runs/fit-9999 all hold runs; pass out=DIR")


def fit(generator: nn.Module, discriminator: nn.Module, data, *,
        objective: str = "nonsaturating", tricks: dict | None = None, steps: int = 2000,
        out: str | Path | None = None, callbacks: tuple = (), resume: bool = False,
        settings: dict | None = None) -> dict | None:
    """Train your own ``generator`` and ``discriminator`` (any ``nn.Module``s) on ``data``
    (a tensor, array, ``Dataset`` or ``DataLoader`` of (N, d) vectors or (N, C, H, W)
    images in [0, 1] or [−1, 1]) and evaluate them; return the summary.

    Everything the config route does applies: ``objective`` is any registered objective,
    ``tricks`` the ``[tricks]`` table (``{"pack": 2, "feature_matching": True}``: packing
    wraps your D in ``gankit.Packed``, so it reads m samples at once; feature matching
    reads D's feature layer, ``D.features(x)`` or all but the last layer of an
    ``nn.Sequential``), ``settings`` any other ``{"train.lr_d": 1e-4, ...}`` fields
    (``"model.z_dim"``: the size of G's input, when it cannot be read off G's first
    linear layer). The
    run directory ``out`` (default ``runs/fit``, ``runs/fit-2``, ...) gets the same files
    as ``gankit train``: checkpoints, exact resume (``resume=True`` with the same modules),
    the NaN guard, metrics.jsonl, summary.json, pictures, plus ``data.npy`` (your data,
    so the run can be evaluated again: 20% is held out) and ``generator.ts`` /
    ``discriminator.ts`` (TorchScript traces, so ``gankit eval``, ``sample`` and
    ``report`` work on it). Remedies that need gankit's own layers (virtual batch norm,
    minibatch discrimination) are refused in one line.
    """
    out = _fresh(out)
    x = _as_tensor(data)
    if x.ndim not in (2, 4):
        raise GankitError(f"data: examples of shape {tuple(x.shape[1:])}; allowed: (N, d) "
                          "vectors or (N, C, H, W) images")
    overrides = {"data.name": "points" if x.ndim == 2 else "images",
                 "data.path": str((out / "data.npy").resolve()), "model.generator": "user",
                 "model.discriminator": "user", "objective.name": objective,
                 "train.steps": steps,
                 "model.z_dim": _latent_size(generator, (settings or {}).get("model.z_dim")),
                 **{f"tricks.{k}": v for k, v in (tricks or {}).items()}, **(settings or {})}
    cfg = apply_overrides({}, [f"{k}={json.dumps(v)}" for k, v in overrides.items()], "fit")
    if not resume and (out / "checkpoint.pt").exists():
        raise GankitError(f"{out}: already holds a run; pass resume=True or choose another out")
    out.mkdir(parents=True, exist_ok=True)
    if not (resume and (out / "data.npy").exists()):
        buf = io_module.BytesIO()
        np.save(buf, x.numpy())
        io.atomic_write_bytes(out / "data.npy", buf.getvalue())
    shape = build_target(cfg).shape
    # as the config route composes its own D: normalised layers, one logit per pack,
    # augmentation outermost
    if cfg.model.spectral_norm:
        spectral_norm_layers(discriminator)
    discriminator = Logits(discriminator)
    pack = cfg.tricks.pack
    discriminator = Packed(discriminator, pack, len(shape)) if pack > 1 else discriminator
    discriminator = with_channel_critics(discriminator, cfg, shape)
    if cfg.tricks.diffaugment:
        discriminator = DiffAugment(discriminator, cfg.tricks.diffaugment.split(","),
                                    seed=cfg.train.seed)
    with _removed_unless_started(out):
        trained = run_training(cfg, out, resume=resume, progress=True,
                               players=(generator, discriminator), callbacks=callbacks)
    if trained is None:
        return None
    _trace(trained.generator, trained.discriminator, cfg, out, shape)  # (before on_eval)
    return _evaluated(out, trained, callbacks)


@torch.no_grad()
def _trace(generator: nn.Module, discriminator: nn.Module, cfg: Config, out: Path,
           shape: tuple) -> None:
    """G and D as TorchScript traces (CPU, eval mode), for ``load_run``."""
    for module, name, example in (
            (generator, "generator", torch.zeros(4, cfg.model.z_dim)),
            (discriminator, "discriminator", torch.zeros(4 * cfg.tricks.pack, *shape))):
        copy = copy_module.deepcopy(module).cpu().eval()
        buf = io_module.BytesIO()
        with warnings.catch_warnings():  # (shape checks traced as constants: batch-free)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(copy, example, check_trace=False)
        torch.jit.save(traced, buf)
        io.atomic_write_bytes(out / f"{name}.ts", buf.getvalue())
