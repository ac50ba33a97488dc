"""The training loop: D step(s), G step, logging, checkpoints, resume — in one screen.

``train_loop`` is the loop; ``start`` builds what it reads from the config (``Run``):
the ``TrainState`` (players, optimizers, random streams, averages), the two costs, the
batch sampler and the run directory's logs. Evaluation and the summary are
``gankit.evaluate.finish``; ``gankit.train`` runs both.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gankit import io
from gankit.build import (
    build_objective,
    build_players,
    build_target,
    latent_dim,
    resolve_classes,
    resolve_device,
)
from gankit.config import Config, from_dict
from gankit.data.images import class_frequencies, labelled_data
from gankit.errors import GankitError
from gankit.generate import EVAL_SEED_OFFSET, generate, seed_players
from gankit.nets.mlp import sample_latent
from gankit.seeds import Rng, per_seed
from gankit.training import distributed
from gankit.training.compiled import CompiledUpdate
from gankit.training.costs import Batch, Cost, discriminator_cost, generator_cost
from gankit.training.distributed import RANK_SEED_OFFSET, World
from gankit.training.guard import FiniteGuard, StopRequested, run_lock
from gankit.training.state import TrainState, rng_state
from gankit.training.step import discriminator_step, generator_step
from gankit.training.tricks import GeneratorEMA, HistoricalAverage, Unroll, standing_statistics

__all__ = ["Interrupted", "Run", "Trained", "train_loop", "run_training", "make_optimizers",
           "seed_generators", "check_resumable", "RESUMABLE_CHANGES"]


# Fields that may differ between a run and its resume (they do not change the numbers).
RESUMABLE_CHANGES = {("train", "steps"), ("train", "checkpoint_every"), ("train", "device")}


def make_optimizers(cfg: Config, generator, discriminator):
    """Each player's Adam: fused (one kernel per step on CPU and CUDA), or with
    ``train.compile_optimizer`` a step compiled by torch.compile, whose learning rate is a
    tensor changed in place (``set_learning_rates``) so the schedule never recompiles it."""
    t = cfg.train
    compiled = t.compile_optimizer or t.compile_update  # (both step Adam on a tensor lr)
    if compiled:
        # Each optimizer (or update) compiles its own graph (dynamo guards on the
        # instance); past 8 in one process (runs of a benchmark, AdaGAN's components)
        # dynamo would silently run the rest eagerly. A run starts from clean caches.
        torch._dynamo.reset()

    def adam(module, lr: float, betas: list[float]) -> torch.optim.Adam:
        if not compiled:
            return torch.optim.Adam(module.parameters(), lr=lr, betas=tuple(betas), fused=True)
        # (CUDA graphs: the learning rate and step counts on the GPU, as Adam's capturable)
        device = next(module.parameters()).device if t.cuda_graphs else None
        opt = torch.optim.Adam(module.parameters(), lr=torch.tensor(lr, device=device),
                               betas=tuple(betas), foreach=False, capturable=t.cuda_graphs)
        if t.compile_optimizer:  # (the instance's step: state_dict is unchanged)
            opt.step = torch.compile(opt.step)
        return opt  # (compile_update: its compiled step runs Adam on this state)

    opt_g = adam(generator, t.lr_g, t.betas_g)
    if not list(discriminator.parameters()):  # gmmn: nothing to train against
        return opt_g, None
    return opt_g, adam(discriminator, t.lr_d, t.betas_d)


def seed_generators(cfg: Config, device: torch.device, rank: int = 0) -> Rng:
    """The generator of all data, noise and penalty draws: one per seed, seeded as each
    seed's single run is (a list when ``train.seeds > 1``); offset per torchrun rank."""
    gens = [torch.Generator(device).manual_seed(cfg.train.seed + i + rank * RANK_SEED_OFFSET)
            for i in range(cfg.train.seeds)]
    return gens[0] if len(gens) == 1 else gens


class Interrupted(Exception):
    """Training stopped by a signal after writing a checkpoint at ``step``."""

    def __init__(self, step: int) -> None:
        super().__init__(f"interrupted: checkpoint written at step {step}; continue with --resume")
        self.step = step


