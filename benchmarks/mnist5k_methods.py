"""The GAN methods on mnist5k at one budget, over seeds: one table; and gankit's mnist5k
recipe configs at their own budget.

    python benchmarks/mnist5k_methods.py --out runs/mnist5k-methods --steps 2000 --seeds 0 1 2
    python benchmarks/mnist5k_methods.py --out runs/mnist5k-methods --steps 2000 --seeds 0 1 2 \
        --methods "DCGAN,DCGAN + EMA" --table-only
    python benchmarks/mnist5k_methods.py --out runs/mnist5k-recipes --recipes --seeds 0 1 2

Every method is ``configs/mnist5k-dcgan.toml`` (a DCGAN, batch 64, Adam 2e-4, β₁ = 0.5)
with the overrides in ``METHODS``, trained for ``--steps`` steps. Each (method, seed)
trains into OUT/<method>-seedN unless it already has a summary.json; a run with a
checkpoint continues from it (so a stopped benchmark resumes, and copies with different
--seeds or --methods can share the work across cores). The table reads the finished
runs of --seeds: mean ± standard error over seeds of FD, KID, precision, recall, modes (of 10) and,
for the conditional methods, the class accuracy and intra-class FD, beside the real-data
floor (for the class accuracy: the classifier's accuracy on real test images); s/seed is
the wall time of training plus evaluation. ``--recipes`` does the same for the configs
in ``RECIPES``, each at its own steps, into OUT/<config>-seedN.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

from gankit.config import load_config
from gankit.errors import GankitError
from gankit.evaluate import real_data_floor_of
from gankit.metrics.stats import mean_and_stderr_text
from gankit.runs import train

CONFIGS = Path(__file__).parent.parent / "configs"
CONFIG = CONFIGS / "mnist5k-dcgan.toml"
RECIPES = ("mnist5k-recipe", "mnist5k-conditional")
EMA = ["tricks.generator_ema=0.999"]
METHODS: dict[str, list[str]] = {  # each method alone on the baseline DCGAN
    "DCGAN": [],
    "DCGAN + EMA": EMA,
    "DCGAN + EMA ramp": [*EMA, "tricks.generator_ema_rampup=true"],
    "R1 γ=1": ["objective.r1=1.0"],
    "RpGAN + R1/R2 γ=1": ["objective.name='rpgan'", "objective.r1=1.0", "objective.r2=1.0"],
    "hinge + spectral norm": ["objective.name='hinge'", "model.spectral_norm=true"],
    "DiffAugment": ["tricks.diffaugment='translation,cutout'"],
    "top-k": ["tricks.top_k=0.99", "tricks.top_k_min=0.5"],
    "conditional projection": ["conditional.method='projection'"],
    "conditional AC-GAN": ["conditional.method='acgan'"],
}
COLUMNS = (("fd", "FD", ".1f"), ("kid", "KID", ".1f"), ("precision", "precision", ".3f"),
           ("recall", "recall", ".3f"), ("modes", "modes", ".1f"),
           ("class_accuracy", "class acc", ".3f"), ("intra_fd", "intra-FD", ".1f"))


def slug(method: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", method.lower()).strip("-")


def run(method: str, seed: int, out: Path, steps: int | None) -> None:
    """``method`` (a key of ``METHODS`` at ``steps``, or a config of ``RECIPES`` at its own
    steps) with ``seed``, into OUT/<slug>-seedN, unless it has finished there."""
    run_dir = out / f"{slug(method)}-seed{seed}"
    if (run_dir / "summary.json").exists():
        return
    if method in RECIPES:
        cfg = load_config(CONFIGS / f"{method}.toml", [f"train.seed={seed}"])
    else:
        cfg = load_config(CONFIG, [*METHODS[method], f"train.seed={seed}",
                                   f"train.steps={steps}", "train.checkpoint_every=250"])
    train(cfg, run_dir, resume=(run_dir / "checkpoint.pt").exists(), progress=False)


def table(out: Path, methods: list[str], seeds: list[int]) -> str:
    floor = dict(real_data_floor_of(load_config(CONFIG)))
    width = max(len(m) for m in [*methods, "real-data floor"])
    lines = [f"{'method':<{width}}  steps  seeds  "
             + "  ".join(f"{title:>15}" for _, title, _ in COLUMNS) + "  s/seed"]
    for method in methods:
        runs = [p for seed in seeds
                if (p := out / f"{slug(method)}-seed{seed}" / "summary.json").exists()]
        if not runs:
            continue
        summaries = [json.loads(p.read_text()) for p in runs]
        cells = [mean_and_stderr_text([s["metrics"][k] for s in summaries
                                       if k in s["metrics"]], fmt) for k, _, fmt in COLUMNS]
        seconds = statistics.mean(s["wall_time_s"] + s["eval_time_s"] for s in summaries)
        if "intra_fd_floor" in summaries[0]["metrics"]:  # (the same for every run)
            floor["intra_fd"] = summaries[0]["metrics"]["intra_fd_floor"]
            floor["class_accuracy"] = summaries[0]["metrics"]["classifier_accuracy"]
        lines.append(f"{method:<{width}}  {summaries[0]['steps']:>5}  {len(runs):>5}  "
                     + "  ".join(f"{c:>15}" for c in cells) + f"  {seconds:6.0f}")
    lines.append(f"{'real-data floor':<{width}}  {'':>5}  {'':>5}  "
                 + "  ".join(f"{format(floor[k], fmt) if k in floor else '-':>15}"
                             for k, _, fmt in COLUMNS))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", default=",".join(METHODS),
                   help="comma-separated subset of: " + ", ".join(METHODS))
    p.add_argument("--recipes", action="store_true",
                   help="the configs " + ", ".join(RECIPES) + " at their own steps instead")
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args()
    methods = list(RECIPES) if args.recipes else [m.strip() for m in args.methods.split(",")]
    unknown = [m for m in methods if m not in METHODS and m not in RECIPES]
    if unknown:
        raise SystemExit(f"--methods: unknown {', '.join(map(repr, unknown))}; allowed: "
                         + ", ".join(METHODS))
    if not args.table_only:
        for seed in args.seeds:  # seed by seed: a partial table already has every method
            for method in methods:
                try:
                    run(method, seed, args.out, args.steps)
                except GankitError as e:  # another copy of this script is training it
                    if "another gankit process" not in str(e):
                        raise
                    print(f"skipped ({e})", flush=True)
    print(table(args.out, methods, args.seeds))


if __name__ == "__main__":
    main()
