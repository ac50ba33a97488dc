"""Pictures: samples over the true modes with D(x) behind them, losses, image grids."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gankit.config import Config, changed_options  # noqa: E402
from gankit.data.mixtures import GaussianMixture  # noqa: E402
from gankit.io import atomic_write_bytes  # noqa: E402
from gankit.metrics.modes import WELL_COVERED_SHARE, mode_histogram  # noqa: E402

__all__ = ["run_title", "save_figure", "discriminator_logits", "plot_limits", "image_grid",
           "plot_image_grid",
           "plot_fixed_z", "plot_nearest_neighbours", "plot_samples", "plot_points", "plot_adagan",
           "plot_traversal", "plot_class_grid", "plot_codes", "plot_losses"]


def save_figure(fig, path: str | Path) -> None:
    import io as _io

    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_limits(target: GaussianMixture) -> tuple[float, float]:
    lo, hi = float(target.means.min()), float(target.means.max())
    pad = 0.25 * (hi - lo) + 6 * float(target.stds.max()) + 0.1
    return lo - pad, hi + pad


def image_grid(images: torch.Tensor, pad: int = 1, cols: int | None = None) -> np.ndarray:
    """Images (n, C, H, W) in [−1, 1] tiled row by row into one (rows·H, cols·W[, 3])
    array in [0, 1]; 3 channels are shown as RGB (stacked MNIST), 1 as grey."""
    n, c, h, w = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy()
    grid = np.ones((c, rows * (h + pad) + pad, cols * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[:, top:top + h, left:left + w] = x[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def plot_image_grid(images: torch.Tensor, path: str | Path, title: str = "") -> None:
    fig, ax = plt.subplots(figsize=(5, 5.3))
    ax.imshow(image_grid(images), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9, parse_math=False)  # (a run path may hold "$")
    save_figure(fig, path)


def plot_fixed_z(steps, snapshots, path: str | Path, rows: int = 8, cols: int = 8) -> None:
    """The same latents over training: one row per snapshot (up to ``rows``, evenly
    spaced, the last included), the first ``cols`` images of each."""
    pick = np.unique(np.linspace(0, len(steps) - 1, min(rows, len(steps))).round().astype(int))
    images = torch.from_numpy(np.concatenate([snapshots[i][:cols] for i in pick]))
    fig, ax = plt.subplots(figsize=(cols * 0.6 + 1, len(pick) * 0.6 + 0.6))
    ax.imshow(image_grid(images, cols=cols), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_yticks([(i + 0.5) * (images.shape[-2] + 1) for i in range(len(pick))],
                  [f"step {int(steps[i])}" for i in pick], fontsize=7)
    ax.set_xticks([])
    ax.set_title("fixed latents over training", fontsize=9)
    save_figure(fig, path)


@torch.no_grad()
def plot_nearest_neighbours(samples: torch.Tensor, train: torch.Tensor, path: str | Path,
                            n: int = 8, k: int = 5) -> None:
    """Each of ``n`` generated images (left column) beside its ``k`` nearest training
    images in pixel space: copies of the training set would show up as twins."""
    fake = samples[:n].float()
    dist = torch.cdist(fake.flatten(1), train.float().flatten(1))
    nearest = dist.topk(k, largest=False).indices
    rows = [torch.cat([fake[i:i + 1], train[nearest[i]].float()]) for i in range(len(fake))]
    fig, ax = plt.subplots(figsize=((k + 1) * 0.7 + 0.4, len(fake) * 0.7 + 0.6))
    ax.imshow(image_grid(torch.cat(rows), cols=k + 1), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"generated | {k} nearest training images (L2)", fontsize=8)
    save_figure(fig, path)


@torch.no_grad()
def discriminator_logits(discriminator, lo: float, hi: float, n: int = 200):
    """D's logit on an n×n grid over [lo, hi]² (row-major, rows along y), flattened on the
    CPU; None where D is not a classifier (gmmn has no D; mmd-gan's D is an embedding)."""
    if discriminator is None or not list(discriminator.parameters()):
        return None
    device = next(discriminator.parameters()).device
    was = discriminator.training
    discriminator.eval()  # (no augmentation, no power iteration: D's state stays as it was)
    try:
        ticks = torch.linspace(lo, hi, n)
        xx, yy = torch.meshgrid(ticks, ticks, indexing="xy")
        grid = torch.stack([xx.flatten(), yy.flatten()], 1).to(device)
        critic = getattr(discriminator, "pointwise", discriminator)  # packed D: m copies
        # chunks of 256: a minibatch-discrimination D compares all pairs within a batch
        logits = torch.cat([critic(chunk).float() for chunk in grid.split(256)])
    finally:
        discriminator.train(was)
    if logits.ndim != 1 or logits.numel() != n * n:  # (an embedding; a traced packed D)
        return None
    return logits.cpu()


def _discriminator_map(discriminator, lo: float, hi: float, n: int = 200):
    """D(x) on an n×n grid over [lo, hi]² (numpy), or None where D is not a classifier."""
    logits = discriminator_logits(discriminator, lo, hi, n)
    return None if logits is None else torch.sigmoid(logits).reshape(n, n).numpy()


def run_title(cfg: Config, *, seed: int | None = None, correction: str | None = None) -> str:
    """What a picture shows, in one line: data, objective, remedies, steps, seed, and the
    correction (``corrected by MH (acceptance 2.5%)``) where there is one."""
    parts = [cfg.data.name, cfg.objective.name]
    if cfg.adagan.components > 1:
        parts[1] = f"AdaGAN {cfg.adagan.components} × {cfg.objective.name}"
    parts += changed_options(cfg)
    parts += [f"{cfg.train.steps} steps", f"seed {cfg.train.seed if seed is None else seed}"]
    if correction:
        parts.append(correction)
    return " · ".join(parts)


def _mode_panel(ax, counts: np.ndarray, target: GaussianMixture, n: int) -> None:
    """Samples per mode against the fair share n/K: each mode a square at its mean,
    coloured by count / fair share and labelled with its count; modes below a quarter of
    the fair share (not well covered) are outlined in red."""
    means, fair = target.means.numpy(), n / target.num_modes
    share = counts / fair
    lo, hi = plot_limits(target)
    if target.dim != 2:  # 1-D: bars
        ax.bar(range(len(counts)), counts, color=plt.cm.viridis(np.clip(share, 0, 1.5) / 1.5))
        ax.axhline(fair, color="k", lw=0.8, ls="--", label=f"fair share {fair:.0f}")
        ax.axhline(WELL_COVERED_SHARE * fair, color="red", lw=0.8, ls=":",
                   label="well covered above")
        ax.set_xlabel("mode"), ax.set_ylabel("high-quality samples"), ax.legend(fontsize=7)
        return
    spacing = float(torch.pdist(target.means).min()) if target.num_modes > 1 else 1.0
    size = (spacing * 0.8 / (hi - lo) * 4.2 * 72) ** 2  # squares of 80% of the spacing
    sc = ax.scatter(means[:, 0], means[:, 1], c=share, cmap="viridis", vmin=0, vmax=1.5,
                    marker="s", s=size, edgecolors=np.where(
                        share < WELL_COVERED_SHARE, "red", "none"), linewidths=2)
    for (x, y), c, r in zip(means, counts, share):
        ax.text(x, y, str(int(c)), ha="center", va="center", fontsize=7,
                color="white" if r < 0.9 else "black")
    ax.set_xlim(lo, hi), ax.set_ylim(lo, hi), ax.set_aspect("equal")
    ax.set_xlabel("x₁"), ax.set_ylabel("x₂")
    plt.colorbar(sc, ax=ax, fraction=0.046, pad=0.04,
                 label=f"samples / fair share ({fair:.0f}); red edge: < {WELL_COVERED_SHARE:g}")
    well = int((share >= WELL_COVERED_SHARE).sum())
    ax.set_title(f"samples per mode: {int((counts > 0).sum())}/{target.num_modes} covered, "
                 f"{well} well covered", fontsize=9)


@torch.no_grad()
def plot_samples(
    samples: torch.Tensor,
    target: GaussianMixture,
    discriminator: torch.nn.Module | None,
    path: str | Path,
    *,
    title: str = "",
    max_points: int = 2500,
) -> None:
    """Mixtures: generated points (dots) over small hollow circles at the true modes, D(x)
    as a heat-map behind, and beside them the samples each mode holds against its fair
    share (``_mode_panel``). Images (n, C, H, W): a grid of the first 64 (or
    ``max_points``)."""
    if samples.ndim == 4:
        plot_image_grid(samples[:min(64, max_points)], path, title)
        return
    if not hasattr(target, "means"):  # the user's vectors: no modes to count
        plot_points(samples[:max_points], target, discriminator, path, title=title)
        return
    fig, (ax, counts_ax) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    lo, hi = plot_limits(target)
    heat = _discriminator_map(discriminator, lo, hi) if target.dim == 2 else None
    if heat is not None:
        im = ax.imshow(heat, origin="lower", extent=(lo, hi, lo, hi), cmap="RdBu_r", vmin=0,
                       vmax=1, alpha=0.45, interpolation="bilinear")
        m = getattr(discriminator, "m", 1)
        label = "D(x)" if m == 1 else f"D(x, …, x): a pack of {m} copies of x"
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    pts = samples[:max_points].float().cpu().numpy()
    means = target.means.numpy()
    if target.dim == 2:
        ax.scatter(pts[:, 0], pts[:, 1], s=2, c="black", alpha=0.5, label="generated",
                   zorder=2)
        ax.scatter(means[:, 0], means[:, 1], marker="o", s=30, facecolors="none",
                   edgecolors="limegreen", linewidths=1.2, label="true modes", zorder=3)
        ax.set_xlim(lo, hi), ax.set_ylim(lo, hi), ax.set_aspect("equal")
        ax.set_xlabel("x₁"), ax.set_ylabel("x₂")
    else:
        ax.hist(pts[:, 0], bins=200, range=(lo, hi), density=True, color="gray",
                label="generated")
        xs = torch.linspace(lo, hi, 1000, dtype=torch.float64)
        ax.plot(xs.numpy(), target.log_prob(xs[:, None]).exp().numpy(), c="green",
                label="data density")
        ax.set_xlabel("x"), ax.set_ylabel("density")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(f"{len(pts)} samples", fontsize=9)
    counts, _, _ = mode_histogram(samples[:max_points], target)
    _mode_panel(counts_ax, counts.numpy(), target, len(pts))
    fig.suptitle(title, fontsize=10, parse_math=False)  # (a run path may hold "$")
    save_figure(fig, path)


@torch.no_grad()
def plot_points(samples: torch.Tensor, data, discriminator: torch.nn.Module | None,
                path: str | Path, *, title: str = "") -> None:
    """Vectors without known modes: generated points over the training data (the first two
    coordinates), D(x) behind them for 2-D data."""
    real = data.points[:len(samples)].float().numpy()
    pts = samples.float().cpu().numpy()
    both = np.concatenate([real, pts[np.isfinite(pts).all(1)]])
    lo, hi = np.quantile(both, [0.001, 0.999], axis=0)
    pad = 0.1 * (hi - lo) + 1e-6
    lo, hi = lo - pad, hi + pad
    fig, ax = plt.subplots(figsize=(6.2, 5), layout="constrained")
    if data.dim == 2:
        heat = _discriminator_map(discriminator, float(lo.min()), float(hi.max()))
        if heat is not None:
            im = ax.imshow(heat, origin="lower", cmap="RdBu_r", vmin=0, vmax=1, alpha=0.45,
                           extent=(lo.min(), hi.max(), lo.min(), hi.max()),
                           interpolation="bilinear")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="D(x)")
    y = (lambda a: a[:, 1]) if data.dim > 1 else (lambda a: np.zeros(len(a)))
    ax.scatter(real[:, 0], y(real), s=3, c="tab:green", alpha=0.5, label="training data")
    ax.scatter(pts[:, 0], y(pts), s=3, c="black", alpha=0.5, label="generated")
    ax.set_xlim(lo[0], hi[0])
    if data.dim > 1:
        ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("x₁"), ax.set_ylabel("x₂" if data.dim > 1 else "")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(title + (f"\n(first 2 of {data.dim} coordinates)" if data.dim > 2 else ""),
                 fontsize=9, parse_math=False)
    save_figure(fig, path)


