"""TOML configs → typed dataclasses, with ``--set section.key=value`` overrides.

Every field is type- and range-checked when the config is read, before any work starts;
all problems are reported together, one line each, and an unknown key gets a
"did you mean" suggestion.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import re
import reprlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from gankit import io
from gankit.data import DATASETS
from gankit.errors import GankitError
from gankit.losses.mmd import DEFAULT_BANDWIDTHS, KERNELS
from gankit.losses.objectives import OBJECTIVES
from gankit.nets import NETWORKS
from gankit.nets.mlp import ACTIVATIONS, LATENT_DISTRIBUTIONS
from gankit.rules import combination_problems

__all__ = ["spec", "DataConfig", "ModelConfig", "ObjectiveConfig", "TricksConfig",
           "TrainConfig", "AdaGANConfig", "InfoGANConfig", "SemiSupervisedConfig",
           "ConditionalConfig", "Config",
           "SECTIONS", "changed_options", "from_dict", "parse_override", "load_config",
           "apply_overrides", "to_toml", "reference", "first_problem"]


def spec(default: Any, **rules: Any) -> Any:
    """A dataclass field with validation rules: ``choices``, ``min``, ``max``, ``gt``, ``lt``."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=rules)
    return field(default=default, metadata=rules)


@dataclass
class DataConfig:
    """What the GAN learns."""

    name: str = spec("grid25", choices=DATASETS,  # (live: a registered dataset is allowed)
                     help="the dataset: a Gaussian mixture or an image set")
    root: str = spec("", help="mnist: the directory holding the IDX files (\"\" = none)")
    source: str = spec("mnist5k", choices=("mnist5k", "mnist"),
                       help="stacked-mnist: the set its digits come from")
    path: str = spec("", help="points: an .npy/.npz/.csv of (N, d) numbers; images: a folder "
                              "of PNG/JPEG files (a sub-folder per class) or an .npy/.npz array")
    test_fraction: float = spec(0.2, gt=0.0, lt=1.0,
                                help="points, images: share held out for evaluation (fixed "
                                     "split, seed 0)")
    features: str = spec("", help="images: a TorchScript file mapping images to the "
                                  "features the metrics use (\"\" = a fixed random CNN)")
    means: list[list[float]] = spec([], help="mixture: the K component means (vectors)")
    stds: list[float] = spec([], gt=0.0, empty=True,
                             help="mixture: one σ for every component, or one per component")
    weights: list[float] = spec([], min=0.0, empty=True,
                                help="mixture: the K component weights ([] = uniform)")


@dataclass
class ModelConfig:
    """The two networks."""

    generator: str = spec("mlp", choices=NETWORKS, help="G's architecture (dcgan: images)")
    discriminator: str = spec("mlp", choices=NETWORKS, help="D's architecture")
    z_dim: int = spec(2, min=1, max=4096, help="size of the latent noise z")
    z_dist: str = spec("normal", choices=LATENT_DISTRIBUTIONS, help="distribution of z")
    g_width: int = spec(128, min=1, max=65536, help="G's hidden width (dcgan: base channels)")
    g_depth: int = spec(2, min=1, max=64, help="G's hidden layers (mlp)")
    d_width: int = spec(128, min=1, max=65536, help="D's hidden width (dcgan: base channels)")
    d_depth: int = spec(2, min=1, max=64, help="D's hidden layers (mlp)")
    activation: str = spec("relu", choices=tuple(ACTIVATIONS),
                           help="hidden activation of the mlp networks")
    # (InfoGAN's MNIST networks use 1024 and batch norm in D and Q)
    d_hidden: int = spec(0, min=0, max=65536,
                         help="dcgan: a fully connected layer of this width after D's "
                              "convolutions (0 = none)")
    g_hidden: int = spec(0, min=0, max=65536,
                         help="dcgan: a fully connected layer of this width before G's "
                              "projection (0 = none)")
    g_channel_paths: bool = spec(False,
                                 help="dcgan: each of G's output channels its own "
                                      "convolutional path after the shared projection "
                                      "(grouped convolutions; for stacked MNIST)")
    d_norm: str = spec("none", choices=("none", "batch"),
                       help="dcgan: batch norm in D after its second convolution and the "
                            "hidden layer")
    spectral_norm: bool = spec(False, help="spectral normalisation of every linear and "
                                           "convolutional layer of D (Miyato et al. 2018)")


