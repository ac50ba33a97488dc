"""The ``gankit`` command: demo, train, eval, sample, theory, bench, report.

User errors (bad config, unknown name, missing or corrupt file) print one line per
problem, prefixed ``gankit: error:``, and exit with status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import signal
import sys
import threading
from contextlib import nullcontext
from importlib import resources
from pathlib import Path

import numpy as np

from gankit.bench import modes as bench_modes
from gankit.bench import order as bench_order
from gankit.bench import throughput as bench
from gankit.build import build_target
from gankit.callbacks import TensorBoard
from gankit.config import load_config, problem_lines, reference
from gankit.data import dataset_spec
from gankit.errors import GankitError
from gankit.evaluate import (
    evaluate_generator,
    real_data_floor_of,
    sample_metrics,
    summarize_seeds,
    variant_metrics,
)
from gankit.generate import EVAL_SEED_OFFSET, generate, seed_players
from gankit.io import atomic_write_bytes, write_json
from gankit.limits import MEMORY_LIMIT_ENV, set_memory_limit
from gankit.metrics.describe import direction, format_value, meaning
from gankit.plots import plot_samples, run_title
from gankit.report import check_report_target, read_summary, run_file, write_html_report
from gankit.runs import load_run, train
from gankit.sampling.refit import corrected_samples, correction_label
from gankit.theory.report import format_theory, run_theory
from gankit.training.guard import run_lock
from gankit.training.loop import Interrupted

__all__ = ["one_line", "Parser", "MAX_SEED", "seed_arg", "build_parser", "report_runs",
           "cmd_report", "cmd_bench", "cmd_theory", "print_metrics", "cmd_train", "cmd_demo",
           "print_columns", "cmd_eval", "evaluate_seed", "seed_means", "check_correction_args",
           "correction_name", "cmd_sample", "main"]


def one_line(text: str) -> str:
    """``text`` with control characters escaped, so a message stays on one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, status 2 (argparse prints usage too)
        self.exit(2, f"gankit: error: {one_line(self.prog)}: {one_line(message)}\n")


MAX_SEED = 2**62  # room for the offsets gankit adds to seeds