def plot_adagan(panels: list[tuple], points: torch.Tensor, target: GaussianMixture,
                path: str | Path) -> None:
    """AdaGAN step by step: top, the mixture after t components, each sample coloured by
    its component; bottom, the training points coloured by the weight component t
    trained on (relative to uniform: 1 = as in the data, 0 = dropped)."""
    cols = len(panels)
    fig, axes = plt.subplots(2, cols, figsize=(3.2 * cols, 6.4), squeeze=False)
    lo, hi = plot_limits(target)
    colours = plt.get_cmap("tab10")
    for t, (x, which, weights) in enumerate(panels):
        top, bottom = axes[0, t], axes[1, t]
        for c in range(t + 1):
            pts = x[which == c].numpy()
            top.scatter(pts[:, 0], pts[:, 1], s=2, color=colours(c % 10), label=f"G{c + 1}")
        top.set_title(f"mixture of {t + 1}", fontsize=9)
        rel = (weights * len(weights)).float().numpy()
        order = rel.argsort()  # heaviest points drawn last, on top
        im = bottom.scatter(points[order, 0].numpy(), points[order, 1].numpy(), s=1,
                            c=rel[order], cmap="magma", vmin=0, vmax=max(2.0, rel.max()))
        bottom.set_title(f"data weights for G{t + 1}", fontsize=9)
        for ax in (top, bottom):
            ax.set_xlim(lo, hi), ax.set_ylim(lo, hi), ax.set_aspect("equal")
            ax.set_xticks([]), ax.set_yticks([])
    axes[0, -1].legend(fontsize=6, markerscale=3, loc="upper right")
    fig.colorbar(im, ax=axes[1, :].tolist(), fraction=0.02, label="weight × N")
    save_figure(fig, path)