@dataclass
class ObjectiveConfig:
    """The game the players play."""

    name: str = spec("nonsaturating", choices=OBJECTIVES,
                     help="the objective (docs/objectives.md)")
    gp_weight: float = spec(10.0, min=0.0, help="λ of the gradient penalty (wasserstein_gp)")
    weight_clip: float = spec(0.0, min=0.0,
                              help="c: D's weights clamped to [−c, c] after each step (0 = off)")
    kernel: str = spec("gaussian", choices=KERNELS, help="gmmn, mmd-gan: the MMD kernel")
    bandwidths: list[float] = spec(list(DEFAULT_BANDWIDTHS), gt=0.0,
                                   help="gmmn, mmd-gan: the kernel's bandwidths σ (gaussian) "
                                        "or shapes α (rational quadratic)")
    embedding_dim: int = spec(16, min=1, max=65536,
                              help="mmd-gan: size of D's embedding (its outputs)")
    r1: float = spec(0.0, min=0.0, help="γ of R1, γ/2·E‖∇D(x)‖² on real data (0 = off)")
    r2: float = spec(0.0, min=0.0, help="γ of R2, the same on generated data (0 = off)")
    r_every: int = spec(1, min=1, max=1000,
                        help="lazy regularisation: R1 / R2 every k steps, weighted k× "
                             "(Karras et al. 2020; 1 = every step)")
    autoencoder_weight: float = spec(0.0, min=0.0,
                                     help="mmd-gan: λ of the reconstruction term of D's "
                                          "decoder (0 = no decoder)")


@dataclass
class TricksConfig:
    """Mode-collapse remedies; each composes with every objective that has a D."""

    unroll_steps: int = spec(0, min=0, max=100,
                             help="unrolled GAN: G's loss reads D after k differentiable "
                                  "updates (0 = off)")
    pack: int = spec(1, min=1, max=64, help="PacGAN: D judges packs of m samples (1 = off)")
    minibatch_discrimination: int = spec(0, min=0, max=4096,
                                         help="minibatch discrimination kernels B (0 = off)")
    minibatch_kernel_dim: int = spec(5, min=1, max=1024,
                                     help="minibatch discrimination: each kernel's size C")
    feature_matching: bool = spec(False, help="G matches the mean of D's feature layer")
    label_smoothing: float = spec(0.0, min=0.0, lt=1.0,
                                  help="one-sided label smoothing: real target 1 − α")
    historical_averaging: float = spec(0.0, min=0.0,
                                       help="λ of ‖θ − mean of past θ‖² for both players "
                                            "(0 = off)")
    virtual_batch_norm: bool = spec(False, help="virtual batch norm in G's hidden layers (mlp)")
    generator_ema: float = spec(0.0, min=0.0, lt=1.0,
                                help="β of the moving average of G's weights that samples "
                                     "and evaluation use (0 = off)")
    generator_ema_rampup: bool = spec(False, help="the average's β after t updates is min(β, "
                                                  "(1 + t)/(10 + t)): it forgets G's initial "
                                                  "weights early")
    generator_ema_bn_samples: int = spec(0, min=0, max=1_000_000,
                                         help="n > 0: the average's batch-norm statistics "
                                              "are recomputed from n of its own samples "
                                              "before it samples, is evaluated or saved "
                                              "(BigGAN's standing statistics); 0: G's are "
                                              "copied")
    top_k: float = spec(0.0, min=0.0, max=1.0,
                        help="top-k training: G learns from the ⌈n·max(top_k_min, γ^(step/"
                             "1000))⌉ fakes D scores highest; γ here (0 = off)")
    top_k_min: float = spec(0.5, gt=0.0, max=1.0, help="top-k: the smallest share kept (ν)")
    diffaugment: str = spec("", pattern=r"((color|translation|cutout)(,(color|translation|"
                                        r"cutout))*)?",
                            help="DiffAugment policies applied to every image D sees, e.g. "
                                 "\"color,translation,cutout\" (\"\" = off)")
    channel_critic_width: int = spec(0, min=0, max=1024,
                                     help="a small D for each image channel, judging that "
                                          "channel alone beside D: the filters of its first "
                                          "layer (0 = off)")
    vbn_reference_size: int = spec(64, min=1, max=65536,
                                   help="virtual batch norm: size of the reference batch")


