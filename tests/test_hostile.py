"""Hostile input, as an attacker or a careless user would give it (issue #25).

Every case asserts what docs/reliability.md promises for bad input: exit status 2 (130
for a signal), one line on stderr naming the field or file, no traceback, and nothing
written — no run directory for a run bad input never started, no file outside it. Most
cases call the command line in-process (``gankit.cli.main``); the few that need a fresh
process (signals, memory) measure its peak resident memory with ``getrusage``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from gankit.cli import main

REPO = Path(__file__).resolve().parent.parent
RING8 = str(REPO / "configs" / "ring8-nonsaturating.toml")


def files_under(root: Path) -> set[tuple[str, int]]:
    """Every file and directory under ``root`` with its size (what a command may not
    change when it refuses)."""
    return {(str(p.relative_to(root)), p.lstat().st_size if not p.is_dir() else -1)
            for p in root.rglob("*")}


def refused(argv: list[str], capsys, code: int = 2) -> str:
    """Run the command line in-process; assert it refuses with status ``code`` in one
    line and no traceback; return that line."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own refusals
        status = e.code
    _, err = capsys.readouterr()
    assert status == code, (argv, status, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gankit: error:") and "Traceback" not in err, err
    assert len(lines[0]) < 600, "a message is a line a person reads"
    return lines[0]


def refused_untouched(argv: list[str], capsys, root: Path, code: int = 2) -> str:
    """``refused``, and nothing under ``root`` (the test's whole directory) changed."""
    before = files_under(root)
    line = refused(argv, capsys, code)
    assert files_under(root) == before, "bad input wrote or removed a file"
    return line


# ---- 4. configs -------------------------------------------------------------------------

BAD_CONFIGS = {
    # TOML dates and times where numbers, strings or lists belong
    "date-seed": ("[train]\nseed = 1979-05-27\n", "train.seed"),
    "time-steps": ("[train]\nsteps = 07:32:00\n", "train.steps"),
    "datetime-z": ("[model]\nz_dim = 1979-05-27T07:32:00Z\n", "model.z_dim"),
    "local-datetime-lr": ("[train]\nlr_d = 1979-05-27T07:32:00\n", "train.lr_d"),
    "date-name": ("[data]\nname = 1979-05-27\n", "data.name"),
    "date-in-betas": ("[train]\nbetas_d = [0.5, 1979-05-27]\n", "train.betas_d"),
    "date-in-means": ("[data]\nname = 'mixture'\nmeans = [[1979-05-27]]\nstds = [1.0]\n",
                      "data.means"),
    "date-bool": ("[model]\nspectral_norm = 1979-05-27\n", "model.spectral_norm"),
    "date-unknown-key": ("[train]\nwhen = 1979-05-27\n", "train.when"),
    "date-section": ("[when]\nday = 1979-05-27\n", "when"),
    # a string (or worse) inside a numeric list
    "string-in-betas_d": ("[train]\nbetas_d = [0.5, \"x\"]\n", "train.betas_d"),
    "string-in-betas_g": ("[train]\nbetas_g = [\"x\", 0.5]\n", "train.betas_g"),
    "string-in-bandwidths": ("[objective]\nbandwidths = [1.0, \"wide\"]\n",
                             "objective.bandwidths"),
    "string-in-stds": ("[data]\nname = 'mixture'\nmeans = [[0.0]]\nstds = [\"1\"]\n",
                       "data.stds"),
    "string-in-weights": ("[data]\nweights = [1.0, \"a\"]\n", "data.weights"),
    "string-in-means": ("[data]\nmeans = [[0.0, \"y\"]]\n", "data.means"),
    "string-in-categorical": ("[infogan]\ncategorical = [10, \"x\"]\n", "infogan.categorical"),
    "table-in-betas": ("[train]\nbetas_d = [0.5, {a = 1}]\n", "train.betas_d"),
    "list-in-betas": ("[train]\nbetas_d = [0.5, [0.9]]\n", "train.betas_d"),
    "bool-in-betas": ("[train]\nbetas_d = [true, 0.9]\n", "train.betas_d"),
    # nesting, size and encoding
    "deep-arrays": ("[train]\nbetas_d = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested"),
    "deep-inline-tables": ("[train]\nx = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n",
                           "nested"),
    "deep-tables": ("[" + ".".join(["a"] * 20_000) + "]\n", ""),
    "huge-string": ("[data]\nname = \"" + "x" * 500_000 + "\"\n", "data.name"),
    "huge-key": ("[train]\n" + "k" * 100_000 + " = 1\n", "train"),
    "huge-int": ("[train]\nsteps = " + "9" * 4000 + "\n", ""),
    "not-utf8": (b"[train]\nsteps = \"\xff\xfe\"\n", "not valid TOML"),
    "nul-bytes": ("[train]\nsteps = 1\x00\n", "not valid TOML"),
    "binary": (bytes(range(256)) * 4, "not valid TOML"),
    "nan-lr": ("[train]\nlr_d = nan\n", "train.lr_d"),
    "inf-lr": ("[train]\nlr_g = inf\n", "train.lr_g"),
    "neg-inf-gp": ("[objective]\ngp_weight = -inf\n", "objective.gp_weight"),
    "array-of-tables": ("[[train]]\nsteps = 1\n", "[train]"),
    "section-is-value": ("train = 3\n", "[train]"),
    "bool-steps": ("[train]\nsteps = true\n", "train.steps"),
    "table-steps": ("[train]\nsteps = {n = 1}\n", "train.steps"),
    "float-steps": ("[train]\nsteps = 1.5\n", "train.steps"),
    "empty-betas": ("[train]\nbetas_d = []\n", "train.betas_d"),
    "negative-width": ("[model]\ng_width = -5\n", "model.g_width"),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_hostile_config_file_is_one_line(name, tmp_path, capsys):
    text, names = BAD_CONFIGS[name]
    path = tmp_path / "bad.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    line = refused_untouched(["train", path, "--out", tmp_path / "run"], capsys, tmp_path)
    assert names in line


BAD_SETS = ["train.seed=1979-05-27", "train.steps=07:32:00", "train.betas_d=[0.5, \"x\"]",
            "train.betas_g=[0.5, 1979-05-27]", "train.seed=" + "[" * 5000 + "]" * 5000,
            "train.lr_d=" + "{a=" * 3000 + "1" + "}" * 3000, "train", "=1", "train.=1",
            ".steps=1", "a.b.c=1", "train.steps=" + "9" * 5000, "data.name=" + "x" * 100_000,
            "train.betas_d=[nan, 0.9]", "model.z_dim=1e400"]


@pytest.mark.parametrize("override", BAD_SETS, ids=range(len(BAD_SETS)))
def test_hostile_override_is_one_line(override, tmp_path, capsys):
    refused_untouched(["train", RING8, "--set", override, "--out", tmp_path / "run"], capsys,
                      tmp_path)


@pytest.mark.parametrize("source", ["/dev/zero", "/dev/urandom", "big", "dir"])
def test_unbounded_config_sources_are_refused_after_a_bounded_read(source, tmp_path, capsys):
    if source == "big":
        path = tmp_path / "big.toml"
        path.write_text("# " + "x" * (2 << 20) + "\n")
    elif source == "dir":
        path = tmp_path / "dir.toml"
        path.mkdir()
    else:
        path = Path(source)
    line = refused_untouched(["train", path, "--out", tmp_path / "run"], capsys, tmp_path)
    assert str(path) in line


def test_many_problems_print_at_most_twenty_lines(tmp_path, capsys):
    path = tmp_path / "many.toml"
    path.write_text("[train]\n" + "".join(f"k{i} = 1\n" for i in range(500)))
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 20 and lines[-1] == "gankit: error: and 481 more problems"
    assert not (tmp_path / "run").exists()
