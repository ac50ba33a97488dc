"""The training loop: D step(s), G step, logging, checkpoints, resume — in one screen."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gankit import io
from gankit.build import (
    build_objective,
    build_players,
    build_target,
    latent_dim,
    resolve_device,
)
from gankit.config import Config, from_dict
from gankit.errors import GankitError
from gankit.evaluate import (
    EVAL_SEED_OFFSET,
    evaluate_generator,
    generate,
    seed_players,
    summarize_seeds,
)
from gankit.nets.mlp import sample_latent
from gankit.nets.stacked import Rng, per_seed
from gankit.train import distributed
from gankit.train.distributed import RANK_SEED_OFFSET, World
from gankit.train.guard import FiniteGuard, StopRequested, run_lock
from gankit.train.step import discriminator_step, generator_step
from gankit.train.tricks import GeneratorEMA, HistoricalAverage

# Fields that may differ between a run and its resume (they do not change the numbers).
RESUMABLE_CHANGES = {("train", "steps"), ("train", "checkpoint_every"), ("train", "device")}


def make_optimizers(cfg: Config, generator, discriminator):
    t = cfg.train
    # fused Adam: one kernel per step on CPU and CUDA (torch >= 2.4; we require >= 2.6)
    opt_g = torch.optim.Adam(generator.parameters(), lr=t.lr_g, betas=tuple(t.betas_g),
                             fused=True)
    if not list(discriminator.parameters()):  # gmmn: nothing to train against
        return opt_g, None
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=t.lr_d, betas=tuple(t.betas_d),
                             fused=True)
    return opt_g, opt_d


def seed_generators(cfg: Config, device: torch.device, rank: int = 0) -> Rng:
    """The generator of all data, noise and penalty draws: one per seed, seeded as each
    seed's single run is (a list when ``train.seeds > 1``); offset per torchrun rank."""
    gens = [torch.Generator(device).manual_seed(cfg.train.seed + i + rank * RANK_SEED_OFFSET)
            for i in range(cfg.train.seeds)]
    return gens[0] if len(gens) == 1 else gens


def rng_state(rng: Rng):
    return rng.get_state() if isinstance(rng, torch.Generator) else [g.get_state() for g in rng]


def set_rng_state(rng: Rng, state) -> None:
    for g, s in ([(rng, state)] if isinstance(rng, torch.Generator) else zip(rng, state)):
        g.set_state(s.cpu())


def train(
    cfg: Config, out: str | Path, resume: bool = False, progress: bool = True,
    stop_after: int | None = None, data=None,
) -> dict | None:
    """Train the GAN ``cfg`` describes into run directory ``out``; return the summary.

    ``data``: what real batches are drawn from (anything with ``sample(n, generator,
    device)``), if not the config's data (AdaGAN's reweighted training set); evaluation
    is always against the config's data.

    ``stop_after = s`` checkpoints at step s and returns None, as if the run had been
    stopped there: ``resume=True`` later continues it (training in chunks). SIGINT or
    SIGTERM does the same at the end of the current step and raises ``Interrupted``.

    Under ``torchrun`` every rank calls this; rank 0 alone reads and writes ``out`` (the
    others get the checkpoint from it) and returns the summary, the others None.
    """
    out = Path(out)
    ckpt_path = out / "checkpoint.pt"
    world, device = distributed.setup(resolve_device(cfg.train.device))
    finished = False
    try:
        problem = None
        if world.main:
            if resume and not ckpt_path.exists():
                problem = f"{ckpt_path}: --resume given but no checkpoint to resume from"
            if not resume and ckpt_path.exists():
                problem = f"{out}: already holds a run; pass --resume or choose another --out"
        if problem := distributed.first_problem(problem, world):
            raise GankitError(problem)
        if world.main:
            out.mkdir(parents=True, exist_ok=True)
        with run_lock(out) if world.main else contextlib.nullcontext(), \
                StopRequested() as stop:
            summary = _train(cfg, out, ckpt_path, device, resume, progress, stop_after,
                             stop, world, data)
        finished = True
        return summary
    finally:
        distributed.teardown(world, finished)


class Interrupted(Exception):
    """Training stopped by a signal after writing a checkpoint at ``step``."""

    def __init__(self, step: int) -> None:
        super().__init__(f"interrupted: checkpoint written at step {step}; continue with --resume")
        self.step = step


