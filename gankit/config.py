"""TOML configs → typed dataclasses, with ``--set section.key=value`` overrides.

Every field is type- and range-checked when the config is read, before any work starts;
all problems are reported together, one line each, and an unknown key gets a
"did you mean" suggestion.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from gankit.data import DATASETS
from gankit.errors import GankitError
from gankit.losses.mmd import DEFAULT_BANDWIDTHS, KERNELS
from gankit.losses.objectives import OBJECTIVES
from gankit.nets import NETWORKS
from gankit.nets.mlp import ACTIVATIONS, LATENT_DISTRIBUTIONS
from gankit.rules import combination_problems

__all__ = ["spec", "DataConfig", "ModelConfig", "ObjectiveConfig", "TricksConfig",
           "TrainConfig", "AdaGANConfig", "InfoGANConfig", "SemiSupervisedConfig", "Config",
           "SECTIONS", "from_dict", "parse_override", "load_config", "apply_overrides",
           "to_toml"]


def spec(default: Any, **rules: Any) -> Any:
    """A dataclass field with validation rules: ``choices``, ``min``, ``max``, ``gt``, ``lt``."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=rules)
    return field(default=default, metadata=rules)


@dataclass
class DataConfig:
    name: str = spec("grid25", choices=DATASETS)  # (live: a registered dataset is allowed)
    root: str = spec("")  # mnist: the directory of the IDX files ("" = none)
    source: str = spec("mnist5k", choices=("mnist5k", "mnist"))  # stacked-mnist's digits


@dataclass
class ModelConfig:
    generator: str = spec("mlp", choices=NETWORKS)  # dcgan: image data
    discriminator: str = spec("mlp", choices=NETWORKS)
    z_dim: int = spec(2, min=1, max=4096)
    z_dist: str = spec("normal", choices=LATENT_DISTRIBUTIONS)
    g_width: int = spec(128, min=1, max=65536)
    g_depth: int = spec(2, min=1, max=64)
    d_width: int = spec(128, min=1, max=65536)
    d_depth: int = spec(2, min=1, max=64)
    activation: str = spec("relu", choices=tuple(ACTIVATIONS))
    # dcgan only: a fully connected hidden layer of this width after D's convolutions and
    # before G's projection (InfoGAN's MNIST networks use 1024; 0 = none), and batch norm
    # in D (after its second convolution and that layer; InfoGAN's D and Q have it)
    d_hidden: int = spec(0, min=0, max=65536)
    g_hidden: int = spec(0, min=0, max=65536)
    d_norm: str = spec("none", choices=("none", "batch"))


@dataclass
class ObjectiveConfig:
    name: str = spec("nonsaturating", choices=OBJECTIVES)
    gp_weight: float = spec(10.0, min=0.0)
    weight_clip: float = spec(0.0, min=0.0)  # c: D's weights clamped to [−c, c]; 0 = off
    # gmmn and mmd-gan: the kernel, its bandwidths σ (gaussian) or shapes α (rational
    # quadratic), and mmd-gan's embedding size (D's outputs)
    kernel: str = spec("gaussian", choices=KERNELS)
    bandwidths: list[float] = spec(list(DEFAULT_BANDWIDTHS), gt=0.0)
    embedding_dim: int = spec(16, min=1, max=65536)
    autoencoder_weight: float = spec(0.0, min=0.0)  # mmd-gan: λ of D's decoder; 0 = none


@dataclass
class TricksConfig:
    """Mode-collapse remedies; each composes with every objective (see README)."""

    unroll_steps: int = spec(0, min=0, max=100)
    pack: int = spec(1, min=1, max=64)
    minibatch_discrimination: int = spec(0, min=0, max=4096)  # kernels B; 0 = off
    minibatch_kernel_dim: int = spec(5, min=1, max=1024)  # C
    feature_matching: bool = spec(False)
    label_smoothing: float = spec(0.0, min=0.0, lt=1.0)  # one-sided: real target 1 − α
    historical_averaging: float = spec(0.0, min=0.0)  # λ; 0 = off
    virtual_batch_norm: bool = spec(False)
    generator_ema: float = spec(0.0, min=0.0, lt=1.0)  # β of the weight average; 0 = off
    vbn_reference_size: int = spec(64, min=1, max=65536)


