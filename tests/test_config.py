import pytest

from gankit.config import Config, apply_overrides, load_config, parse_override
from gankit.errors import GankitError


def test_defaults_round_trip_through_toml(tmp_path):
    cfg = Config()
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    assert load_config(path) == cfg


def test_overrides_are_typed():
    cfg = load_config(None, ["train.lr_d=3e-4", "data.name=ring8", "train.betas_g=[0.0, 0.9]",
                             "train.steps=7", "objective.name='hinge'"])
    assert cfg.train.lr_d == 3e-4 and cfg.data.name == "ring8" and cfg.train.steps == 7
    assert cfg.train.betas_g == [0.0, 0.9] and cfg.objective.name == "hinge"
    assert isinstance(load_config(None, ["train.lr_g=1"]).train.lr_g, float)


def test_every_wrong_field_is_reported_one_line_each():
    raw = {"data": {"name": "grid26"},
           "model": {"z_dim": 0, "activation": "swish", "g_width": "wide"},
           "objective": {"name": "vanilla"},
           "tricks": {"pack": 0},
           "train": {"lr_d": -1, "lr_g": 0, "steps": 1.5, "betas_d": [0.5, 1.0],
                     "device": "tpu", "stpes": 3}}
    with pytest.raises(GankitError) as e:
        apply_overrides(raw, [])
    lines = str(e.value).splitlines()
    assert len(lines) == 12
    for field in ("data.name", "model.z_dim", "model.activation", "model.g_width",
                  "objective.name", "tricks.pack", "train.lr_d", "train.lr_g", "train.steps",
                  "train.betas_d", "train.device"):
        assert any(line.startswith(field + ":") for line in lines), field
    assert "train.stpes: unknown key; did you mean 'steps'?" in lines


def test_unknown_section_suggests():
    with pytest.raises(GankitError, match=r"unknown section \[trian\]; did you mean 'train'"):
        apply_overrides({"trian": {}}, [])


def test_bad_override_syntax_and_files(tmp_path):
    with pytest.raises(GankitError, match="section.key=value"):
        parse_override("steps=3")
    with pytest.raises(GankitError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nsteps = ")
    with pytest.raises(GankitError, match="not valid TOML"):
        load_config(bad)


def test_booleans_are_not_numbers():
    with pytest.raises(GankitError, match="train.steps: expected an integer"):
        load_config(None, ["train.steps=true"])
    with pytest.raises(GankitError, match="train.lr_d: expected a finite number"):
        load_config(None, ["train.lr_d=nan"])


def test_a_config_with_every_field_wrong_reports_every_field():
    raw: dict = {}
    cfg = Config()
    for section, values in cfg.to_dict().items():
        raw[section] = {key: {"nested": "table"} for key in values}
    with pytest.raises(GankitError) as e:
        apply_overrides(raw, [])
    lines = str(e.value).splitlines()
    expected = [f"{s}.{k}" for s, values in cfg.to_dict().items() for k in values]
    assert len(lines) == len(expected) > 25
    for where, line in zip(expected, lines):
        assert line.startswith(where + ": expected") or line.startswith(where + ": got"), line


def test_every_shipped_config_is_valid():
    from pathlib import Path

    configs = sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.toml"))
    assert len(configs) >= 20
    for path in configs:
        load_config(path)
    load_config(Path(__file__).parent.parent / "gankit" / "demo.toml")
