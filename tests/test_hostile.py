"""Hostile input, as an attacker or a careless user would give it (issue #25).

Every case asserts what docs/reliability.md promises for bad input: exit status 2 (130
for a signal), one line on stderr naming the field or file, no traceback, and nothing
written — no run directory for a run bad input never started, no file outside it. Most
cases call the command line in-process (``gankit.cli.main``); the few that need a fresh
process (signals, memory) measure its peak resident memory with ``getrusage``.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
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


# Peak resident memory of the whole test process (torch and every earlier test included,
# ~1 GB): getrusage's peak only grows, so no in-process case has gone past it.
IN_PROCESS_PEAK_GB = 4.0


# Every file the process opens while a case runs (an audit hook: Python's own record of
# open() calls, torch.load's and numpy's included).
_opened: list[str] | None = None


def _record_open(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], (str, bytes, Path)):
        _opened.append(os.path.abspath(os.fsdecode(args[0])))


sys.addaudithook(_record_open)
TEMP = os.path.realpath(tempfile.gettempdir())
# Python, its packages and gankit's own files may live under the temporary directory too
# (a venv in a clone under /tmp): what an import or gankit reads there is not a case's file.
INSTALLED = tuple({os.path.realpath(p) + os.sep
                   for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, REPO)})


def outside_what_was_named(opened: list[str], argv: list[str]) -> list[str]:
    """The opened files in the temporary directory (where every case's files live) that
    are not a path the command line named (an argument, or the value of a ``--set``
    such as data.path='...'), nor inside one."""
    values = [str(a) for a in argv] + [str(a).split("=", 1)[1].strip("'\"") for a in argv
                                       if "=" in str(a)]
    named = [os.path.realpath(os.path.abspath(v)) for v in values if v]
    def allowed(f: str, n: str) -> bool:
        # (inside a named path, or the temporary sibling an atomic write of it makes)
        return f == n or f.startswith(n + os.sep) or (
            os.path.dirname(f) == os.path.dirname(n)
            and os.path.basename(f).startswith("." + os.path.basename(n) + "."))

    return [f for f in map(os.path.realpath, opened) if f.startswith(TEMP + os.sep)
            and not f.startswith(INSTALLED) and not any(allowed(f, n) for n in named)]


def refused(argv: list[str], capsys, code: int = 2) -> str:
    """Run the command line in-process; assert it refuses with status ``code`` in one
    line and no traceback, opening no file of the temporary directory but those its
    arguments name, the process's peak memory still under IN_PROCESS_PEAK_GB; return
    that line."""
    global _opened
    _opened = []
    try:
        status = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own refusals
        status = e.code
    finally:
        opened, _opened = _opened, None
    _, err = capsys.readouterr()
    assert status == code, (argv, status, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gankit: error:") and "Traceback" not in err, err
    assert len(lines[0]) < 600, "a message is a line a person reads"
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # (KiB on Linux)
    assert peak_gb < IN_PROCESS_PEAK_GB, f"peak memory {peak_gb:.1f} GB after {argv}"
    assert not (stray := outside_what_was_named(opened, argv)), f"read {stray[:3]}"
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


# ---- 3, 5, 8. checkpoints ---------------------------------------------------------------

TINY_RUN = ["model.g_width=16", "model.d_width=16", "train.steps=20", "train.batch_size=32",
            "train.log_every=5", "train.checkpoint_every=10", "train.eval_samples=200",
            "train.device='cpu'"]


def settings(overrides: list[str]) -> list[str]:
    return [a for s in overrides for a in ("--set", s)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A tiny finished ring8 run (trained once per module)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", RING8, "--out", str(out), "--no-progress", *settings(TINY_RUN)]) == 0
    return out


def copy_of(run: Path, root: Path) -> Path:
    import shutil

    shutil.copytree(run, root / "run")
    return root / "run"


def first_param(state: dict, part: str = "generator") -> str:
    return next(iter(state[part]))


def rewrite(run: Path, mutate) -> None:
    """Rewrite the run's checkpoint.pt as ``mutate(state)`` returns it (tensors and plain
    data, as torch.save writes them)."""
    import torch

    path = run / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    torch.save(mutate(state), path)


def without(*keys):
    def mutate(state):
        for k in keys:
            state.pop(k)
        return state
    return mutate


def setting(key, value):
    def mutate(state):
        state[key] = value
        return state
    return mutate


def in_config(section, key, value):
    def mutate(state):
        state["config"][section][key] = value
        return state
    return mutate


def in_weights(part, change):
    """Apply ``change(tensor) -> tensor or None`` (None: drop it) to the first tensor of
    ``part``."""
    def mutate(state):
        key = first_param(state, part)
        new = change(state[part][key])
        if new is None:
            del state[part][key]
        else:
            state[part][key] = new
        return state
    return mutate


def nan_at(value):
    def change(t):
        t = t.clone()
        t.view(-1)[0] = value
        return t
    return change


def in_optimizer(change):
    def mutate(state):
        change(state["opt_g"])
        return state
    return mutate


def _two_groups(opt):
    opt["param_groups"] = opt["param_groups"] * 2


def _moment_shape(opt):
    import torch

    first = next(iter(opt["state"]))
    opt["state"][first]["exp_avg"] = torch.zeros(3, 3)


def _state_not_table(opt):
    opt["state"] = [1, 2]


def _short_rng(state):
    import torch

    state["rng"] = torch.zeros(7, dtype=torch.uint8)
    return state


def _extra_weight(state):
    import torch

    state["generator"]["intruder.weight"] = torch.zeros(2)
    return state


def _transposed(t):
    return t.T.contiguous() if t.ndim == 2 else t.unsqueeze(0)


# name -> (mutation, it is refused by: "all" = eval, sample and train --resume; "loads" =
# eval and sample (a resume refuses a changed config before it reads weights); "resume")
CHECKPOINT_MUTATIONS = {
    "no-config": (without("config"), "all"),
    "config-a-list": (setting("config", [1, 2]), "all"),
    "config-bad-width": (in_config("model", "g_width", -1), "all"),
    "config-bad-objective": (in_config("objective", "name", "vanilla"), "all"),
    "config-unknown-section": (setting("config", {"nope": {}}), "all"),
    "config-other-width": (in_config("model", "g_width", 24), "loads"),
    "config-adagan": (in_config("adagan", "components", 3), "all"),
    "no-step": (without("step"), "all"),
    "step-string": (setting("step", "10"), "all"),
    "step-float": (setting("step", 10.0), "all"),
    "step-negative": (setting("step", -1), "all"),
    "step-bool": (setting("step", True), "all"),
    "step-none": (setting("step", None), "all"),
    "no-generator": (without("generator"), "all"),
    "generator-a-list": (setting("generator", [1]), "all"),
    "generator-value-not-tensor": (in_weights("generator", lambda t: "x"), "all"),
    "generator-wrong-shape": (in_weights("generator", _transposed), "all"),
    "generator-missing-tensor": (in_weights("generator", lambda t: None), "all"),
    "generator-extra-tensor": (_extra_weight, "all"),
    "no-discriminator": (without("discriminator"), "all"),
    "discriminator-wrong-shape": (in_weights("discriminator", lambda t: t[:1]), "all"),
    "generator-nan": (in_weights("generator", nan_at(float("nan"))), "all"),
    "generator-inf": (in_weights("generator", nan_at(float("inf"))), "all"),
    "discriminator-nan": (in_weights("discriminator", nan_at(float("nan"))), "all"),
    "discriminator-neg-inf": (in_weights("discriminator", nan_at(float("-inf"))), "all"),
    "optimizer-moment-nan": (in_optimizer(lambda o: next(iter(o["state"].values()))[
        "exp_avg"].view(-1).__setitem__(0, float("nan"))), "all"),
    "lr-scale-nan": (setting("lr_scale", float("nan")), "all"),
    "lr-scale-zero": (setting("lr_scale", 0.0), "all"),
    "rollbacks-negative": (setting("rollbacks", -3), "all"),
    "ema-updates-negative": (setting("generator_ema_updates", -2), "all"),
    "ema-updates-text": (setting("generator_ema_updates", "many"), "all"),
    "wall-time-text": (setting("wall_time", "soon"), "all"),
    "format-missing": (without("format"), "all"),
    "format-other": (setting("format", "gankit-checkpoint-99"), "all"),
    "not-a-dict": (lambda state: [state["step"]], "all"),
    # only training reads these
    "no-opt-g": (without("opt_g"), "resume"),
    "no-opt-d": (without("opt_d"), "resume"),
    "optimizer-other-groups": (in_optimizer(_two_groups), "resume"),
    "optimizer-moment-shape": (in_optimizer(_moment_shape), "resume"),
    "optimizer-state-a-list": (in_optimizer(_state_not_table), "resume"),
    "optimizer-a-string": (setting("opt_g", "adam"), "resume"),
    "no-rng": (without("rng"), "resume"),
    "rng-short": (_short_rng, "resume"),
    "rng-a-string": (setting("rng", "seed"), "resume"),
    "torch-rng-a-float-tensor": (setting("torch_rng", __import__("torch").zeros(3)), "resume"),
    "no-lr-scale": (without("lr_scale"), "resume"),
    "no-rollbacks": (without("rollbacks"), "resume"),
}
COMMANDS = {
    "eval": lambda run, root: ["eval", run],
    "sample": lambda run, root: ["sample", run, "-n", "10", "--out", root / "x.npy"],
    "resume": lambda run, root: ["train", RING8, "--out", run, "--resume", "--no-progress",
                                 *settings(TINY_RUN)],
}
REFUSED_BY = {"all": list(COMMANDS), "loads": ["eval", "sample"], "resume": ["resume"]}
CHECKPOINT_CASES = [(name, command) for name, (_, refused_by) in CHECKPOINT_MUTATIONS.items()
                    for command in REFUSED_BY[refused_by]]


@pytest.mark.parametrize("name, command", CHECKPOINT_CASES)
def test_checkpoint_that_does_not_fit_is_one_line(name, command, finished_run, tmp_path,
                                                   capsys):
    run = copy_of(finished_run, tmp_path)
    rewrite(run, CHECKPOINT_MUTATIONS[name][0])
    line = refused_untouched(COMMANDS[command](run, tmp_path), capsys, tmp_path)
    assert str(run / "checkpoint.pt") in line


def test_non_finite_weights_are_named_and_never_called_good(finished_run, tmp_path, capsys):
    run = copy_of(finished_run, tmp_path)
    rewrite(run, in_weights("generator", nan_at(float("nan"))))
    line = refused(COMMANDS["resume"](run, tmp_path), capsys)
    assert "non-finite values in generator/" in line and "good" not in line


class Code:
    """Unpickling this would call ``target(*args)``."""

    def __init__(self, target, *args):
        self.target, self.args = target, args

    def __reduce__(self):
        return self.target, self.args


def _crafted(kind: str):
    import builtins
    import subprocess

    return {"os.system": Code(os.system, "touch PWNED"),
            "builtins.eval": Code(builtins.eval, "1"),
            "builtins.exec": Code(builtins.exec, "import os"),
            "subprocess.Popen": Code(subprocess.Popen, ["true"]),
            "builtins.getattr": Code(getattr, "text", "upper"),
            "builtins.__import__": Code(__import__, "os"),
            "a class of the test": Code(Code, 1)}[kind]


CRAFTED = ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
           "builtins.getattr", "builtins.__import__", "a class of the test"]


@pytest.mark.parametrize("kind", CRAFTED)
@pytest.mark.parametrize("nested", [False, True])
def test_crafted_pickle_is_refused_naming_what_it_asks_for(kind, nested, tmp_path, capsys,
                                                          monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    payload = _crafted(kind)
    torch.save({"format": "gankit-checkpoint-1", "config": {}, "step": payload} if nested
               else payload, run / "checkpoint.pt")
    line = refused_untouched(["eval", run], capsys, tmp_path)
    assert "holds code" in line and "weights_only" not in line, line
    if kind != "a class of the test":
        assert kind.split(".")[-1] in line
    assert not (tmp_path / "PWNED").exists()


BROKEN_FILES = {
    "empty": b"",
    "one-byte": b"\x00",
    "text": b"hello, I am not a checkpoint\n",
    "random": bytes((i * 7919 + 13) % 256 for i in range(4096)),
    "zip-of-garbage": b"PK\x03\x04" + b"\x00" * 200,
    "gzip": b"\x1f\x8b\x08\x00" + b"\x00" * 64,
}


@pytest.mark.parametrize("name", list(BROKEN_FILES) + ["truncated", "directory", "none"])
@pytest.mark.parametrize("command", ["eval", "sample"])
def test_broken_checkpoint_file_is_one_line(name, command, finished_run, tmp_path, capsys):
    run = copy_of(finished_run, tmp_path)
    path = run / "checkpoint.pt"
    if name == "truncated":
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    elif name == "directory":
        path.unlink()
        path.mkdir()
    elif name == "none":
        path.unlink()
    else:
        path.write_bytes(BROKEN_FILES[name])
    line = refused_untouched(COMMANDS[command](run, tmp_path), capsys, tmp_path)
    assert str(path) in line


# ---- 1, 6, 7. run directories and the report --------------------------------------------

SECRET = b"SECRET-KEY-0123456789abcdef\n"


def secret_file(root: Path) -> Path:
    path = root / "secret.txt"
    path.write_bytes(SECRET)
    return path


def _png_outside(root: Path) -> Path:
    outside = root / "outside.png"
    outside.write_bytes(b"\x89PNG\r\n\x1a\n" + SECRET)
    return outside


PICTURE_SWAPS = {  # what the picture becomes: (how, what the warning says)
    "symlink-to-secret": (lambda p, root: p.symlink_to(secret_file(root)), "symlink"),
    "symlink-to-png-outside": (lambda p, root: p.symlink_to(_png_outside(root)),
                               "symlink"),
    "symlink-to-dev-zero": (lambda p, root: p.symlink_to("/dev/zero"), "symlink"),
    "symlink-loop": (lambda p, root: p.symlink_to(p), "symlink"),
    "dangling-symlink": (lambda p, root: p.symlink_to(root / "gone.png"), "symlink"),
    "text-file": (lambda p, root: p.write_bytes(SECRET), "not a PNG"),
    "jpeg": (lambda p, root: p.write_bytes(b"\xff\xd8\xff\xe0" + SECRET), "not a PNG"),
    "empty": (lambda p, root: p.write_bytes(b""), "not a PNG"),
    "hard-link-to-secret": (lambda p, root: os.link(secret_file(root), p), "not a PNG"),
    "fifo": (lambda p, root: os.mkfifo(p), "not a regular file"),
    "directory": (lambda p, root: p.mkdir(), "not a regular file"),
}


@pytest.mark.parametrize("picture", ["samples.png", "losses.png"])
@pytest.mark.parametrize("swap", list(PICTURE_SWAPS))
def test_report_embeds_only_png_files_inside_the_run(swap, picture, finished_run, tmp_path,
                                                     capsys):
    import base64

    run = copy_of(finished_run, tmp_path)
    (run / picture).unlink()
    how, why = PICTURE_SWAPS[swap]
    how(run / picture, tmp_path)
    report = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(report)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(run / picture) in err[0] and why in err[0], err
    page = report.read_bytes()
    assert SECRET not in page and base64.b64encode(SECRET)[:24] not in page
    assert page.count(b"<img ") == 1  # the other picture still is embedded


def _write_summary(value):
    def swap(run: Path, root: Path) -> None:
        (run / "summary.json").write_text(value if isinstance(value, str) else
                                          __import__("json").dumps(value))
    return swap


def _replace(name: str, how):
    def swap(run: Path, root: Path) -> None:
        (run / name).unlink(missing_ok=True)
        how(run / name, root)
    return swap


def _npz(**arrays):
    def swap(run: Path, root: Path) -> None:
        import numpy as np

        np.savez(run / "snapshots.npz", **arrays)
    return swap


def _inflating_npz(run: Path, root: Path) -> None:
    """An .npz whose samples header claims 10¹² floats (a few hundred bytes on disk)."""
    import io
    import zipfile

    import numpy as np

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**6, 10**6)})
    steps = io.BytesIO()
    np.save(steps, np.arange(3))
    with zipfile.ZipFile(run / "snapshots.npz", "w") as z:
        z.writestr("steps.npy", steps.getvalue())
        z.writestr("samples.npy", header.getvalue() + b"\0" * 64)


RUN_FILE_DAMAGE = {
    "summary-a-list": _write_summary([1, 2, 3]),
    "summary-a-number": _write_summary(7),
    "summary-a-string": _write_summary("done"),
    "summary-null": _write_summary(None),
    "metrics-a-number": _write_summary({"metrics": 3}),
    "metrics-a-list": _write_summary({"metrics": [1, 2]}),
    "metrics-missing": _write_summary({"steps": 3}),
    "metric-a-table": _write_summary({"metrics": {"modes": {"a": 1}}}),
    "metric-nested-lists": _write_summary({"metrics": {"mode_counts": [[1], [2]]}}),
    "stderr-a-string": _write_summary({"metrics": {"modes": 1}, "metrics_stderr": "x"}),
    "stderr-a-label": _write_summary({"metrics": {"modes": 1}, "metrics_stderr": {"a": "b"}}),
    "summary-not-json": _write_summary("{metrics: oops"),
    "summary-not-utf8": lambda run, root: (run / "summary.json").write_bytes(b"\xff\xfe{}"),
    "summary-deep": _write_summary("[" * 100_000 + "]" * 100_000),
    "summary-symlink": _replace("summary.json", lambda p, root: p.symlink_to(
        secret_file(root))),
    "summary-fifo": _replace("summary.json", lambda p, root: os.mkfifo(p)),
    "summary-directory": _replace("summary.json", lambda p, root: p.mkdir()),
    "summary-missing": _replace("summary.json", lambda p, root: None),
    "config-missing": _replace("config.toml", lambda p, root: None),
    "config-symlink": _replace("config.toml", lambda p, root: p.symlink_to(
        secret_file(root))),
    "config-fifo": _replace("config.toml", lambda p, root: os.mkfifo(p)),
    "config-garbage": _replace("config.toml", lambda p, root: p.write_bytes(b"\x00\xff[[")),
    "config-bad-value": _replace("config.toml", lambda p, root: p.write_text(
        "[train]\nsteps = -1\n")),
    "snapshots-garbage": _replace("snapshots.npz", lambda p, root: p.write_bytes(SECRET)),
    "snapshots-empty": _replace("snapshots.npz", lambda p, root: p.write_bytes(b"")),
    "snapshots-no-arrays": _npz(other=__import__("numpy").zeros(2)),
    "snapshots-2d-steps": _npz(steps=__import__("numpy").zeros((2, 2), int),
                               samples=__import__("numpy").zeros((2, 5, 2), "f4")),
    "snapshots-int-samples": _npz(steps=__import__("numpy").arange(2),
                                  samples=__import__("numpy").zeros((2, 5, 2), int)),
    "snapshots-length-mismatch": _npz(steps=__import__("numpy").arange(3),
                                      samples=__import__("numpy").zeros((2, 5, 2), "f4")),
    "snapshots-4d": _npz(steps=__import__("numpy").arange(2),
                         samples=__import__("numpy").zeros((2, 5, 2, 2), "f4")),
    "snapshots-objects": _npz(steps=__import__("numpy").arange(2),
                              samples=__import__("numpy").array([{}, []], dtype=object)),
    "snapshots-inflating": _inflating_npz,
}


@pytest.mark.parametrize("damage", list(RUN_FILE_DAMAGE))
def test_malformed_run_files_are_one_line_in_report(damage, finished_run, tmp_path, capsys):
    run = copy_of(finished_run, tmp_path)
    RUN_FILE_DAMAGE[damage](run, tmp_path)
    line = refused_untouched(["report", run, "--out", tmp_path / "report.html"], capsys,
                             tmp_path)
    assert str(run) in line and "SECRET" not in line


REPORT_TARGETS = {  # where --out points, in the run: none may be overwritten
    "checkpoint": lambda run, root: run / "checkpoint.pt",
    "config": lambda run, root: run / "config.toml",
    "summary": lambda run, root: run / "summary.json",
    "metrics-log": lambda run, root: run / "metrics.jsonl",
    "a-picture": lambda run, root: run / "samples.png",
    "the-run-directory": lambda run, root: run,
    "a-text-file": lambda run, root: (root / "notes.html", (root / "notes.html").write_text(
        "<html>my notes</html>"))[0],
    "symlink-to-report": lambda run, root: _symlinked_report(run, root),
    "fifo": lambda run, root: (root / "pipe.html", os.mkfifo(root / "pipe.html"))[0],
    "missing-directory": lambda run, root: root / "nowhere" / "report.html",
}


def _symlinked_report(run: Path, root: Path) -> Path:
    assert main(["report", str(run), "--out", str(root / "real.html")]) == 0
    (root / "link.html").symlink_to(root / "real.html")
    return root / "link.html"


@pytest.mark.parametrize("target", list(REPORT_TARGETS))
def test_report_never_overwrites_what_is_not_a_report(target, finished_run, tmp_path, capsys):
    run = copy_of(finished_run, tmp_path)
    out = REPORT_TARGETS[target](run, tmp_path)
    capsys.readouterr()
    refused_untouched(["report", run, "--out", out], capsys, tmp_path)


def test_report_rewrites_a_previous_report_but_waits_for_no_writer(finished_run, tmp_path,
                                                                     capsys):
    from gankit.training.guard import run_lock

    run = copy_of(finished_run, tmp_path)
    assert main(["report", str(run), "--out", str(run / "report.html")]) == 0
    assert main(["report", str(run), "--out", str(run / "report.html")]) == 0  # a report
    capsys.readouterr()
    with run_lock(run):  # a trainer writing to the run
        line = refused(["report", run, "--out", run / "report.html"], capsys)
    assert "another gankit process" in line


# ---- 2. memory: budgets, data files ------------------------------------------------------

OVER_BUDGET = {  # settings the validator allows that no machine has the memory for
    "wide-deep-g": ["model.g_width=65536", "model.g_depth=64"],
    "wide-deep-d": ["model.d_width=65536", "model.d_depth=64"],
    "huge-batch-packed": ["train.batch_size=1000000", "tricks.pack=64"],
    "thousand-wide-seeds": ["train.seeds=1000", "model.g_width=4096", "model.d_width=4096"],
    "deep-unroll": ["tricks.unroll_steps=100", "model.d_width=8192", "model.d_depth=8"],
    "minibatch-kernels": ["tricks.minibatch_discrimination=4096",
                          "tricks.minibatch_kernel_dim=1024", "model.d_width=65536"],
    "eval-samples": ["train.eval_samples=10000000", "model.g_width=4096"],
    "wide-z": ["model.z_dim=4096", "model.g_width=65536", "model.g_depth=8"],
}


@pytest.mark.parametrize("name", list(OVER_BUDGET))
def test_a_run_past_the_memory_budget_is_refused_before_building(name, tmp_path, capsys):
    line = refused_untouched(["train", RING8, "--out", tmp_path / "run", "--memory-limit", "4",
                              *settings(OVER_BUDGET[name])], capsys, tmp_path)
    assert "more than the 4 GB budget" in line and "--memory-limit" in line
    field = OVER_BUDGET[name][0].split("=")[0]
    assert field.split(".")[1] in line or "train.seeds" in line


@pytest.mark.parametrize("command", ["eval", "sample", "resume"])
def test_a_crafted_checkpoint_asking_for_terabytes_is_refused(command, finished_run, tmp_path,
                                                              capsys):
    run = copy_of(finished_run, tmp_path)
    rewrite(run, lambda s: (s["config"]["model"].update(g_width=65536, g_depth=64), s)[1])
    argv = COMMANDS[command](run, tmp_path)
    if command == "resume":
        argv += settings(["model.g_width=65536", "model.g_depth=64"])
    line = refused_untouched(argv, capsys, tmp_path)
    assert "model.g_width" in line and "GB budget" in line


@pytest.mark.parametrize("limit", ["0", "-1", "nan", "inf", "lots", "1e9"])
def test_memory_limit_flag_is_checked(limit, tmp_path, capsys):
    refused_untouched(["train", RING8, "--out", tmp_path / "run", "--memory-limit", limit],
                      capsys, tmp_path)


@pytest.mark.parametrize("value", ["0", "-2", "x", "nan"])
def test_memory_limit_environment_is_checked(value, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANKIT_MEMORY_LIMIT_GB", value)
    assert "GANKIT_MEMORY_LIMIT_GB" in refused_untouched(
        ["train", RING8, "--out", tmp_path / "run"], capsys, tmp_path)


def test_every_shipped_config_and_the_demo_fit_a_small_budget():
    from gankit.build import build_target, estimate_memory
    from gankit.config import load_config

    paths = sorted((REPO / "configs").glob("*.toml")) + [REPO / "gankit" / "demo.toml"]
    checked = 0
    for path in paths:
        cfg = load_config(path)
        if cfg.data.path:  # (data the user generates first: the shape is known)
            continue
        assert sum(estimate_memory(cfg, build_target(cfg).shape).values()) < 2e9, path
        checked += 1
    assert checked >= 35


def _idx(dims: tuple[int, ...], payload: bytes | None = None, code: int = 0x08) -> bytes:
    import struct

    head = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    return head + (payload if payload is not None else bytes(__import__("math").prod(dims)))


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, compresslevel=9)


IDX_IMAGES = {  # train-images-idx3-ubyte(.gz) becomes:
    "zero-images": _idx((0, 28, 28)),
    "gzip-bomb": _gzip(_idx((10, 28, 28), bytes(10 * 784 + 20_000_000))),
    "header-claims-terabytes": _idx((4_000_000, 28, 28000), b""),
    "truncated": _idx((10, 28, 28), bytes(100)),
    "trailing": _idx((10, 28, 28), bytes(10 * 784 + 5)),
    "wrong-magic": b"\x01\x02\x08\x03" + bytes(100),
    "empty": b"",
    "two-bytes": b"\x00\x00",
    "no-dimensions": bytes([0, 0, 8, 0]),
    "truncated-header": bytes([0, 0, 8, 3, 0, 0]),
    "wrong-size": _idx((10, 27, 28)),
    "floats": _idx((10, 28, 28), bytes(10 * 784 * 4), code=0x0D),
    "gzip-truncated": _gzip(_idx((10, 28, 28)))[:40],
    "gzip-garbage": b"\x1f\x8b" + bytes(50),
    "labels-mismatch": _idx((11, 28, 28)),
}


@pytest.mark.parametrize("name", list(IDX_IMAGES))
def test_hostile_mnist_files_are_one_line(name, tmp_path, capsys):
    data = tmp_path / "mnist"
    data.mkdir()
    images = IDX_IMAGES[name]
    suffix = ".gz" if images[:2] == b"\x1f\x8b" else ""
    for split, (image_stem, label_stem) in (("train", ("train-images-idx3-ubyte",
                                                       "train-labels-idx1-ubyte")),
                                            ("test", ("t10k-images-idx3-ubyte",
                                                      "t10k-labels-idx1-ubyte"))):
        (data / (image_stem + suffix)).write_bytes(images if split == "train"
                                                   else _idx((10, 28, 28)))
        (data / label_stem).write_bytes(_idx((10,)))
    line = refused_untouched(["train", REPO / "configs" / "mnist5k-dcgan.toml", "--out",
                              tmp_path / "run", *settings([f"data.root='{data}'",
                                                           "data.name='mnist'"])],
                             capsys, tmp_path)
    assert str(data) in line


def _points_file(name: str, root: Path) -> Path:
    import numpy as np

    path = root / {"csv-text": "p.csv", "csv-empty": "p.csv", "wrong-suffix": "p.txt",
                   "npz-bomb": "p.npz", "npz-two": "p.npz", "npz-garbage": "p.npz",
                   "directory": "p.npy"}.get(name, "p.npy")
    if name == "dev-zero":
        path.symlink_to("/dev/zero")
    elif name == "fifo":
        os.mkfifo(path)
    elif name == "directory":
        path.mkdir()
    elif name == "csv-text":
        path.write_text("x,y\n1,2\n3,secret\n")
    elif name == "csv-empty":
        path.write_text("\n\n")
    elif name == "wrong-suffix":
        path.write_text("1,2\n")
    elif name == "npz-bomb":
        import zipfile

        header = __import__("io").BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (10**7, 10**5)})
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("x.npy", header.getvalue())
    elif name == "npz-two":
        np.savez(path, a=np.zeros((5, 2)), b=np.zeros((5, 2)))
    elif name == "npz-garbage":
        path.write_bytes(SECRET)
    elif name == "nan":
        np.save(path, np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]))
    elif name == "three-d":
        np.save(path, np.zeros((4, 2, 2)))
    elif name == "two-rows":
        np.save(path, np.zeros((2, 2)))
    elif name == "objects":
        np.save(path, np.array([{}, []], dtype=object), allow_pickle=True)
    elif name == "strings":
        np.save(path, np.array([["a", "b"]] * 4))
    elif name == "garbage":
        path.write_bytes(SECRET)
    return path


POINT_FILES = ["dev-zero", "fifo", "directory", "csv-text", "csv-empty", "wrong-suffix",
               "npz-bomb", "npz-two", "npz-garbage", "nan", "three-d", "two-rows", "objects",
               "strings", "garbage", "missing"]


@pytest.mark.parametrize("name", POINT_FILES)
def test_hostile_point_files_are_one_line(name, tmp_path, capsys):
    path = _points_file(name, tmp_path)
    refused_untouched(["train", REPO / "configs" / "points-moons.toml", "--out",
                       tmp_path / "run", *settings([f"data.path='{path}'"])], capsys, tmp_path)


# ---- 9. precision and recall with offset features ----------------------------------------

def _brute_force_precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
    """The definition, in float64, with every distance computed as ‖a − b‖ directly."""
    real, fake = real.double(), fake.double()

    def dist(a, b):
        return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1).sqrt()

    real_radii = dist(real, real).kthvalue(k + 1, dim=1).values
    fake_radii = dist(fake, fake).kthvalue(k + 1, dim=1).values
    return (float((dist(fake, real) <= real_radii).any(1).double().mean()),
            float((dist(real, fake) <= fake_radii).any(1).double().mean()))


@pytest.mark.parametrize("offset", [0.0, 300.0, -1000.0, 5000.0])
@pytest.mark.parametrize("dim", [8, 64])
def test_precision_recall_agree_with_float64_brute_force_at_any_offset(offset, dim):
    import torch

    from gankit.metrics.images import precision_recall

    g = torch.Generator().manual_seed(dim)
    real = torch.randn(600, dim, generator=g) + offset
    fake = torch.randn(600, dim, generator=g) * 1.1 + 0.2 + offset
    # chunk 7: many chunks, each a different slice of the same distances
    assert precision_recall(real, fake, chunk=7) == _brute_force_precision_recall(real, fake)


# ---- 8. smaller ones: run paths, full disks, leftovers -----------------------------------

@pytest.mark.parametrize("name", ["$x^{$", "r$\\frac{", "$$", "a_b$^$", "%d$"])
def test_a_run_path_with_dollars_is_plain_text_in_pictures(name, finished_run, tmp_path,
                                                          capsys):
    import shutil

    run = tmp_path / name
    shutil.copytree(finished_run, run)
    assert main(["sample", str(run), "-n", "50", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes().startswith(b"\x89PNG")


def _disk_full(*args):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("command", ["train", "sample", "report"])
def test_a_full_disk_names_the_file(command, finished_run, tmp_path, capsys, monkeypatch):
    run = copy_of(finished_run, tmp_path)
    argv = {"train": ["train", RING8, "--out", tmp_path / "new", *settings(TINY_RUN)],
            "sample": ["sample", run, "-n", "10", "--out", tmp_path / "x.npy"],
            "report": ["report", run, "--out", tmp_path / "r.html"]}[command]
    monkeypatch.setattr(os, "fsync", _disk_full)
    line = refused_untouched(argv, capsys, tmp_path)
    assert "No space left on device" in line and str(tmp_path) in line


@pytest.mark.parametrize("problem", [
    ["semisupervised.labels_per_class=1000"],  # more labels than the data has: found in start
    ["train.precision='bfloat16'"],  # a CUDA option on the CPU: found once the device is known
])
def test_bad_input_found_after_the_run_directory_exists_leaves_nothing(problem, tmp_path,
                                                                       capsys):
    refused_untouched(["train", REPO / "configs" / "mnist5k-ssl.toml", "--out",
                       tmp_path / "run", *settings(["data.name='digits'", *problem])],
                      capsys, tmp_path)


# ---- signals and peak memory, in fresh processes ------------------------------------------

PEAK_BOUND = 1_200_000_000  # bytes: torch and gankit take ~0.4 GB; a refusal adds little


def peak_run(args: list[str], timeout: float = 120, signal_after: float | None = None
             ) -> tuple[int, str, int]:
    """(status, stderr, peak resident bytes) of ``python -m gankit ARGS`` run by a small
    wrapper process, whose children's ``getrusage`` is this command's alone."""
    import subprocess
    import sys

    wrapper = (
        "import resource, signal, subprocess, sys, time\n"
        "p = subprocess.Popen(sys.argv[2:], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)\n"
        "delay = float(sys.argv[1])\n"
        "if delay >= 0:\n"
        "    time.sleep(delay); p.send_signal(signal.SIGINT)\n"
        "err = p.communicate()[1]\n"
        "sys.stderr.buffer.write(err)\n"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", wrapper, str(-1 if signal_after is None
                                                          else signal_after),
                        sys.executable, "-m", "gankit", *map(str, args)],
                       capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    status, peak = map(int, r.stdout.split())
    return status, r.stderr, peak


def one_line_refusal(status: int, err: str, code: int = 2) -> str:
    lines = err.strip().splitlines()
    assert status == code and len(lines) == 1 and "Traceback" not in err, (status, err)
    return lines[0]


@pytest.mark.parametrize("delay", [0.3, 1.0, 2.0])
def test_ctrl_c_at_start_up_is_one_line_and_130(delay, tmp_path):
    status, err, _ = peak_run(["train", RING8, "--out", tmp_path / "run", "--no-progress"],
                              signal_after=delay)
    line = one_line_refusal(status, err, code=130)
    assert line.startswith("gankit: interrupted")
    # nothing kept of a run that never checkpointed
    assert not (tmp_path / "run").exists() or (tmp_path / "run" / "checkpoint.pt").exists()


def test_terabyte_checkpoint_config_is_refused_in_bounded_memory(finished_run, tmp_path):
    run = copy_of(finished_run, tmp_path)
    rewrite(run, lambda s: (s["config"]["model"].update(g_width=65536, g_depth=64), s)[1])
    status, err, peak = peak_run(["eval", run])
    assert "model.g_width" in one_line_refusal(status, err) and peak < PEAK_BOUND, peak


def test_dev_zero_config_is_refused_in_bounded_memory(tmp_path):
    status, err, peak = peak_run(["train", "/dev/zero", "--out", tmp_path / "run"])
    assert "/dev/zero" in one_line_refusal(status, err) and peak < PEAK_BOUND, peak
    assert not (tmp_path / "run").exists()


def test_gzip_bomb_is_refused_in_bounded_memory(tmp_path):
    data = tmp_path / "mnist"
    data.mkdir()
    # 2 GB of zeros in 2 MB: gzip members may follow one another, each inflating 16 MB
    zeros = _gzip(bytes(16 << 20))
    (data / "train-images-idx3-ubyte.gz").write_bytes(_gzip(_idx((10, 28, 28))) + zeros * 128)
    (data / "train-labels-idx1-ubyte").write_bytes(_idx((10,)))
    status, err, peak = peak_run(["train", REPO / "configs" / "mnist5k-dcgan.toml", "--out",
                                  tmp_path / "run", "--set", f"data.root='{data}'", "--set",
                                  "data.name='mnist'"])
    assert "trailing bytes" in one_line_refusal(status, err) and peak < PEAK_BOUND, peak


def test_coverage_of_8000_samples_takes_linear_memory(tmp_path):
    """The n × n distance matrix at 8,000 samples alone was 0.5 GB (1.5 GB or more with
    its temporaries, on ~0.3 GB of torch); chunked, the whole process stays under the
    bound (~0.37 GB measured)."""
    import subprocess
    import sys

    code = ("import torch\n"
            "from gankit.data.mixtures import mixture\n"
            "from gankit.metrics.modes import coverage\n"
            "t = mixture('grid25')\n"
            "x = t.sample(8000, torch.Generator().manual_seed(0))\n"
            "c = coverage(x, t)\n"
            "assert 0.9 < c <= 1.0, c\n"
            # VmHWM: this process image's own peak (getrusage's would include the peak
            # of the pytest worker it was forked from: Linux keeps it across exec)
            "print(next(int(line.split()[1]) * 1024 for line in open('/proc/self/status')\n"
            "           if line.startswith('VmHWM:')))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "PYTHONPATH": str(REPO),
                                         "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) < PEAK_BOUND, int(r.stdout)


# ---- fuzzed checkpoints --------------------------------------------------------------------

def _fuzzed_value():
    from hypothesis import strategies as st

    return st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                     st.floats(allow_nan=True), st.text(max_size=8),
                     st.lists(st.integers(-3, 3), max_size=3),
                     st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


def test_fuzzed_checkpoints_load_or_are_one_line(finished_run, tmp_path_factory):
    """Any top-level key of a checkpoint, or a key of its config, set to any plain value:
    ``eval`` works or refuses in one line, never a traceback."""
    import contextlib
    import io

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    keys = ["step", "config", "generator", "discriminator", "lr_scale", "rollbacks",
            "wall_time", "format", "meta", "generator_ema"]
    sections = {"model": ["g_width", "z_dim", "generator"], "train": ["seed", "eval_samples"],
                "data": ["name", "means"], "objective": ["name"]}
    config_keys = [(s, k) for s, ks in sections.items() for k in ks]

    @settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 25)), deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.tuples(st.sampled_from(keys), _fuzzed_value()),
                     st.tuples(st.sampled_from(config_keys), _fuzzed_value())))
    def check(change):
        run = copy_of(finished_run, tmp_path_factory.mktemp("fuzz"))
        where, value = change

        def mutate(state):
            if isinstance(where, tuple):
                state["config"][where[0]][where[1]] = value
            else:
                state[where] = value
            return state

        rewrite(run, mutate)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(["eval", str(run)])
        lines = err.getvalue().strip().splitlines()
        assert status in (0, 2) and "Traceback" not in err.getvalue(), err.getvalue()
        if status == 2:
            assert len(lines) == 1 and str(run / "checkpoint.pt") in lines[0], lines

    check()
