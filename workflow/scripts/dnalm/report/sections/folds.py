"""Section folds: cross-validated tasks' metrics over folds (mean ± 95% CI, fold ensembles) and what pretraining is
worth (each pretrained LM against the same architecture from scratch, paired by fold or seed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Folds and pretraining"
#: Metrics shown first (the rest of the cross-fold table, e.g. per-track Pearson, follows in its own table).
HEADLINE = ("pearson_median", "pearson_mean", "count_pearson", "auroc", "auprc", "accuracy", "mcc", "test_loss")


def _ci(mean, half) -> str:
    return html.fmt_num(mean) + ("" if html.is_missing(half) else f" ± {float(half):.3f}")


def _cross_fold(task: str, path: str) -> Markup:
    """The headline metrics per model (single models, then fold ensembles), and the per-track metrics."""
    df = html.read_tsv(path, ["predictor", "model", "metric", "mean", "ci95", "n_folds"])
    if df.empty:
        return html.note(f"The cross-fold table of {task} is empty ({path}).")
    head = [m for m in HEADLINE if m in set(df["metric"])]
    rows = []
    for (predictor, model), group in df.groupby(["predictor", "model"], sort=False):
        by = group.set_index("metric")
        rows.append([model, predictor, html.fmt_int(by["n_folds"].max()),
                     *(_ci(by.at[m, "mean"], by.at[m, "ci95"]) if m in by.index else "–" for m in head)])
    parts = [html.heading("Across folds"),
             html.table(["model", "predictor", "folds", *head], rows, numeric=range(2, 3 + len(head))),
             html.note("Mean over folds of each fold's test metric (seeds averaged within a fold) ± the half-width "
                       "of a 95% Student-t interval over folds. The ensemble predicts each fold's test windows with "
                       "the models that never trained on them (the fold's own model and the one that validated on "
                       "that fold).", "meta")]
    tracks = df[df["metric"].str.startswith("track_") & (df["predictor"] == "single")]
    if len(tracks):
        track_rows = [[r.model, r.metric, _ci(r.mean, r.ci95)] for r in tracks.itertuples()]
        parts += [html.heading("Per track"), html.table(["model", "metric", "mean ± 95% CI"], track_rows, numeric=[2])]
    return html.join(parts)


def _pretraining_figure(task: str, df: pd.DataFrame) -> Markup:
    """Pretrained against scratch: the difference of each headline metric with its interval, one row per pair."""
    fig = Figure(figsize=(6.0, 0.6 + 0.5 * len(df)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(df))
    ax.errorbar(df["difference"], y, xerr=df["ci95"].fillna(0), fmt="o", capsize=3)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y, [f"{r.pretrained} − {r.scratch}: {r.metric}" for r in df.itertuples()], fontsize=7)
    ax.set_xlabel("difference (pretrained − scratch)")
    return html.figure(fig, f"Task {task}: what pretraining is worth, mean paired difference ± 95% CI.")


def _pretraining(task: str, path: str) -> Markup:
    df = html.read_tsv(path, ["pretrained", "scratch", "metric", "difference", "ci95", "n_pairs", "p_value"])
    if df.empty:
        return html.note(f"No pretrained and scratch runs to pair on {task} ({path}).")
    shown = df[df["metric"].isin(HEADLINE)]
    rows = [[r.pretrained, r.scratch, r.metric, html.fmt_num(r.pretrained_mean), html.fmt_num(r.scratch_mean),
             _ci(r.difference, r.ci95), html.fmt_int(r.n_pairs), "–" if html.is_missing(r.p_value) else f"{r.p_value:.2g}"]
            for r in shown.itertuples()]
    header = ["pretrained", "scratch", "metric", "pretrained", "scratch", "difference ± 95% CI", "pairs", "p"]
    return html.join([html.heading("Pretrained against scratch"),
                      _pretraining_figure(task, shown) if len(shown) else html.note("No headline metric."),
                      html.table(header, rows, numeric=range(3, 8)),
                      html.note(f"Paired by {df['paired_by'].iloc[0]}; p: paired t-test.", "meta")])


def build(manifest: Manifest) -> Markup:
    """Per cross-validated task its cross-fold table; per task with pretrained and scratch LMs their comparison."""
    tasks = manifest.names("task", ("cross_fold", "pretraining"))
    if not tasks:
        return html.note("No cross-validated task (split.folds without val and test) and no language model trained "
                         "both from a pretrained backbone and from scratch.")

    def body(task: str) -> Markup:
        parts = []
        if (path := manifest.path("cross_fold", task=task)) is not None:
            parts.append(_cross_fold(task, path))
        if (path := manifest.path("pretraining", task=task)) is not None:
            parts.append(_pretraining(task, path))
        return html.join(parts)

    return html.task_blocks("folds", tasks, body)
