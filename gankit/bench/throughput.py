"""``gankit bench throughput``: gankit's training step against a hand-written PyTorch loop
and against the machine's own matmul speed, measured in one run so each figure is a ratio.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from gankit.config import load_config
from gankit.data.mixtures import mixture
from gankit.losses.objectives import get_objective
from gankit.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nets.mlp import MLPDiscriminator, MLPGenerator
from gankit.runs import train
from gankit.training.compiled import CompiledUpdate
from gankit.training.costs import Batch, discriminator_cost, generator_cost
from gankit.training.loop import make_optimizers
from gankit.training.step import discriminator_step, generator_step

__all__ = ["TOY", "COMPILE_VARIANTS", "matmul_gflops", "time_steps", "hand_written_step",
           "gankit_step",
           "LogTimes", "steady_steps_per_s", "step_profile",
           "count_flops", "toy_mlp", "dcgan", "gankit_loop_steps_per_s",
           "train_in_temporary_directory", "train_seconds", "MatmulRecorder", "record_matmuls",
           "replayable", "matmul_flops", "matmul_seconds_per_step", "DrawTimer",
           "draw_seconds_per_step", "row", "throughput", "format_throughput"]


# The toy MLP of the benchmark: G z 256 → 128 → 128 → 2, D 2 → 128 → 128 → 1, ReLU.
TOY = ["data.name='grid25'", "model.z_dim=256", "model.g_width=128", "model.g_depth=2",
       "model.d_width=128", "model.d_depth=2", "objective.name='nonsaturating'",
       "train.lr_d=1e-4", "train.lr_g=1e-3", "train.device='cpu'"]


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """The machine's float32 large-matmul speed, GFLOP/s (2n³ per product)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def time_steps(step, steps: int, warmup: int) -> float:
    """Steps per second of ``step()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def hand_written_step(g, d, draw_real, *, z_dim: int, batch: int, lr_d: float, lr_g: float):
    """One step of the loop a user writes from the PyTorch DCGAN example: BCE on logits,
    D's real and fake halves backpropagated separately, G's backward also filling D's
    gradients, default Adam."""
    opt_d = torch.optim.Adam(d.parameters(), lr=lr_d, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(g.parameters(), lr=lr_g, betas=(0.5, 0.999))
    criterion = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch), torch.zeros(batch)
    rng = torch.Generator().manual_seed(0)

    def step():
        real = draw_real(batch, rng)
        d.zero_grad()
        criterion(d(real), ones).backward()
        fake = g(torch.randn(batch, z_dim, generator=rng))
        criterion(d(fake.detach()), zeros).backward()
        opt_d.step()
        g.zero_grad()
        criterion(d(fake), ones).backward()
        opt_g.step()

    return step


# The compile options the benchmarks compare: a row label and the config's overrides.
COMPILE_VARIANTS = {"": (), ", compiled Adam": ("train.compile_optimizer=true",),
                    ", compiled update": ("train.compile_update=true",)}


def gankit_step(g, d, draw_real, *, z_dim: int, batch: int, lr_d: float, lr_g: float,
                compiled: tuple[str, ...] = ()):
    """One gankit D step + G step: fused Adam, set_to_none, G-only backward; or with
    ``compiled`` (overrides from ``COMPILE_VARIANTS``) the compiled Adam step of
    ``train.compile_optimizer`` or the compiled update of ``train.compile_update``."""
    cfg = load_config(None, [f"train.lr_d={lr_d}", f"train.lr_g={lr_g}", *compiled])
    opt_g, opt_d = make_optimizers(cfg, g, d)
    objective = get_objective("nonsaturating")
    d_cost, g_cost = discriminator_cost(cfg, objective), generator_cost(cfg, objective)
    update = CompiledUpdate(g, d, opt_g, opt_d, d_cost, g_cost) \
        if cfg.train.compile_update else None
    rng = torch.Generator().manual_seed(0)

    def step():
        real = draw_real(batch, rng)
        z = torch.randn(batch, z_dim, generator=rng)
        if update is not None:
            update(Batch(real, z), {})
            return
        fake = discriminator_step(g, d, opt_d, d_cost, Batch(real, z, rng=rng))
        generator_step(g, d, opt_g, g_cost, fake)

    return step


def count_flops(g, d, draw_real, *, z_dim: int, batch: int) -> int:
    """FLOPs of one gankit D step + G step, counted by torch.utils.flop_counter."""
    step = gankit_step(g, d, draw_real, z_dim=z_dim, batch=batch, lr_d=1e-3, lr_g=1e-3)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def toy_mlp():
    """The toy MLP pair and its data: grid25 samples."""
    torch.manual_seed(0)
    target = mixture("grid25")
    return (MLPGenerator(2, 256, 128, 2), MLPDiscriminator(2, 128, 2),
            lambda n, rng: target.sample(n, rng))


def dcgan():
    """The 28x28 DCGAN of the benchmark (z 100, width 64) and a pool of stand-in images
    (timing does not depend on pixel values)."""
    torch.manual_seed(0)
    pool = torch.rand(1024, 1, 28, 28) * 2 - 1
    return (DCGANGenerator(28, 1, 100, 64), DCGANDiscriminator(28, 1, 64),
            lambda n, rng: pool[torch.randint(0, len(pool), (n,), generator=rng)])


def gankit_loop_steps_per_s(batch: int, steps: int, extra: tuple[str, ...] = ()) -> float:
    """gankit's own loop (``gankit.train``) on the toy MLP, timed by the loop itself after
    its first tenth (warm-up; with a compile option the compilation)."""
    return steady_steps_per_s(None, TOY + [
        f"train.batch_size={batch}", f"train.checkpoint_every={steps}",
        "train.eval_samples=100", *extra], steps)


class LogTimes:
    """A callback keeping the loop's own clock (``wall_time``) at each logged step."""

    def __init__(self) -> None:
        self.times: dict[int, float] = {}

    def on_log(self, run, record: dict) -> None:
        self.times[record["step"]] = record["wall_time"]