@dataclass
class Trained:
    """What a finished loop hands to evaluation: the sampling generator (G or its weight
    average), D, the data, the run's metadata, the training seconds and the run's
    config as resolved from its data (``conditional.classes``)."""

    generator: torch.nn.Module
    discriminator: torch.nn.Module
    target: object
    run_info: dict
    wall_time: float
    cfg: Config


@dataclass
class Run:
    """What the loop reads, built once by ``start``."""

    cfg: Config
    out: Path
    device: torch.device
    world: World
    state: TrainState
    players: tuple[torch.nn.Module, torch.nn.Module]  # (G, D) as the steps call them
    d_cost: Cost | None  # (None: no D to train, as in GMMN)
    g_cost: Cost
    unroll: Unroll | None
    draw: Callable[[int], Batch]
    target: object
    run_info: dict
    log: io.MetricsLog | io.NullLog
    snapshots: io.Snapshots | None
    guard: FiniteGuard
    autocast: contextlib.AbstractContextManager
    update: CompiledUpdate | None = None  # train.compile_update
    callbacks: tuple = ()  # objects with any of on_step_end, on_log, on_checkpoint

    @property
    def checkpoint(self) -> Path:
        return self.out / "checkpoint.pt"


def run_training(
    cfg: Config, out: str | Path, *, resume: bool = False, progress: bool = True,
    stop_after: int | None = None, data=None, players: tuple | None = None,
    callbacks: tuple = (),
) -> Trained | None:
    """Train the GAN ``cfg`` describes into run directory ``out`` (no evaluation).

    ``data``: what real batches are drawn from (anything with ``sample(n, generator,
    device)``), if not the config's data (AdaGAN's reweighted training set). ``players``:
    the user's own (G, D) instead of the config's networks. ``callbacks``: objects with
    any of ``on_step_end(run, stats)``, ``on_log(run, record)``, ``on_checkpoint(run,
    path)`` (see ``gankit.callbacks``).

    ``stop_after = s`` checkpoints at step s and returns None, as if the run had been
    stopped there: ``resume=True`` later continues it (training in chunks). SIGINT or
    SIGTERM does the same at the end of the current step and raises ``Interrupted``.

    Under ``torchrun`` every rank calls this; rank 0 alone reads and writes ``out`` (the
    others get the checkpoint from it) and returns the result, the others None.
    """
    out = Path(out)
    world, device = distributed.setup(resolve_device(cfg.train.device))
    finished = False
    try:
        problem, checkpoint = None, out / "checkpoint.pt"
        if world.main:
            if resume and not checkpoint.exists():
                problem = f"{checkpoint}: --resume given but no checkpoint to resume from"
            if not resume and checkpoint.exists():
                problem = f"{out}: already holds a run; pass --resume or choose another --out"
        if problem := distributed.first_problem(problem, world):
            raise GankitError(problem)
        if world.main:
            build_target(cfg)  # bad data is one line before anything is written
            out.mkdir(parents=True, exist_ok=True)
        with run_lock(out) if world.main else contextlib.nullcontext(), \
                StopRequested() as stop:
            # (the Run, which holds the DDP wrappers, lives only inside train_loop: it is
            # gone before teardown destroys the process group)
            trained = train_loop(start(cfg, out, device, world, resume=resume, data=data,
                                       players=players, callbacks=callbacks),
                                 progress=progress, stop_after=stop_after, stop=stop)
        finished = True
        return trained
    finally:
        distributed.teardown(world, finished)


