"""Section metrics: the test-set comparison of each task's models (and of a classification task's extra test sets),
the best value of each column in bold."""

from __future__ import annotations

import numpy as np
import pandas as pd
from markupsafe import Markup

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Test metrics"
#: (column, header, higher is better); None means "not ranked".
METRICS: tuple[tuple[str, str, bool | None], ...] = (
    ("pearson_median", "Pearson median", True),
    ("pearson_mean", "Pearson mean", True),
    ("auprc", "AUPRC", True),
    ("auroc", "AUROC", True),
    ("test_loss", "test loss", False),
    ("count_pearson", "count Pearson", True),
    ("n_windows", "n windows", None),
)
#: The columns of classification tasks (their section `classification` shows the rest, with confidence intervals).
CLASS_METRICS: tuple[tuple[str, str, bool | None], ...] = (
    ("accuracy", "accuracy", True),
    ("mcc", "MCC", True),
    ("sensitivity", "sensitivity", True),
    ("specificity", "specificity", True),
    ("auroc", "AUROC", True),
    ("auprc", "AUPRC", True),
    ("ece", "ECE", False),
    ("test_loss", "test loss", False),
    ("n_windows", "n windows", None),
)
#: The columns of seqerror tasks (their section `seqerror` shows precision and recall, with confidence intervals).
SEQERROR_METRICS: tuple[tuple[str, str, bool | None], ...] = (
    *((f"f1_{k}", f"F1 {k}", True) for k in ("substitution", "insertion", "deletion")),
    *((f"auprc_{k}", f"AUPRC {k}", True) for k in ("substitution", "insertion", "deletion")),
    ("test_loss", "test loss", False),
    ("n_windows", "n windows", None),
)
#: Columns by task type (others: `METRICS`).
TYPE_METRICS = {"classification": CLASS_METRICS, "seqerror": SEQERROR_METRICS}


def _best_values(df: pd.DataFrame, metrics=METRICS) -> dict[str, float]:
    """Best value per ranked metric column: highest, or lowest for the loss."""
    best = {}
    for col, _, higher in metrics:
        if higher is None or col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        if values.notna().any():
            best[col] = values.max() if higher else values.min()
    return best


def _metric_cell(row: pd.Series, col: str, best: dict[str, float]) -> html.Html:
    """A metric cell, `mean ± sd` when an sd column exists, bold when it is the column's best."""
    if col == "n_windows":
        return html.fmt_int(row.get(col))
    sd_col = f"{col}_sd"
    text = html.fmt_num(row.get(col), row.get(sd_col) if sd_col in row.index else None)
    value = pd.to_numeric(row.get(col), errors="coerce")
    if col in best and not pd.isna(value) and np.isclose(value, best[col], rtol=1e-12, atol=0):
        return html.strong(text)
    return text


def _task(task: str, path: str | None, task_type: str = "profile") -> Markup:
    """The comparison table of one task (its type's columns, `TYPE_METRICS`)."""
    if path is None:
        return html.note(f"No test metrics for task {task}.")
    metrics = TYPE_METRICS.get(task_type, METRICS)
    df = html.read_tsv(path, ["model", *(c for c, _, _ in metrics)])
    if df.empty:
        return html.note(f"The comparison table of task {task} is empty ({path}).")
    has_sd = any(c.endswith("_sd") for c in df.columns)
    best = _best_values(df, metrics)
    header = ["model", *(h for _, h, _ in metrics), *(["n seeds"] if has_sd else []), "arch"]
    rows = []
    for _, row in df.iterrows():
        cells = [str(row["model"]), *(_metric_cell(row, c, best) for c, _, _ in metrics)]
        if has_sd:
            cells.append(html.fmt_int(row.get("n_seeds")))
        rows.append([*cells, str(row.get("arch", "–"))])
    text = "Values are mean ± sd over seeds. " if has_sd else ""
    text += "Bold: best in column (highest; lowest for test loss and ECE)."
    return html.join([html.table(header, rows, numeric=range(1, len(metrics) + 1 + has_sd)), html.note(text, "meta")])


def build(manifest: Manifest) -> Markup:
    """Test-set comparison of the models, per task (`comparison` records)."""

    def body(task: str) -> Markup:
        records = manifest.find("comparison", task=task)
        task_type = records[0].get("task_type", "profile") if records else "profile"
        parts = [_task(task, records[0]["path"] if records else None, task_type)]
        for extra in manifest.find("test_set_comparison", task=task):  # classification tasks' extra test sets
            parts += [html.heading(f"Test set {extra['test_set']}"), _task(task, extra["path"], "classification")]
        return html.join(parts)

    return html.per_task("metrics", manifest.tasks, body)
