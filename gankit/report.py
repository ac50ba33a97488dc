"""The HTML report: runs' metrics and pictures on one self-contained page."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import stat
import sys
from pathlib import Path

import torch

from gankit.config import changed_options
from gankit.data.mixtures import GaussianMixture
from gankit.errors import GankitError
from gankit.io import atomic_write_text, read_snapshots
from gankit.metrics.describe import direction, format_value, meaning
from gankit.plots import image_grid, plot_limits, plt

__all__ = ["snapshot_frames", "write_html_report", "run_file", "read_summary",
           "check_report_target", "MAX_SUMMARY_BYTES"]

MAX_SUMMARY_BYTES = 16 << 20


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_PICTURE_BYTES = 32 << 20  # gankit's pictures are well under a megabyte


def run_file(run_dir: Path, name: str) -> Path | None:
    """``run_dir / name`` if it is a regular file in the run directory itself (not a
    symlink, a device, a FIFO), else None: a report reads nothing from outside a run."""
    path = run_dir / name
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    return path if stat.S_ISREG(mode) else None


def read_run_file(path: Path, limit: int) -> bytes:
    """At most ``limit`` + 1 bytes of a regular file, opened without following a symlink
    and checked after opening (a file swapped for a link after ``run_file`` looked at it
    is refused, not read)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        return f.read(limit + 1)


def warn(text: str) -> None:
    print(f"gankit: warning: {text}", file=sys.stderr)


def _img(path: Path) -> str:
    """The picture as an <img> with its bytes inline, or "" (and a warning naming it)
    when it is not a PNG file inside the run directory."""
    if run_file(path.parent, path.name) is None:
        warn(f"{path}: not embedded (a symlink or not a regular file); only PNG files "
             "inside the run directory are")
        return ""
    try:
        data = read_run_file(path, MAX_PICTURE_BYTES)
    except OSError:
        data = b""  # (swapped for something else since: not embedded)
    if not data.startswith(PNG_MAGIC) or len(data) > MAX_PICTURE_BYTES:
        why = "larger than 32 MiB" if data.startswith(PNG_MAGIC) else "not a PNG file"
        warn(f"{path}: not embedded ({why}); only PNG files inside the run directory are")
        return ""
    encoded = base64.b64encode(data).decode()
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(path.name)}">'