def train_loop(run: Run, *, progress: bool = True, stop_after: int | None = None,
               stop=None) -> Trained | None:
    """Steps ``state.step + 1 … train.steps`` of the run; see ``run_training``."""
    cfg, t, state = run.cfg, run.cfg.train, run.state
    generator, discriminator = run.players
    wall0 = time.perf_counter() - state.elapsed  # wall time counts every chunk of a run
    bar = tqdm(total=t.steps, initial=state.step, desc="train", dynamic_ncols=True,
               disable=not (progress and run.world.main) or None)
    # without a terminal tqdm is off: a line on stderr every ~5% of the run instead
    lines = ProgressLines(t, state.step) if progress and run.world.main and bar.disable \
        else None
    while state.step < t.steps:
        state.step += 1
        step, stats = state.step, {}
        set_learning_rates(state, t)
        logging = step % t.log_every == 0 or step == t.steps
        with run.autocast:  # bfloat16 only with train.precision = "bfloat16"
            if run.update is not None:  # train.compile_update: the updates below, compiled
                run.update(run.draw(step), stats, detailed=logging)
                run.guard.observe(step, "D", stats["loss_d"])
                run.guard.observe(step, "G", stats["loss_g"])
                if state.ema is not None:
                    state.ema.update(state.generator)
            else:
                batch = None
                for k in range(t.d_steps if run.d_cost is not None else 0):
                    batch = discriminator_step(
                        generator, discriminator, state.opt_d, run.d_cost, run.draw(step),
                        stats=stats, detailed=logging and k == t.d_steps - 1,
                        history=state.history.get("d"), weight_clip=cfg.objective.weight_clip)
                    run.guard.observe(step, "D", stats["loss_d"])
                for k in range(t.g_steps):  # G's first update reuses D's last fake batch
                    # D is only read in G's update: the bare network, which DDP's hooks do
                    # not watch
                    generator_step(generator, state.discriminator, state.opt_g, run.g_cost,
                                   batch if batch is not None and k == 0 else run.draw(step),
                                   stats=stats, detailed=logging and k == t.g_steps - 1,
                                   history=state.history.get("g"), unroll=run.unroll)
                    run.guard.observe(step, "G", stats["loss_g"])
                    if state.ema is not None:  # (an average of G's iterates: one per update)
                        state.ema.update(state.generator)
        notify(run, "on_step_end", stats)
        stopping = distributed.any_rank(bool(stop), run.world)  # all ranks stop at one step
        checkpointing = step % t.checkpoint_every == 0 or step in (t.steps, stop_after) \
            or stopping
        # the only host syncs: at logging / checkpoint steps
        if (logging or checkpointing) and rolled_back(run, checkpointing, bar):
            continue
        if logging:
            record = log_step(run, stats, time.perf_counter() - wall0, bar)
            if lines is not None:
                lines.report(record)
            notify(run, "on_log", record)
        if run.snapshots is not None and step % t.snapshot_every == 0:
            snapshot(run)
        if checkpointing:
            save(run, time.perf_counter() - wall0)
            notify(run, "on_checkpoint", run.checkpoint)
        bar.update(1)
        if step == stop_after or stopping:
            bar.close()
            if stopping:
                raise Interrupted(step)
            return None
    bar.close()
    if not run.world.main:
        return None
    if run.update is not None and run.update.first_call_s is not None:
        # (this process's compilation, for the summary)
        run.run_info["compile_update_first_step_s"] = run.update.first_call_s
    return Trained(state.sampler, state.discriminator, run.target, run.run_info,
                   time.perf_counter() - wall0, cfg)


def notify(run: Run, event: str, value) -> None:
    """Call ``event(run, value)`` of every callback that has it (rank 0 only)."""
    if run.world.main:
        for callback in run.callbacks:
            hook = getattr(callback, event, None)
            if hook is not None:
                hook(run, value)


def set_learning_rates(state: TrainState, t) -> None:
    """Each step's learning rates: the schedule's fraction times the rollback scale."""
    frac = 1 - (state.step - 1) / t.steps if t.lr_schedule == "linear" else 1.0
    for opt, lr in ((state.opt_d, t.lr_d), (state.opt_g, t.lr_g)):
        if opt is None:  # (gmmn has no D)
            continue
        group = opt.param_groups[0]
        if isinstance(group["lr"], torch.Tensor):  # a compiled step: in place, no recompile
            group["lr"].fill_(lr * frac * state.lr_scale)
        else:
            group["lr"] = lr * frac * state.lr_scale


