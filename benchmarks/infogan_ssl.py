"""InfoGAN and semi-supervised GAN on mnist5k over seeds: one table.

    python benchmarks/infogan_ssl.py --out runs/variants --seeds 0 1 2
    python benchmarks/infogan_ssl.py --out runs/variants --seeds 0 1 2 --table-only

Each (config, seed) trains into OUT/CONFIG-seedN unless that run already has a
summary.json (so several copies with different --seeds / --configs can share the
work across cores). The table reads every finished run: InfoGAN's categorical-code
accuracy (best and median over seeds) and MI bound; the semi-supervised test error
beside the labelled-only classifier's, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from gankit.config import load_config
from gankit.runs import train

CONFIGS = ("mnist5k-infogan", "mnist5k-ssl", "grid25-infogan")


def run(config: str, seed: int, out: Path, steps: int | None) -> None:
    run_dir = out / f"{config}-seed{seed}"
    if (run_dir / "summary.json").exists():
        return
    overrides = [f"train.seed={seed}"] + ([f"train.steps={steps}"] if steps else [])
    cfg = load_config(Path(__file__).parent.parent / "configs" / f"{config}.toml", overrides)
    train(cfg, run_dir, resume=(run_dir / "checkpoint.pt").exists(), progress=False)


def table(out: Path, configs=CONFIGS) -> str:
    rows = []
    for config in configs:
        runs = sorted(out.glob(f"{config}-seed*/summary.json"))
        if not runs:
            continue
        summaries = [json.loads(p.read_text()) for p in runs]
        seeds = [s["seed"] for s in summaries]
        m = [s["metrics"] for s in summaries]
        steps, minutes = summaries[0]["steps"], statistics.mean(
            s["wall_time_s"] for s in summaries) / 60
        head = f"{config} ({steps} steps, seeds {seeds}, {minutes:.1f} min/seed)"
        if "categorical_accuracy" in m[0]:
            acc = [x["categorical_accuracy"] for x in m]
            mi = [x["mi_bound"] for x in m]
            rows.append(f"{head}\n  categorical-code accuracy per seed "
                        f"{', '.join(f'{a:.3f}' for a in acc)}; best {max(acc):.3f}, "
                        f"median {statistics.median(acc):.3f}\n"
                        f"  MI bound {statistics.mean(mi):.3f} of H(c) = {m[0]['mi_max']:.3f}"
                        " nats (mean over seeds)")
            if "modes" in m[0] and "fd" not in m[0]:
                rows[-1] += ("\n  modes " + ", ".join(str(x["modes"]) for x in m) +
                             "; high quality " + ", ".join(f"{x['high_quality']:.3f}" for x in m))
            if "fd" in m[0]:
                rows[-1] += "\n  FD " + ", ".join(f"{x['fd']:.1f}" for x in m)
        else:
            ssl = [x["test_error"] for x in m]
            base = [x["labelled_only_test_error"] for x in m]
            ratio = [x["error_ratio"] for x in m]
            rows.append(f"{head}\n  test error, semi-supervised GAN: "
                        f"{', '.join(f'{e:.3f}' for e in ssl)} (mean {statistics.mean(ssl):.3f})"
                        f"\n  test error, labelled only:       "
                        f"{', '.join(f'{e:.3f}' for e in base)} (mean {statistics.mean(base):.3f})"
                        f"\n  ratio: {', '.join(f'{r:.3f}' for r in ratio)} "
                        f"(mean {statistics.mean(ratio):.3f}; target <= 0.333 on every seed)")
    return "\n\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    p.add_argument("--steps", type=int, help="override train.steps (default: the config's)")
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args()
    if not args.table_only:
        for config in args.configs:
            for seed in args.seeds:
                run(config, seed, args.out, args.steps)
    print(table(args.out, args.configs))


if __name__ == "__main__":
    main()