@dataclass
class TrainConfig:
    """How training runs."""

    steps: int = spec(20000, min=1,
                      help="steps of play, each d_steps D updates then g_steps G updates")
    batch_size: int = spec(512, min=1, max=1_000_000, help="samples (packs) per update")
    d_steps: int = spec(1, min=1, max=100,
                        help="D updates per step (> 1: D in the inner loop, min_G max_D)")
    g_steps: int = spec(1, min=1, max=100,
                        help="G updates per step, after D's (> 1: G in the inner loop, "
                             "max_D min_G)")
    lr_d: float = spec(1e-4, gt=0.0, max=10.0, help="D's Adam learning rate")
    lr_g: float = spec(1e-3, gt=0.0, max=10.0, help="G's Adam learning rate")
    lr_schedule: str = spec("constant", choices=("constant", "linear"),
                            help="linear: both rates fall to 0 at the last step")
    betas_d: list[float] = spec([0.5, 0.999], length=2, min=0.0, lt=1.0,
                                help="D's Adam (β₁, β₂)")
    betas_g: list[float] = spec([0.5, 0.999], length=2, min=0.0, lt=1.0,
                                help="G's Adam (β₁, β₂)")
    seed: int = spec(0, min=0, max=2**62,  # room for the offsets added to seeds
                     help="seed of the weights, data, noise and evaluation draws")
    seeds: int = spec(1, min=1, max=1000,
                      help="> 1: seeds seed, seed+1, ... trained together in one process")
    device: str = spec("auto", pattern=r"auto|cpu|cuda(:\d+)?|mps",
                       help="auto: CUDA when present, else the CPU")
    log_every: int = spec(100, min=1, help="steps between lines of metrics.jsonl")
    checkpoint_every: int = spec(1000, min=1, help="steps between checkpoints")
    eval_samples: int = spec(2500, min=1, max=10_000_000,
                             help="samples the mixture metrics evaluate")
    snapshot_every: int = spec(0, min=0,
                               help="steps between fixed-latent samples for the report's "
                                    "slider (0 = off)")
    compile: bool = spec(False, help="torch.compile both networks")
    compile_optimizer: bool = spec(False,
                                   help="torch.compile each player's Adam step (its learning "
                                        "rate a tensor: compiled once per run; a run starts "
                                        "from cleared torch.compile caches)")
    compile_update: bool = spec(False,
                                help="torch.compile each step's D and G updates (forward, "
                                     "backward, Adam) as one graph, written with torch.func; "
                                     "the first step compiles (tens of seconds on a CPU)")
    cuda_graphs: bool = spec(False,
                             help="with compile_update on CUDA: replay each step's compiled "
                                  "update as a CUDA graph (torch.compile's reduce-overhead "
                                  "mode; Adam's state on the GPU)")
    precision: str = spec("float32", choices=("float32", "bfloat16"),
                          help="bfloat16: autocast on CUDA")
    channels_last: bool = spec(False,
                               help="convolutional networks in channels-last layout (CUDA)")
    on_nan: str = spec("stop", choices=("stop", "rollback"),
                       help="on a non-finite loss or weight: stop, or roll back to the last "
                            "checkpoint with half the learning rate")
    max_rollbacks: int = spec(3, min=0, max=100, help="rollbacks before stopping")


@dataclass
class AdaGANConfig:
    """AdaGAN boosting (gankit.adagan): components > 1 turns it on."""

    components: int = spec(1, min=1, max=100,
                           help="T components of train.steps steps each (1 = off)")
    beta: float = spec(0.0, min=0.0, lt=1.0, help="each new component's weight (0 = 1/t)")
    train_points: int = spec(20000, min=2, max=10_000_000,
                             help="mixtures: size of the reweighted training set")
    classifier_steps: int = spec(1000, min=1,
                                 help="steps of the data-vs-mixture D behind the weights")


@dataclass
class InfoGANConfig:
    """InfoGAN codes (gankit.nets.heads, gankit.losses.info): any categorical or
    continuous code turns it on."""

    categorical: list[int] = spec([], min=2, max=1000, ints=True,
                                  help="K of each categorical code ([] = none)")
    continuous: int = spec(0, min=0, max=64, help="continuous codes, uniform on [−1, 1]")
    weight: float = spec(1.0, min=0.0, help="λ of the mutual-information term")
    continuous_weight: float = spec(0.1, min=0.0, help="the continuous codes' share of it")
    q_width: int = spec(128, min=1, max=65536, help="hidden width of the Q head")
    fixed_std: bool = spec(False,
                           help="continuous codes: Q's Gaussian has unit variance (mean only)")


