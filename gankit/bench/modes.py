"""``gankit bench modes`` and ``gankit bench seeds``: mode collapse across many seeds, and
what training the seeds together in one process saves.

Every method trains all its seeds in one process (``train.seeds``) and is evaluated under
the PacGAN/VEEGAN protocol (2500 samples per seed; high quality = within 3σ of the nearest
mean; modes covered by ≥ 1 high-quality sample; reverse KL over the high-quality mode
histogram), reported as mean ± standard error over seeds.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path

import torch

from gankit.adagan import train_adagan
from gankit.bench.throughput import (
    COMPILE_VARIANTS,
    TOY,
    draw_seconds_per_step,
    matmul_gflops,
    matmul_seconds_per_step,
    steady_steps_per_s,
)
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.evaluate import sample_metrics, summarize_seeds
from gankit.generate import EVAL_SEED_OFFSET, seed_players
from gankit.runs import load_run, train
from gankit.sampling.refit import corrected_samples

__all__ = ["BASE", "WGAN_GP", "CORRECTED", "PUBLISHED", "DATASETS", "recipe_path",
           "method_config", "modes_table", "metric_row", "corrected_metrics", "adagan_table",
           "METRIC_COLUMNS", "COVERAGE_COLUMN", "format_adagan", "format_modes", "seeds_speed",
           "format_seeds"]


# Shared by every method (the networks and budget of gankit's grid25/ring8 configs):
# 3x256 MLPs, batch 128, Adam 1e-3 for both players decayed linearly to 0, 10k steps.
BASE = ["model.g_width=256", "model.g_depth=3", "model.d_width=256", "model.d_depth=3",
        "objective.name='nonsaturating'", "train.steps=10000", "train.batch_size=128",
        "train.lr_d=1e-3", "train.lr_g=1e-3", "train.lr_schedule='linear'",
        "train.log_every=500"]
WGAN_GP = ["objective.name='wasserstein_gp'", "train.d_steps=5", "train.lr_d=1e-4",
           "train.lr_g=1e-4", "train.betas_d=[0.5, 0.9]", "train.betas_g=[0.5, 0.9]"]
# R3GAN's objective (Huang et al. 2025): the relativistic pairing loss with zero-centred
# penalties on real (R1) and generated (R2) points
RPGAN_R1_R2 = ["objective.name='rpgan'", "objective.r1=0.01", "objective.r2=0.01"]
METHODS: dict[str, list[str]] = {
    "GAN minimax": ["objective.name='minimax'"],
    "GAN non-saturating": [],
    "unrolled GAN k=5": ["tricks.unroll_steps=5"],
    "PacGAN2": ["tricks.pack=2"],
    "PacGAN3": ["tricks.pack=3"],
    "PacGAN4": ["tricks.pack=4"],
    # B = 10 kernels of C = 5 (grid25-minibatch.toml has 50): the layer dominates the step
    # (its L1 distances between all pairs of a batch), 10 keeps the 10-seed row affordable
    "minibatch discrimination": ["tricks.minibatch_discrimination=10"],
    "WGAN-GP": WGAN_GP,
    # kernels over the raw 2-D points, from below the component σ to the layout's scale
    "GMMN": ["objective.name='gmmn'", "objective.bandwidths=[0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]"],
    "MMD-GAN": ["objective.name='mmd-gan'"],  # Gaussian σ ∈ {1, …, 16} on a 16-d embedding
    # A 50-way categorical latent code (about twice grid25's modes) kept apart by InfoGAN's
    # mutual-information term: a G fed a connected latent (a Gaussian) must put mass
    # between the modes of a disconnected target, one fed a discrete code need not.
    "InfoGAN K=50": ["infogan.categorical=[50]", "train.steps=12000"],
    "RpGAN + R1/R2": RPGAN_R1_R2,
    "GAN + R1": ["objective.r1=0.01"],
    # the same at the recipe's width (3x128), about 40% of the 3x256 cost
    "RpGAN + R1/R2 (3x128)": [*RPGAN_R1_R2, "model.g_width=128", "model.d_width=128"],
    "gankit recipe": [],  # the settings of gankit/recipe.toml (see recipe_overrides)
}
# Corrected rows: a trained method's seeds sampled through a density ratio (gankit.sampling),
# named apart from the raw row: (raw method, drs | mh, refit steps, Fourier features, MH
# proposals). Refit 0: the run's own D (cross-entropy; packed or not); refit k: a fresh
# unpacked D fitted k steps on the data against the final G. They reuse that method's runs
# when the table trained them.
CORRECTED = {"InfoGAN K=50 + DRS": ("InfoGAN K=50", "drs", 0, 0, 100),
             "gankit recipe + MH": ("gankit recipe", "mh", 1000, 128, 500)}
# PacGAN (Lin et al. 2018) Table 1, 10 seeds: modes, % high quality, reverse KL.
PUBLISHED = {
    "grid25": [("GAN (PacGAN Table 1)", 17.3, 94.8, 0.70),
               ("PacGAN4 (PacGAN Table 1)", 24.8, 93.6, 0.04)],
    "ring8": [("GAN (PacGAN Table 1)", 6.3, 98.2, 0.45),
              ("PacGAN2 (PacGAN Table 1)", 7.9, 95.6, 0.07)],
}
DATASETS = tuple(PUBLISHED)


def recipe_path() -> Path:
    return Path(str(resources.files("gankit") / "recipe.toml"))


def method_config(method: str, dataset: str, seeds: int, steps: int | None):
    """The config of ``method`` on ``dataset`` with ``seeds`` seeds (0, 1, ...)."""
    if method == "gankit recipe":
        overrides = []
        path = recipe_path()
    else:
        overrides, path = BASE + METHODS[method], None
    overrides = overrides + [f"data.name='{dataset}'", f"train.seeds={seeds}", "train.seed=0"]
    if steps is not None:
        overrides.append(f"train.steps={steps}")
    return load_config(path, overrides)


def modes_table(dataset: str = "grid25", seeds: int = 10, *, steps: int | None = None,
                methods: list[str] | None = None, out: Path | None = None,
                progress: bool = True, resume: bool = False) -> dict:
    """Train each method's ``seeds`` seeds together and evaluate them; one row per method.

    Run directories go under ``out`` (kept) or a temporary directory (removed). With
    ``resume``, a method whose run directory under ``out`` holds a checkpoint continues
    from it (a finished run is only evaluated again), so a table too long for one sitting
    is built in several; a run's config must match, as for ``gankit train --resume``.
    Seconds per seed are the training loop's (every chunk) plus evaluation's.
    """
    if dataset not in DATASETS:
        raise GankitError(f"--dataset: {dataset!r} not supported; allowed: {', '.join(DATASETS)}")
    methods = methods or [*METHODS, *CORRECTED]
    unknown = [m for m in methods if m not in METHODS and m not in CORRECTED]
    if unknown:
        raise GankitError(f"--methods: unknown method {unknown[0]!r}; allowed: "
                          f"{', '.join([*METHODS, *CORRECTED])}")
    root = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="gankit-modes-"))
    rows, trained = [], {}  # method → (its config, run directory, training seconds)
    try:
        for method in methods:
            raw, correction, *options = CORRECTED.get(method, (method, None))
            if raw not in trained:
                cfg = method_config(raw, dataset, seeds, steps)
                slug = re.sub(r"[^A-Za-z0-9]+", "-", raw.replace("=", "")).strip("-")
                run = root / f"{dataset}-{slug}"  # (ring8-unrolled-GAN-k5, ...)
                summary = train(cfg, run, resume=resume and (run / "checkpoint.pt").exists(),
                                 progress=progress)
                trained[raw] = (cfg, run, summary["wall_time_s"] + summary["eval_time_s"],
                                summary)
            cfg, run, total, summary = trained[raw]
            if correction is None:
                per_seed = summary["per_seed"] if seeds > 1 else \
                    [{"seed": cfg.train.seed, "metrics": summary["metrics"]}]
                extra = {}
            else:
                start = time.perf_counter()
                per_seed = corrected_metrics(run, correction, *options)
                total += time.perf_counter() - start  # training + correcting
                extra = {"acceptance_rate": sum(p["acceptance_rate"] for p in per_seed) / seeds}
            rows.append({"method": method, "steps": cfg.train.steps, "seeds": seeds,
                         **metric_row([p["metrics"] for p in per_seed]),
                         "seconds_per_seed": total / seeds,
                         "seconds_total": total, "per_seed": per_seed, "run_dir": str(run),
                         **extra})
    finally:
        if out is None:
            shutil.rmtree(root, ignore_errors=True)
    return {"dataset": dataset, "seeds": seeds, "rows": rows, "published": PUBLISHED[dataset],
            "threads": torch.get_num_threads(), "torch": str(torch.__version__)}


def metric_row(per_seed: list[dict]) -> dict:
    """Modes, high quality and reverse KL: mean and standard error over the seeds."""

    m = summarize_seeds(per_seed)
    mean, se = m["metrics"], m.get("metrics_stderr", {})
    # (.get: a run evaluated before well_covered_modes existed has none)
    return {k: v for key in ("modes", "well_covered_modes", "high_quality", "reverse_kl")
            for k, v in ((key, mean.get(key)), (key + "_se", se.get(key)))}


def corrected_metrics(run: Path, method: str, refit_steps: int = 0, refit_fourier: int = 0,
                      mh_steps: int = 100) -> list[dict]:
    """Each seed of a trained run evaluated on ``method``-corrected samples (the run's
    own D, or one refitted ``refit_steps`` steps; the evaluation seed of its raw samples):
    seed, metrics and acceptance rate."""

    per_seed = []
    for cfg, g, d in seed_players(*load_run(run)[:3]):
        samples, rate = corrected_samples(cfg, g, d, method, n=cfg.train.eval_samples,
                                          seed=cfg.train.seed + EVAL_SEED_OFFSET,
                                          mh_steps=mh_steps, refit_steps=refit_steps,
                                          refit_fourier=refit_fourier)
        per_seed.append({"seed": cfg.train.seed, "metrics": sample_metrics(cfg, samples),
                         "acceptance_rate": rate})
    return per_seed


def adagan_table(dataset: str = "grid25", seeds: int = 10, *, components: int = 5,
                 steps: int | None = None, out: Path | None = None,
                 progress: bool = True) -> dict:
    """AdaGAN with ``components`` plain non-saturating GANs of ``steps`` steps (default
    2000) against one such GAN trained for components × steps, on ``seeds`` seeds. The
    single GANs train together (``train.seeds``); the AdaGAN runs one seed after another."""

    if dataset not in DATASETS:
        raise GankitError(f"--dataset: {dataset!r} not supported; allowed: {', '.join(DATASETS)}")
    steps = steps or 2000
    root = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="gankit-adagan-"))
    data = [f"data.name='{dataset}'", "train.seed=0"]
    rows = []

    def row(method: str, total_steps: int, per_seed: list[dict], seconds: float) -> dict:
        m = summarize_seeds(per_seed)
        mean, se = m["metrics"], m["metrics_stderr"]
        return {"method": method, "steps": total_steps, "seeds": seeds,
                **{k: mean.get(k) for k in COLUMN_KEYS},
                **{f"{k}_se": se.get(k) for k in COLUMN_KEYS},
                "seconds_per_seed": seconds / seeds, "seconds_total": seconds,
                "per_seed": per_seed}

    try:
        single = load_config(None, BASE + data + [f"train.steps={components * steps}",
                                                  f"train.seeds={seeds}"])
        start = time.perf_counter()
        summary = train(single, root / "single", progress=progress)
        per_seed = [p["metrics"] for p in summary["per_seed"]] if seeds > 1 \
            else [summary["metrics"]]
        rows.append(row("GAN non-saturating", components * steps, per_seed,
                        time.perf_counter() - start))
        per_seed, start = [], time.perf_counter()
        for s in range(seeds):
            cfg = load_config(None, BASE + data[:1] + [
                f"train.seed={s}", f"train.steps={steps}", f"adagan.components={components}"])
            per_seed.append(train_adagan(cfg, root / f"adagan-seed{s}", progress=progress)
                            ["metrics"])
        rows.append(row(f"AdaGAN {components} × GAN", components * steps, per_seed,
                        time.perf_counter() - start))
    finally:
        if out is None:
            shutil.rmtree(root, ignore_errors=True)
    return {"dataset": dataset, "seeds": seeds, "components": components, "rows": rows,
            "threads": torch.get_num_threads(), "torch": str(torch.__version__)}


# (header, key, format, scale, width) of the metric columns of the tables
METRIC_COLUMNS = [("modes", "modes", ".1f", 1, 13),
                  ("well covered", "well_covered_modes", ".1f", 1, 13),
                  ("high quality %", "high_quality", ".1f", 100, 15),
                  ("reverse KL", "reverse_kl", ".3f", 1, 15)]
COVERAGE_COLUMN = ("coverage C %", "coverage", ".1f", 100, 13)
COLUMN_KEYS = [key for _, key, *_ in METRIC_COLUMNS + [COVERAGE_COLUMN]]


def _pm(mean, se, fmt: str, scale: float = 1.0) -> str:
    if mean is None:
        return "—"
    return format(mean * scale, fmt) + ("" if se is None else " ± " + format(se * scale, fmt))


def _method_rows(rows: list[dict], width: int, columns: list[tuple]) -> list[str]:
    """The header and one line per method: steps, each column's mean ± SE, s/seed."""
    lines = [f"{'method':<{width}} {'steps':>6} " + " ".join(f"{h:>{w}}" for h, *_, w in columns)
             + f" {'s/seed':>7}"]
    for row in rows:
        cells = " ".join(f"{_pm(row.get(k), row.get(k + '_se'), f, scale):>{w}}"
                         for _, k, f, scale, w in columns)
        lines.append(f"{row['method']:<{width}} {row['steps']:>6} {cells} "
                     f"{row['seconds_per_seed']:>7.1f}")
    return lines