def plot_traversal(grids: list[torch.Tensor], path: str | Path, span: float = 2.0) -> None:
    """InfoGAN latent traversals of images: one panel per continuous code, rows the
    values of the first categorical code, columns that continuous code from −span to
    span (noise and the other codes fixed)."""
    fig, axes = plt.subplots(1, len(grids), figsize=(4.2 * len(grids), 4.6), squeeze=False)
    for j, (ax, grid) in enumerate(zip(axes[0], grids)):
        rows, cols = grid.shape[:2]
        ax.imshow(image_grid(grid.reshape(rows * cols, *grid.shape[2:]), cols=cols),
                  cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"rows: categorical code · columns: continuous code {j + 1}, "
                     f"{-span:g} → {span:g}", fontsize=8)
    save_figure(fig, path)


def plot_class_grid(grid: torch.Tensor, path: str | Path, title: str = "") -> None:
    """A conditional generator's samples (K, m, C, H, W): a row per class, a column per
    latent z (the same z down a column, so a column shows one style in every class)."""
    classes, m = grid.shape[:2]
    fig, ax = plt.subplots(figsize=(0.5 * m + 0.8, 0.5 * classes + 0.7))
    ax.imshow(image_grid(grid.reshape(classes * m, *grid.shape[2:]), cols=m), cmap="gray",
              vmin=0, vmax=1, interpolation="nearest")
    h = grid.shape[-2] + 1
    ax.set_yticks([1 + h * (y + 0.5) for y in range(classes)], [str(y) for y in range(classes)])
    ax.set_xticks([])
    ax.set_ylabel("class")
    ax.set_title(title or "a row per class, the same z down each column", fontsize=8,
                 parse_math=False)
    save_figure(fig, path)


