"""Section training: training curves and parameter counts of each task's models."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Training"
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss")
HEADER = ["model", "arch", "total params", "trainable params", "trainable", "training", "best epoch", "best val loss"]


def _best(history: pd.DataFrame) -> pd.Series | None:
    """The epoch with the lowest validation loss, or None when no epoch has one."""
    return history.loc[history["val_loss"].idxmin()] if history["val_loss"].notna().any() else None


def _plot_history(ax: Any, model: str, history: pd.DataFrame | None) -> None:
    """Train and validation loss per epoch with the best (lowest val loss) epoch marked."""
    ax.set_title(model, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    if history is None or history.empty:
        html.axes_note(ax, "no history" if history is None else "not trained (baseline)", color="#666")
        ax.set_axis_off()
        return
    ax.plot(history["epoch"], history["train_loss"], "o-", ms=3, color=html.TRAIN_COLOUR, label="train")
    ax.plot(history["epoch"], history["val_loss"], "o-", ms=3, color=html.PREDICTED_COLOUR, label="validation")
    best = _best(history)
    if best is not None:
        ax.axvline(best["epoch"], color="#555", ls=":", lw=1)
        ax.plot([best["epoch"]], [best["val_loss"]], "*", ms=12, color="#c62828",
                label=f"best (epoch {int(best['epoch'])})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7, frameon=False)


def _figure(task: str, histories: dict[str, pd.DataFrame | None]) -> Markup:
    """One loss panel per model."""
    n = len(histories)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.1 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (model, history) in zip(axes, histories.items(), strict=False):
        _plot_history(ax, model, history)
    for ax in axes[n:]:
        ax.set_visible(False)
    return html.figure(fig, f"Training curves for task {task} (★ = epoch with the lowest validation loss).")


def _row(model: str, info: dict[str, Any], history: pd.DataFrame | None) -> list[str]:
    """One row of the parameter table."""
    total, trainable = info.get("total_params"), info.get("trainable_params")
    share = f"{100 * trainable / total:.1f}%" if total and trainable is not None else "–"
    status, best_epoch, best_loss = "no history", "–", "–"
    if history is not None and history.empty:
        status = "not trained (baseline)"
    elif history is not None:
        best = _best(history)
        status = f"{len(history)} epoch(s)"
        if best is not None:
            best_epoch, best_loss = html.fmt_int(best["epoch"]), html.fmt_num(best["val_loss"])
    return [model, str(info.get("arch", "–")), html.fmt_int(total), html.fmt_int(trainable), share, status, best_epoch,
            best_loss]


def _task(manifest: Manifest, task: str) -> Markup:
    """Curves and parameter counts for one task."""
    models = manifest.models(task)
    if not models:
        return html.note(f"No models were trained for task {task}.")
    history_paths = manifest.paths("history", "model", task=task)
    info_paths = manifest.paths("model_info", "model", task=task)
    histories = {m: html.read_tsv(history_paths[m], HISTORY_COLUMNS) if m in history_paths else None for m in models}
    infos = {m: html.read_json(info_paths[m]) if m in info_paths else {} for m in models}
    rows = [_row(m, infos[m], histories[m]) for m in models]
    baselines = [m for m in models if histories[m] is not None and histories[m].empty]
    parts = [_figure(task, histories)]
    if baselines:
        parts.append(html.note(f"Not trained (baseline): {', '.join(baselines)}."))
    return html.join([*parts, html.table(HEADER, rows, numeric=[2, 3, 4, 6, 7])])


def build(manifest: Manifest) -> Markup:
    """Training curves and parameter counts, per task (`history` and `model_info` records)."""
    return html.per_task("training", manifest.tasks, lambda t: _task(manifest, t))