def _threads(r: dict) -> str:
    return f"{r['threads']} thread" + ("s" if r["threads"] != 1 else "")


def format_adagan(r: dict) -> str:
    return "\n".join([f"{r['dataset']} · {r['seeds']} seeds · same total steps ({_threads(r)}, "
                      f"torch {r['torch']}) · mean ± standard error",
                      *_method_rows(r["rows"], 20, METRIC_COLUMNS + [COVERAGE_COLUMN])])


def format_modes(r: dict) -> str:
    lines = [f"{r['dataset']} · {r['seeds']} seeds per method, trained together in one process "
             f"({_threads(r)}, torch {r['torch']}) · mean ± standard error",
             *_method_rows(r["rows"], 26, METRIC_COLUMNS)]
    for name, modes, hq, rkl in r["published"]:
        lines.append(f"{name:<26} {'':>6} {modes:>13.1f} {'—':>13} {hq:>15.1f} {rkl:>15.2f} "
                     f"{'':>7}")
    return "\n".join(lines)


def seeds_speed(seeds: int = 10, steps: int = 500, batch: int = 100, *,
                compiled: bool = True, repeats: int = 3) -> dict:
    """Wall time of ``seeds`` sequential single-seed runs against one ``seeds``-seed run,
    for the toy MLP and for the recipe's networks, at batch ``batch`` (``compiled``: and
    the together run with ``train.compile_optimizer`` and with ``train.compile_update``).
    Each time is the best of ``repeats`` rounds, every round running all of them in turn
    (single timings on a shared 2-core machine vary by ±25%)."""

    models = {"toy MLP 2x128": (None, TOY), "gankit recipe": (recipe_path(), [])}
    variants = COMPILE_VARIANTS if compiled else {"": ()}
    rows = []
    for name, (path, overrides) in models.items():
        base = overrides + [f"train.batch_size={batch}", "train.snapshot_every=0",
                            "train.eval_samples=100", f"train.checkpoint_every={steps}",
                            "train.device='cpu'"]
        # the S-seed step's matrix products alone: however little else the step did, the
        # seeds together could not beat sequential / this
        together_run = base + [f"train.seeds={seeds}", f"train.steps={steps}"]
        matmuls = steps * matmul_seconds_per_step(path, together_run)
        # and its seeds' own random draws (each seed's stream, as its single run draws)
        draws = steps * draw_seconds_per_step(path, together_run)
        sequential, together = float("inf"), dict.fromkeys(variants, float("inf"))
        for _ in range(repeats):
            # each run timed after its first tenth (start-up, warm-up, compilation),
            # scaled to all its steps
            sequential = min(sequential, sum(
                steps / steady_steps_per_s(path, base + [f"train.seed={s}"], steps)
                for s in range(seeds)))
            for label, extra in variants.items():
                together[label] = min(together[label], steps / steady_steps_per_s(
                    path, base + [f"train.seeds={seeds}", *extra], steps))
        rows += [{"model": name + label, "sequential_s": sequential, "together_s": t,
                  "speedup": sequential / t, "matmuls_alone_s": matmuls,
                  "speedup_bound": sequential / matmuls, "draws_alone_s": draws,
                  "speedup_bound_with_draws": sequential / (matmuls + draws)}
                 for label, t in together.items()]
    return {"seeds": seeds, "steps": steps, "batch": batch, "rows": rows, "repeats": repeats,
            "matmul_gflops": matmul_gflops(), "threads": torch.get_num_threads()}


