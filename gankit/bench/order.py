"""``gankit bench order``: the order of play — D in the inner loop (min_G max_D), 1:1, and
G in the inner loop (max_D min_G) — on ring8 and grid25, over seeds.

Every arm gets the same number of G updates. ``train.d_steps = k`` gives D k updates per G
update; ``train.g_steps = k`` gives G k updates per D update (so D gets 1/k as many). Along
the way a callback records, for each seed, the fraction of G's samples within ε (3σ of
the mixture, the high-quality radius) of the point where D is highest — the "golden point"
a G best-responding to a frozen D would put all its mass on — and, for the first seed, D's
map and G's samples for the pictures.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from gankit import io
from gankit.bench.modes import BASE, metric_row
from gankit.build import build_target
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.generate import EVAL_SEED_OFFSET, generate, seed_players
from gankit.metrics.modes import fraction_near
from gankit.metrics.stats import mean_and_stderr
from gankit.plots import discriminator_logits, plot_limits, plt, save_figure
from gankit.runs import load_run, train

__all__ = ["KS", "DATASETS", "ARMS", "arm_config", "GoldenPoint", "order_table",
           "format_order", "plot_order"]


KS = (5, 20)
DATASETS = ("ring8", "grid25")
# arm → (d_steps, g_steps)
ARMS: dict[str, tuple[int, int]] = {
    **{f"D inner d_steps={k}": (k, 1) for k in reversed(KS)},
    "1:1": (1, 1),
    **{f"G inner g_steps={k}": (1, k) for k in KS},
}
TRACE = "order_trace.json"
GRID = 161  # points per axis of D's map: the argmax is found to (hi − lo)/160
FRACTION_SAMPLES = 2500


def arm_config(dataset: str, arm: str, seeds: int, g_updates: int):
    """The modes benchmark's networks and optimizer (3×256 MLPs, non-saturating, Adam 1e-3
    decayed linearly, batch 128) with ``arm``'s order of play and ``g_updates`` G updates."""
    d_steps, g_steps = ARMS[arm]
    steps = g_updates // g_steps
    return load_config(None, BASE + [
        f"data.name='{dataset}'", f"train.seeds={seeds}", "train.seed=0",
        f"train.d_steps={d_steps}", f"train.g_steps={g_steps}", f"train.steps={steps}",
        f"train.log_every={max(1, steps // 20)}", f"train.checkpoint_every={max(1, steps // 8)}"])


class GoldenPoint:
    """A callback: every ``every`` G updates, per seed, the fraction of G's samples within
    ``eps`` of argmax D; at ``picture_at`` G updates, the first seed's D map and samples.
    Kept in RUN/order_trace.json, written with each checkpoint (so a resumed run continues
    the trace it had at its checkpoint)."""

    def __init__(self, out: Path, every: int, picture_at: tuple[int, ...]) -> None:
        self.path, self.every, self.picture_at = out / TRACE, every, set(picture_at)
        self.trace: list[dict] = []
        if self.path.exists():
            self.trace = json.loads(self.path.read_text(encoding="utf-8"))

    def on_step_end(self, run, stats: dict) -> None:
        cfg = run.cfg
        g_updates = run.state.step * cfg.train.g_steps
        if g_updates % self.every and g_updates not in self.picture_at:
            return
        self.trace = [r for r in self.trace if r["g_updates"] < g_updates]
        lo, hi = plot_limits(run.target)
        eps = 3 * float(run.target.stds.max())
        record: dict = {"g_updates": g_updates, "step": run.state.step, "fractions": []}
        ticks = torch.linspace(lo, hi, GRID)
        for i, (seed_cfg, g, d) in enumerate(seed_players(cfg, run.state.generator,
                                                          run.state.discriminator)):
            heat = torch.sigmoid(discriminator_logits(d, lo, hi, GRID))
            iy, ix = divmod(int(heat.argmax()), GRID)
            best = torch.stack([ticks[ix], ticks[iy]])
            x = generate(seed_cfg, g, FRACTION_SAMPLES,
                         seed_cfg.train.seed + EVAL_SEED_OFFSET)
            record["fractions"].append(fraction_near(x.double(), best.double(), eps))
            if i == 0 and g_updates in self.picture_at:
                record["picture"] = {"d": heat.reshape(GRID, GRID).tolist(),
                                     "samples": x[:500].tolist(), "argmax": best.tolist()}
        self.trace.append(record)

    def on_checkpoint(self, run, path: Path) -> None:
        io.write_json(self.path, self.trace)