def seed_arg(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected 0 to 2**62, got {seed}")
    return seed


def memory_limit_gb(text: str) -> float:
    try:
        gb = float(text)
    except ValueError:
        gb = float("nan")
    if not (math.isfinite(gb) and 0 < gb <= 1e6):
        raise argparse.ArgumentTypeError(f"expected a positive number of GB, got {text!r}")
    return gb


def memory_limit_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory-limit", type=memory_limit_gb, metavar="GB",
                        help="refuse runs estimated to need more memory than this (default: "
                             f"${MEMORY_LIMIT_ENV}, else 80%% of the physical memory)")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="gankit", description="Train, diagnose and compare GANs.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    d = sub.add_parser("demo", help="train the embedded grid25 recipe and write a report")
    d.add_argument("--out", default=None,
                   help="run directory (default: gankit-demo, or gankit-demo-2, -3, ... when "
                        "that one already holds a run, so the demo can be run again)")
    d.add_argument("--resume", action="store_true",
                   help="continue (or re-evaluate) the demo run in --out")
    d.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    memory_limit_arg(d)

    t = sub.add_parser("train", help="train from a TOML config")
    t.add_argument("config", help="TOML config file")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (repeatable)")
    t.add_argument("--out", help="run directory (default: runs/<config name>)")
    t.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint.pt")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--tensorboard", metavar="DIR",
                   help="also write TensorBoard events to DIR (pip install gankit[tensorboard])")
    memory_limit_arg(t)

    e = sub.add_parser("eval", help="metrics of a trained run")
    e.add_argument("run_dir")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--correct", choices=("drs", "mh"),
                   help="also evaluate samples corrected by D's density ratio (a second row)")
    e.add_argument("--mh-steps", type=int, default=100, help="MH proposals per sample")
    e.add_argument("--refit-d", type=int, default=0, metavar="STEPS",
                   help="--correct with a fresh D fitted STEPS steps on the data against the "
                        "trained G (any run) instead of the run's D")
    e.add_argument("--refit-fourier", type=int, default=0, metavar="F",
                   help="the refitted D reads F random Fourier features of x (vector data)")
    memory_limit_arg(e)

    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run_dir")
    s.add_argument("-n", type=int, default=2500, help="number of samples (default 2500)")
    s.add_argument("--out", required=True, help="FILE.png or FILE.npy")
    s.add_argument("--seed", type=seed_arg, default=0)
    s.add_argument("--class", type=int, dest="label", metavar="K",
                   help="of a conditional run: samples of class K (default: every class, "
                        "as often as in the data)")
    s.add_argument("--run-seed", type=int,
                   help="of a run with train.seeds > 1: which seed's GAN (default the first)")
    s.add_argument("--correct", choices=("drs", "mh"),
                   help="discriminator rejection sampling or Metropolis-Hastings with D's "
                        "density-ratio estimate")
    s.add_argument("--mh-steps", type=int, default=100, help="MH proposals per sample")
    s.add_argument("--refit-d", type=int, default=0, metavar="STEPS",
                   help="--correct with a fresh D fitted STEPS steps (see gankit eval)")
    s.add_argument("--refit-fourier", type=int, default=0, metavar="F",
                   help="the refitted D reads F random Fourier features of x (vector data)")
    memory_limit_arg(s)

    b = sub.add_parser("bench", help="benchmark tables")
    b.add_argument("table", choices=("throughput", "modes", "seeds", "adagan", "order"),
                   help="throughput: steps/s vs a hand-written loop; modes: mode collapse "
                        "of each method over seeds; seeds: seeds together vs one by one; "
                        "adagan: an AdaGAN mixture vs one GAN with as many steps; order: "
                        "D in the inner loop vs 1:1 vs G in the inner loop")
    b.add_argument("--json", action="store_true", help="print JSON")
    b.add_argument("--steps", type=int,
                   help="steps per run (throughput: timed steps, default 2000; modes: "
                        "default each method's own; seeds: default 500; order: G updates "
                        "per arm, default 2000)")
    b.add_argument("--dataset", help="modes, adagan: ring8 or grid25 (default grid25); "
                                     "order: one of them (default both)")
    b.add_argument("--seeds", type=int, default=10, help="modes, seeds: seeds per method")
    b.add_argument("--methods", help="modes, order: comma-separated subset of the methods "
                                     "(order: of the arms)")
    b.add_argument("--out", help="modes, adagan: keep the run directories under this "
                                 "directory")
    b.add_argument("--resume", action="store_true",
                   help="modes, order: continue the benchmark in --out (runs with a checkpoint "
                        "continue from it; finished ones are evaluated again)")
    b.add_argument("--components", type=int, default=5,
                   help="adagan: components (each --steps steps, default 2000)")
    memory_limit_arg(b)

    r = sub.add_parser("report", help="finished runs side by side in one HTML page")
    r.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    r.add_argument("--out", default="report.html", help="HTML file (default report.html)")

    c = sub.add_parser("config", help="print the default config as TOML, or the reference")
    c.add_argument("--reference", action="store_true",
                   help="every field with its type, default, allowed values and meaning "
                        "(Markdown: docs/config.md)")

    th = sub.add_parser("theory", help="the GAN theory's identities on known densities")
    th.add_argument("--json", action="store_true", help="print JSON")
    th.add_argument("--out", help="directory for theory.png and theory.json")
    th.add_argument("--quick", action="store_true", help="shorter critic training (~15 s)")
    th.add_argument("--seed", type=seed_arg, default=0)
    th.add_argument("--mixture", metavar="CONFIG",
                    help="the mixture section on a config's mixture (your data.name = "
                         "'mixture', or a preset) instead of ring8")
    return p


