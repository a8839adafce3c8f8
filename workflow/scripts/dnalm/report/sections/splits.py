"""Section splits: windows per species and split of each task, as a table and a bar chart."""

from __future__ import annotations

import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Windows and splits"
SPLIT_ORDER = ("train", "val", "test")
COLUMNS = ("species", "split", "sites", "dropped_n", "dropped_subsample", "windows")
HEADER = ["species", "split", "sites", "dropped (N)", "dropped (subsample)", "windows"]


def _split_key(split: str) -> int:
    """Sort train, val, test first, anything else after."""
    return SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER)


def _figure(counts: pd.DataFrame, task: str) -> Markup:
    """Bar chart of windows per split, stacked by species when there are few species."""
    windows = counts.pivot_table(index="split", columns="species", values="windows", aggfunc="sum", sort=False)
    windows = windows.loc[sorted(windows.index, key=_split_key)].fillna(0)
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.subplots()
    x = np.arange(len(windows.index))
    if 1 < windows.shape[1] <= 8:
        bottom = np.zeros(len(x))
        for species in windows.columns:
            ax.bar(x, windows[species].to_numpy(), bottom=bottom, label=str(species))
            bottom += windows[species].to_numpy()
        ax.legend(title="species", fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        ax.bar(x, windows.sum(axis=1).to_numpy(), color=html.PREDICTED_COLOUR)
    for xi, total in zip(x, windows.sum(axis=1).to_numpy(), strict=True):
        ax.annotate(f"{int(total):,}", (xi, total), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [str(s) for s in windows.index])
    ax.set_ylabel("windows")
    ax.margins(y=0.12)
    ax.set_title(f"{task}: windows per split", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return html.figure(fig, f"Windows per split for task {task}.")


def _task(task: str, path: str | None) -> Markup:
    """Counts table and chart for one task."""
    if path is None:
        return html.note(f"No split counts for task {task}.")
    counts = html.read_tsv(path, COLUMNS)
    if counts.empty:
        return html.note(f"The split counts of task {task} are empty ({path}).")
    counts = counts.assign(_k=counts["split"].astype(str).map(_split_key)).sort_values(["_k", "species"], kind="stable")
    # fold tasks also count windows dropped for crossing a fold boundary (shown before the kept windows)
    columns, header = list(COLUMNS), list(HEADER)
    # site-centred tasks whose reads spread over nearby bases: the bases merged into sites (after the sites)
    if "merged_bases" in counts.columns and counts["merged_bases"].any():
        columns.insert(3, "merged_bases")
        header.insert(3, "bases merged into sites")
    if "dropped_fold" in counts.columns and counts["dropped_fold"].any():
        columns.insert(-1, "dropped_fold")
        header.insert(-1, "dropped (crosses fold)")
    rows = [[str(r.species), str(r.split), *(html.fmt_int(getattr(r, c)) for c in columns[2:])]
            for r in counts.itertuples(index=False)]
    totals = counts.groupby("split", sort=False)["windows"].sum()
    totals_text = ", ".join(f"{s}: {int(n):,}" for s, n in sorted(totals.items(), key=lambda kv: _split_key(kv[0])))
    return html.join([html.note(f"Windows per split: {totals_text}.", "meta"),
                      html.table(header, rows, range(2, len(header))),
                      _figure(counts, task)])


def build(manifest: Manifest) -> Markup:
    """Windows per species and split, per task (`split_counts` records)."""
    return html.per_task("splits", manifest.tasks, lambda t: _task(t, manifest.path("split_counts", task=t)))
