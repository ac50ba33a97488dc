"""``gankit bench throughput``: gankit's training step against a hand-written PyTorch loop
and against the machine's own matmul speed, measured in one run so each figure is a ratio.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gankit.config import load_config
from gankit.data.mixtures import mixture
from gankit.nets.mlp import MLPDiscriminator, MLPGenerator
from gankit.objectives import get_objective
from gankit.train import train
from gankit.train.step import discriminator_step, generator_step

# The toy MLP of the benchmark: G z 256 → 128 → 128 → 2, D 2 → 128 → 128 → 1, ReLU.
TOY = ["data.name='grid25'", "model.z_dim=256", "model.g_width=128", "model.g_depth=2",
       "model.d_width=128", "model.d_depth=2", "objective.name='nonsaturating'",
       "train.lr_d=1e-4", "train.lr_g=1e-3", "train.device='cpu'"]


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """The machine's float32 large-matmul speed, GFLOP/s (2n³ per product)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def hand_written_steps_per_s(batch: int, steps: int, seed: int = 0) -> float:
    """The loop a user writes from the PyTorch DCGAN example, same nets and objective."""
    torch.manual_seed(seed)
    target = mixture("grid25")
    g, d = MLPGenerator(2, 256, 128, 2), MLPDiscriminator(2, 128, 2)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999))
    criterion = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch), torch.zeros(batch)
    rng = torch.Generator().manual_seed(seed)

    def step():
        real = target.sample(batch, rng)
        d.zero_grad()
        err_real = criterion(d(real), ones)
        err_real.backward()
        fake = g(torch.randn(batch, 256, generator=rng))
        err_fake = criterion(d(fake.detach()), zeros)
        err_fake.backward()
        opt_d.step()
        g.zero_grad()
        err_g = criterion(d(fake), ones)
        err_g.backward()
        opt_g.step()

    for _ in range(20):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def gankit_steps_per_s(batch: int, steps: int) -> float:
    """gankit's own loop (``gankit.train``), timed by the loop itself."""
    cfg = load_config(None, TOY + [f"train.batch_size={batch}", f"train.steps={steps}",
                                   f"train.log_every={steps}", f"train.checkpoint_every={steps}",
                                   "train.eval_samples=100"])
    out = Path(tempfile.mkdtemp(prefix="gankit-bench-"))
    try:
        summary = train(cfg, out / "run", progress=False)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return steps / summary["wall_time_s"]


def flops_per_step(batch: int) -> int:
    """FLOPs of one gankit D step + G step, counted by torch.utils.flop_counter."""
    torch.manual_seed(0)
    target = mixture("grid25")
    g, d = MLPGenerator(2, 256, 128, 2), MLPDiscriminator(2, 128, 2)
    opt_d, opt_g = torch.optim.Adam(d.parameters()), torch.optim.Adam(g.parameters())
    rng = torch.Generator().manual_seed(0)
    objective = get_objective("nonsaturating")
    real, z = target.sample(batch, rng), torch.randn(batch, 256, generator=rng)
    with FlopCounterMode(display=False) as counter:
        fake = discriminator_step(g, d, opt_d, objective, real, z, rng)
        generator_step(g, d, opt_g, objective, fake)
    return counter.get_total_flops()


def dcgan_pair(seed: int = 0):
    """The 28x28 DCGAN of the benchmark (z 100, width 64) and a pool of stand-in images
    (timing does not depend on pixel values; the images issue brings real MNIST)."""
    from gankit.nets.dcgan import DCGANDiscriminator, DCGANGenerator

    torch.manual_seed(seed)
    pool = torch.rand(1024, 1, 28, 28) * 2 - 1
    return DCGANGenerator(28, 1, 100, 64), DCGANDiscriminator(28, 1, 64), pool


def dcgan_gankit_steps_per_s(batch: int, steps: int) -> float:
    """gankit's D step + G step (fused Adam, set_to_none, G-only backward) on the DCGAN."""
    g, d, pool = dcgan_pair()
    from gankit.train.loop import make_optimizers

    opt_g, opt_d = make_optimizers(load_config(None, ["train.lr_d=2e-4", "train.lr_g=2e-4"]),
                                   g, d)
    objective = get_objective("nonsaturating")
    rng = torch.Generator().manual_seed(0)

    def step():
        real = pool[torch.randint(0, len(pool), (batch,), generator=rng)]
        z = torch.randn(batch, 100, generator=rng)
        fake = discriminator_step(g, d, opt_d, objective, real, z, rng)
        generator_step(g, d, opt_g, objective, fake)

    return _time(step, steps)


