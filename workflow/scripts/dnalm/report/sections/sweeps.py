"""Section sweeps: per task and swept model (models.<id>.sweep), metrics against the swept values and the best point."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Sweeps"
#: Columns of dnalm.evaluate.sweep_table after the swept parameters, and the metrics shown against them where the
#: task type has them (profile and tracks tasks: Pearson and AUROC; classification: accuracy, MCC, AUROC).
FIXED = ("n_seeds", "val_loss", "val_loss_sd")
SHOWN = (("val_loss", "validation loss"), ("pearson_median", "test Pearson median"), ("accuracy", "test accuracy"),
         ("mcc", "test MCC"), ("auroc", "test AUROC"))


def _shown(df: pd.DataFrame) -> list[tuple[str, str]]:
    return [(m, label) for m, label in SHOWN if m in df.columns]


def _params(df: pd.DataFrame) -> list[str]:
    """The swept keys: the columns between `model` and `n_seeds`."""
    columns = list(df.columns)
    return columns[1 : columns.index("n_seeds")]


def _panel(ax: Any, df: pd.DataFrame, param: str, others: list[str], metric: str, label: str) -> None:
    """Mean ± sd of a metric against one swept key; one line per combination of the other keys."""
    values = list(dict.fromkeys(df[param]))
    numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values)
    groups = df.groupby(others, sort=False) if others else [((), df)]
    for key, group in groups:
        x = group[param].astype(float) if numeric else [values.index(v) for v in group[param]]
        name = ", ".join(f"{o}={v}" for o, v in zip(others, np.atleast_1d(key), strict=True)) if others else None
        ax.errorbar(x, group[metric], yerr=group[f"{metric}_sd"].fillna(0), marker="o", capsize=3, label=name)
    best = df[df["best"].astype(bool)]
    bx = best[param].astype(float) if numeric else [values.index(v) for v in best[param]]
    ax.plot(bx, best[metric], "*", color="black", markersize=12, zorder=5)
    if not numeric:
        ax.set_xticks(range(len(values)), [str(v) for v in values])
    ax.set_xlabel(param)
    ax.set_ylabel(label)
    if others and len(df) > len(values):
        ax.legend(fontsize=7)


def _figure(task: str, model: str, df: pd.DataFrame) -> Markup:
    """A grid of panels: one row per metric, one column per swept key."""
    params, shown = _params(df), _shown(df)
    fig = Figure(figsize=(4.0 * len(params), 2.8 * len(shown)), layout="constrained")
    axes = fig.subplots(len(shown), len(params), squeeze=False)
    for col, param in enumerate(params):
        others = [q for q in params if q != param]
        for row, (metric, label) in enumerate(shown):
            _panel(axes[row, col], df, param, others, metric, label)
    return html.figure(fig, f"Sweep of {model} on task {task}: mean ± sd over seeds against each swept key "
                       "(★ = best point, lowest mean validation loss).")


def _model(task: str, model: str, path: str) -> Markup:
    """Figure, table and best point of one model's sweep on one task."""
    df = html.read_tsv(path, ["model", *FIXED, "best"])
    if df.empty:
        return html.note(f"The sweep table of {model} on task {task} is empty ({path}).")
    params, shown = _params(df), _shown(df)
    rows = []
    for _, row in df.iterrows():
        metrics = [html.fmt_num(row[m], row.get(f"{m}_sd")) for m, _ in shown]
        cells = [str(row["model"]), *(str(row[q]) for q in params), html.fmt_int(row["n_seeds"]), *metrics]
        rows.append([html.strong(c) for c in cells] if bool(row["best"]) else cells)
    header = ["point", *params, "n seeds", *(label for _, label in shown)]
    best = df[df["best"].astype(bool)]
    text = (f"Best point (lowest mean validation loss): {best['model'].iloc[0]}." if len(best)
            else "No point has a validation loss.")
    return html.join([html.heading(model), _figure(task, model, df),
                      html.table(header, rows, numeric=range(1 + len(params), len(header))), html.note(text, "meta")])


def build(manifest: Manifest) -> Markup:
    """Per task, each swept model's figure, table and best point (`sweep` records)."""
    tasks = manifest.names("task", ("sweep",))
    if not tasks:
        return html.note("No model has a sweep (models.<id>.sweep).")
    return html.task_blocks("sweeps", tasks, lambda t: html.join(
        _model(t, m, p) for m, p in manifest.paths("sweep", "model", task=t).items()))