@dataclass
class TrainConfig:
    steps: int = spec(20000, min=1)
    batch_size: int = spec(512, min=1, max=1_000_000)
    d_steps: int = spec(1, min=1, max=100)
    lr_d: float = spec(1e-4, gt=0.0, max=10.0)
    lr_g: float = spec(1e-3, gt=0.0, max=10.0)
    lr_schedule: str = spec("constant", choices=("constant", "linear"))
    betas_d: list[float] = spec([0.5, 0.999], length=2, min=0.0, lt=1.0)
    betas_g: list[float] = spec([0.5, 0.999], length=2, min=0.0, lt=1.0)
    seed: int = spec(0, min=0, max=2**62)  # room for the offsets added to seeds
    seeds: int = spec(1, min=1, max=1000)  # > 1: seeds seed, seed+1, ... trained together
    device: str = spec("auto", pattern=r"auto|cpu|cuda(:\d+)?|mps")
    log_every: int = spec(100, min=1)
    checkpoint_every: int = spec(1000, min=1)
    eval_samples: int = spec(2500, min=1, max=10_000_000)
    snapshot_every: int = spec(0, min=0)  # fixed-z samples for the report's slider; 0 = off
    compile: bool = spec(False)  # torch.compile both networks
    precision: str = spec("float32", choices=("float32", "bfloat16"))  # bfloat16: CUDA autocast
    channels_last: bool = spec(False)  # convolutional networks in channels-last layout (CUDA)
    on_nan: str = spec("stop", choices=("stop", "rollback"))
    max_rollbacks: int = spec(3, min=0, max=100)


@dataclass
class AdaGANConfig:
    """AdaGAN boosting (gankit.variants.adagan): components > 1 turns it on."""

    components: int = spec(1, min=1, max=100)  # T components of train.steps steps each
    beta: float = spec(0.0, min=0.0, lt=1.0)  # each new component's weight; 0 = 1/t
    train_points: int = spec(20000, min=2, max=10_000_000)  # mixtures: the reweighted set
    classifier_steps: int = spec(1000, min=1)  # the data-vs-mixture D behind the weights


@dataclass
class InfoGANConfig:
    """InfoGAN codes (gankit.variants.infogan): any categorical or continuous code turns
    it on."""

    categorical: list[int] = spec([], min=2, max=1000, ints=True)  # K of each code
    continuous: int = spec(0, min=0, max=64)  # codes uniform on [−1, 1]
    weight: float = spec(1.0, min=0.0)  # λ of the mutual-information term
    continuous_weight: float = spec(0.1, min=0.0)  # its continuous codes' share
    q_width: int = spec(128, min=1, max=65536)  # hidden width of the Q head
    fixed_std: bool = spec(False)  # continuous codes: Q's Gaussian has unit variance (mean only)


@dataclass
class SemiSupervisedConfig:
    """The (K+1)-class semi-supervised GAN (gankit.variants.semisupervised):
    labels_per_class > 0 turns it on."""

    labels_per_class: int = spec(0, min=0, max=1_000_000)  # 10: 100 labels on 10 classes
    input_noise: float = spec(0.0, min=0.0)  # σ of Gaussian noise on D's inputs (training)
    hidden_noise: float = spec(0.0, min=0.0)  # σ of the noise on D's hidden activations


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    tricks: TricksConfig = field(default_factory=TricksConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    adagan: AdaGANConfig = field(default_factory=AdaGANConfig)
    infogan: InfoGANConfig = field(default_factory=InfoGANConfig)
    semisupervised: SemiSupervisedConfig = field(default_factory=SemiSupervisedConfig)

    @property
    def infogan_on(self) -> bool:
        return bool(self.infogan.categorical or self.infogan.continuous)

    @property
    def semisupervised_on(self) -> bool:
        return self.semisupervised.labels_per_class > 0

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        return to_toml(self.to_dict())


SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(Config)}


def _number_ok(v: Any, kind: type) -> bool:
    if isinstance(v, bool):
        return False
    if kind is int:
        return isinstance(v, int)
    return isinstance(v, (int, float)) and math.isfinite(v)


def _range_problem(v: Any, rules: dict[str, Any]) -> str | None:
    """What ``v`` should be, if it is out of the field's range."""
    for key, text, bad in (("min", ">=", lambda r: v < r), ("gt", ">", lambda r: v <= r),
                           ("max", "<=", lambda r: v > r), ("lt", "<", lambda r: v >= r)):
        if key in rules and bad(rules[key]):
            return f"{text} {rules[key]}"
    return None


def _check_number(where: str, value: Any, kind: type, rules: dict[str, Any]) -> str | None:
    what = "an integer" if kind is int else "a number"
    if not _number_ok(value, kind):
        return f"{where}: expected {'an integer' if kind is int else 'a finite number'}, " \
               f"got {value!r}"
    bad = _range_problem(value, rules)
    return f"{where}: expected {what} {bad}, got {value!r}" if bad else None


