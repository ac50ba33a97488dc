import json
import subprocess
import sys

import numpy as np
import pytest

from gankit.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gankit: error:") and "Traceback" not in err
    return lines[0]


def test_end_to_end_through_the_installed_command(tmp_path, tiny):
    cfg = tmp_path / "ring.toml"
    cfg.write_text('[data]\nname = "ring8"\n[objective]\nname = "minimax"\n')
    sets = [a for s in tiny for a in ("--set", s)]
    cmd = [sys.executable, "-m", "gankit"]
    r = subprocess.run(cmd + ["train", str(cfg), "--out", str(tmp_path / "run"), *sets],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "modes" in r.stdout and "high_quality" in r.stdout
    r = subprocess.run(cmd + ["eval", str(tmp_path / "run"), "--json"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert result["metrics"] == summary["metrics"] and result["step"] == 30


def test_sample_npy_and_png(tmp_path, tiny, capsys):
    sets = [a for s in tiny for a in ("--set", s)]
    assert run(capsys, "train", "configs/ring8-nonsaturating.toml", "--out",
               str(tmp_path / "r"), "--no-progress", *sets)[0] == 0
    assert run(capsys, "sample", str(tmp_path / "r"), "-n", "77", "--out",
               str(tmp_path / "s.npy"))[0] == 0
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (77, 2) and np.isfinite(x).all()
    assert run(capsys, "sample", str(tmp_path / "r"), "-n", "50", "--out",
               str(tmp_path / "s.png"))[0] == 0
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    code, _, err = run(capsys, "sample", str(tmp_path / "r"), "--out", str(tmp_path / "s.txt"))
    assert code == 2 and ".png or .npy" in one_error_line(err)


@pytest.mark.parametrize("args, expect", [
    (["--set", "objective.name=vanilla"], "objective.name: got 'vanilla'; allowed: minimax"),
    (["--set", "train.lr_d=-0.001"], "train.lr_d: expected a number > 0.0, got -0.001"),
    (["--set", "train.setps=3"], "did you mean 'steps'"),
])
def test_bad_config_values_exit_2_with_one_line(tmp_path, capsys, args, expect):
    code, _, err = run(capsys, "train", "configs/grid25-nonsaturating.toml", "--out",
                       str(tmp_path / "r"), *args)
    assert code == 2 and expect in one_error_line(err)
    assert not (tmp_path / "r").exists()  # nothing written for a refused config


def test_missing_config_file(tmp_path, capsys):
    code, _, err = run(capsys, "train", str(tmp_path / "none.toml"))
    assert code == 2 and "none.toml: config file not found" in one_error_line(err)


def test_corrupt_and_malicious_checkpoints(tmp_path, tiny, capsys):
    from gankit.config import load_config
    from gankit.runs import train

    train(load_config(None, tiny), tmp_path / "r", progress=False)
    (tmp_path / "r" / "checkpoint.pt").write_bytes(b"\x00garbage" * 10)
    code, _, err = run(capsys, "eval", str(tmp_path / "r"))
    assert code == 2 and "checkpoint.pt: not a readable gankit checkpoint" in one_error_line(err)

    # A pickle that would run code when unpickled is refused without running it.
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import torch
    torch.save({"format": "gankit-checkpoint-1", "x": Evil()}, tmp_path / "r" / "checkpoint.pt",
               pickle_module=pickle)
    code, _, err = run(capsys, "eval", str(tmp_path / "r"))
    assert code == 2 and "holds code" in one_error_line(err) and "io.open" in err
    assert not marker.exists()

    code, _, err = run(capsys, "eval", str(tmp_path / "nowhere"))
    assert code == 2 and "run directory not found" in one_error_line(err)


def test_argparse_errors_are_one_line_status_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train"])
    assert e.value.code == 2
    one_error_line(capsys.readouterr().err)
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2


def test_report_of_two_runs_with_training_slider(tmp_path, tiny, capsys):
    from gankit.io import read_snapshots

    for name, extra in (("a", []), ("b", ["--set", "tricks.pack=2"])):
        sets = [a for s in tiny + ["train.snapshot_every=10"] for a in ("--set", s)]
        assert run(capsys, "train", "configs/ring8-nonsaturating.toml", "--out",
                   str(tmp_path / name), "--no-progress", *sets, *extra)[0] == 0
    steps, samples = read_snapshots(tmp_path / "a" / "snapshots.npz")
    assert steps.tolist() == [10, 20, 30] and samples.shape == (3, 500, 2)
    code, out, _ = run(capsys, "report", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                       str(tmp_path / "r.html"))
    assert code == 0
    page = (tmp_path / "r.html").read_text()
    assert page.count('class="slider"') == 2 and page.count('class="frame"') == 6
    assert page.count("<tr") == 3 and "high_quality" in page and "pack=2" in page
    code, _, err = run(capsys, "report", str(tmp_path / "nope"))
    assert code == 2 and "no summary.json" in one_error_line(err)


def test_snapshots_survive_resume(tmp_path, tiny):
    from gankit.config import load_config
    from gankit.io import read_snapshots
    from gankit.runs import train

    cfg = load_config(None, tiny + ["train.snapshot_every=5"])
    train(cfg, tmp_path / "full", progress=False)
    train(cfg, tmp_path / "split", progress=False, stop_after=12)
    train(cfg, tmp_path / "split", resume=True, progress=False)
    (s1, x1), (s2, x2) = (read_snapshots(tmp_path / d / "snapshots.npz") for d in ("full",
                                                                                     "split"))
    assert s1.tolist() == s2.tolist() == [5, 10, 15, 20, 25, 30]
    assert (x1 == x2).all()
    assert oct((tmp_path / "full" / "checkpoint.pt").stat().st_mode & 0o777) != "0o600"


def test_eval_is_a_table_with_directions_and_meanings(tmp_path, tiny, capsys):
    sets = [a for s in tiny for a in ("--set", s)]
    assert run(capsys, "train", "configs/grid25-nonsaturating.toml", "--out",
               str(tmp_path / "r"), "--no-progress", *sets)[0] == 0
    code, out, _ = run(capsys, "eval", str(tmp_path / "r"))
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:] if line.startswith("  ")}
    assert "↑" in rows["modes"] and "the papers' count" in rows["modes"]
    assert "↑" in rows["well_covered_modes"] and "↓" in rows["reverse_kl"]
    # a tiny GAN is far from grid25: its MMD p-value is at the permutation test's floor
    assert "≤ 1/201 (floor)" in rows["mmd_p"]
    assert "higher is better" in out


def test_progress_without_a_terminal_is_a_line_every_5_percent(tmp_path):
    cfg = tmp_path / "ring.toml"
    cfg.write_text('[data]\nname = "ring8"\n[train]\nsteps = 200\nlog_every = 10\n'
                   'batch_size = 32\neval_samples = 200\ndevice = "cpu"\n')
    r = subprocess.run([sys.executable, "-m", "gankit", "train", str(cfg), "--out",
                        str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("step ")]
    assert [ln.split()[1] for ln in lines] == [f"{s}/200" for s in range(10, 201, 10)]
    assert "steps/s" in lines[0] and "left" in lines[0] and "loss_d" in lines[0]


def test_demo_runs_again_into_a_fresh_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    fast = ["--set", "train.steps=20", "--set", "train.snapshot_every=10", "--set",
            "train.eval_samples=200", "--set", "model.g_width=16", "--set", "model.d_width=16"]
    assert run(capsys, "demo", *fast)[0] == 0
    code, out, _ = run(capsys, "demo", *fast)
    assert code == 0 and (tmp_path / "gankit-demo-2" / "report.html").exists()
    assert "open gankit-demo-2/report.html" in out
    code, _, err = run(capsys, "demo", "--out", "gankit-demo", *fast)  # an explicit folder
    assert code == 2 and "--resume" in one_error_line(err)
    assert run(capsys, "demo", "--out", "gankit-demo", "--resume", *fast)[0] == 0


def test_config_reference_in_docs_is_fresh():
    from pathlib import Path

    from gankit.config import reference

    doc = Path(__file__).parent.parent / "docs" / "config.md"
    assert doc.read_text(encoding="utf-8") == reference() + "\n", \
        "docs/config.md is stale: run  gankit config --reference > docs/config.md"