def report_runs(run_dirs: list[str | Path], out: Path) -> None:
    """Write the HTML report of finished run directories to ``out``: their metrics with
    their configs, the real-data floor of each image dataset among them, their pictures."""
    dirs, summaries, targets, configs, floors = [], [], [], [], {}
    if not out.parent.exists():
        raise GankitError(f"--out: directory {str(out.parent)!r} does not exist")
    check_report_target(out)
    for name in run_dirs:
        d = Path(name)
        summaries.append(read_summary(d))
        if run_file(d, "config.toml") is None:
            raise GankitError(f"{d / 'config.toml'}: missing, a symlink or not a regular file; "
                              "is it a finished gankit run directory?")
        try:
            cfg = load_config(d / "config.toml")
        except GankitError as e:  # (a field's problem: name the run's file too)
            raise GankitError("\n".join(line if line.startswith(str(d)) else
                                         f"{d / 'config.toml'}: {line}"
                                         for line in str(e).split("\n"))) from None
        configs.append(cfg)
        targets.append(build_target(cfg))
        key = cfg.data.path or cfg.data.name  # (the user's data: one floor per file)
        if key not in floors and (floor := real_data_floor_of(cfg)) is not None:
            floors[key] = floor
        dirs.append(d)
    # a report written into a run directory waits for no writer: one holding the lock
    # is refused, as a second trainer would be
    with run_lock(out.parent) if (out.parent / ".lock").is_file() else nullcontext():
        check_report_target(out)  # (again: the run may have written meanwhile)
        write_html_report(dirs, summaries, out, targets=targets, configs=configs,
                          floors=floors)
    print(f"report: {out}")


def cmd_report(args) -> int:
    report_runs(args.run_dirs, Path(args.out))
    return 0


def cmd_bench(args) -> int:
    if args.steps is not None and not 1 <= args.steps <= 10_000_000:
        raise GankitError(f"--steps: expected a positive number of steps, got {args.steps}")
    if not 1 <= args.seeds <= 1000:
        raise GankitError(f"--seeds: expected a number of seeds from 1 to 1000, got {args.seeds}")
    if args.resume and (args.table not in ("modes", "order") or not args.out):
        raise GankitError(f"--resume: continues a modes or order benchmark kept with --out "
                          f"DIR; got "
                          f"table {args.table!r}, --out {args.out!r}")
    if args.out and Path(args.out).exists() and any(Path(args.out).iterdir()) \
            and not args.resume:
        raise GankitError(f"--out: {args.out!r} is not empty; choose a new directory, or "
                          "pass --resume to continue the benchmark in it")
    if args.table == "throughput":
        result = bench.throughput(args.steps or 2000)
        text = bench.format_throughput
    elif args.table == "adagan":
        if not 1 <= args.components <= 100:
            raise GankitError(f"--components: expected 1 to 100, got {args.components}")
        result = bench_modes.adagan_table(args.dataset or "grid25", args.seeds,
                                          components=args.components,
                                          steps=args.steps,
                                          out=Path(args.out) if args.out else None,
                                          progress=not args.json)
        text = bench_modes.format_adagan
    elif args.table == "modes":
        methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
        result = bench_modes.modes_table(args.dataset or "grid25", args.seeds, steps=args.steps,
                                         methods=methods,
                                         out=Path(args.out) if args.out else None,
                                         progress=not args.json, resume=args.resume)
        text = bench_modes.format_modes
    elif args.table == "order":
        arms = [m.strip() for m in args.methods.split(",")] if args.methods else None
        result = bench_order.order_table(
            (args.dataset,) if args.dataset else bench_order.DATASETS, args.seeds,
            g_updates=args.steps or 2000, arms=arms, out=Path(args.out) if args.out else None,
            progress=not args.json, resume=args.resume)
        text = bench_order.format_order
    else:
        result = bench_modes.seeds_speed(args.seeds, args.steps or 500)
        text = bench_modes.format_seeds
    print(json.dumps(result, indent=2) if args.json else text(result))
    return 0