@dataclass
class SemiSupervisedConfig:
    """The (K+1)-class semi-supervised GAN: labels_per_class > 0 turns it on."""

    labels_per_class: int = spec(0, min=0, max=1_000_000,
                                 help="labelled examples of each class (0 = off)")
    input_noise: float = spec(0.0, min=0.0, help="σ of Gaussian noise on D's inputs (training)")
    hidden_noise: float = spec(0.0, min=0.0,
                               help="σ of Gaussian noise on D's hidden activations (training)")


@dataclass
class ConditionalConfig:
    """Class-conditional GAN: G(z, y) draws an image of class y, and D judges (x, y)
    (``projection``) or also classifies x (``acgan``)."""

    method: str = spec("", choices=("", "projection", "acgan"),
                       help="\"\" = off; projection: D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩ "
                            "(Miyato & Koyama 2018); acgan: D with an auxiliary classifier "
                            "(Odena et al. 2017)")
    classes: int = spec(0, min=0, max=100_000,
                        help="number of classes (0 = the data's; written resolved)")
    ac_weight: float = spec(1.0, min=0.0,
                            help="acgan: weight of the class cross-entropy in D's and G's costs")


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
    conditional: ConditionalConfig = field(default_factory=ConditionalConfig)

    @property
    def infogan_on(self) -> bool:
        return bool(self.infogan.categorical or self.infogan.continuous)

    @property
    def semisupervised_on(self) -> bool:
        return self.semisupervised.labels_per_class > 0

    @property
    def conditional_on(self) -> bool:
        return bool(self.conditional.method)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        return to_toml(self.to_dict())


SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(Config)}

# sections whose non-default values are a run's remedies and variants, as titles name them
DESCRIBED = ("tricks", "infogan", "semisupervised", "conditional")
# settings of an option, not options of their own
SETTINGS = {"minibatch_kernel_dim", "vbn_reference_size", "q_width", "continuous_weight",
            "input_noise", "hidden_noise", "fixed_std", "classes", "ac_weight"}


def changed_options(cfg: Config) -> list[str]:
    """The remedies and variants a run turns on, as ``name=value`` (``pack=4``,
    ``feature_matching``, ``categorical=[25]``): fields of ``DESCRIBED`` sections that
    differ from their defaults."""
    out = []
    for section in DESCRIBED:
        value, default = getattr(cfg, section), SECTIONS[section]()
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if f.name not in SETTINGS and v != getattr(default, f.name):
                out.append(f.name if v is True else f"{f.name}={v}")
    return out


MAX_CONFIG_BYTES = 1 << 20  # a config is a page of text: more is not a config
MAX_PROBLEMS = 20  # problems printed one per line; the rest are counted

_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxlevel = 60, 60, 8, 3


def shown(value: Any) -> str:
    """``repr(value)`` cut to a readable length (and depth), for a message: a config may
    hold a megabyte string or lists nested thousands deep."""
    return _SHOWN.repr(value)


def _number_ok(v: Any, kind: type) -> bool:
    if isinstance(v, bool):
        return False
    if kind is int:
        return isinstance(v, int)
    return isinstance(v, (int, float)) and math.isfinite(v)


def _range_problem(v: Any, rules: dict[str, Any]) -> str | None:
    """What ``v`` (a number) should be, if it is out of the field's range."""
    for key, text, bad in (("min", ">=", lambda r: v < r), ("gt", ">", lambda r: v <= r),
                           ("max", "<=", lambda r: v > r), ("lt", "<", lambda r: v >= r)):
        if key in rules and bad(rules[key]):
            return f"{text} {rules[key]}"
    return None


def _check_number(where: str, value: Any, kind: type, rules: dict[str, Any]) -> str | None:
    what = "an integer" if kind is int else "a number"
    if not _number_ok(value, kind):
        return f"{where}: expected {'an integer' if kind is int else 'a finite number'}, " \
               f"got {shown(value)}"
    if kind is int and not -2**63 <= value < 2**63:  # TOML's integers are 64-bit
        return f"{where}: expected a 64-bit integer, got {shown(value)}"
    bad = _range_problem(value, rules)
    return f"{where}: expected {what} {bad}, got {shown(value)}" if bad else None