def rolled_back(run: Run, checkpointing: bool, bar) -> bool:
    """Check for non-finite values; on one, roll back to the last checkpoint with half
    the learning rate (``on_nan = "rollback"``, while rollbacks remain) and return True,
    or stop with the checkpoint intact."""
    state, t, world = run.state, run.cfg.train, run.world
    problem = run.guard.check(state.generator, state.discriminator, state.step,
                              parameters=checkpointing)
    problem = distributed.first_problem(problem, world)
    if problem and t.on_nan == "rollback" and state.rollbacks < t.max_rollbacks \
            and distributed.any_rank(world.main and run.checkpoint.exists(), world):
        rollbacks, lr_scale = state.rollbacks + 1, state.lr_scale / 2
        restore(run)
        state.rollbacks, state.lr_scale = rollbacks, lr_scale
        open_logs(run, keep_until_step=state.step)  # forget the abandoned steps' lines
        run.log.write({"step": state.step, "event": "rollback", "reason": problem,
                       "lr_scale": state.lr_scale})
        run.guard.reset()
        bar.n = state.step
        return True
    if problem:
        bar.close()
        raise GankitError(f"{problem}; stopped (on_nan = {t.on_nan!r}, rollbacks used "
                          f"{state.rollbacks}/{t.max_rollbacks}); {run.checkpoint} holds the "
                          "last good checkpoint")
    return False


def log_step(run: Run, stats: dict, wall_time: float, bar) -> dict:
    stats = distributed.mean_over_ranks(stats, run.world)
    record = {"step": run.state.step, **{k: float(v) for k, v in stats.items()},
              "wall_time": wall_time}
    run.log.write(record)
    bar.set_postfix({k: f"{record[k]:.3f}" for k in ("loss_d", "loss_g") if k in record})
    return record