def cmd_theory(args) -> int:
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise GankitError(f"--out: {str(out)!r} exists and is not a directory")
    pair = None
    if args.mixture:
        cfg = load_config(args.mixture)
        if dataset_spec(cfg.data.name).kind != "mixture":
            raise GankitError(f"--mixture: {args.mixture} has data.name = {cfg.data.name!r}, "
                              "not a mixture; allowed: data.name = 'mixture' or a preset")
        pair = (cfg.data.name if cfg.data.name != "mixture" else args.mixture,
                build_target(cfg))
    result = run_theory(out, quick=args.quick, seed=args.seed, mixture_pair=pair)
    if out is not None:
        write_json(out / "theory.json", result)
    print(json.dumps(result, indent=2) if args.json else format_theory(result))
    return 0


def print_metrics(metrics: dict, title: str, stderr: dict | None = None) -> None:
    """A table a person reads: metric, value (± standard error over seeds), which way is
    better (↑ / ↓) and what it means; labels (which data, which features) below it."""
    print_table(title, [(k, format_value(k, v, (stderr or {}).get(k)), None)
                        for k, v in metrics.items() if not isinstance(v, (list, str))])
    print_labels(metrics)


def print_labels(metrics: dict) -> None:
    for k, v in metrics.items():
        if isinstance(v, str):
            print(f"  {k}: {v}")


def print_table(title: str, rows: list[tuple[str, str, str | None]]) -> None:
    """Rows of (metric, value, real-data floor or None)."""
    floors = any(f is not None for _, _, f in rows)
    width = max(len(k) for k, _, _ in rows)
    value_width = max(12, *(len(v) for _, v, _ in rows))
    print(title)
    head = f"  {'metric':<{width}}  {'value':>{value_width}}"
    print(head + (f"  {'real floor':>12}" if floors else "") + "     meaning")
    for k, v, f in rows:
        line = f"  {k:<{width}}  {v:>{value_width}}"
        if floors:
            line += f"  {f or '':>12}"
        print(f"{line}  {direction(k) or ' '}  {meaning(k)}")
    print("  (↑ higher is better, ↓ lower is better)")


def cmd_train(args, config_path: str | None, default_out: Path) -> int:
    cfg = load_config(config_path, args.set)
    out = Path(args.out) if args.out else default_out
    resume, progress = getattr(args, "resume", False), not getattr(args, "no_progress", False)
    board = getattr(args, "tensorboard", None)
    callbacks = (TensorBoard(board),) if board else ()
    summary = train(cfg, out, resume=resume, progress=progress, callbacks=callbacks)
    if summary is None:  # a torchrun rank other than 0: rank 0 reports
        return 0
    seeds = f" · mean ± SE of {cfg.train.seeds} seeds" if cfg.train.seeds > 1 else ""
    game = cfg.objective.name if cfg.adagan.components == 1 else \
        f"AdaGAN, {cfg.adagan.components} × {cfg.objective.name}"
    print_metrics(summary["metrics"], f"{cfg.data.name} · {game} · "
                  f"{summary['steps']} steps · {summary['wall_time_s']:.1f} s{seeds} → {out}",
                  summary.get("metrics_stderr"))
    return 0


def fresh_demo_folder() -> Path:
    """gankit-demo, or the first of gankit-demo-2, -3, ... that holds no run yet."""
    for i in range(1, 10_000):
        out = Path("gankit-demo" if i == 1 else f"gankit-demo-{i}")
        if not (out / "checkpoint.pt").exists():
            return out
    raise GankitError("--out: gankit-demo … gankit-demo-9999 all hold runs; pass --out DIR")