def _check_string(where: str, value: Any, rules: dict[str, Any]) -> str | None:
    if not isinstance(value, str):
        return f"{where}: expected a string, got {shown(value)}"
    if "choices" in rules and value not in rules["choices"]:
        return f"{where}: got {shown(value)}; allowed: {', '.join(rules['choices'])}"
    if "pattern" in rules and not re.fullmatch(rules["pattern"], value):
        return f"{where}: got {shown(value)}; allowed: {rules['pattern'].replace('|', ', ')}"
    return None


def _check_list(where: str, value: Any, rules: dict[str, Any]) -> str | None:
    n, kind = rules.get("length"), int if rules.get("ints") else float
    what = "integers" if kind is int else "numbers"
    # a list of integers may be empty (no codes); one of numbers has one or more unless
    # the field allows none
    if not isinstance(value, list) or (n is not None and len(value) != n) \
            or (not value and kind is float and not rules.get("empty")):
        size = n or ("" if kind is int else "one or more")
        return f"{where}: expected a list of {size} {what}, got {shown(value)}".replace("  ", " ")
    for v in value:
        if not _number_ok(v, kind):  # (a string in the list has no range to compare)
            return f"{where}: expected {what}, got {shown(value)}"
        if bad := _range_problem(v, rules):
            return f"{where}: expected {what} {bad}, got {shown(value)}"
    return None


def _check_vectors(where: str, value: Any) -> str | None:
    """A list of equal-length lists of finite numbers (possibly empty)."""
    if not isinstance(value, list) or not all(isinstance(v, list) and v for v in value) \
            or len({len(v) for v in value}) > 1 \
            or not all(_number_ok(x, float) for v in value for x in v):
        return f"{where}: expected a list of equal-length lists of numbers, got {shown(value)}"
    return None


def _check_value(where: str, value: Any, ftype: Any, rules: dict[str, Any]) -> str | None:
    """One problem with ``value`` for a field of type ``ftype``, or None if it is fine."""
    tname = getattr(ftype, "__name__", str(ftype))
    if tname == "bool":
        return None if isinstance(value, bool) else \
            f"{where}: expected true or false, got {shown(value)}"
    if tname in ("int", "float"):
        return _check_number(where, value, int if tname == "int" else float, rules)
    if tname == "str":
        return _check_string(where, value, rules)
    if str(ftype) == "list[list[float]]":
        return _check_vectors(where, value)
    if str(ftype).startswith("list"):
        return _check_list(where, value, rules)
    raise TypeError(f"unsupported field type {ftype!r}")  # a bug in gankit, not user input


def _name(text: str) -> str:
    """A section or key as written in a message: quoted when not a plain identifier."""
    return text if re.fullmatch(r"[A-Za-z_][\w-]{0,59}", text) else shown(text)