def _train(cfg, out, ckpt_path, device, resume, progress, stop_after, stop,
           world: World, data) -> dict | None:
    t = cfg.train
    for field, on in (("precision", t.precision == "bfloat16"), ("channels_last", t.channels_last)):
        if on and device.type != "cuda":
            raise GankitError(f"train.{field}: {getattr(t, field)!r} is a CUDA option and the "
                              f"device is {device.type}; allowed here: "
                              f"{'float32' if field == 'precision' else 'false'}")
    if world.distributed and (cfg.infogan_on or cfg.semisupervised_on):
        raise GankitError("torchrun: infogan and semisupervised runs train in one process "
                          "(their extra D terms bypass DDP's gradient sync); run gankit train")
    target = build_target(cfg)
    data = target if data is None else data
    labelled = None  # semi-supervised: the labelled examples, class-balanced by seed
    if cfg.semisupervised_on:
        from gankit.variants.semisupervised import labelled_data

        labelled = labelled_data(target, cfg.semisupervised.labels_per_class, t.seed)
    generator, discriminator = build_players(cfg, target.shape)
    generator.to(device), discriminator.to(device)
    if t.channels_last:  # convolution weights in NHWC order; inputs follow them
        generator.to(memory_format=torch.channels_last)
        discriminator.to(memory_format=torch.channels_last)
    # What the steps call: the players themselves, or their DDP wrappers under torchrun,
    # compiled with ``train.compile``.
    g_step, d_step = (distributed.wrap(m, world, device) for m in (generator, discriminator))
    if t.compile:
        g_step, d_step = torch.compile(g_step), torch.compile(d_step)
    autocast = torch.autocast(device.type, torch.bfloat16) if t.precision == "bfloat16" \
        else contextlib.nullcontext()
    opt_g, opt_d = make_optimizers(cfg, generator, discriminator)
    tricks = cfg.tricks
    objective = build_objective(cfg)
    rng = seed_generators(cfg, device, world.rank)  # all data, noise and GP draws
    pack, start, lr_scale, rollbacks = tricks.pack, 0, 1.0, 0
    elapsed = 0.0  # training-loop seconds of the earlier chunks of a resumed run
    history = {"d": None, "g": None}  # historical averaging of each player's parameters
    if tricks.historical_averaging:
        history = {"d": HistoricalAverage(discriminator, tricks.historical_averaging),
                   "g": HistoricalAverage(generator, tricks.historical_averaging)}

    # what samples and evaluation use: G, or the moving average of its weights
    ema = GeneratorEMA(generator, tricks.generator_ema) if tricks.generator_ema else None
    sampler = ema.module if ema is not None else generator

    def restore() -> dict:
        state = io.load_checkpoint(ckpt_path, map_location=device) if world.main else None
        if world.distributed:  # rank 0 reads; the other ranks may be on other machines
            state = distributed.broadcast(state, world)
            if state.get("world_size", 1) != world.size:
                raise GankitError(f"{ckpt_path}: written by {state.get('world_size', 1)} "
                                  f"processes; resume it with as many (got {world.size})")
        check_resumable(from_dict(state["config"], str(ckpt_path)), cfg)
        for obj, key in ((generator, "generator"), (discriminator, "discriminator"),
                         (opt_g, "opt_g"), (opt_d, "opt_d")):
            if obj is not None:  # (gmmn has no optimizer for D)
                obj.load_state_dict(state[key])
        set_rng_state(rng, state["rng"] if not world.distributed else
                      state["rng_ranks"][world.rank])
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"].cpu())
        if state.get("torch_cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state_all([s.cpu() for s in state["torch_cuda_rng"]])
        for key, h in history.items():
            if h is not None:
                h.load_state_dict(state[f"history_{key}"])
        if ema is not None:
            ema.module.load_state_dict(state["generator_ema"])
        return state

    if resume:
        if world.main:
            io.remove_stale_temporaries(out)  # we hold the lock: no one else writes
        state = restore()
        start, lr_scale, rollbacks = int(state["step"]), state["lr_scale"], state["rollbacks"]
        elapsed = state.get("wall_time", 0.0)  # (checkpoints before 2026-12-05 have none)
    run_info = {"seed": t.seed, "seeds": list(range(t.seed, t.seed + t.seeds)),
                "device": str(device), "processes": world.size, "versions": io.versions(),
                "command": sys.argv, "resumed_from_step": start if resume else None}
    log, snapshots = io.NullLog(), None  # ranks other than 0 write nothing
    if world.main:
        io.atomic_write_text(out / "config.toml", cfg.to_toml())
        io.write_json(out / "run.json", run_info)
        log = io.MetricsLog(out / "metrics.jsonl", keep_until_step=start if resume else None)
        if t.snapshot_every:
            snapshots = io.Snapshots(out / "snapshots.npz",
                                     keep_until_step=start if resume else None)
    guard = FiniteGuard(device)

    def save(step: int) -> None:  # only ever a finite state: the guard is checked first
        distributed.check_in_sync([generator, discriminator], world, step)
        rngs = distributed.gather(rng_state(rng), world)  # every rank's stream
        if not world.main:
            return
        io.save_checkpoint(ckpt_path, {
            "step": step, "config": cfg.to_dict(), "meta": run_info, "lr_scale": lr_scale,
            "rollbacks": rollbacks, "rng": rngs[0], "rng_ranks": rngs,
            # torch's global stream: only D's input / hidden noise (semi-supervised) draws on it
            "torch_rng": torch.get_rng_state(),
            "torch_cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
            "world_size": world.size, "wall_time": time.perf_counter() - wall0,
            "generator": generator.state_dict(), "discriminator": discriminator.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict() if opt_d else None,
            **{f"history_{k}": h.state_dict() for k, h in history.items() if h is not None},
            **({"generator_ema": ema.module.state_dict()} if ema is not None else {}),
        })

    n = t.batch_size * pack  # D judges batch_size inputs, each a pack of m samples

    def draw_real(g: torch.Generator) -> torch.Tensor:
        return data.sample(n, g, device)

    def draw_latent(g: torch.Generator) -> torch.Tensor:
        return sample_latent(n, latent_dim(cfg), cfg.model.z_dist, g, device)

    def draw_labelled():  # semi-supervised: a batch of labelled examples
        if labelled is None:
            return None
        return labelled.sample(t.batch_size, rng, device, return_labels=True)

    def info_term(z: torch.Tensor):  # InfoGAN: the codes in z, with their weights
        if not cfg.infogan_on:
            return None
        # (codes read no weights: with seeds stacked, the template's)
        codes = getattr(generator, "template", generator).codes
        return codes(z), cfg.infogan.weight, cfg.infogan.continuous_weight

    wall0 = time.perf_counter() - elapsed  # wall time counts every chunk of a resumed run
    bar = tqdm(total=t.steps, initial=start, disable=not (progress and world.main) or None,
               desc="train", dynamic_ncols=True)
    step = start
    while step < t.steps:
        step += 1
        frac = 1 - (step - 1) / t.steps if t.lr_schedule == "linear" else 1.0
        for opt, lr in ((opt_d, t.lr_d), (opt_g, t.lr_g)):
            if opt is not None:  # (gmmn has no D)
                opt.param_groups[0]["lr"] = lr * frac * lr_scale
        logging = step % t.log_every == 0 or step == t.steps
        stats: dict = {}
        with autocast:  # bfloat16 only with train.precision = "bfloat16"
            for k in range(t.d_steps if objective.adversarial else 0):
                real, z = per_seed(rng, draw_real), per_seed(rng, draw_latent)
                info = info_term(z)
                fake = discriminator_step(g_step, d_step, opt_d, objective, real, z, rng,
                                          cfg.objective.gp_weight, stats,
                                          logging and k == t.d_steps - 1, history["d"],
                                          cfg.objective.weight_clip,
                                          cfg.objective.autoencoder_weight, info,
                                          draw_labelled())
                guard.observe(step, "D", stats["loss_d"])
            if not objective.adversarial:  # gmmn: G alone, against a fixed kernel
                real, z = per_seed(rng, draw_real), per_seed(rng, draw_latent)
                fake, info = g_step(z), None
            # D is only read in G's update: the bare network, which DDP's hooks do not watch
            generator_step(g_step, discriminator, opt_g, objective, fake, stats, logging,
                           real=real, match_features=tricks.feature_matching,
                           unroll_steps=tricks.unroll_steps, opt_d=opt_d,
                           gp_weight=cfg.objective.gp_weight, rng=rng, history=history["g"],
                           history_d=history["d"], info=info)
        guard.observe(step, "G", stats["loss_g"])
        if ema is not None:
            ema.update(generator)
        stopping = distributed.any_rank(bool(stop), world)  # all ranks stop at one step
        checkpointing = step % t.checkpoint_every == 0 or step in (t.steps, stop_after) \
            or stopping
        if logging or checkpointing:  # the only host syncs: at logging / checkpoint steps
            problem = guard.check(generator, discriminator, step, parameters=checkpointing)
            problem = distributed.first_problem(problem, world)
            if problem and t.on_nan == "rollback" and rollbacks < t.max_rollbacks \
                    and distributed.any_rank(world.main and ckpt_path.exists(), world):
                step = int(restore()["step"])
                rollbacks, lr_scale = rollbacks + 1, lr_scale / 2
                # forget what the abandoned steps logged, as a resume would
                if world.main:
                    log = io.MetricsLog(out / "metrics.jsonl", keep_until_step=step)
                if snapshots is not None:
                    snapshots = io.Snapshots(out / "snapshots.npz", keep_until_step=step)
                log.write({"step": step, "event": "rollback", "reason": problem,
                           "lr_scale": lr_scale})
                guard.reset()
                bar.n = step
                continue
            if problem:
                bar.close()
                raise GankitError(f"{problem}; stopped (on_nan = {t.on_nan!r}, rollbacks used "
                                  f"{rollbacks}/{t.max_rollbacks}); {ckpt_path} holds the last "
                                  "good checkpoint")
        if logging:
            stats = distributed.mean_over_ranks(stats, world)
            record = {"step": step, **{k: float(v) for k, v in stats.items()},
                      "wall_time": time.perf_counter() - wall0}
            log.write(record)
            bar.set_postfix({k: f"{record[k]:.3f}" for k in ("loss_d", "loss_g") if k in record})
        if snapshots is not None and step % t.snapshot_every == 0:
            _, first_g, _ = next(seed_players(cfg, sampler, discriminator))  # the first seed
            n_fixed = 64 if len(target.shape) == 3 else 500  # images: a grid; 2-D: points
            snapshots.add(step, generate(cfg, first_g, n_fixed,
                                         t.seed + EVAL_SEED_OFFSET).numpy())
        if checkpointing:
            save(step)
        bar.update(1)
        if step == stop_after or stopping:
            bar.close()
            if stopping:
                raise Interrupted(step)
            return None
    bar.close()
    if not world.main:
        return None
    return finish(cfg, out, sampler, discriminator, target, run_info,
                  time.perf_counter() - wall0)


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


def finish(cfg, out, generator, discriminator, target, run_info, wall_time) -> dict:
    """Evaluate each seed, draw the pictures and write summary.json: ``metrics`` (over
    S > 1 seeds their mean, with ``metrics_stderr`` and ``per_seed``), ``wall_time_s``
    (the training loop, every chunk of a resumed run) and ``eval_time_s`` (this)."""
    from gankit.report import plot_fixed_z, plot_losses, plot_nearest_neighbours, plot_samples

    start = time.perf_counter()
    per_seed = []
    for seed_cfg, g, d in seed_players(cfg, generator, discriminator):
        metrics, samples = evaluate_generator(seed_cfg, g, target)
        per_seed.append({"seed": seed_cfg.train.seed, "metrics": metrics})
        name = "samples.png" if seed_cfg.train.seed == cfg.train.seed else \
            f"samples_seed{seed_cfg.train.seed}.png"
        plot_samples(samples, target, d, out / name,
                     title=f"{cfg.data.name} · {cfg.objective.name} · seed {seed_cfg.train.seed}")
        if cfg.infogan_on or cfg.semisupervised_on:  # (pictures of the first seed)
            from gankit.variants import variant_metrics

            first = seed_cfg.train.seed == cfg.train.seed
            metrics.update(variant_metrics(seed_cfg, g, d, out if first else None,
                                           baseline=True))
    result = {"metrics": metrics} if len(per_seed) == 1 else \
        {**summarize_seeds([p["metrics"] for p in per_seed]), "per_seed": per_seed}
    plot_losses(io.read_metrics(out / "metrics.jsonl"), out / "losses.png")
    if len(target.shape) == 3:  # images (one seed): memorisation check, fixed-z grid
        plot_nearest_neighbours(samples, target.images, out / "neighbours.png")
        if (out / "snapshots.npz").exists():
            plot_fixed_z(*io.read_snapshots(out / "snapshots.npz"), out / "fixed_z.png")
    summary = {**result, "steps": cfg.train.steps, "wall_time_s": wall_time,
               "eval_time_s": time.perf_counter() - start, **run_info}
    io.write_json(out / "summary.json", summary)
    return summary