def cmd_demo(args) -> int:
    out = Path(args.out) if args.out else fresh_demo_folder()
    args.out = str(out)
    demo = resources.files("gankit") / "demo.toml"
    with resources.as_file(demo) as path:
        cmd_train(args, str(path), out)
    report_runs([out], out / "report.html")
    print(f"\nopen {out / 'report.html'} in a browser: samples, D(x), samples per mode, losses."
          f"\nnext: gankit eval {out}  ·  gankit sample {out} -n 2500 --out more.png  ·  "
          "gankit train configs/grid25-pacgan4.toml (packing against mode collapse)")
    return 0


def print_columns(metrics: dict, floor: dict, title: str) -> None:
    print_table(title, [(k, format_value(k, v), format_value(k, floor.get(k)))
                        for k, v in metrics.items() if not isinstance(v, (list, str))])
    print_labels(metrics)


def check_unconditional(cfg) -> None:
    if cfg.conditional_on:
        raise GankitError("--correct: not for a conditional run yet (its D's density ratio is "
                          "per class); allowed: without --correct")


def cmd_eval(args) -> int:
    cfg, generator, discriminator, state = load_run(args.run_dir)
    step = int(state["step"])
    results = [evaluate_seed(args, seed_cfg, g, d)
               for seed_cfg, g, d in seed_players(cfg, generator, discriminator)]
    if len(results) == 1:
        result = {"run": args.run_dir, "step": step, **results[0]}
    else:
        result = {"run": args.run_dir, "step": step, **seed_means(results), "per_seed": results}
    floor = real_data_floor_of(cfg)  # what real held-out data scores, beside the run
    if floor is not None:
        result["floor"] = floor
    if args.json:
        print(json.dumps(result))
        return 0
    for r in results if len(results) > 1 else []:
        print_metrics(r["metrics"], f"{args.run_dir} (step {step}) · seed {r['seed']} · raw")
    title = f"{args.run_dir} (step {step}) · raw samples"
    if len(results) > 1:
        title += f" · mean ± standard error over {len(results)} seeds"
    if "floor" in result:
        print_columns(result["metrics"], result["floor"],
                      f"{title} vs the real-data floor (test split against train split)")
    else:
        print_metrics(result["metrics"], title, result.get("metrics_stderr"))
    if args.correct:
        c = result["corrected"]
        print_metrics(c["metrics"], f"{args.run_dir} · corrected by {c['method']} "
                                    f"(acceptance rate {c['acceptance_rate']:.3f})",
                      c.get("metrics_stderr"))
    return 0


def evaluate_seed(args, cfg, generator, discriminator) -> dict:
    """Raw metrics of one seed's generator and, with ``--correct``, corrected ones."""
    if args.correct:
        check_unconditional(cfg)
    metrics, _ = evaluate_generator(cfg, generator)
    # InfoGAN's code metrics, the semi-supervised D's test error (its labelled-only
    # baseline is trained once, at the end of training: summary.json)
    metrics.update(variant_metrics(cfg, generator, discriminator))
    result = {"seed": cfg.train.seed, "metrics": metrics}
    if args.correct:
        check_correction_args(args)
        samples, rate = corrected_samples(cfg, generator, discriminator, args.correct,
                                          n=cfg.train.eval_samples,
                                          seed=cfg.train.seed + EVAL_SEED_OFFSET,
                                          mh_steps=args.mh_steps, refit_steps=args.refit_d,
                                          refit_fourier=args.refit_fourier)
        result["corrected"] = {"method": correction_name(args), "acceptance_rate": rate,
                               "metrics": sample_metrics(cfg, samples)}
    return result


def seed_means(results: list[dict]) -> dict:
    """Mean ± standard error over seeds of the raw (and corrected) metrics."""

    out = summarize_seeds([r["metrics"] for r in results])
    if "corrected" in results[0]:
        c = summarize_seeds([r["corrected"]["metrics"] for r in results])
        rates = [r["corrected"]["acceptance_rate"] for r in results]
        out["corrected"] = {"method": results[0]["corrected"]["method"],
                            "acceptance_rate": sum(rates) / len(rates), **c}
    return out