def format_seeds(r: dict) -> str:
    lines = [f"{r['seeds']} seeds × {r['steps']} steps at batch {r['batch']} "
             f"({r['threads']} threads; float32 matmul {r['matmul_gflops']:.0f} GFLOP/s; "
             f"best of {r.get('repeats', 1)} rounds)",
             f"{'model':<33} {'sequential s':>12} {'together s':>10} {'speedup':>8} "
             f"{'its matmuls alone s':>19} {'bound':>7} {'its draws alone s':>17} "
             f"{'bound with draws':>16}"]
    for row in r["rows"]:
        lines.append(f"{row['model']:<33} {row['sequential_s']:>12.1f} "
                     f"{row['together_s']:>10.1f} {row['speedup']:>7.2f}x "
                     f"{row['matmuls_alone_s']:>19.1f} {row['speedup_bound']:>6.2f}x "
                     f"{row['draws_alone_s']:>17.1f} "
                     f"{row['speedup_bound_with_draws']:>15.2f}x")
    lines.append("bound = sequential s / the together run's matrix products alone (recorded "
                 "from its steps, replayed on this machine): the most any S-seed step "
                 "with the same arithmetic and PyTorch's kernels could save; bound with "
                 "draws = sequential s / (its products + its seeds' random draws alone, each "
                 "seed from its own stream as its single run draws); every run timed "
                 "after its first tenth of steps (warm-up, compilation) and scaled to all; "
                 "sequential runs are eager")
    return "\n".join(lines)
