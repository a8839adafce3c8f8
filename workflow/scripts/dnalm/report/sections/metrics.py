"""Section metrics: the test-set comparison of each task's models, the best value of each column in bold."""

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


def _best_values(df: pd.DataFrame) -> dict[str, float]:
    """Best value per ranked metric column: highest, or lowest for the loss."""
    best = {}
    for col, _, higher in METRICS:
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


def _task(task: str, path: str | None) -> Markup:
    """The comparison table of one task."""
    if path is None:
        return html.note(f"No test metrics for task {task}.")
    df = html.read_tsv(path, ["model", *(c for c, _, _ in METRICS)])
    if df.empty:
        return html.note(f"The comparison table of task {task} is empty ({path}).")
    has_sd = any(c.endswith("_sd") for c in df.columns)
    best = _best_values(df)
    header = ["model", *(h for _, h, _ in METRICS), *(["n seeds"] if has_sd else []), "arch"]
    rows = []
    for _, row in df.iterrows():
        cells = [str(row["model"]), *(_metric_cell(row, c, best) for c, _, _ in METRICS)]
        if has_sd:
            cells.append(html.fmt_int(row.get("n_seeds")))
        rows.append([*cells, str(row.get("arch", "–"))])
    text = "Values are mean ± sd over seeds. " if has_sd else ""
    text += "Bold: best in column (highest; lowest for test loss)."
    return html.join([html.table(header, rows, numeric=range(1, len(METRICS) + 1 + has_sd)), html.note(text, "meta")])


def build(manifest: Manifest) -> Markup:
    """Test-set comparison of the models, per task (`comparison` records)."""
    return html.per_task("metrics", manifest.tasks, lambda t: _task(t, manifest.path("comparison", task=t)))