def order_table(datasets: tuple[str, ...] = DATASETS, seeds: int = 10, *,
                g_updates: int = 2000, arms: list[str] | None = None, out: Path | None = None,
                progress: bool = True, resume: bool = False) -> dict:
    """Train every arm's ``seeds`` seeds together on each dataset for ``g_updates`` G
    updates; one row per (dataset, arm): mode metrics and the golden-point fraction.

    With ``out`` the runs are kept there (with ``resume``, continued from their
    checkpoints); the pictures are written there as order-<dataset>.png.
    """
    arms = arms or list(ARMS)
    if unknown := [a for a in arms if a not in ARMS]:
        raise GankitError(f"--methods: unknown arm {unknown[0]!r}; allowed: {', '.join(ARMS)}")
    if bad := [d for d in datasets if d not in DATASETS]:
        raise GankitError(f"--dataset: {bad[0]!r} not supported; allowed: {', '.join(DATASETS)}")
    if g_updates % (8 * max(KS)):
        raise GankitError(f"--steps: {g_updates} G updates; allowed: a multiple of "
                          f"{8 * max(KS)} (every arm checks its golden point at eighths)")
    root = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="gankit-order-"))
    every = g_updates // 8
    picture_at = (every, 2 * every, 4 * every, g_updates)
    rows = []
    try:
        for dataset in datasets:
            for arm in arms:
                cfg = arm_config(dataset, arm, seeds, g_updates)
                run = root / f"{dataset}-{re.sub(r'[^A-Za-z0-9]+', '-', arm).strip('-')}"
                resuming = resume and (run / "checkpoint.pt").exists()
                if not resuming:
                    shutil.rmtree(run, ignore_errors=True)  # (a run that never checkpointed)
                golden = GoldenPoint(run, every, picture_at)  # (reads a resumed run's trace)
                summary = train(cfg, run, resume=resuming, progress=progress,
                                callbacks=(golden,))
                per_seed = summary["per_seed"] if seeds > 1 else \
                    [{"seed": 0, "metrics": summary["metrics"]}]
                golden_mean, golden_se = _over_seeds(golden.trace[-1]["fractions"])
                beyond_mean, beyond_se = _over_seeds(rated_beyond_the_map(run))
                rows.append({"dataset": dataset, "arm": arm, "d_steps": cfg.train.d_steps,
                             "g_steps": cfg.train.g_steps, "steps": cfg.train.steps,
                             "g_updates": g_updates,
                             "d_updates": cfg.train.steps * cfg.train.d_steps,
                             **metric_row([p["metrics"] for p in per_seed]),
                             "golden": golden_mean, "golden_se": golden_se,
                             "beyond": beyond_mean, "beyond_se": beyond_se,
                             "golden_trace": [(r["g_updates"], float(np.mean(r["fractions"])))
                                              for r in golden.trace],
                             "seconds_per_seed": (summary["wall_time_s"]
                                                  + summary["eval_time_s"]) / seeds,
                             "run_dir": str(run)})
            if out is not None:
                plot_order(root, dataset, arms, picture_at,
                           root / f"order-{dataset}.png")
    finally:
        if out is None:
            shutil.rmtree(root, ignore_errors=True)
    return {"seeds": seeds, "g_updates": g_updates, "rows": rows,
            "threads": torch.get_num_threads(), "torch": str(torch.__version__)}


def _over_seeds(values: list[float]) -> tuple[float, float | None]:
    """Mean and standard error over seeds (no standard error for one seed)."""
    if len(values) == 1:
        return values[0], None
    return mean_and_stderr(torch.tensor(values, dtype=torch.float64))


@torch.no_grad()
def rated_beyond_the_map(run: Path) -> list[float]:
    """Per seed of a finished run: the fraction of G's samples that D rates at least as
    real as the best point of the map's window (D(G(z)) ≥ max D on the grid). A ReLU D is
    piecewise linear, so its supremum over the plane is often at infinity, where a G that
    best-responds to it runs — off the window where argmax D is looked for."""
    cfg, generator, discriminator, _ = load_run(run)
    lo, hi = plot_limits(build_target(cfg))
    out = []
    for seed_cfg, g, d in seed_players(cfg, generator, discriminator):
        d.eval()
        best = float(discriminator_logits(d, lo, hi, GRID).max())
        x = generate(seed_cfg, g, FRACTION_SAMPLES, seed_cfg.train.seed + EVAL_SEED_OFFSET)
        out.append(float((d(x).reshape(-1).float() >= best).double().mean()))
    return out