def check_correction_args(args) -> None:
    if not 1 <= args.mh_steps <= 100_000:
        raise GankitError(f"--mh-steps: expected an integer from 1 to 100000, got {args.mh_steps}")
    if not 0 <= args.refit_d <= 1_000_000:
        raise GankitError(f"--refit-d: expected a number of steps from 0 (the run's D) to "
                          f"1000000, got {args.refit_d}")
    if not 0 <= args.refit_fourier <= 65536 or (args.refit_fourier and not args.refit_d):
        raise GankitError(f"--refit-fourier: expected 0 to 65536 features, with --refit-d; "
                          f"got {args.refit_fourier}" +
                          ("" if args.refit_d else " without --refit-d"))


def correction_name(args) -> str:
    """The corrected row's name: ``drs``, ``drs (D refit 2000 steps)`` or
    ``mh (D refit 2000 steps, 128 Fourier features)``."""

    return correction_label(args.correct, args.refit_d, args.refit_fourier)


def cmd_sample(args) -> int:

    if args.n < 1:
        raise GankitError(f"-n: expected a positive number of samples, got {args.n}")
    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise GankitError(f"--out: expected a .png or .npy file, got {str(out)!r}")
    if not out.parent.exists():
        raise GankitError(f"--out: directory {str(out.parent)!r} does not exist")
    cfg, generator, discriminator, _ = load_run(args.run_dir)
    players = {c.train.seed: (c, g, d) for c, g, d in seed_players(cfg, generator, discriminator)}
    run_seed = cfg.train.seed if args.run_seed is None else args.run_seed
    if run_seed not in players:
        raise GankitError(f"--run-seed: the run trained seeds {', '.join(map(str, players))}, "
                          f"got {run_seed}")
    cfg, generator, discriminator = players[run_seed]
    if args.correct and args.label is not None:
        raise GankitError("--class: not with --correct yet (the correction's D judges "
                          "images without their class); allowed: one of them")
    if args.correct:
        check_unconditional(cfg)
        check_correction_args(args)
        samples, rate = corrected_samples(cfg, generator, discriminator, args.correct,
                                          n=args.n, seed=args.seed, mh_steps=args.mh_steps,
                                          refit_steps=args.refit_d,
                                          refit_fourier=args.refit_fourier)
        print(f"{correction_name(args)}: acceptance rate {rate:.4f}")
        name = correction_name(args).replace(args.correct, args.correct.upper(), 1)
        corrected = f"corrected by {name} (acceptance {rate:.1%})"
    else:
        samples = generate(cfg, generator, args.n, args.seed, label=args.label)
        corrected = None if args.label is None else f"class {args.label}"
    if out.suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, samples.numpy())
        atomic_write_bytes(out, buf.getvalue())
    else:
        plot_samples(samples, build_target(cfg), discriminator, out,
                     title=f"{args.run_dir}: " + run_title(cfg, correction=corrected),
                     max_points=args.n)
    print(f"{args.n} samples → {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        # (the start-up handler of gankit/__init__.py: from here Ctrl-C is caught below)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    set_memory_limit(getattr(args, "memory_limit", None))
    try:
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "config":
            print(reference() if args.reference else load_config(None).to_toml())
            return 0
        if args.command == "train":
            return cmd_train(args, args.config, Path("runs") / Path(args.config).stem)
        if args.command == "eval":
            return cmd_eval(args)
        if args.command == "sample":
            return cmd_sample(args)
        if args.command == "theory":
            return cmd_theory(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "bench":
            return cmd_bench(args)
    except OSError as e:  # a file the user named: unwritable, a file where a dir is due...
        where = e.filename if e.filename is not None else "file system"
        print(f"gankit: error: {one_line(str(where))}: {one_line(e.strerror or str(e))}",
              file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"gankit: {e}", file=sys.stderr)
        return 130
    except GankitError as e:
        for line in problem_lines(str(e).split("\n")).split("\n"):  # one problem per line
            print(f"gankit: error: {one_line(line)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    return 2