def _suggest(name: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(name, allowed, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"


def from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    """Build and validate a Config from nested dicts; raise one GankitError naming all problems."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise GankitError(f"{source}: expected a table of sections, got {shown(raw)}")
    sections: dict[str, Any] = {}
    for sname, svalue in raw.items():
        if sname not in SECTIONS:
            problems.append(
                f"{source}: unknown section [{_name(sname)}]" + _suggest(sname, list(SECTIONS))
            )
            continue
        if not isinstance(svalue, dict):
            problems.append(f"{source}: [{_name(sname)}] must be a table, got {shown(svalue)}")
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
                kwargs[key] = float(value) if f.type in ("float", float) else \
                    [float(v) for v in value] if f.type == "list[float]" else \
                    [[float(x) for x in v] for v in value] if f.type == "list[list[float]]" \
                    else value
        sections[sname] = cls(**kwargs)
    if problems:
        raise GankitError("\n".join(problems))
    cfg = Config(**sections)
    problems = combination_problems(cfg)
    if problems:
        raise GankitError("\n".join(problems))
    return cfg


def problem_lines(problems: list[str]) -> str:
    """One line per problem, at most ``MAX_PROBLEMS`` of them and a count of the rest (what
    the command line prints; the error itself keeps every problem)."""
    if len(problems) <= MAX_PROBLEMS:
        return "\n".join(problems)
    return "\n".join(problems[:MAX_PROBLEMS - 1] +
                     [f"and {len(problems) - MAX_PROBLEMS + 1} more problems"])


def parse_override(text: str) -> tuple[str, str, Any]:
    """``section.key=value`` → (section, key, value); the value is read as TOML, else a string."""
    m = re.fullmatch(r"\s*([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)\s*=(.*)", text, flags=re.S)
    if not m:
        raise GankitError(f"--set: expected section.key=value, got {shown(text)}")
    section, key, raw = m.group(1), m.group(2), m.group(3).strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    except (RecursionError, ValueError) as e:  # nested thousands deep, 5000 digits
        raise GankitError(f"--set {section}.{key}: not a TOML value "
                          f"({'nested too deeply' if isinstance(e, RecursionError) else e})"
                          ) from None
    return section, key, value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a TOML config (or the defaults when ``path`` is None) and apply overrides."""
    raw: dict[str, Any] = {}
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            with open(path, "rb") as f:  # (bounded: /dev/zero or a huge file is no config)
                data = f.read(MAX_CONFIG_BYTES + 1)
            if len(data) > MAX_CONFIG_BYTES:
                raise GankitError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; allowed: a "
                                  "TOML config file of at most 1 MiB")
            raw = tomllib.loads(data.decode("utf-8"))
        except FileNotFoundError:
            raise GankitError(f"{path}: config file not found") from None
        except IsADirectoryError:
            raise GankitError(f"{path}: is a directory, expected a TOML config file") from None
        except (ValueError, UnicodeDecodeError) as e:  # (a TOMLDecodeError is a ValueError)
            raise GankitError(f"{path}: not valid TOML ({str(e)[:200]})") from None
        except RecursionError:
            raise GankitError(f"{path}: not valid TOML (arrays or tables nested too deeply)") \
                from None
    return apply_overrides(raw, overrides or [], source)


def apply_overrides(raw: dict[str, Any], overrides: list[str], source: str = "config") -> Config:
    try:  # (TOML dates and times are values too: a copy, not a JSON round trip)
        raw = copy.deepcopy(raw)
    except RecursionError:
        raise GankitError(f"{source}: values nested too deeply") from None
    for text in overrides:
        section, key, value = parse_override(text)
        target = raw.setdefault(section, {})
        if not isinstance(target, dict):
            raise GankitError(f"--set {shown(text)}: [{section}] is not a table")
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


def _allowed(rules: dict[str, Any]) -> str:
    if "choices" in rules:
        return ", ".join(f"`{c}`" for c in rules["choices"])
    if "pattern" in rules:
        return f"`{rules['pattern']}`"
    bounds = [f"{text} {rules[k]}" for k, text in (("min", "≥"), ("gt", ">"), ("max", "≤"),
                                                   ("lt", "<")) if k in rules]
    return ("length " + str(rules["length"]) + "; " if "length" in rules else "") + \
        (" and ".join(bounds) or "any")


def reference() -> str:
    """docs/config.md: every field of the schema with its type, default, allowed values
    and meaning, generated from the schema itself (``gankit config --reference``)."""
    lines = ["# Config reference", "",
             "Generated from the schema in `gankit/config.py` by "
             "`gankit config --reference > docs/config.md`; a test fails when this file is "
             "stale. A config is TOML; every field may be set on the command line with "
             "`--set section.key=value`.", ""]
    for section, make in SECTIONS.items():
        cls = make().__class__
        lines += [f"## [{section}]", "", (cls.__doc__ or "").strip().splitlines()[0], "",
                  "| field | type | default | allowed | meaning |", "|---|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            rules = dict(f.metadata)
            lines.append(f"| `{f.name}` | {f.type} | `{_toml_value(default)}` | "
                         f"{_allowed(rules)} | {rules.get('help', '')} |")
        lines.append("")
    return "\n".join(lines)


def first_problem(raw: dict[str, Any]) -> str | None:
    """The first problem of a raw config, or None (how a checkpoint's config is checked)."""
    try:
        from_dict(raw, "config")
    except GankitError as e:
        return str(e).splitlines()[0]
    return None


io.register_config_check(first_problem)  # every checkpoint read checks its config
