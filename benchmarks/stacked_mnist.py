"""gankit's stacked-MNIST configs over seeds: modes of 1000, KL and the image metrics.

    python benchmarks/stacked_mnist.py --out runs/stacked --seeds 0 1 2
    python benchmarks/stacked_mnist.py --out runs/stacked --configs stacked-mnist-recipe \
        --seeds 0 1 2 --table-only

Each (config, seed) trains ``configs/<config>.toml`` at its own steps into
OUT/<config>-seedN unless it already has a summary.json; a run with a checkpoint continues
from it (a stopped benchmark resumes; copies with different --seeds share the work across
cores). Metrics are those of ``gankit eval``: 26,000 samples, each channel's digit read by
the evaluation classifier (PacGAN's protocol). The table: mean ± standard error over the
seeds, each seed's modes and KL (gankit's goal, ≥ 990 modes and KL ≤ 0.15, is on the mean;
the seed lines show which seeds meet it alone),
and s/seed, the wall time of training plus evaluation as the runs measured it (so it
depends on what else the machine ran).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from gankit.config import load_config
from gankit.evaluate import real_data_floor_of
from gankit.metrics.stats import mean_and_stderr_text
from gankit.runs import train

CONFIGS = Path(__file__).parent.parent / "configs"
DEFAULT = ("stacked-mnist-recipe",)
COLUMNS = (("modes", "modes", ".1f"), ("kl", "KL", ".3f"), ("fd", "FD", ".0f"),
           ("kid", "KID", ".1f"), ("precision", "precision", ".3f"),
           ("recall", "recall", ".3f"))


def run(config: str, seed: int, out: Path) -> None:
    run_dir = out / f"{config}-seed{seed}"
    if (run_dir / "summary.json").exists():
        return
    cfg = load_config(CONFIGS / f"{config}.toml", [f"train.seed={seed}"])
    train(cfg, run_dir, resume=(run_dir / "checkpoint.pt").exists(), progress=False)


def table(out: Path, configs: list[str], seeds: list[int]) -> str:
    width = max(len(c) for c in [*configs, "real-data floor"])
    lines = [f"{'config':<{width}}  steps  seeds  "
             + "  ".join(f"{title:>15}" for _, title, _ in COLUMNS) + "  s/seed"]
    per_seed = []
    for config in configs:
        done = {seed: json.loads(p.read_text()) for seed in seeds
                if (p := out / f"{config}-seed{seed}" / "summary.json").exists()}
        if not done:
            continue
        summaries = list(done.values())
        cells = [mean_and_stderr_text([s["metrics"][k] for s in summaries], fmt)
                 for k, _, fmt in COLUMNS]
        seconds = statistics.mean(s["wall_time_s"] + s["eval_time_s"] for s in summaries)
        lines.append(f"{config:<{width}}  {summaries[0]['steps']:>5}  {len(done):>5}  "
                     + "  ".join(f"{c:>15}" for c in cells) + f"  {seconds:6.0f}")
        per_seed += [f"# {config} seed {seed}: {s['metrics']['modes']} modes, KL "
                     f"{s['metrics']['kl']:.3f}, FD {s['metrics']['fd']:.0f}, "
                     f"{s['wall_time_s'] + s['eval_time_s']:.0f} s" for seed, s in done.items()]
    floor = real_data_floor_of(load_config(CONFIGS / f"{configs[0]}.toml"))
    lines.append(f"{'real-data floor':<{width}}  {'':>5}  {'':>5}  "
                 + "  ".join(f"{format(floor[k], fmt) if k in floor else '-':>15}"
                             for k, _, fmt in COLUMNS))
    return "\n".join(lines + per_seed)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--configs", default=",".join(DEFAULT),
                   help="comma-separated config names under configs/")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args()
    configs = [c.strip() for c in args.configs.split(",")]
    missing = [c for c in configs if not (CONFIGS / f"{c}.toml").exists()]
    if missing:
        raise SystemExit(f"--configs: no configs/{missing[0]}.toml; allowed: "
                         + ", ".join(sorted(p.stem for p in CONFIGS.glob("stacked-mnist*"))))
    if not args.table_only:
        for seed in args.seeds:
            for config in configs:
                run(config, seed, args.out)
    print(table(args.out, configs, args.seeds))


if __name__ == "__main__":
    main()
