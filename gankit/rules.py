"""Which config fields go together: one table of rules, read from what the registries
declare (datasets, objectives, networks), so ``config.py`` is the schema alone.

Each ``Rule`` names the field its message starts with, when the combination is refused
(a function of the config), and the message: what was given and what is allowed. A new
restriction is one row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gankit.data import DATASETS, dataset_spec
from gankit.losses.objectives import OBJECTIVES, get_objective
from gankit.nets import NETWORKS, network_spec

__all__ = ["Rule", "RULES", "combination_problems"]


@dataclass(frozen=True)
class Rule:
    """``field: message(cfg)`` whenever ``when(cfg)``."""

    field: str
    when: Callable
    message: Callable


def _objective(cfg):
    return get_objective(cfg.objective.name)


def _images(cfg) -> bool:
    return dataset_spec(cfg.data.name).images


def _net(cfg, player: str):
    return network_spec(getattr(cfg.model, player))


PLAYER_OF = {"minibatch_discrimination": "discriminator", "virtual_batch_norm": "generator",
             "d_hidden": "discriminator", "d_norm": "discriminator", "g_hidden": "generator",
             "g_channel_paths": "generator"}
MODEL_OFF = {"d_hidden": 0, "g_hidden": 0, "d_norm": "none", "g_channel_paths": False}
# tricks that act on a discriminator, and their off values
D_TRICKS = {"pack": 1, "unroll_steps": 0, "minibatch_discrimination": 0,
            "feature_matching": False, "historical_averaging": 0.0, "channel_critic_width": 0}
USER_DEFAULTS = {"path": "", "test_fraction": 0.2, "features": "", "means": [], "stds": [],
                 "weights": []}
VARIANTS = {"infogan": ("infogan.categorical / continuous", lambda c: c.infogan_on),
            "semisupervised": ("semisupervised.labels_per_class", lambda c: c.semisupervised_on),
            "conditional": ("conditional.method", lambda c: c.conditional_on)}


def _value(cfg, field: str):
    section, name = field.split(".")
    return getattr(getattr(cfg, section), name)


def _names(registry: dict, keep) -> str:
    return ", ".join(n for n, x in registry.items() if keep(x))


# What train.compile_update cannot trace, and each field's value that it allows.
NOT_COMPILED = (
    ("train.compile", lambda c: c.train.compile, "false (compile_update compiles the networks)"),
    ("train.compile_optimizer", lambda c: c.train.compile_optimizer,
     "false (compile_update compiles Adam)"),
    ("objective.name", lambda c: _objective(c).gradient_penalty or not _objective(c).adversarial,
     "an objective without a gradient penalty and with a D"),
    ("objective.r1", lambda c: c.objective.r1 > 0, "0 (R1 differentiates D in its input)"),
    ("objective.r2", lambda c: c.objective.r2 > 0, "0 (R2 differentiates D in its input)"),
    ("objective.weight_clip", lambda c: c.objective.weight_clip > 0, "0"),
    ("tricks.unroll_steps", lambda c: c.tricks.unroll_steps > 0, "0"),
    ("tricks.historical_averaging", lambda c: c.tricks.historical_averaging > 0, "0"),
    ("tricks.top_k", lambda c: c.tricks.top_k > 0, "0 (its k changes with the step)"),
    ("train.d_steps", lambda c: c.train.d_steps != 1, "1"),
    ("train.g_steps", lambda c: c.train.g_steps != 1, "1"),
)

RULES: list[Rule] = [
    *[Rule(field, lambda c, bad=bad: c.train.compile_update and bad(c),
           lambda c, f=field, a=allowed: f"{_value(c, f)!r} with train.compile_update; "
                                         f"allowed with it: {a}")
      for field, bad, allowed in NOT_COMPILED],
    Rule("train.cuda_graphs", lambda c: c.train.cuda_graphs and not c.train.compile_update,
         lambda c: "true replays the compiled update and train.compile_update = false; "
                   "allowed: false, or train.compile_update = true"),
    Rule("tricks.generator_ema_rampup",
         lambda c: c.tricks.generator_ema_rampup and not c.tricks.generator_ema,
         lambda c: "true needs the moving average of G's weights, and tricks.generator_ema = 0 "
                   "(off); allowed: false, or tricks.generator_ema > 0 (e.g. 0.999)"),
    Rule("tricks.generator_ema_bn_samples",
         lambda c: c.tricks.generator_ema_bn_samples and not c.tricks.generator_ema,
         lambda c: f"{c.tricks.generator_ema_bn_samples} recomputes the batch-norm statistics "
                   "of the moving average of G's weights, and tricks.generator_ema = 0 (off); "
                   "allowed: 0, or tricks.generator_ema > 0 (e.g. 0.999)"),
    Rule("tricks.label_smoothing",
         lambda c: c.tricks.label_smoothing and _objective(c).smoothed is None,
         lambda c: f"{c.objective.name!r} has no real target to smooth; allowed with: "
                   + _names(OBJECTIVES, lambda o: o.smoothed is not None)),
    *[Rule(f"model.{player}",
           lambda c, p=player: _net(c, p).images_only and not _images(c),
           lambda c, p=player: f"{getattr(c.model, p)!r} does not fit data.name = "
                               f"{c.data.name!r} (not images); allowed: "
                               + _names(NETWORKS, lambda n: not n.images_only))
      for player in ("generator", "discriminator")],
    *[Rule(f"model.{name}",
           lambda c, n=name: getattr(c.model, n) != MODEL_OFF[n]
           and n not in _net(c, PLAYER_OF[n]).options,
           lambda c, n=name: f"{getattr(c.model, n)!r} is for the "
           + _names(NETWORKS, lambda x: n in x.options) + f" networks (model.{PLAYER_OF[n]} = "
           f"{getattr(c.model, PLAYER_OF[n])!r}); allowed: {MODEL_OFF[n]!r}")
      for name in ("d_hidden", "d_norm", "g_hidden", "g_channel_paths")],
    Rule("model.d_norm", lambda c: c.model.d_norm == "batch" and (
        _objective(c).gradient_penalty or c.objective.r1 or c.objective.r2),
         lambda c: "'batch' makes D's output depend on its batch, which a per-sample gradient "
                   "penalty (the objective's, R1 or R2) does not allow; allowed: none"),
    *[Rule(f"tricks.{name}",
           lambda c, n=name: getattr(c.tricks, n) and n not in _net(c, PLAYER_OF[n]).tricks,
           lambda c, n=name: f"not available for the {getattr(c.model, PLAYER_OF[n])} networks "
                             "yet; allowed: off (or the "
                             + _names(NETWORKS, lambda x: n in x.tricks) + " networks)")
      for name in ("minibatch_discrimination", "virtual_batch_norm")],
    Rule("train.seeds", lambda c: c.train.seeds > 1 and not all(
        _net(c, p).stackable for p in ("generator", "discriminator")),
         lambda c: "dcgan networks train one seed per process; allowed: 1 (or the "
                   + _names(NETWORKS, lambda x: x.stackable) + " networks)"),
    *[Rule(f"tricks.{name}",
           lambda c, n=name: not _objective(c).adversarial and getattr(c.tricks, n) != D_TRICKS[n],
           lambda c, n=name: f"{getattr(c.tricks, n)!r} acts on a discriminator and "
                             f"{c.objective.name} has none; allowed with {c.objective.name}: "
                             f"{str(D_TRICKS[n]).lower()}")
      for name in D_TRICKS],
    Rule("objective.autoencoder_weight",
         lambda c: c.objective.autoencoder_weight and not _objective(c).embedding,
         lambda c: f"{c.objective.autoencoder_weight!r} needs D's embedding (objective.name = "
                   + " or ".join(repr(n) for n, o in OBJECTIVES.items() if o.embedding)
                   + "); allowed: 0"),
    Rule("tricks.pack", lambda c: c.objective.autoencoder_weight and _objective(c).embedding
         and c.tricks.pack > 1,
         lambda c: f"{c.tricks.pack} with objective.autoencoder_weight (the decoder "
                   "reconstructs single samples); allowed: 1"),
    Rule("train.seeds", lambda c: c.adagan.components > 1 and c.train.seeds > 1,
         lambda c: "AdaGAN trains one seed per run (its data weights are per seed); allowed "
                   "with adagan.components > 1: 1"),
    # what InfoGAN and the semi-supervised GAN do not (yet) combine with
    *[Rule(what, lambda c, on=on, bad=bad: on(c) and bad(c),
           lambda c, v=variant, f=field, a=allowed: f"not available with {v} yet; allowed "
                                                    f"with {f} set: {a}")
      for variant, (field, on) in VARIANTS.items()
      for what, bad, allowed in (
          ("train.seeds", lambda c, v=variant: c.train.seeds > 1 and v != "infogan", 1),
          ("tricks.pack", lambda c: c.tricks.pack > 1, 1),
          ("tricks.unroll_steps", lambda c: c.tricks.unroll_steps > 0, 0),
          ("adagan.components", lambda c: c.adagan.components > 1, 1))],
    *[Rule("objective.name", lambda c, on=on: on(c) and (
        _objective(c).embedding or not _objective(c).adversarial),
           lambda c, v=variant: f"{c.objective.name!r} has no classifier D for {v}; allowed: "
                                "a logit objective (nonsaturating, minimax, ...)")
      for variant, (_, on) in VARIANTS.items()],
    *[Rule(what, lambda c, bad=bad: c.infogan_on and bad(c),
           lambda c, a=allowed: f"not available with infogan yet; allowed with infogan "
                                f"codes: {a}")
      for what, bad, allowed in (
          ("tricks.virtual_batch_norm", lambda c: c.tricks.virtual_batch_norm, "false"),
          ("objective.weight_clip", lambda c: c.objective.weight_clip > 0, "0"),  # it would clip Q
          ("data.name", lambda c: not (dataset_spec(c.data.name).labels
                                       or dataset_spec(c.data.name).kind == "mixture"),
           "a dataset with class labels or a mixture"))],
    Rule("model.generator", lambda c: c.model.generator == "user" and (
        c.infogan_on or c.semisupervised_on or c.objective.autoencoder_weight
        or c.conditional_on),
         lambda c: "your own modules have no InfoGAN Q head, K+1 classifier, decoder or class "
                   "input; allowed with them: infogan, semisupervised, conditional and "
                   "objective.autoencoder_weight off (or the config's networks)"),
    # what a conditional run does not (yet) combine with
    *[Rule(what, lambda c, bad=bad: c.conditional_on and bad(c),
           lambda c, a=allowed: f"not available with conditional.method = "
                                f"{c.conditional.method!r} yet; allowed: {a}")
      for what, bad, allowed in (
          ("tricks.feature_matching", lambda c: c.tricks.feature_matching, "false"),
          ("tricks.minibatch_discrimination", lambda c: c.tricks.minibatch_discrimination, "0"),
          ("infogan.categorical", lambda c: c.infogan_on, "[] (and infogan.continuous = 0)"),
          ("semisupervised.labels_per_class", lambda c: c.semisupervised_on, "0"),
          ("data.name", lambda c: not (dataset_spec(c.data.name).labels
                                       or c.data.name == "images"),
           "a dataset with class labels ("
           + _names(DATASETS, lambda d: d.labels) + ") or images (class sub-folders)"))],
    *[Rule(field, lambda c, on=on: on(c) and not _objective(c).adversarial,
           lambda c, f=field: f"{f} acts on a discriminator and {c.objective.name} has "
                              "none; allowed: off")
      for field, on in (("objective.r1", lambda c: c.objective.r1),
                        ("objective.r2", lambda c: c.objective.r2),
                        ("model.spectral_norm", lambda c: c.model.spectral_norm),
                        ("tricks.diffaugment", lambda c: bool(c.tricks.diffaugment)))],
    Rule("semisupervised.labels_per_class", lambda c: c.infogan_on and c.semisupervised_on,
         lambda c: "not with infogan codes in one run; allowed: 0 (or infogan.categorical = [] "
                   "and continuous = 0)"),
    Rule("semisupervised.labels_per_class",
         lambda c: c.semisupervised_on and not dataset_spec(c.data.name).labels,
         lambda c: f"data.name = {c.data.name!r} has no class labels to learn; allowed: "
                   + _names(DATASETS, lambda d: d.labels)),
    Rule("tricks.label_smoothing", lambda c: c.semisupervised_on and c.tricks.label_smoothing,
         lambda c: f"{c.tricks.label_smoothing!r} with semisupervised (its D cost is the "
                   "K+1-class cross-entropy); allowed: 0"),
    Rule("objective.name", lambda c: c.semisupervised_on and not _objective(c).log_ratio,
         lambda c: f"{c.objective.name!r} with semisupervised; allowed: "
                   + _names(OBJECTIVES, lambda o: o.log_ratio) + " (D's cost is the "
                   "cross-entropy)"),
    *[Rule(f"data.{name}", lambda c, n=name: getattr(c.data, n) != USER_DEFAULTS[n]
           and n not in dataset_spec(c.data.name).user,
           lambda c, n=name: f"{getattr(c.data, n)!r} is read only by data.name = "
                             + " or ".join(repr(d) for d, s in DATASETS.items() if n in s.user)
                             + f", not {c.data.name!r}; allowed here: the default "
                               f"{USER_DEFAULTS[n]!r}")
      for name in USER_DEFAULTS],
    Rule("tricks.channel_critic_width", lambda c: c.tricks.channel_critic_width and not _images(c),
         lambda c: f"{c.tricks.channel_critic_width} adds a critic for each image channel and "
                   f"data.name = {c.data.name!r} is not images; allowed: 0"),
    Rule("tricks.channel_critic_width", lambda c: c.tricks.channel_critic_width and (
        _objective(c).embedding or _objective(c).gradient_penalty),
         lambda c: f"{c.tricks.channel_critic_width} with {c.objective.name!r} (its critics "
                   "would need the objective's embedding or gradient penalty); allowed: 0, or "
                   "objective.name = " + _names(OBJECTIVES, lambda o: o.adversarial and not (
                       o.embedding or o.gradient_penalty))),
    Rule("tricks.diffaugment", lambda c: c.tricks.diffaugment and not _images(c),
         lambda c: f"{c.tricks.diffaugment!r} augments images and data.name = "
                   f"{c.data.name!r} is not; allowed: \"\""),
    *[Rule(field, lambda c, on=on: on(c) and c.train.seeds > 1,
           lambda c, f=field: f"{f} keeps per-network state that seeds stacked in one process "
                              "cannot hold yet; allowed with train.seeds > 1: off")
      for field, on in (("model.spectral_norm", lambda c: c.model.spectral_norm),
                        ("tricks.diffaugment", lambda c: bool(c.tricks.diffaugment)))],
    Rule("tricks.unroll_steps", lambda c: c.tricks.unroll_steps and c.model.spectral_norm,
         lambda c: f"{c.tricks.unroll_steps} with model.spectral_norm (its power iteration "
                   "updates state inside D's forward pass); allowed: 0"),
    Rule("tricks.top_k", lambda c: c.tricks.top_k and (_objective(c).needs_real
                                                        or c.tricks.feature_matching),
         lambda c: f"{c.tricks.top_k!r} with {c.objective.name} / feature matching (G's cost "
                   "then pairs or averages over the whole batch); allowed: 0"),
    Rule("data.root", lambda c: dataset_spec(c.data.name).needs_root and not c.data.root,
         lambda c: f"{c.data.name} needs the directory of its files"),
]


def combination_problems(cfg) -> list[str]:
    """Problems of fields that are each valid but do not go together, one line each."""
    return [f"{rule.field}: {rule.message(cfg)}" for rule in RULES if rule.when(cfg)]