def _check_string(where: str, value: Any, rules: dict[str, Any]) -> str | None:
    if not isinstance(value, str):
        return f"{where}: expected a string, got {value!r}"
    if "choices" in rules and value not in rules["choices"]:
        return f"{where}: got {value!r}; allowed: {', '.join(rules['choices'])}"
    if "pattern" in rules and not re.fullmatch(rules["pattern"], value):
        return f"{where}: got {value!r}; allowed: {rules['pattern'].replace('|', ', ')}"
    return None


def _check_list(where: str, value: Any, rules: dict[str, Any]) -> str | None:
    n, kind = rules.get("length"), int if rules.get("ints") else float
    what = "integers" if kind is int else "numbers"
    # a list of integers may be empty (no codes); one of numbers has one or more
    if not isinstance(value, list) or (n is not None and len(value) != n) \
            or (not value and kind is float):
        size = n or ("" if kind is int else "one or more")
        return f"{where}: expected a list of {size} {what}, got {value!r}".replace("  ", " ")
    for v in value:
        if not _number_ok(v, kind) or _range_problem(v, rules):
            return f"{where}: expected {what} {_range_problem(v, rules) or 'finite'}, " \
                   f"got {value!r}"
    return None


def _check_value(where: str, value: Any, ftype: Any, rules: dict[str, Any]) -> str | None:
    """One problem with ``value`` for a field of type ``ftype``, or None if it is fine."""
    tname = getattr(ftype, "__name__", str(ftype))
    if tname == "bool":
        return None if isinstance(value, bool) else \
            f"{where}: expected true or false, got {value!r}"
    if tname in ("int", "float"):
        return _check_number(where, value, int if tname == "int" else float, rules)
    if tname == "str":
        return _check_string(where, value, rules)
    if str(ftype).startswith("list"):
        return _check_list(where, value, rules)
    raise TypeError(f"unsupported field type {ftype!r}")  # a bug in gankit, not user input


def _name(text: str) -> str:
    """A section or key as written in a message: quoted when not a plain identifier."""
    return text if re.fullmatch(r"[A-Za-z_][\w-]*", text) else repr(text)


def _suggest(name: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(name, allowed, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"


def from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    """Build and validate a Config from nested dicts; raise one GankitError naming all problems."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise GankitError(f"{source}: expected a table of sections, got {raw!r}")
    sections: dict[str, Any] = {}
    for sname, svalue in raw.items():
        if sname not in SECTIONS:
            problems.append(
                f"{source}: unknown section [{_name(sname)}]" + _suggest(sname, list(SECTIONS))
            )
            continue
        if not isinstance(svalue, dict):
            problems.append(f"{source}: [{sname}] must be a table, got {svalue!r}")
            continue
        cls = SECTIONS[sname]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in svalue.items():
            where = f"{sname}.{_name(key)}"
            if key not in fields:
                problems.append(f"{where}: unknown key" + _suggest(key, list(fields)))
                continue
            f = fields[key]
            problem = _check_value(where, value, f.type, dict(f.metadata))
            if problem:
                problems.append(problem)
            else:
                kwargs[key] = float(value) if f.type in ("float", float) else value
        sections[sname] = cls(**kwargs)
    if problems:
        raise GankitError("\n".join(problems))
    cfg = Config(**sections)
    problems = combination_problems(cfg)
    if problems:
        raise GankitError("\n".join(problems))
    return cfg


def parse_override(text: str) -> tuple[str, str, Any]:
    """``section.key=value`` → (section, key, value); the value is read as TOML, else a string."""
    m = re.fullmatch(r"\s*([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)\s*=(.*)", text, flags=re.S)
    if not m:
        raise GankitError(f"--set: expected section.key=value, got {text!r}")
    section, key, raw = m.group(1), m.group(2), m.group(3).strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return section, key, value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a TOML config (or the defaults when ``path`` is None) and apply overrides."""
    raw: dict[str, Any] = {}
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GankitError(f"{path}: config file not found") from None
        except IsADirectoryError:
            raise GankitError(f"{path}: is a directory, expected a TOML config file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise GankitError(f"{path}: not valid TOML ({e})") from None
    return apply_overrides(raw, overrides or [], source)


def apply_overrides(raw: dict[str, Any], overrides: list[str], source: str = "config") -> Config:
    raw = json.loads(json.dumps(raw))  # deep copy of plain data
    for text in overrides:
        section, key, value = parse_override(text)
        target = raw.setdefault(section, {})
        if not isinstance(target, dict):
            raise GankitError(f"--set {text}: [{section}] is not a table")
        target[key] = value
    return from_dict(raw, source)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(data: dict[str, dict[str, Any]]) -> str:
    """Write a two-level dict of scalars and lists as TOML (enough for configs)."""
    lines: list[str] = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
        lines.append("")
    return "\n".join(lines)