def dcgan_hand_written_steps_per_s(batch: int, steps: int) -> float:
    """The PyTorch DCGAN example's loop on the same networks and stand-in images."""
    g, d, pool = dcgan_pair()
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    criterion = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch), torch.zeros(batch)
    rng = torch.Generator().manual_seed(0)

    def step():
        real = pool[torch.randint(0, len(pool), (batch,), generator=rng)]
        d.zero_grad()
        criterion(d(real), ones).backward()
        fake = g(torch.randn(batch, 100, generator=rng))
        criterion(d(fake.detach()), zeros).backward()
        opt_d.step()
        g.zero_grad()
        criterion(d(fake), ones).backward()
        opt_g.step()

    return _time(step, steps)


def _time(step, steps: int) -> float:
    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def dcgan_flops_per_step(batch: int) -> int:
    g, d, pool = dcgan_pair()
    opt_d, opt_g = torch.optim.Adam(d.parameters()), torch.optim.Adam(g.parameters())
    objective = get_objective("nonsaturating")
    with FlopCounterMode(display=False) as counter:
        fake = discriminator_step(g, d, opt_d, objective, pool[:batch],
                                  torch.randn(batch, 100), None)
        generator_step(g, d, opt_g, objective, fake)
    return counter.get_total_flops()


def throughput(steps: int = 2000, repeats: int = 3) -> dict:
    """Each row alternates gankit and the hand-written loop ``repeats`` times and keeps the
    best of each (a shared 2-core machine is noisy: single timings here varied by ±25%)."""
    peak = max(matmul_gflops() for _ in range(repeats))
    rows = []
    for batch in (64, 512):
        ours, theirs = 0.0, 0.0
        for _ in range(repeats):
            ours = max(ours, gankit_steps_per_s(batch, steps))
            theirs = max(theirs, hand_written_steps_per_s(batch, steps))
        flops = flops_per_step(batch)
        rows.append({"model": "toy MLP", "batch": batch, "gankit_steps_per_s": ours,
                     "hand_written_steps_per_s": theirs, "ratio": ours / theirs,
                     "mflop_per_step": flops / 1e6, "gankit_gflops": flops * ours / 1e9,
                     "fraction_of_matmul": flops * ours / 1e9 / peak})
    dc_steps = max(1, steps // 20)  # a DCGAN step costs ~20-50x a toy step
    ours, theirs = 0.0, 0.0
    for _ in range(repeats):
        ours = max(ours, dcgan_gankit_steps_per_s(64, dc_steps))
        theirs = max(theirs, dcgan_hand_written_steps_per_s(64, dc_steps))
    flops = dcgan_flops_per_step(64)
    rows.append({"model": "DCGAN28", "batch": 64, "gankit_steps_per_s": ours,
                 "hand_written_steps_per_s": theirs, "ratio": ours / theirs,
                 "mflop_per_step": flops / 1e6, "gankit_gflops": flops * ours / 1e9,
                 "fraction_of_matmul": flops * ours / 1e9 / peak})
    return {"matmul_gflops": peak, "threads": torch.get_num_threads(), "steps": steps,
            "repeats": repeats,
            "torch": str(torch.__version__), "rows": rows,
            "note": "DCGAN28 row: gankit's D+G step functions (not the whole loop, which "
                    "has no image data yet) on stand-in images, steps/20 timed steps"}


def format_throughput(r: dict) -> str:
    lines = [f"machine: float32 2048x2048 matmul {r['matmul_gflops']:.1f} GFLOP/s "
             f"on {r['threads']} threads (torch {r['torch']}); best of {r['repeats']} runs of "
             f"{r['steps']} steps each",
             f"{'model':<9} {'batch':>5} {'gankit/s':>9} {'hand/s':>9} {'ratio':>6} "
             f"{'MFLOP/step':>10} {'GFLOP/s':>8} {'of matmul':>9}"]
    for row in r["rows"]:
        lines.append(f"{row['model']:<9} {row['batch']:>5} {row['gankit_steps_per_s']:>9.1f} "
                     f"{row['hand_written_steps_per_s']:>9.1f} {row['ratio']:>5.2f}x "
                     f"{row['mflop_per_step']:>10.2f} {row['gankit_gflops']:>8.2f} "
                     f"{row['fraction_of_matmul']:>8.1%}")
    lines.append(f"note: {r['note']}")
    return "\n".join(lines)
