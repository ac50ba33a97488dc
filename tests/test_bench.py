import math

import pytest

from gankit.bench.throughput import (
    TOY,
    count_flops,
    format_throughput,
    matmul_flops,
    matmul_seconds_per_step,
    record_matmuls,
    throughput,
    toy_mlp,
)


def test_flops_per_step_are_the_networks_matmuls():
    # Every counted op is a matmul linear in the batch: 8x the batch, 8x the FLOPs.
    small = count_flops(*toy_mlp(), z_dim=256, batch=64)
    large = count_flops(*toy_mlp(), z_dim=256, batch=512)
    assert large == 8 * small
    # forward of G (256→128→128→2) and of D (2→128→128→1) on the batch, in FLOPs
    g_fwd = 2 * 64 * (256 * 128 + 128 * 128 + 128 * 2)
    d_fwd = 2 * 64 * (2 * 128 + 128 * 128 + 128 * 1)
    # D step: D on real and fake, backward ≈ 2x forward; G step: G fwd already done,
    # D fwd + backward through D to the input and through G: between 3 and 4 times fwd
    assert 3 * (g_fwd + d_fwd) < small < 6 * (g_fwd + 2 * d_fwd)


def test_recorded_matmuls_of_s_seeds_are_s_times_one_seeds():
    # the loop's step on the toy config runs exactly count_flops's products, and the S-seed
    # step (stacked weights, batched products) exactly S times them: no extra arithmetic
    run = TOY + ["train.batch_size=64", "train.steps=10", "train.snapshot_every=0"]
    one = matmul_flops(record_matmuls(None, run, steps=2)) / 2
    assert one == count_flops(*toy_mlp(), z_dim=256, batch=64)
    three = record_matmuls(None, run + ["train.seeds=3"], steps=2)
    assert matmul_flops(three) / 2 == 3 * one
    assert {f.__name__ for f, _, _ in three} <= {"bmm.default", "baddbmm.default"}
    assert 0 < matmul_seconds_per_step(None, run + ["train.seeds=3"], steps=1, repeats=2) < 1


def test_seeds_table_runs_and_its_bound_holds():
    from gankit.bench.modes import format_seeds, seeds_speed

    r = seeds_speed(seeds=2, steps=10, batch=16, compiled=False, repeats=1)
    assert [row["model"] for row in r["rows"]] == ["toy MLP 2x128", "gankit recipe"]
    for row in r["rows"]:  # the run's own steps include its products
        assert 0 < row["matmuls_alone_s"] < row["together_s"]
        assert 0 < row["draws_alone_s"] < row["together_s"]
        assert row["speedup"] < row["speedup_bound_with_draws"] < row["speedup_bound"]
    assert "bound" in format_seeds(r)


def test_throughput_table_runs():
    r = throughput(steps=20, repeats=1, compiled=False)
    assert r["matmul_gflops"] > 0 and len(r["rows"]) == 3
    for row in r["rows"]:
        assert row["gankit_steps_per_s"] > 0 and row["hand_written_steps_per_s"] > 0
        assert 0 < row["fraction_of_matmul"]
    assert "toy MLP" in format_throughput(r) and "DCGAN28" in format_throughput(r)
    (profile,) = r["profiles"].values()
    groups = {name: share for name, share, _ in profile[:4]}
    assert sum(groups.values()) == pytest.approx(1.0)
    assert groups["[matrix products]"] > 0.05 and groups["[optimizer: step, zero_grad]"] > 0


def test_modes_table_runs_every_method_it_names(tmp_path, capsys):
    import json

    from gankit.cli import main

    methods = ["GAN minimax", "gankit recipe", "InfoGAN K=50", "InfoGAN K=50 + DRS"]
    code = main(["bench", "modes", "--dataset", "ring8", "--seeds", "2", "--steps", "10",
                 "--methods", ",".join(methods), "--out", str(tmp_path / "b"), "--json"])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    assert [row["method"] for row in r["rows"]] == methods
    for row in r["rows"]:
        assert row["steps"] == 10 and [p["seed"] for p in row["per_seed"]] == [0, 1]
        hq = [p["metrics"]["high_quality"] for p in row["per_seed"]]
        assert row["high_quality"] == pytest.approx(sum(hq) / 2)
    raw, drs = r["rows"][2:]
    assert drs["run_dir"] == raw["run_dir"]  # the corrected row samples the raw row's GANs
    assert 0 < drs["acceptance_rate"] <= 1 and drs["per_seed"] != raw["per_seed"]
    assert drs["seconds_total"] > raw["seconds_total"]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "ring8-GAN-minimax", "ring8-InfoGAN-K50", "ring8-gankit-recipe"]
    summary = json.loads((tmp_path / "b" / "ring8-InfoGAN-K50" / "summary.json").read_text())
    assert summary["per_seed"][0]["metrics"]["mi_max"] == pytest.approx(math.log(50))
    assert r["published"][0][1] == 6.3  # PacGAN Table 1, ring8 GAN


def test_modes_table_resumes_an_interrupted_benchmark(tmp_path, capsys):
    import json

    from gankit.bench.modes import method_config
    from gankit.cli import main
    from gankit.runs import train

    def bench(methods: str, out: str, *extra: str) -> list[dict] | None:
        code = main(["bench", "modes", "--dataset", "ring8", "--seeds", "1", "--steps", "10",
                     "--methods", methods, "--json", "--out", str(tmp_path / out), *extra])
        return json.loads(capsys.readouterr().out)["rows"] if code == 0 else None

    # a benchmark stopped in its second method: the first finished, the second at step 4
    first = bench("GAN minimax", "split")
    train(method_config("PacGAN2", "ring8", 1, 10), tmp_path / "split" / "ring8-PacGAN2",
          progress=False, stop_after=4)
    assert bench("GAN minimax,PacGAN2", "split") is None  # not empty, no --resume: exit 2
    assert "--resume" in capsys.readouterr().err
    resumed = bench("GAN minimax,PacGAN2", "split", "--resume")
    whole = bench("PacGAN2", "whole")  # the same method uninterrupted
    assert [row["method"] for row in resumed] == ["GAN minimax", "PacGAN2"]
    assert resumed[0]["per_seed"] == first[0]["per_seed"]  # the finished run, evaluated again
    assert resumed[1]["per_seed"] == whole[0]["per_seed"]  # resumed = uninterrupted
    assert main(["bench", "modes", "--resume"]) == 2  # nothing to continue
    assert "--out" in capsys.readouterr().err


def test_modes_and_seeds_bad_arguments(capsys):
    from gankit.cli import main

    for argv, field in ((["bench", "modes", "--dataset", "grid9"], "--dataset"),
                        (["bench", "modes", "--methods", "GAN,x"], "--methods"),
                        (["bench", "seeds", "--seeds", "0"], "--seeds")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and field in err


def test_grid25_rpgan_config_is_its_bench_row():
    """configs/grid25-rpgan-r1r2-10seeds.toml trains exactly the "RpGAN + R1/R2" row."""
    from dataclasses import asdict
    from pathlib import Path

    from gankit.bench.modes import method_config
    from gankit.config import load_config

    path = Path(__file__).parent.parent / "configs" / "grid25-rpgan-r1r2-10seeds.toml"
    assert asdict(load_config(path)) == asdict(method_config("RpGAN + R1/R2", "grid25", 10, None))