def plot_codes(samples: torch.Tensor, codes: torch.Tensor, target: GaussianMixture,
               path: str | Path) -> None:
    """InfoGAN on a 2-D mixture: generated points coloured by their categorical code."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    lo, hi = plot_limits(target)
    pts = samples.float().cpu().numpy()
    ax.scatter(pts[:, 0], pts[:, 1], s=3, c=codes.cpu().numpy(), cmap="tab20")
    ax.scatter(*target.means.numpy().T, marker="x", s=40, c="black", linewidths=1)
    ax.set_xlim(lo, hi), ax.set_ylim(lo, hi), ax.set_aspect("equal")
    ax.set_title("generated points coloured by the categorical code", fontsize=9)
    save_figure(fig, path)


def plot_losses(records: list[dict[str, Any]], path: str | Path) -> None:
    """Losses, D(real)/D(fake) and gradient norms over training, from metrics.jsonl."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    steps = [r["step"] for r in records]
    for ax, keys, name in zip(axes, [("loss_d", "loss_g"), ("d_real", "d_fake"),
                                     ("grad_norm_d", "grad_norm_g")],
                              ["loss", "mean D(x)", "gradient norm"]):
        for k in keys:
            ax.plot(steps, [r.get(k, float("nan")) for r in records], label=k)
        ax.set_xlabel("step"), ax.set_title(name, fontsize=9, parse_math=False)
        ax.legend(fontsize=7)
    axes[2].set_yscale("log")
    save_figure(fig, path)