class ProgressLines:
    """Progress as plain lines on stderr (when stderr is not a terminal): step, losses,
    steps per second and time left, at logging steps about every 5% of the run."""

    def __init__(self, t, start_step: int) -> None:
        self.steps, self.start = t.steps, (start_step, time.perf_counter())
        self.every = t.log_every * max(1, round(t.steps / 20 / t.log_every))

    def report(self, record: dict) -> None:
        step = record["step"]
        if step % self.every and step != self.steps:
            return
        rate = (step - self.start[0]) / max(time.perf_counter() - self.start[1], 1e-9)
        left = (self.steps - step) / rate if rate > 0 else float("inf")
        losses = " · ".join(f"{k} {record[k]:.4g}" for k in ("loss_d", "loss_g") if k in record)
        print(f"step {step}/{self.steps} · {losses} · {rate:.1f} steps/s · "
              f"{_duration(left)} left", file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    minutes, s = divmod(int(round(seconds)), 60)
    return f"{minutes} min {s:02d} s" if minutes else f"{s} s"


def snapshot(run: Run) -> None:
    """Samples of the first seed from fixed latents, for the report's slider."""
    cfg = run.cfg
    _, first_g, _ = next(seed_players(cfg, run.state.sampler, run.state.discriminator))
    n_fixed = 64 if len(run.target.shape) == 3 else 500  # images: a grid; 2-D: points
    run.snapshots.add(run.state.step, generate(cfg, first_g, n_fixed,
                                               cfg.train.seed + EVAL_SEED_OFFSET).numpy())


def save(run: Run, wall_time: float) -> None:
    """Write the checkpoint (only ever a finite state: the guard is checked first)."""
    state, world = run.state, run.world
    distributed.check_in_sync([state.generator, state.discriminator], world, state.step)
    rngs = distributed.gather(rng_state(state.rng), world)  # every rank's stream
    if not world.main:
        return
    state.elapsed = wall_time
    io.save_checkpoint(run.checkpoint, {
        **state.state_dict(), "rng": rngs[0], "rng_ranks": rngs, "config": run.cfg.to_dict(),
        "meta": run.run_info, "world_size": world.size})


def restore(run: Run) -> None:
    """Load the run's checkpoint into its state (rank 0 reads it and sends it to the
    other ranks, which may be on other machines)."""
    world = run.world
    state = io.load_checkpoint(run.checkpoint, map_location=run.device) if world.main else None
    if world.distributed:
        state = distributed.broadcast(state, world)
        if state.get("world_size", 1) != world.size:
            raise GankitError(f"{run.checkpoint}: written by {state.get('world_size', 1)} "
                              f"processes; resume it with as many (got {world.size})")
    check_resumable(from_dict(state["config"], str(run.checkpoint)), run.cfg)
    try:
        run.state.load_state_dict(state, world.rank if world.distributed else None)
    except GankitError as e:  # (the part that does not fit: name the file too)
        raise GankitError(f"{run.checkpoint}: {e}") from None


def open_logs(run: Run, keep_until_step: int | None) -> None:
    """metrics.jsonl (and snapshots.npz), keeping only lines up to ``keep_until_step``."""
    if not run.world.main:
        return
    run.log = io.MetricsLog(run.out / "metrics.jsonl", keep_until_step=keep_until_step)
    if run.cfg.train.snapshot_every:
        run.snapshots = io.Snapshots(run.out / "snapshots.npz", keep_until_step=keep_until_step)


def check_device_options(cfg: Config, device: torch.device, world: World) -> None:
    t = cfg.train
    for field, on in (("precision", t.precision == "bfloat16"), ("channels_last", t.channels_last),
                      ("cuda_graphs", t.cuda_graphs)):
        if on and device.type != "cuda":
            given = getattr(t, field)  # (as the config file spells it)
            given = str(given).lower() if isinstance(given, bool) else repr(given)
            raise GankitError(f"train.{field}: {given} is a CUDA option and the "
                              f"device is {device.type}; allowed here: "
                              f"{'float32' if field == 'precision' else 'false'}")
    if world.distributed and t.compile_update:
        raise GankitError("torchrun: train.compile_update compiles one process's update (DDP's "
                          "gradient hooks are not traced); allowed under torchrun: false")
    if world.distributed and (cfg.infogan_on or cfg.semisupervised_on or cfg.conditional_on
                              or cfg.objective.autoencoder_weight):
        raise GankitError("torchrun: infogan, semisupervised, conditional and objective."
                          "autoencoder_weight runs train in one process (their extra D terms or "
                          "inputs are not set up for DDP yet); run gankit train")


STANDING_SEED_OFFSET = 3_000_017  # standing statistics' noise: apart from training and eval


def standing_statistics_of(cfg: Config, device: torch.device):
    """``tricks.generator_ema_bn_samples`` as a function recomputing a G's batch-norm
    statistics (``standing_statistics``) from that many latents (rounded up to whole
    batches of the size G trains on), from a fixed stream of the run's seed; None when
    off."""
    n = cfg.tricks.generator_ema_bn_samples
    if not n:
        return None
    size = cfg.train.batch_size * cfg.tricks.pack

    def latents():
        rng = torch.Generator().manual_seed(cfg.train.seed + STANDING_SEED_OFFSET)
        for _ in range(-(-n // size)):
            yield sample_latent(size, latent_dim(cfg), cfg.model.z_dist, rng, "cpu").to(device)

    return lambda generator: standing_statistics(generator, latents())


def batch_sampler(cfg: Config, data, generator: torch.nn.Module, rng: Rng,
                  device: torch.device, *, labelled=None) -> Callable[[], Batch]:
    """The function that draws each update's ``Batch``: real data and z from the run's
    streams (one per seed), InfoGAN's codes of z (a generator with ``codes``), and
    ``labelled`` examples (semi-supervised)."""
    t = cfg.train
    n = t.batch_size * cfg.tricks.pack  # D judges batch_size inputs, each a pack of m samples
    # (codes read no weights: with seeds stacked, the template's)
    codes = getattr(getattr(generator, "template", generator), "codes", None)

    def draw(step: int = 0) -> Batch:
        real, y = per_seed(rng, lambda g: data.sample(n, g, device, return_labels=True)) \
            if cfg.conditional_on else (per_seed(rng, lambda g: data.sample(n, g, device)), None)
        z = per_seed(rng, lambda g: sample_latent(n, latent_dim(cfg), cfg.model.z_dist, g,
                                                  device))
        return Batch(real, z, codes=codes(z) if codes is not None else None, rng=rng, step=step,
                     labelled=labelled.sample(t.batch_size, rng, device, return_labels=True)
                     if labelled is not None else None,
                     classes=(y, generator.labels(z)) if y is not None else None)

    return draw


def start(cfg: Config, out: Path, device: torch.device, world: World, *, resume: bool,
          data=None, players: tuple | None = None, callbacks: tuple = ()) -> Run:
    """Build everything the loop reads (restoring the checkpoint with ``resume``) and
    write the run's config.toml and run.json. ``players``: the user's own (G, D) instead
    of the networks the config builds."""
    t, tricks = cfg.train, cfg.tricks
    check_device_options(cfg, device, world)
    target = build_target(cfg)
    cfg = resolve_classes(cfg, target)  # (a conditional run: the data's classes)
    labelled = None  # semi-supervised: the labelled examples, class-balanced by seed
    if cfg.semisupervised_on:
        labelled = labelled_data(target, cfg.semisupervised.labels_per_class, t.seed)
    generator, discriminator = players if players is not None else \
        build_players(cfg, target.shape)
    if cfg.conditional_on:  # G draws classes as often as the training data holds them
        generator.class_prior.copy_(class_frequencies(target.labels, cfg.conditional.classes))
    generator.to(device), discriminator.to(device)
    if t.channels_last:  # convolution weights in NHWC order; inputs follow them
        generator.to(memory_format=torch.channels_last)
        discriminator.to(memory_format=torch.channels_last)
    # What the steps call: the players themselves, or their DDP wrappers under torchrun,
    # compiled with ``train.compile``.
    stepped = tuple(distributed.wrap(m, world, device) for m in (generator, discriminator))
    if t.compile:
        stepped = tuple(torch.compile(m) for m in stepped)
    opt_g, opt_d = make_optimizers(cfg, generator, discriminator)
    objective = build_objective(cfg)
    rng = seed_generators(cfg, device, world.rank)  # all data, noise and GP draws
    history = {"d": HistoricalAverage(discriminator, tricks.historical_averaging),
               "g": HistoricalAverage(generator, tricks.historical_averaging)} \
        if tricks.historical_averaging else {}
    ema = GeneratorEMA(generator, tricks.generator_ema, tricks.generator_ema_rampup,
                       standing_statistics_of(cfg, device)) if tricks.generator_ema else None
    state = TrainState(generator, discriminator, opt_g, opt_d, rng, ema, history)
    d_cost = discriminator_cost(cfg, objective, history.get("d")) \
        if objective.adversarial else None
    g_cost = generator_cost(cfg, objective, history.get("g"))
    run = Run(cfg, out, device, world, state, stepped, d_cost, g_cost,
              Unroll(tricks.unroll_steps, opt_d, d_cost) if tricks.unroll_steps else None,
              batch_sampler(cfg, target if data is None else data, generator, rng, device,
                            labelled=labelled),
              target, {}, io.NullLog(), None, FiniteGuard(device),
              torch.autocast(device.type, torch.bfloat16) if t.precision == "bfloat16"
              else contextlib.nullcontext(),
              CompiledUpdate(generator, discriminator, opt_g, opt_d, d_cost, g_cost,
                             cuda_graphs=t.cuda_graphs) if t.compile_update else None,
              tuple(callbacks))
    if resume:
        if world.main:
            io.remove_stale_temporaries(out)  # we hold the lock: no one else writes
        restore(run)
    run.run_info = {"seed": t.seed, "seeds": list(range(t.seed, t.seed + t.seeds)),
                    "device": str(device), "processes": world.size, "versions": io.versions(),
                    "command": sys.argv, "resumed_from_step": state.step if resume else None,
                    # the user's data: its file's SHA-256 and the held-out split
                    **({"data": target.info} if hasattr(target, "info") else {})}
    if world.main:
        io.atomic_write_text(out / "config.toml", cfg.to_toml())
        io.write_json(out / "run.json", run.run_info)
    open_logs(run, keep_until_step=state.step if resume else None)
    return run


def check_resumable(saved: Config, new: Config) -> None:
    """Refuse to resume with a config that would change the numbers."""
    a, b = saved.to_dict(), new.to_dict()
    allowed = set(RESUMABLE_CHANGES)
    if saved.train.lr_schedule != "constant":  # the schedule depends on the total steps
        allowed.discard(("train", "steps"))
    diffs = [f"{s}.{k}" for s in a for k in a[s] if a[s][k] != b[s][k] and (s, k) not in allowed]
    if diffs:
        raise GankitError(f"--resume: config differs from the checkpoint's in {', '.join(diffs)}; "
                          f"only {', '.join(f'{s}.{k}' for s, k in sorted(allowed))} "
                          "may change")
