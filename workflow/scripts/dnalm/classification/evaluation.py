"""A classification run's evaluation from its logits, and its metrics.json and predictions.tsv (written and read)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.classification.calibration import calibrated_logits, check_logits, fit_calibration, softmax
from dnalm.classification.metrics import N_BINS, choose_threshold, classification_metrics, predict
from dnalm.io import write_json, write_tsv

#: Columns of predictions.tsv before and after the per-class probability columns.
ID_COLUMNS = ("id", "split", "label", "label_index")
CALL_COLUMNS = ("predicted", "outcome", "predicted_calibrated", "outcome_calibrated")
#: Outcome of a binary call by (label, predicted).
BINARY_OUTCOMES = {(1, 1): "TP", (1, 0): "FN", (0, 0): "TN", (0, 1): "FP"}


def outcomes(labels: np.ndarray, predicted: np.ndarray, k: int) -> list[str]:
    """Per example: TP, FN, TN or FP for a binary task (positive = the second class), else correct or wrong."""
    if k == 2:
        return [BINARY_OUTCOMES[(int(t), int(p))] for t, p in zip(labels, predicted, strict=True)]
    return ["correct" if t == p else "wrong" for t, p in zip(labels, predicted, strict=True)]


def suffixed(metrics: dict[str, Any], suffix: str) -> dict[str, Any]:
    """Metrics with a suffix on the metric name, before a per-class `/<class>` (`f1/a` -> `f1_calibrated/a`)."""
    out = {}
    for key, value in metrics.items():
        name, sep, cls = key.partition("/")
        out[f"{name}{suffix}{sep}{cls}"] = value
    return out


def split_table(split: str, ids: Sequence[str], labels: np.ndarray, classes: Sequence[str], probs: np.ndarray,
                calibrated: np.ndarray, thresholds: tuple[float | None, float | None]) -> pd.DataFrame:
    """The predictions.tsv rows of one split (columns: `ID_COLUMNS`, prob_*, calibrated_*, `CALL_COLUMNS`)."""
    names = np.asarray(classes, dtype=object)
    table = pd.DataFrame({"id": list(ids), "split": split, "label": names[labels], "label_index": labels})
    for i, c in enumerate(classes):
        table[f"prob_{c}"] = probs[:, i]
    for i, c in enumerate(classes):
        table[f"calibrated_{c}"] = calibrated[:, i]
    for suffix, p, threshold in (("", probs, thresholds[0]), ("_calibrated", calibrated, thresholds[1])):
        called = predict(p, threshold)
        table[f"predicted{suffix}"] = names[called]
        table[f"outcome{suffix}"] = outcomes(labels, called, len(classes))
    return table


def _ids(ids: Sequence[str] | None, n: int, split: str) -> list[str]:
    """The given example ids (checked against the split's size), or `<split>_<row>`."""
    if ids is None:
        return [f"{split}_{i}" for i in range(n)]
    if len(ids) != n:
        raise ValueError(f"{split}: {len(ids)} ids for {n} examples")
    return [str(i) for i in ids]


def evaluate_probabilities(val_logits: np.ndarray, val_labels: np.ndarray, test_logits: np.ndarray,
                           test_labels: np.ndarray, classes: Sequence[str], *, calibration: str = "temperature",
                           threshold: float | str = 0.5, n_bins: int = N_BINS, val_ids: Sequence[str] | None = None,
                           test_ids: Sequence[str] | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics of the test split before and after calibration, and the per-example table of both splits.

    The calibration is fitted on the validation logits and applied to both splits. The threshold is chosen on the
    validation probabilities, once on the raw ones and once on the calibrated ones (with `mcc` the two may differ),
    and each applied to the test probabilities of its kind.

    Args:
        val_logits: (N_val, K) validation logits.
        val_labels: (N_val,) validation class indices.
        test_logits: (N_test, K) test logits.
        test_labels: (N_test,) test class indices.
        classes: The K class names, in logit order (the second is a binary task's positive class).
        calibration: `temperature`, `platt` or `none` (`dnalm.classification.calibration.fit_calibration`).
        threshold: A threshold in (0, 1) or `mcc` (`dnalm.classification.metrics.choose_threshold`).
        n_bins: Bins of the expected calibration error.
        val_ids: Validation example ids (default `val_<row>`).
        test_ids: Test example ids (default `test_<row>`).

    Returns:
        (metrics, table). metrics: the test metrics of `classification_metrics`, the same with suffix `_calibrated`,
        `threshold` and `threshold_calibrated` (None for a multi-class task), `threshold_rule`, `calibration` (the
        fitted parameters), `classes`, `n_val`. table: one row per validation then test example: `id`, `split`
        (val|test), `label`, `label_index`, `prob_<class>` (softmax of the logits), `calibrated_<class>`,
        `predicted`, `outcome` (binary TP|FN|TN|FP, else correct|wrong), `predicted_calibrated`,
        `outcome_calibrated`.
    """
    val_z, val_y = check_logits(val_logits, val_labels, "validation logits")
    test_z, test_y = check_logits(test_logits, test_labels, "test logits")
    if val_z.shape[1] != test_z.shape[1] or len(classes) != test_z.shape[1]:
        raise ValueError(f"validation logits have {val_z.shape[1]} classes, test logits {test_z.shape[1]}, and "
                         f"{len(classes)} class names were given: {list(classes)}")
    params = fit_calibration(val_z, val_y, calibration)
    probs = {"val": softmax(val_z), "test": softmax(test_z)}
    calibrated = {"val": softmax(calibrated_logits(val_z, params)), "test": softmax(calibrated_logits(test_z, params))}
    thresholds = (choose_threshold(probs["val"], val_y, threshold),
                  choose_threshold(calibrated["val"], val_y, threshold))
    metrics = {**classification_metrics(probs["test"], test_y, classes, threshold=thresholds[0], n_bins=n_bins),
               **suffixed(classification_metrics(calibrated["test"], test_y, classes, threshold=thresholds[1],
                                                 n_bins=n_bins), "_calibrated"),
               "threshold": thresholds[0], "threshold_calibrated": thresholds[1], "threshold_rule": threshold,
               "calibration": params, "classes": list(classes), "n_val": len(val_y)}
    metrics.pop("n_examples_calibrated")
    table = pd.concat([split_table("val", _ids(val_ids, len(val_y), "val"), val_y, classes, probs["val"],
                                   calibrated["val"], thresholds),
                       split_table("test", _ids(test_ids, len(test_y), "test"), test_y, classes, probs["test"],
                                   calibrated["test"], thresholds)], ignore_index=True)
    return metrics, table


def json_safe(value: Any) -> Any:
    """A value for strict JSON: NaN and infinities as None, numpy scalars as Python numbers, containers recursed."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(metrics: dict[str, Any], path: str | Path, **extra: Any) -> None:
    """Write a run's `metrics.json` atomically (undefined metrics as null).

    Args:
        metrics: `evaluate_probabilities`' metrics.
        path: Output file.
        **extra: More keys (the task type adds `arch`, `best_epoch`, `trainable_params`, `n_windows`).
    """
    write_json(json_safe({**metrics, **extra}), path)


def write_predictions(table: pd.DataFrame, path: str | Path) -> None:
    """Write a run's `predictions.tsv` atomically (`evaluate_probabilities`' table)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_tsv(table, path)


def read_metrics(path: str | Path) -> dict[str, Any]:
    """Read a run's `metrics.json` (null metrics become NaN).

    Raises:
        ValueError: If the file holds no JSON object with `classes` and `accuracy`.
    """
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or "classes" not in data or "accuracy" not in data:
        raise ValueError(f"{path}: not a classification metrics.json (no 'classes' or 'accuracy' key)")
    return {k: float("nan") if v is None else v for k, v in data.items()}


def class_columns(table: pd.DataFrame) -> list[str]:
    """The class names of a predictions table, from its `prob_<class>` columns in order."""
    return [c.removeprefix("prob_") for c in table.columns if c.startswith("prob_")]


def read_predictions(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """Read a run's `predictions.tsv` and its class names.

    Returns:
        (table, classes); `id` and `label` are read as text.

    Raises:
        ValueError: Naming the file and the missing columns, or the first row whose label_index is out of range.
    """
    table = pd.read_csv(path, sep="\t", dtype={"id": str, "label": str, "predicted": str})
    classes = class_columns(table)
    required = [*ID_COLUMNS, *CALL_COLUMNS, *(f"calibrated_{c}" for c in classes)]
    missing = [c for c in required if c not in table.columns]
    if len(classes) < 2 or missing:
        raise ValueError(f"{path}: not a predictions table of >= 2 classes; missing column(s) "
                         f"{', '.join(missing) or 'prob_<class>'}; found {', '.join(map(str, table.columns))}")
    bad = np.flatnonzero(~table["label_index"].between(0, len(classes) - 1))
    if len(bad):
        raise ValueError(f"{path}: row {bad[0] + 2}: label_index {table['label_index'].iloc[bad[0]]} is not a class "
                         f"index in [0, {len(classes)})")
    return table, classes
