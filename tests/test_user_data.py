"""Data a user brings, from the command line: vectors in .npy / .csv, a mixture written in
the TOML, a folder of PNGs with class sub-folders, an .npz of grayscale images; and bad
files, each refused in one line with nothing written."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from gankit.cli import main

FAST = ["--set", "train.steps=20", "--set", "train.batch_size=16", "--set",
        "train.log_every=10", "--set", "train.eval_samples=200", "--set", "model.g_width=16",
        "--set", "model.d_width=16", "--set", "train.device='cpu'", "--no-progress"]


def config(tmp_path, text: str):
    path = tmp_path / "user.toml"
    path.write_text(text)
    return str(path)


def train(tmp_path, text: str, capsys, *extra):
    code = main(["train", config(tmp_path, text), "--out", str(tmp_path / "run"), *FAST,
                 *extra])
    out, err = capsys.readouterr()
    return code, out, err


def moons(n=300):
    t = np.random.default_rng(0).uniform(0, np.pi, n)
    upper = np.stack([np.cos(t), np.sin(t)], 1)
    return np.concatenate([upper, 1 - upper - [0, 0.5]]).astype(np.float32)


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_points_from_a_file_train_and_are_scored_against_their_held_out_split(
        tmp_path, capsys, suffix):
    x = moons()
    path = tmp_path / f"moons{suffix}"
    if suffix == ".npy":
        np.save(path, x)
    else:
        np.savetxt(path, x, delimiter=",", header="a,b", comments="")
    code, out, err = train(tmp_path, f'[data]\nname = "points"\npath = "{path}"\n', capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    m = summary["metrics"]
    assert m["held_out"] == 120 and 0 <= m["c2st_accuracy"] <= 1 and "mmd2" in m
    assert "num_modes" not in m  # never scored against a built-in target
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["data"]["train"] == 480 and run["data"]["test"] == 120
    assert len(run["data"]["sha256"]) == 64
    code = main(["eval", str(tmp_path / "run")])
    out, _ = capsys.readouterr()
    assert code == 0 and "real floor" in out and "c2st_accuracy" in out


def test_a_mixture_written_in_the_config_gets_the_mode_metrics(tmp_path, capsys):
    text = ('[data]\nname = "mixture"\nmeans = [[0, 0], [3, 0], [0, 3], [3, 3]]\n'
            'stds = [0.1]\nweights = [1, 1, 1, 2]\n')
    code, out, err = train(tmp_path, text, capsys)
    assert code == 0, err
    m = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    assert m["num_modes"] == 4 and len(m["mode_counts"]) == 4


def test_a_folder_of_16x16_rgb_pngs_in_two_class_folders(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for k, colour in enumerate(([200, 40, 40], [40, 40, 200])):
        (tmp_path / "pngs" / f"class{k}").mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(colour + rng.normal(0, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "pngs" / f"class{k}" / f"{i}.png")
    text = (f'[data]\nname = "images"\npath = "{tmp_path / "pngs"}"\n'
            '[model]\ngenerator = "dcgan"\ndiscriminator = "dcgan"\nz_dim = 8\n')
    code, out, err = train(tmp_path, text, capsys)
    assert code == 0, err
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["data"]["classes"] == ["class0", "class1"] and run["data"]["shape"] == [3, 16, 16]
    m = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    # two class folders: the features are those of a classifier of the user's labels
    assert m["features"].startswith("classifier of your 2 classes") and m["fd"] >= 0
    assert m["held_out"] == 5


def test_an_npz_of_grayscale_images(tmp_path, capsys):
    x = (np.random.default_rng(1).random((40, 12, 20)) * 255).astype(np.uint8)
    np.savez(tmp_path / "gray.npz", x=x)
    text = (f'[data]\nname = "images"\npath = "{tmp_path / "gray.npz"}"\n'
            '[model]\ngenerator = "dcgan"\ndiscriminator = "dcgan"\nz_dim = 8\n')
    code, _, err = train(tmp_path, text, capsys)
    assert code == 0, err
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["data"]["shape"] == [1, 12, 20]
    m = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    assert m["features"] == "random CNN (seed 0)"  # no labels: the fixed random features


def bad_inputs(tmp_path):
    """(name, config text, expected words of the one-line error)."""
    d = tmp_path
    np.save(d / "rank3.npy", np.zeros((4, 2, 2)))
    np.save(d / "nan.npy", np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0], [2.0, 2.0]]))
    (d / "text.csv").write_text("a,b\n1,2\n3,banana\n4,5\n")
    (d / "garbage.npy").write_bytes(b"\x93NUMPY not really")
    (d / "mixed").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(d / "mixed" / "a.png")
    Image.fromarray(np.zeros((8, 12), np.uint8)).save(d / "mixed" / "b.png")
    (d / "empty").mkdir()
    (d / "notes").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(d / "notes" / "a.png")
    (d / "notes" / "readme.txt").write_text("hello")
    return [
        ("missing", f'[data]\nname = "points"\npath = "{d / "nope.npy"}"\n', "not found"),
        ("rank", f'[data]\nname = "points"\npath = "{d / "rank3.npy"}"\n', "(N, d)"),
        ("nan", f'[data]\nname = "points"\npath = "{d / "nan.npy"}"\n', "NaN"),
        ("text", f'[data]\nname = "points"\npath = "{d / "text.csv"}"\n', "'banana'"),
        ("garbage", f'[data]\nname = "points"\npath = "{d / "garbage.npy"}"\n',
         "not a readable"),
        ("mixed", f'[data]\nname = "images"\npath = "{d / "mixed"}"\n', "b.png: 12x8"),
        ("empty", f'[data]\nname = "images"\npath = "{d / "empty"}"\n', "empty folder"),
        ("not image", f'[data]\nname = "images"\npath = "{d / "notes"}"\n', "readme.txt"),
        ("no path", '[data]\nname = "points"\n', "data.path"),
        ("stds", '[data]\nname = "mixture"\nmeans = [[0, 0], [1, 1]]\nstds = [0.1, 0.2, 0.3]\n',
         "data.stds"),
        ("path on a preset", '[data]\nname = "grid25"\npath = "x.npy"\n', "data.path"),
    ]


def test_bad_files_exit_2_with_one_line_and_nothing_written(tmp_path, capsys):
    for name, text, words in bad_inputs(tmp_path):
        code, out, err = train(tmp_path, text, capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (name, err)
        assert words in lines[0] and "Traceback" not in err, (name, lines[0])
        assert not (tmp_path / "run").exists(), name


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.binary(max_size=300).map(lambda b: ("blob.npy", b)),
    st.binary(max_size=300).map(lambda b: ("blob.npz", b)),
    st.text(max_size=200).map(lambda t: ("blob.csv", t.encode())),
    st.lists(st.lists(st.one_of(st.floats(allow_nan=True), st.text(max_size=3)), min_size=1,
                      max_size=3), max_size=5)
    .map(lambda rows: ("rows.csv", "\n".join(",".join(map(str, r)) for r in rows).encode()))))
@example(("rows.csv", b"0.0,0.0\n0.0,0.0\n0.0,0.0"))  # (found by it: one held-out point)
def test_fuzzed_files_never_crash(tmp_path_factory, capsys, case):
    tmp = tmp_path_factory.mktemp("fuzz")
    name, content = case
    (tmp / name).write_bytes(content)
    code = main(["train", config(tmp, f'[data]\nname = "points"\npath = "{tmp / name}"\n'),
                 "--out", str(tmp / "run"), *FAST])
    out, err = capsys.readouterr()
    if code == 0:  # (a valid file by chance: it trained)
        return
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp / "run").exists()


def test_theory_views_on_a_users_mixture(tmp_path, capsys):
    path = config(tmp_path, '[data]\nname = "mixture"\nmeans = [[0, 0], [3, 0], [0, 3]]\n'
                            'stds = [0.1, 0.2, 0.1]\n')
    assert main(["theory", "--quick", "--json", "--mixture", path]) == 0
    r = json.loads(capsys.readouterr()[0])["ring8"]  # (the mixture section)
    assert r["p"] == path
    v = r["max_d_value"]  # a D trained on samples reaches −2 log 2 + 2 JSD of the exact p, q
    assert abs(v["estimate"] - v["exact"]) < 0.05
    (tmp_path / "user.toml").write_text('[data]\nname = "points"\npath = "x.npy"\n')
    assert main(["theory", "--quick", "--mixture", str(tmp_path / "user.toml")]) == 2
    assert "not a mixture" in capsys.readouterr()[1]
