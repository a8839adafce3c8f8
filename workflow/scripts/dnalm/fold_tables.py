"""Tables across folds and seeds: the cross-fold table of a cross-validated task, and what pretraining is worth.

`cross_fold_table` reads the `runs.tsv` of every fold task of a group (`dnalm.crossfold`) and, per model and metric,
averages a fold's seeds first, then gives the mean over folds with a 95% Student-t interval (k − 1 degrees of
freedom: the folds are the replicates, as in study 2's fold-averaged figures). Fold-ensemble metrics
(`results/eval/<fold task>/<model>/ensemble.json`) are summarised the same way under `predictor = ensemble`.

`pretraining_table` pairs each language model fine-tuned from a pretrained backbone with the same architecture
trained from scratch and gives, per metric, both means and their paired difference with a 95%
interval and a paired t-test: pairs are matched by fold (cross-validated tasks) or by seed. The pairs come from
`dnalm.crossfold.pretraining_pairs`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

#: Columns of runs.tsv that are not metrics.
RUN_COLUMNS = ("run", "model", "seed", "arch", "n_windows", "fold")


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, int]:
    """Mean, half-width of its Student-t interval (NaN with fewer than 2 finite values), and the number of values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan"), 0
    if len(x) < 2:
        return float(x.mean()), float("nan"), 1
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(half), len(x)


def metric_columns(per_run: pd.DataFrame) -> list[str]:
    """The numeric metric columns of a runs table, in order."""
    return [c for c in per_run.columns if c not in RUN_COLUMNS and pd.api.types.is_numeric_dtype(per_run[c])]


def fold_runs(runs_files: dict[int, str], ensemble_files: dict[int, list[str]] | None = None) -> pd.DataFrame:
    """Every run of every fold, with `fold` and `predictor` (`single`; `ensemble` rows from ensemble JSONs).

    Args:
        runs_files: Fold → its task's runs.tsv.
        ensemble_files: Fold → `results/eval/<fold task>/<run>/ensemble.json` files (the run is the parent folder).
    """
    parts = [pd.read_csv(path, sep="\t").assign(fold=fold, predictor="single") for fold, path in runs_files.items()]
    runs = pd.concat(parts).drop_duplicates("run").set_index("run") if parts else pd.DataFrame()
    for fold, files in (ensemble_files or {}).items():
        rows = []
        for path in files:
            run = Path(path).parent.name
            metrics = json.loads(Path(path).read_text())  # the runs tables' metrics, nothing else
            rows.append({"run": run, "model": runs["model"].get(run, run), "fold": fold, "predictor": "ensemble",
                         **{k: v for k, v in metrics.items() if k in runs.columns and k not in RUN_COLUMNS}})
        parts.append(pd.DataFrame(rows))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def cross_fold_table(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per predictor, model and metric: mean over folds of the fold's mean over seeds, 95% CI, sd, the folds.

    Returns:
        Columns predictor, model, metric, mean, ci95 (half-width), sd, n_folds, fold_<i>... (the per-fold values).
    """
    metrics = metric_columns(per_run)
    folds = sorted(per_run["fold"].unique())
    rows = []
    for (predictor, model), group in per_run.groupby(["predictor", "model"], sort=False):
        by_fold = group.groupby("fold")[metrics].mean()
        for metric in metrics:
            values = by_fold[metric].reindex(folds)
            if not np.isfinite(values.to_numpy(dtype=float)).any():
                continue
            mean, half, n = mean_ci(values.to_numpy())
            rows.append({"predictor": predictor, "model": model, "metric": metric, "mean": mean, "ci95": half,
                         "sd": float(values.std(ddof=1)) if n > 1 else float("nan"), "n_folds": n,
                         **{f"fold_{f}": values.loc[f] for f in folds}})
    return pd.DataFrame(rows)


def pretraining_table(per_run: pd.DataFrame, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """Per (pretrained, scratch) pair and metric: both means, the paired difference, its 95% CI and a paired t-test.

    Runs are paired by fold when `per_run` has a `fold` column (each fold's seeds averaged), else by seed.

    Returns:
        Columns pretrained, scratch, metric, pretrained_mean, scratch_mean, difference, ci95, n_pairs, p_value,
        paired_by.
    """
    by = "fold" if "fold" in per_run.columns else "seed"
    metrics = metric_columns(per_run)
    rows = []
    for pretrained, scratch in pairs:
        a = per_run[per_run["model"] == pretrained].groupby(by)[metrics].mean()
        b = per_run[per_run["model"] == scratch].groupby(by)[metrics].mean()
        common = a.index.intersection(b.index)
        for metric in metrics:
            x, y = a.loc[common, metric].to_numpy(float), b.loc[common, metric].to_numpy(float)
            keep = np.isfinite(x) & np.isfinite(y)
            if not keep.any():
                continue
            diff, half, n = mean_ci(x[keep] - y[keep])
            p = float(stats.ttest_rel(x[keep], y[keep]).pvalue) if n > 1 and np.ptp(x[keep] - y[keep]) > 0 \
                else float("nan")
            rows.append({"pretrained": pretrained, "scratch": scratch, "metric": metric,
                         "pretrained_mean": float(x[keep].mean()), "scratch_mean": float(y[keep].mean()),
                         "difference": diff, "ci95": half, "n_pairs": n, "p_value": p, "paired_by": by})
    return pd.DataFrame(rows, columns=["pretrained", "scratch", "metric", "pretrained_mean", "scratch_mean",
                                       "difference", "ci95", "n_pairs", "p_value", "paired_by"])