def steady_steps_per_s(path: Path | None, overrides: list[str], steps: int) -> float:
    """Steps per second of the training loop of config ``path`` with ``overrides`` (and
    ``steps`` steps) between its first tenth and its end: start-up, the first steps'
    warm-up and compilation excluded."""
    first = max(1, steps // 10)
    times = LogTimes()
    train_in_temporary_directory(path, [*overrides, f"train.steps={steps}",
                                        f"train.log_every={first}"], callbacks=(times,))
    return (steps - first) / (times.times[steps] - times.times[first])


def train_in_temporary_directory(path: Path | None, overrides: list[str], **kwargs):
    """``train`` the config ``path`` with ``overrides`` into a directory removed afterwards."""
    out = Path(tempfile.mkdtemp(prefix="gankit-bench-"))
    try:
        return train(load_config(path, overrides), out / "run", progress=False, **kwargs)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def train_seconds(path: Path | None, overrides: list[str]) -> float:
    """Wall time of the training loop alone (not start-up, evaluation or plotting) of the
    config ``path`` with ``overrides``, run in a temporary directory."""
    return train_in_temporary_directory(path, overrides)["wall_time_s"]


class MatmulRecorder(TorchDispatchMode):
    """Records every matrix product a piece of code runs (forward and backward): its op and
    its operands' shapes and strides, so that the products alone can be replayed."""

    OPS = (torch.ops.aten.mm.default, torch.ops.aten.bmm.default,
           torch.ops.aten.addmm.default, torch.ops.aten.baddbmm.default)

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        # (meta tensors compute nothing: the memory estimate's shape-only forward pass)
        if func in self.OPS and not any(isinstance(a, torch.Tensor) and a.is_meta
                                        for a in args):
            self.calls.append((func, [(a.shape, a.stride()) if isinstance(a, torch.Tensor)
                                      else a for a in args], kwargs))
        return func(*args, **kwargs)


def record_matmuls(path: Path | None, overrides: list[str], steps: int) -> list[tuple]:
    """The matrix products (op, operand shapes and strides, options) of the first
    ``steps`` training steps of the config ``path`` with ``overrides``."""
    recorder = MatmulRecorder()
    with recorder:
        train_in_temporary_directory(path, overrides, stop_after=steps)
    return recorder.calls


def replayable(calls: list[tuple]) -> list[tuple]:
    """Recorded products with random operands of the recorded shapes and strides."""
    return [(func, [torch.empty_strided(*a).normal_() if isinstance(a, tuple) else a
                    for a in args], kwargs) for func, args, kwargs in calls]


def matmul_flops(calls: list[tuple]) -> int:
    """FLOPs of recorded products, as ``torch.utils.flop_counter`` counts them."""
    with FlopCounterMode(display=False) as counter:
        for func, args, kwargs in replayable(calls):
            func(*args, **kwargs)
    return counter.get_total_flops()


def matmul_seconds_per_step(path: Path | None, overrides: list[str], steps: int = 5,
                            repeats: int = 20) -> float:
    """Seconds per training step of the step's matrix products alone, as this machine's
    PyTorch runs them: the products of ``steps`` loop steps of the config are recorded,
    then replayed on random operands of the same shapes and strides (best of ``repeats``).
    No implementation of the same arithmetic with these kernels can take a step faster."""
    calls = replayable(record_matmuls(path, overrides, steps))
    best = float("inf")
    for _ in range(repeats + 1):  # (the first pass warms up)
        start = time.perf_counter()
        for func, args, kwargs in calls:
            func(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best / steps


class DrawTimer:
    """A callback that, at the run's first step, times its batch sampler alone (the
    seeds' data and z draws, each seed from its own stream): best of ``repeats`` passes
    of ``steps`` draws."""

    def __init__(self, steps: int, repeats: int) -> None:
        self.steps, self.repeats, self.seconds = steps, repeats, float("inf")

    def on_step_end(self, run, stats: dict) -> None:
        if self.seconds < float("inf"):
            return
        for _ in range(self.repeats):
            start = time.perf_counter()
            for _ in range(self.steps):
                run.draw(1)
            self.seconds = min(self.seconds, (time.perf_counter() - start) / self.steps)


def draw_seconds_per_step(path: Path | None, overrides: list[str], steps: int = 100,
                          repeats: int = 5) -> float:
    """Seconds per training step of the step's random draws alone (real data and z of
    every seed, each from its own stream, as the run draws them). With the matrix
    products alone (``matmul_seconds_per_step``) it is work that any S-seed step giving
    each seed exactly its single run's numbers must do."""
    timer = DrawTimer(steps, repeats)
    train_in_temporary_directory(path, overrides, stop_after=1, callbacks=(timer,))
    return timer.seconds


def step_profile(step, steps: int = 100, top: int = 10) -> list[tuple[str, float, float]]:
    """Where one step's CPU time goes: the ``top`` operators by self time (torch.profiler,
    over ``steps`` steps after 20 warm-up ones) as (name, share of the total, calls per
    step), and the groups "matrix products", "optimizer", "compiled code" (the graphs
    torch.compile made; under ``train.compile_update`` Adam runs inside them) and
    "everything else" first."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(20):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    matmul = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}

    def share(keep) -> float:
        return sum(e.self_cpu_time_total for e in events if keep(e.key)) / total

    groups = [("[matrix products]", share(lambda k: k in matmul), 0.0),
              ("[optimizer: step, zero_grad]", share(
                  lambda k: any(w in k for w in ("Optimizer", "adam"))), 0.0),
              ("[compiled code and its calls]", share(
                  lambda k: any(w in k for w in ("Torch-Compiled", "CompiledFxGraph",
                                                 "TorchDynamo", "AOTDispatcher"))), 0.0)]
    groups.append(("[everything else]", 1 - sum(g[1] for g in groups), 0.0))
    ops = sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]
    return groups + [(e.key, e.self_cpu_time_total / total, e.count / steps) for e in ops]


def row(model: str, batch: int, timers: tuple, *, flops: int, peak: float, repeats: int
        ) -> dict:
    """A table row: best of ``repeats`` alternating timings of ``ours()`` and ``theirs()``
    (``timers = (ours, theirs)``, each returning steps per second)."""
    ours, theirs = timers
    best_ours = best_theirs = 0.0
    for _ in range(repeats):
        best_ours, best_theirs = max(best_ours, ours()), max(best_theirs, theirs())
    return {"model": model, "batch": batch, "gankit_steps_per_s": best_ours,
            "hand_written_steps_per_s": best_theirs, "ratio": best_ours / best_theirs,
            "mflop_per_step": flops / 1e6, "gankit_gflops": flops * best_ours / 1e9,
            "fraction_of_matmul": flops * best_ours / 1e9 / peak}


def throughput(steps: int = 2000, repeats: int = 3, *, compiled: bool = True) -> dict:
    """Each row alternates gankit and the hand-written loop ``repeats`` times and keeps the
    best of each (a shared 2-core machine is noisy: single timings here varied by ±25%).
    ``compiled``: also the rows with ``train.compile_optimizer`` and with
    ``train.compile_update``."""
    peak = max(matmul_gflops() for _ in range(repeats))
    rows = []
    variants = COMPILE_VARIANTS if compiled else {"": ()}
    for batch in (64, 512):
        hand = dict(z_dim=256, batch=batch, lr_d=1e-4, lr_g=1e-3)
        for label, extra in variants.items():
            rows.append(row(
                "toy MLP" + label, batch,
                (lambda b=batch, e=extra: gankit_loop_steps_per_s(b, steps, e),
                 lambda h=hand: time_steps(hand_written_step(*toy_mlp(), **h), steps,
                                           warmup=20)),
                flops=count_flops(*toy_mlp(), z_dim=256, batch=batch), peak=peak,
                repeats=repeats))
    dc_steps = max(1, steps // 20)  # a DCGAN step costs ~20-50x a toy step
    dc = dict(z_dim=100, batch=64, lr_d=2e-4, lr_g=2e-4)
    for label, extra in variants.items():
        rows.append(row(
            "DCGAN28" + label, 64,
            (lambda e=extra: time_steps(gankit_step(*dcgan(), **dc, compiled=e), dc_steps,
                                        warmup=5),
             lambda: time_steps(hand_written_step(*dcgan(), **dc), dc_steps, warmup=5)),
            flops=count_flops(*dcgan(), z_dim=100, batch=64), peak=peak, repeats=repeats))
    toy64 = dict(z_dim=256, batch=64, lr_d=1e-4, lr_g=1e-3)
    profiles = {"toy MLP, batch 64" + label: step_profile(gankit_step(*toy_mlp(), **toy64,
                                                                      compiled=extra))
                for label, extra in variants.items()}
    return {"matmul_gflops": peak, "threads": torch.get_num_threads(), "steps": steps,
            "profiles": profiles,
            "repeats": repeats, "torch": str(torch.__version__), "rows": rows,
            "note": "toy rows: gankit's whole loop timed after its first tenth (warm-up, "
                    "compilation); DCGAN28 rows: gankit's D+G step functions (not the whole "
                    "loop) on stand-in images, steps/20 timed steps after 5 warm-up steps "
                    "(compiled variants: the first call compiles, in the warm-up)"}


def format_throughput(r: dict) -> str:
    lines = [f"machine: float32 2048x2048 matmul {r['matmul_gflops']:.1f} GFLOP/s "
             f"on {r['threads']} threads (torch {r['torch']}); best of {r['repeats']} runs of "
             f"{r['steps']} steps each",
             f"{'model':<24} {'batch':>5} {'gankit/s':>9} {'hand/s':>9} {'ratio':>6} "
             f"{'MFLOP/step':>10} {'GFLOP/s':>8} {'of matmul':>9}"]
    for row in r["rows"]:
        lines.append(f"{row['model']:<24} {row['batch']:>5} {row['gankit_steps_per_s']:>9.1f} "
                     f"{row['hand_written_steps_per_s']:>9.1f} {row['ratio']:>5.2f}x "
                     f"{row['mflop_per_step']:>10.2f} {row['gankit_gflops']:>8.2f} "
                     f"{row['fraction_of_matmul']:>8.1%}")
    lines.append(f"note: {r['note']}")
    for name, ops in r.get("profiles", {}).items():
        lines.append(f"where a step's CPU time goes ({name}; torch.profiler, self time):")
        lines += [f"  {op[:52]:<52} {frac:>6.1%}" + (f" {calls:>5.1f}/step" if calls else "")
                  for op, frac, calls in ops]
    return "\n".join(lines)
