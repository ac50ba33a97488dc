"""Golden numbers: the losses of 50 training steps and a hash of the final weights of
configs that together cover every objective family and every remedy.

A refactor changes no number: ``tests/test_golden.py`` trains each config again and
compares. Record (only when a change is meant to change numbers, and say so in the
commit): ``python tests/golden.py --write``.

Bit-for-bit equality holds on the machine and PyTorch build that recorded the file
(floating-point kernels differ between CPUs); elsewhere the test compares the losses
within a tolerance and says why it does not compare the hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

GOLDEN = Path(__file__).with_name("golden.json")
STEPS = 50
TINY = ["model.g_width=32", "model.d_width=32", "train.batch_size=64", "train.log_every=1",
        f"train.steps={STEPS}", "train.checkpoint_every=1000", "train.eval_samples=500",
        "train.device='cpu'"]
IMAGES = ["model.z_dim=16", "model.g_width=16", "model.d_width=16"]

# name -> (config file, overrides); every objective family and every remedy
CONFIGS: dict[str, tuple[str, list[str]]] = {
    "plain": ("configs/grid25-nonsaturating.toml", []),
    "minimax-pack2": ("configs/grid25-minimax.toml", ["tricks.pack=2"]),
    "max-likelihood-dsteps2": ("configs/grid25-max-likelihood.toml",
                               ["train.d_steps=2", "train.lr_schedule='linear'"]),
    "unrolled3-historical": ("configs/grid25-unrolled5.toml",
                             ["tricks.unroll_steps=3", "tricks.historical_averaging=0.01"]),
    "minibatch": ("configs/grid25-minibatch.toml", ["tricks.minibatch_discrimination=8"]),
    "vbn": ("configs/grid25-vbn.toml", []),
    "feature-matching-smoothing": ("configs/grid25-feature-matching.toml",
                                   ["tricks.label_smoothing=0.2"]),
    "historical-ema": ("configs/grid25-historical-averaging.toml",
                       ["tricks.generator_ema=0.9"]),
    "least-squares-smoothing": ("configs/grid25-nonsaturating.toml",
                                ["objective.name='least_squares'", "tricks.label_smoothing=0.1"]),
    "hinge": ("configs/grid25-nonsaturating.toml", ["objective.name='hinge'"]),
    "wgan-gp": ("configs/grid25-wgan-gp.toml", []),
    "fgan-kl": ("configs/ring8-fgan-kl.toml", []),
    "fgan-jsd-unrolled2": ("configs/ring8-fgan-jsd.toml", ["tricks.unroll_steps=2"]),
    "gmmn": ("configs/ring8-gmmn.toml", []),
    "mmd-gan-clip": ("configs/ring8-mmd-gan.toml", ["objective.weight_clip=0.05"]),
    "mmd-gan-autoencoder": ("configs/digits-mmd-gan.toml",
                            IMAGES + ["objective.autoencoder_weight=1.0", "model.generator='mlp'",
                                      "model.discriminator='mlp'"]),
    "infogan": ("configs/grid25-infogan.toml", ["infogan.categorical=[5]", "infogan.continuous=1"]),
    "infogan-dcgan": ("configs/mnist5k-infogan.toml",
                      IMAGES + ["model.d_hidden=16", "model.g_hidden=16", "train.steps=10",
                                "train.batch_size=16"]),
    "semisupervised": ("configs/mnist5k-ssl.toml",
                       ["data.name='digits'", "model.z_dim=16", "model.g_width=32",
                        "model.d_width=32", "model.d_depth=2"]),
    "dcgan-digits": ("configs/digits-dcgan.toml", IMAGES),
    "seeds3-pack2": ("configs/grid25-nonsaturating.toml", ["train.seeds=3", "tricks.pack=2"]),
    "seeds3-minibatch-gp": ("configs/grid25-wgan-gp.toml",
                            ["train.seeds=3", "tricks.minibatch_discrimination=4"]),
    "seeds2-infogan": ("configs/grid25-infogan.toml", ["train.seeds=2", "infogan.categorical=[5]"]),
    "adagan": ("configs/grid25-adagan.toml",
               ["adagan.components=2", "train.steps=20", "adagan.classifier_steps=20",
                "adagan.train_points=500"]),
}
SUMMARY_OF = {"plain"}  # also run evaluation and keep its numbers


def _hash_tensors(obj, h) -> None:
    """Feed every tensor of a nested checkpoint into ``h`` in a fixed order."""
    if isinstance(obj, torch.Tensor):
        h.update(str(obj.dtype).encode() + str(tuple(obj.shape)).encode())
        h.update(obj.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                 if obj.numel() else b"")
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            if k not in ("meta", "wall_time", "config", "format", "versions"):
                h.update(str(k).encode())
                _hash_tensors(obj[k], h)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _hash_tensors(v, h)
    elif isinstance(obj, (int, float, str, bool)) or obj is None:
        h.update(repr(obj).encode())


def machine() -> str:
    """What bit-for-bit equality depends on: the CPU model, torch build and threads."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} | torch {torch.__version__} | {platform.machine()}"


def run(name: str, root: Path) -> dict:
    """Train config ``name`` into ``root/name``; its per-step losses and weight hashes."""
    import gankit
    from gankit.io import load_checkpoint, read_metrics

    path, overrides = CONFIGS[name]
    repo = Path(__file__).resolve().parent.parent
    cfg = gankit.load_config(repo / path, TINY + overrides)
    out = root / name
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same kernels whatever the test runner's setting
    try:
        adagan = cfg.adagan.components > 1
        summary = gankit.train(cfg, out, progress=False, stop_after=None if adagan or
                               name in SUMMARY_OF else cfg.train.steps)
        if adagan:
            log = [json.loads(line) for line in (out / "adagan.jsonl").read_text().splitlines()]
            record = {"adagan": [{k: v for k, v in r.items() if "time" not in k} for r in log]}
        else:
            record = {"steps": [{k: v for k, v in r.items() if k != "wall_time"}
                                for r in read_metrics(out / "metrics.jsonl")]}
    finally:
        torch.set_num_threads(threads)
    h = hashlib.sha256()
    _hash_tensors(load_checkpoint(out / "checkpoint.pt"), h)
    record["checkpoint_sha256"] = h.hexdigest()
    if name in SUMMARY_OF:
        record["metrics"] = summary["metrics"]
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"record into {GOLDEN}")
    parser.add_argument("names", nargs="*", default=list(CONFIGS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {name: run(name, Path(tmp)) for name in args.names}
    if args.write:
        GOLDEN.write_text(json.dumps({"machine": machine(), "configs": results}, indent=1) + "\n")
    else:
        json.dump(results, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
