"""Section examples: observed vs predicted signal of typical test windows, per task, drawn by task type."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import h5py
import numpy as np
from markupsafe import Markup
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Example tracks"
#: Draws one channel of one window on an axes: (axes, observed, predicted), each array over positions (or bins).
ChannelDrawer = Callable[[Any, np.ndarray, np.ndarray], None]
#: Channel names and (observed, predicted) arrays by window id, of one model's predictions.
Windows = tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]]]


def draw_signal(ax: Any, observed: np.ndarray, predicted: np.ndarray) -> None:
    """Observed (grey, left axis) and predicted (blue line, right axis) signal of one channel.

    The two get their own y axes: a base-resolution observed profile is often one tall spike while a model spreads
    the same total over several bases, and on one axis the prediction would look flat.
    """
    x = np.arange(len(observed))
    grey = html.OBSERVED_COLOUR
    ax.fill_between(x, observed, step="mid", color=grey, alpha=0.8, lw=0.8, edgecolor=grey, label="observed")
    ax.spines[["top"]].set_visible(False)
    ax.tick_params(labelsize=7)
    right = ax.twinx()
    right.plot(x, predicted, color=html.PREDICTED_COLOUR, lw=1, label="predicted")
    right.set_ylim(bottom=0)
    right.spines[["top"]].set_visible(False)
    right.tick_params(labelsize=7, colors=html.PREDICTED_COLOUR)


#: How a channel of a test window is drawn, by task type (the manifest's `task_type`, the config's
#: `tasks.<id>.type`). A new task type adds its drawing function and one line here. profile (base resolution),
#: tracks (binned) and seqerror (per-base tags) windows are all drawn by `draw_signal` today: position along x,
#: whatever its unit.
DRAWERS: dict[str, ChannelDrawer] = {
    "profile": draw_signal,
    "tracks": draw_signal,
    "seqerror": draw_signal,  # observed: the 0/1 tags of a channel; predicted: its probability
}


def drawer(task: str, task_type: str) -> ChannelDrawer:
    """The drawing function of a task's type.

    Raises:
        ValueError: If no function draws that task type.
    """
    if task_type not in DRAWERS:
        raise ValueError(f"task {task}: the report cannot draw example windows of task type {task_type!r}; "
                         f"known: {', '.join(DRAWERS)} (dnalm.report.sections.examples.DRAWERS)")
    return DRAWERS[task_type]


def _decode(values: Iterable[Any]) -> list[str]:
    """Byte or str values as str."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _row_totals(ds: h5py.Dataset, max_elements: int = 1 << 22) -> np.ndarray:
    """Sum of each row of an (N, ...) dataset, read in chunks."""
    per_row = max(1, int(np.prod(ds.shape[1:])))
    step = max(1, max_elements // per_row)
    totals = np.empty(ds.shape[0], dtype=np.float64)
    for start in range(0, ds.shape[0], step):
        block = ds[start : start + step]
        totals[start : start + step] = np.nansum(block.reshape(len(block), -1), axis=1, dtype=np.float64)
    return totals


def example_windows(path: str, n: int) -> list[tuple[str, float]]:
    """n typical windows: those at evenly spaced quantiles (50th to 95th percentile) of total observed signal.

    The strongest windows are often outliers (a few loci with 1000x the median signal), so they are not shown.

    Returns:
        (window id, total) pairs, the strongest first.
    """
    with h5py.File(path, "r") as fh:
        totals = _row_totals(fh["observed"])
        ids = _decode(fh["window_id"][:])
    ranked = [i for i in np.argsort(totals, kind="stable") if totals[i] > 0]
    if not ranked or n == 0:
        return []
    picks = np.unique(np.round(np.linspace(0.5, 0.95, n) * (len(ranked) - 1)).astype(int))
    return [(ids[ranked[p]], float(totals[ranked[p]])) for p in picks[::-1]]


def read_windows(path: str, window_ids: Sequence[str]) -> Windows:
    """Channel names and (observed, predicted) arrays of the given windows in one predictions file."""
    with h5py.File(path, "r") as fh:
        obs, pred = fh["observed"], fh["predicted"]
        if obs.shape != pred.shape or obs.ndim != 3:
            raise ValueError(f"{path}: observed {obs.shape} and predicted {pred.shape} must be equal (N, C, L)")
        channels = _decode(fh.attrs.get("channels", [f"channel {i}" for i in range(obs.shape[1])]))
        index = {wid: i for i, wid in enumerate(_decode(fh["window_id"][:]))}
        rows = {w: (obs[index[w]], pred[index[w]]) for w in window_ids if w in index}
    return channels, rows


def _window_figure(window: str, total: float, per_model: dict[str, Windows], draw: ChannelDrawer) -> Markup:
    """One figure per window: a row per model, a column per channel."""
    n_ch = max(len(ch) for ch, _ in per_model.values())
    fig = Figure(figsize=(max(6.0, 3.6 * n_ch), 1.5 * len(per_model) + 0.9), layout="constrained")
    axes = fig.subplots(len(per_model), n_ch, squeeze=False, sharex=True)
    for r, (model, (channels, rows)) in enumerate(per_model.items()):
        axes[r, 0].set_ylabel(model, fontsize=8)
        for c in range(n_ch):
            ax = axes[r, c]
            if r == 0:
                ax.set_title(channels[c] if c < len(channels) else f"channel {c}", fontsize=9)
            if window not in rows or c >= len(channels):
                html.axes_note(ax, "window not in predictions")
                continue
            draw(ax, rows[window][0][c], rows[window][1][c])
    handles = [Patch(color=html.OBSERVED_COLOUR, label="observed (left axis)"),
               Line2D([], [], color=html.PREDICTED_COLOUR, label="predicted (right axis)")]
    axes[0, 0].legend(handles=handles, fontsize=7, frameon=False, loc="upper left")
    for ax in axes[-1]:
        ax.set_xlabel("position in window", fontsize=8)
    fig.suptitle(f"{window} (total observed signal {total:,.0f})", fontsize=10)
    return html.figure(fig, f"Window {window}: observed (grey) vs predicted (blue), total observed {total:,.0f}.")


def _task(manifest: Manifest, task: str) -> Markup:
    """Example-window figures of one task."""
    records = manifest.find("prediction", task=task)
    if not records:
        return html.note(f"No predictions for task {task}.")
    if manifest.n_examples == 0:
        return html.note("Example tracks are turned off (n_examples: 0).")
    draw = drawer(task, records[0]["task_type"])
    top = example_windows(records[0]["path"], manifest.n_examples)
    if not top:
        return html.note(f"The test set of task {task} has no windows.")
    ids = [w for w, _ in top]
    per_model = {r["model"]: read_windows(r["path"], ids) for r in records}
    missing = sorted({f"{m}: {w}" for m, (_, rows) in per_model.items() for w in ids if w not in rows})
    parts = [html.note(f"{len(top)} typical test window(s), at evenly spaced quantiles (50th to 95th percentile) of "
                       f"total observed signal in the predictions of {records[0]['model']}, shown for every model. "
                       "Grey: observed signal (left axis); blue: predicted signal, profile × predicted total count "
                       "(right axis).")]
    if missing:
        parts.append(html.note(f"Windows missing from some predictions: {'; '.join(missing)}.", "bad"))
    return html.join([*parts, *(_window_figure(w, t, per_model, draw) for w, t in top)])


def build(manifest: Manifest) -> Markup:
    """Observed vs predicted signal of typical test windows, per task (`prediction` records)."""
    return html.per_task("examples", manifest.tasks, lambda t: _task(manifest, t))
