"""The HTML report: runs' metrics and pictures on one self-contained page."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import torch

from gankit.data.mixtures import GaussianMixture
from gankit.io import atomic_write_text, read_snapshots
from gankit.plots import image_grid, plot_limits, plt

__all__ = ["format_metric", "snapshot_frames", "write_html_report"]


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.name)}">'


def format_metric(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def snapshot_frames(run_dir: Path, target: GaussianMixture | None) -> list[tuple[int, str]]:
    """(step, base64 PNG) for each snapshot of a 2-D or image run (empty when none)."""
    path = run_dir / "snapshots.npz"
    if not path.exists():
        return []
    steps, samples = read_snapshots(path)
    if samples.ndim == 5:  # images (snapshots, n, C, H, W): one grid per snapshot
        frames = []
        for step, images in zip(steps, samples):
            fig, ax = plt.subplots(figsize=(3.6, 3.8))
            ax.imshow(image_grid(torch.from_numpy(images)), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_axis_off(), ax.set_title(f"step {int(step)}", fontsize=9)
            frames.append((int(step), _png_base64(fig)))
        return frames
    if samples.ndim != 3 or samples.shape[2] != 2:
        return []
    lo, hi = plot_limits(target) if target is not None else (samples.min(), samples.max())
    frames = []
    for step, pts in zip(steps, samples):
        fig, ax = plt.subplots(figsize=(3.6, 3.6))
        if target is not None:
            means = target.means.numpy()
            ax.scatter(means[:, 0], means[:, 1], marker="x", s=30, c="limegreen")
        ax.scatter(pts[:, 0], pts[:, 1], s=3, c="black", alpha=0.6)
        ax.set_xlim(lo, hi), ax.set_ylim(lo, hi), ax.set_aspect("equal")
        ax.set_title(f"step {int(step)}", fontsize=9)
        frames.append((int(step), _png_base64(fig)))
    return frames


def _png_base64(fig) -> str:
    import io as _io

    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


PICTURES = ("samples.png", "losses.png", "fixed_z.png", "neighbours.png", "adagan.png",
            "traversal.png", "codes.png")


def _slider(index: int, frames: list[tuple[int, str]]) -> str:
    """Frames stacked as hidden <img>s and a range input that shows one at a time."""
    imgs = "".join(
        f'<img class="f{index}" src="data:image/png;base64,{b64}" alt="step {step}" '
        f'style="display:{"inline" if i == len(frames) - 1 else "none"}">'
        for i, (step, b64) in enumerate(frames))
    return (f"<div><p>training, from fixed latents: <input type=range min=0 "
            f"max={len(frames) - 1} value={len(frames) - 1} oninput=\"document."
            f"querySelectorAll('.f{index}').forEach((e, i) => e.style.display = "
            f"i == this.value ? 'inline' : 'none')\"></p>{imgs}</div>")


def write_html_report(
    run_dirs: list[Path],
    summaries: list[dict],
    path: str | Path,
    targets: list[GaussianMixture | None] | None = None,
) -> None:
    """One self-contained HTML page: a metric table and each run's pictures side by side,
    with a slider over the training snapshots of 2-D runs."""
    keys: list[str] = []
    for s in summaries:
        keys += [k for k in s.get("metrics", {}) if k not in keys]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = "".join(
        f"<tr><td>{html.escape(str(d))}</td>"
        + "".join(f"<td>{html.escape(format_metric(s['metrics'].get(k)))}</td>" for k in keys)
        + "</tr>"
        for d, s in zip(run_dirs, summaries)
    )
    cards = ""
    for i, d in enumerate(run_dirs):
        imgs = "".join(_img(d / n) for n in PICTURES if (d / n).exists())
        frames = snapshot_frames(d, targets[i] if targets else None)
        slider = _slider(i, frames) if frames else ""
        cards += f"<section><h2>{html.escape(str(d))}</h2>{imgs}{slider}</section>"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>gankit report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}img{{max-width:100%;margin:4px}}
section{{margin-top:1.5em}}</style></head><body><h1>gankit report</h1>
<table><tr><th>run</th>{head}</tr>{rows}</table>{cards}</body></html>
"""
    atomic_write_text(path, page)