def snapshot_frames(run_dir: Path, target: GaussianMixture | None) -> list[tuple[int, str]]:
    """(step, base64 PNG) for each snapshot of a 2-D or image run (empty when none)."""
    path = run_dir / "snapshots.npz"
    if not path.exists() and not path.is_symlink():
        return []
    if run_file(run_dir, "snapshots.npz") is None:
        warn(f"{path}: not read (a symlink or not a regular file)")
        return []
    steps, samples = read_snapshots(path)
    if samples.ndim == 5:  # images (snapshots, n, C, H, W): one grid per snapshot
        frames = []
        for step, images in zip(steps, samples):
            fig, ax = plt.subplots(figsize=(5.2, 5.4))
            ax.imshow(image_grid(torch.from_numpy(images)), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_axis_off(), ax.set_title(f"step {int(step)}", fontsize=12)
            frames.append((int(step), _png_base64(fig)))
        return frames
    if samples.ndim != 3 or samples.shape[2] != 2:
        return []
    lo, hi = plot_limits(target) if target is not None else (samples.min(), samples.max())
    frames = []
    for step, pts in zip(steps, samples):
        fig, ax = plt.subplots(figsize=(5.2, 5.2))
        ax.scatter(pts[:, 0], pts[:, 1], s=3, c="black", alpha=0.6, zorder=2)
        if target is not None:
            means = target.means.numpy()
            ax.scatter(means[:, 0], means[:, 1], marker="o", s=30, facecolors="none",
                       edgecolors="limegreen", linewidths=1.2, zorder=3)
        ax.set_xlim(lo, hi), ax.set_ylim(lo, hi), ax.set_aspect("equal")
        ax.set_xlabel("x₁"), ax.set_ylabel("x₂")
        ax.set_title(f"step {int(step)}", fontsize=12)
        frames.append((int(step), _png_base64(fig)))
    return frames


def _png_base64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


PICTURES = ("samples.png", "losses.png", "fixed_z.png", "neighbours.png", "adagan.png",
            "traversal.png", "codes.png", "classes.png")


def _slider(index: int, frames: list[tuple[int, str]]) -> str:
    """Frames stacked as hidden <img>s, a range input that shows one at a time and the
    step of the one shown."""
    last = len(frames) - 1
    imgs = "".join(
        f'<img class="frame" data-step="{step}" src="data:image/png;base64,{b64}" '
        f'alt="samples at step {step}"{"" if i == last else " hidden"}>'
        for i, (step, b64) in enumerate(frames))
    return (f'<div class="slider" id="slider{index}"><label>training, from fixed latents: '
            f'<input type="range" min="0" max="{last}" value="{last}"></label> '
            f'<span class="step">step {frames[-1][0]}</span><div>{imgs}</div></div>')


SCRIPT = """
for (const box of document.querySelectorAll('.slider')) {
  const input = box.querySelector('input'), label = box.querySelector('.step');
  const frames = box.querySelectorAll('img.frame');
  input.addEventListener('input', () => {
    frames.forEach((img, i) => { img.hidden = i != input.value; });
    label.textContent = 'step ' + frames[input.value].dataset.step;
  });
}
"""
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; max-width: 100%; }
h1 { font-size: 1.4em; } h2 { font-size: 1.05em; margin: 0.3em 0; word-break: break-all; }
.table { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { white-space: normal; vertical-align: bottom; }
td.text, th.text { text-align: left; }
tr.floor td { background: #f3f3f3; font-style: italic; }
th[title] { cursor: help; text-decoration: underline dotted; }
.runs { display: grid; gap: 1em; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); }
.runs section { border: 1px solid #ddd; padding: 0.6em; min-width: 0; }
.runs img { max-width: 100%; height: auto; display: block; margin: 4px 0; }
.slider img { width: 420px; max-width: 100%; }
img[hidden] { display: none !important; }
.step { font-weight: bold; }
dl { font-size: 0.85em; columns: 2; } dl div { break-inside: avoid; }
dt { font-weight: bold; } dd { margin: 0 0 0.3em 1em; }
"""


def _number_or_none(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _metric_ok(value) -> bool:
    return _number_or_none(value) or isinstance(value, (str, bool)) or (
        isinstance(value, list) and all(_number_or_none(v) for v in value))


def read_summary(run_dir: Path) -> dict:
    """A run's ``summary.json``, checked to be what ``finish`` writes: a table whose
    ``metrics`` (and ``metrics_stderr``) map names to numbers, labels or lists of
    numbers. Anything else — a symlink, a list, a metric that is a table — is a
    GankitError naming the file and the part."""
    path = run_dir / "summary.json"
    if not path.exists() and not path.is_symlink():
        raise GankitError(f"{run_dir}: no summary.json; is it a finished gankit run directory?")
    if run_file(run_dir, "summary.json") is None:
        raise GankitError(f"{path}: a symlink or not a regular file; allowed: the file gankit "
                          "wrote in the run directory")
    try:
        data = read_run_file(path, MAX_SUMMARY_BYTES)
    except OSError as e:
        raise GankitError(f"{path}: cannot be read as the run's own file ({e.strerror or e})"
                          ) from None
    if len(data) > MAX_SUMMARY_BYTES:
        raise GankitError(f"{path}: larger than {MAX_SUMMARY_BYTES} bytes; not a summary")
    try:
        summary = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise GankitError(f"{path}: not valid JSON ({str(e)[:120]})") from None
    if not isinstance(summary, dict):
        raise GankitError(f"{path}: a JSON {type(summary).__name__}; expected an object with "
                          "\"metrics\"")
    for part in ("metrics", "metrics_stderr"):
        table = summary.get(part)
        if part == "metrics_stderr" and table is None:
            continue
        if not isinstance(table, dict):
            raise GankitError(f"{path}: \"{part}\" is {json.dumps(table)[:60]}; expected an "
                              "object of metric values")
        ok = _number_or_none if part == "metrics_stderr" else _metric_ok
        if bad := next((k for k, v in table.items() if not ok(v)), None):
            raise GankitError(f"{path}: {part}.{bad[:60]} is {json.dumps(table[bad])[:60]}; "
                              "expected a number" + ("" if part == "metrics_stderr" else
                                                     ", a label or a list of numbers"))
    return summary


REPORT_HEAD = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"


def check_report_target(out: Path) -> None:
    """Refuse to write the report over anything but a previous report: a run's own
    files, a directory, a symlink, any other file."""
    if out.is_symlink() or (out.exists() and not out.is_file()):
        raise GankitError(f"--out: {str(out)!r} is a symlink or not a regular file; allowed: "
                          "a new file or a previous gankit report")
    if out.exists():
        with open(out, "rb") as f:
            head = f.read(4096)
        if not head.startswith(REPORT_HEAD.encode()) or b"<title>gankit report</title>" \
                not in head:
            raise GankitError(f"--out: {str(out)!r} exists and is not a gankit report; "
                              "allowed: a new file or a previous report (never a run's files)")


def _config_cells(cfg) -> list[str]:
    if cfg is None:
        return ["—"] * 4
    return [cfg.objective.name, ", ".join(changed_options(cfg)) or "—",
            str(cfg.train.steps), str(cfg.train.seeds)]


def write_html_report(
    run_dirs: list[Path],
    summaries: list[dict],
    path: str | Path,
    *,
    targets: list | None = None,
    configs: list | None = None,
    floors: dict[str, dict] | None = None,
) -> None:
    """One self-contained HTML page: a metric table (a row per run with its objective,
    remedies, steps and seeds; each metric's direction, its meaning on hover and in the
    legend; for image data the real-data floor rows), then the runs side by side, each
    with its pictures and a slider over its training snapshots."""
    configs = configs or [None] * len(run_dirs)
    keys: list[str] = []
    for s in summaries:
        keys += [k for k, v in s.get("metrics", {}).items()
                 if k not in keys and not isinstance(v, (list, str))]
    # (names break after their underscores, so wide tables stay narrow)
    head = "".join(f'<th title="{html.escape(meaning(k))}">'
                   f'{html.escape(k).replace("_", "_<wbr>")}&nbsp;{direction(k)}</th>'
                   for k in keys)
    config_head = "".join(f'<th class="text">{h}</th>'
                          for h in ("objective", "remedies", "steps", "seeds"))

    def row(name: str, metrics: dict, stderr: dict, cells: list[str], cls: str = "") -> str:
        return (f'<tr class="{cls}"><td class="text">{html.escape(name)}</td>'
                + "".join(f'<td class="text">{html.escape(c)}</td>' for c in cells)
                + "".join(f"<td>{html.escape(format_value(k, metrics.get(k), stderr.get(k)))}"
                          "</td>" for k in keys) + "</tr>")

    rows = "".join(row(str(d), s.get("metrics", {}), s.get("metrics_stderr") or {},
                       _config_cells(c)) for d, s, c in zip(run_dirs, summaries, configs))
    rows += "".join(row(f"real-data floor: {name}", m, {}, ["held-out vs train", "", "", ""],
                        "floor") for name, m in (floors or {}).items())
    legend = "".join(f"<div><dt>{html.escape(k)} {direction(k)}</dt>"
                     f"<dd>{html.escape(meaning(k))}</dd></div>" for k in keys if meaning(k))
    cards = ""
    for i, d in enumerate(run_dirs):
        imgs = "".join(_img(d / n) for n in PICTURES
                       if (d / n).exists() or (d / n).is_symlink())
        frames = snapshot_frames(d, targets[i] if targets else None)
        slider = _slider(i, frames) if frames else ""
        cards += f"<section><h2>{html.escape(str(d))}</h2>{imgs}{slider}</section>"
    page = f"""{REPORT_HEAD}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gankit report</title><style>{STYLE}</style></head><body><h1>gankit report</h1>
<div class="table"><table>
<tr><th class="text">run</th>{config_head}{head}</tr>{rows}</table></div>
<p>↑ higher is better, ↓ lower is better; hover a column for its meaning.</p>
<dl>{legend}</dl>
<div class="runs">{cards}</div>
<script>{SCRIPT}</script></body></html>
"""
    atomic_write_text(path, page)