def plot_order(root: Path, dataset: str, arms: list[str], picture_at: tuple[int, ...],
               path: Path) -> None:
    """Rows: arms; columns: G updates. The first seed's samples over D's map, and D's
    argmax (the golden point) as a star."""
    from gankit.data.mixtures import mixture

    target = mixture(dataset)
    lo, hi = plot_limits(target)
    fig, axes = plt.subplots(len(arms), len(picture_at),
                             figsize=(2.6 * len(picture_at), 2.6 * len(arms)), squeeze=False)
    for r, arm in enumerate(arms):
        run = root / f"{dataset}-{re.sub(r'[^A-Za-z0-9]+', '-', arm).strip('-')}"
        trace = {t["g_updates"]: t for t in json.loads((run / TRACE).read_text())}
        for c, at in enumerate(picture_at):
            ax = axes[r][c]
            ax.set_xticks([]), ax.set_yticks([])
            pic = trace.get(at, {}).get("picture")
            if pic is None:
                continue
            ax.imshow(np.array(pic["d"]), origin="lower", extent=(lo, hi, lo, hi),
                      cmap="RdBu_r", vmin=0, vmax=1)
            s = np.array(pic["samples"])
            ax.scatter(s[:, 0], s[:, 1], s=2, c="black", alpha=0.5)
            ax.scatter(*pic["argmax"], marker="*", s=120, c="gold", edgecolors="black")
            ax.set_xlim(lo, hi), ax.set_ylim(lo, hi)
            off = float(np.mean(((s < lo) | (s > hi)).any(axis=1)))
            frac = float(np.mean(trace[at]["fractions"]))
            ax.set_title(f"{at} G updates · {frac:.0%} at ★"
                         + (f" · {off:.0%} off" if off >= 0.005 else ""), fontsize=7)
            if c == 0:
                ax.set_ylabel(arm, fontsize=8)
    fig.suptitle(f"{dataset}: first seed's samples over D(x) (blue 0, red 1); ★ = argmax D on "
                 "the window; 'off': samples outside it", fontsize=10)
    save_figure(fig, path)


def format_order(result: dict) -> str:
    def pm(row, key, fmt):
        se = row.get(key + "_se")
        v = row.get(key)
        if v is None:
            return "-"
        return f"{v:{fmt}} ± {se:{fmt}}" if se is not None else f"{v:{fmt}}"

    lines = [f"{result['seeds']} seeds, {result['g_updates']} G updates per arm "
             f"({result['threads']} threads, torch {result['torch']})",
             f"{'data':7} {'arm':20} {'D upd':>6} {'modes':>12} {'well-covered':>12} "
             f"{'HQ %':>11} {'reverse KL':>13} {'at argmax D':>13} {'beyond map':>13} "
             f"{'s/seed':>7}"]
    for row in result["rows"]:
        hq = {k: (100 * v if v is not None else None) for k, v in row.items()
              if k in ("high_quality", "high_quality_se")}
        lines.append(
            f"{row['dataset']:7} {row['arm']:20} {row['d_updates']:>6} "
            f"{pm(row, 'modes', '.1f'):>12} {pm(row, 'well_covered_modes', '.1f'):>12} "
            f"{pm(hq, 'high_quality', '.1f'):>11} {pm(row, 'reverse_kl', '.2f'):>13} "
            f"{pm(row, 'golden', '.2f'):>13} {pm(row, 'beyond', '.2f'):>13} "
            f"{row['seconds_per_seed']:>7.1f}")
    lines.append("at argmax D: fraction of G's samples within 3σ of the grid point where D is "
                 "highest (uniform over the modes: 1/8 on ring8, 1/25 on grid25)")
    lines.append("beyond map: fraction of G's samples D rates at least as real as the best "
                 "point of that grid (at the end of training)")
    lines.append("trace of the at-argmax-D fraction (mean over seeds) at each eighth of training:")
    for row in result["rows"]:
        trace = " ".join(f"{f:.2f}" for _, f in row["golden_trace"])
        lines.append(f"  {row['dataset']:7} {row['arm']:20} {trace}")
    return "\n".join(lines)
