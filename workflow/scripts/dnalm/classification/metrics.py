"""Metrics of predicted class probabilities: threshold metrics, AUROC/AUPRC, Brier, ECE, thresholds, CIs over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

from dnalm.classification.calibration import check_logits

#: Equal-width confidence bins of the expected calibration error and the reliability diagram.
N_BINS = 15
#: One-vs-rest metrics: per class for K > 2 (and their macro mean), on the positive class for K = 2.
PER_CLASS = ("sensitivity", "specificity", "precision", "f1", "auroc", "auprc")
#: Every metric `classification_metrics` returns besides the per-class ones, in table order.
METRICS = ("accuracy", "balanced_accuracy", "mcc", *PER_CLASS, "brier", "ece")


def check_probabilities(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check (N, K) class probabilities (rows summing to 1) against (N,) class indices.

    Returns:
        The probabilities as float64 and the labels as int64.

    Raises:
        ValueError: On a shape mismatch, a label out of range, or a row that is not a probability distribution.
    """
    p, y = check_logits(probs, labels, "probabilities")
    if (p < 0).any() or (p > 1).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("probabilities: every row must be a distribution over the classes (in [0, 1], summing to 1)")
    return p, y


def predict(probs: np.ndarray, threshold: float | None = 0.5) -> np.ndarray:
    """Predicted class indices: binary, the positive class where its probability is >= threshold; else the argmax.

    Args:
        probs: (N, K) class probabilities.
        threshold: Decision threshold on the positive class's probability (K = 2 only); None means the argmax.

    Returns:
        (N,) class indices.
    """
    p = np.asarray(probs)
    if p.shape[1] == 2 and threshold is not None:
        return (p[:, 1] >= threshold).astype(np.int64)
    return p.argmax(axis=1).astype(np.int64)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    return np.bincount(np.asarray(labels) * k + np.asarray(predicted), minlength=k * k).reshape(k, k)


def _ratio(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """num / den, 0 where den is 0."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def mcc(cm: np.ndarray) -> float:
    """Matthews correlation coefficient of a confusion matrix (Gorodkin's R_K for K > 2; 0 when undefined).

    MCC = (c·s - Σ_k p_k·t_k) / sqrt((s² - Σ_k p_k²)(s² - Σ_k t_k²)), with c correct predictions, s examples, t_k
    examples of class k and p_k predictions of class k. For K = 2 it is (TP·TN - FP·FN) / sqrt(...).
    """
    cm = np.asarray(cm, dtype=np.float64)
    t, p, c, s = cm.sum(axis=1), cm.sum(axis=0), np.trace(cm), cm.sum()
    return float(_ratio(c * s - t @ p, np.sqrt((s * s - p @ p) * (s * s - t @ t))))


def one_vs_rest(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per class (K,) arrays of the one-vs-rest sensitivity (recall), specificity, precision and F1."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    fn, fp = cm.sum(axis=1) - tp, cm.sum(axis=0) - tp
    tn = cm.sum() - tp - fn - fp
    return {"sensitivity": _ratio(tp, tp + fn), "specificity": _ratio(tn, tn + fp), "precision": _ratio(tp, tp + fp),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn)}


def ranking(probs: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per class (K,) AUROC and AUPRC (average precision, no interpolation) of one class against the rest.

    A class with no example, or with every example, has NaN.
    """
    k = probs.shape[1]
    out = {"auroc": np.full(k, np.nan), "auprc": np.full(k, np.nan)}
    for c in range(k):
        is_c = labels == c
        if is_c.any() and not is_c.all():
            out["auroc"][c] = roc_auc_score(is_c, probs[:, c])
            out["auprc"][c] = average_precision_score(is_c, probs[:, c])
    return out


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Brier score: the squared error of the probabilities against the one-hot labels, mean over examples and classes.

    (1 / (N·K)) Σ_n Σ_k (p_nk - y_nk)². For K = 2 this equals the usual binary Brier score mean((p_1 - y)²); for
    K > 2 it is Brier's (1950) multi-class score (a sum over classes, in [0, 2]) divided by K.
    """
    p, y = check_probabilities(probs, labels)
    onehot = np.eye(p.shape[1])[y]
    return float(((p - onehot) ** 2).mean())


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> dict[str, np.ndarray]:
    """Reliability of the top-class confidence in equal-width bins.

    Bin b holds the examples whose confidence (the largest class probability) lies in (b / B, (b + 1) / B].

    Args:
        probs: (N, K) class probabilities.
        labels: (N,) class indices.
        n_bins: Number of bins B.

    Returns:
        (B,) arrays: `lower`, `upper` (bin edges), `count`, `confidence` (mean top-class probability) and `accuracy`
        (fraction whose top class is the label); NaN for empty bins.
    """
    p, y = check_probabilities(probs, labels)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    bins = np.searchsorted(edges[1:-1], confidence, side="left")
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(bins, confidence, minlength=n_bins) / count
        acc = np.bincount(bins, correct, minlength=n_bins) / count
    return {"lower": edges[:-1], "upper": edges[1:], "count": count, "confidence": conf, "accuracy": acc}


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error (Guo et al. 2017): Σ_b (n_b / N)·|accuracy_b - confidence_b| over the bins of
    `reliability` (equal-width bins of the top-class confidence; empty bins count 0). NaN for no examples."""
    rel = reliability(probs, labels, n_bins)
    n = rel["count"].sum()
    if n == 0:
        return float("nan")
    full = rel["count"] > 0
    return float((rel["count"][full] * np.abs(rel["accuracy"][full] - rel["confidence"][full])).sum() / n)


def classification_metrics(probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], *,
                           threshold: float | None = 0.5, n_bins: int = N_BINS) -> dict[str, float]:
    """Every metric of `METRICS` for one split.

    Args:
        probs: (N, K) class probabilities.
        labels: (N,) class indices.
        classes: The K class names (the second is the positive class of a binary task).
        threshold: Decision threshold of a binary task (`predict`); None for the argmax.
        n_bins: Bins of the expected calibration error.

    Returns:
        `accuracy`; `balanced_accuracy` (mean sensitivity over the classes present); `mcc`; the one-vs-rest
        metrics of `PER_CLASS` (K = 2: of the positive class; K > 2: `<metric>/<class>` per class and `<metric>` their
        macro mean over classes, AUROC/AUPRC over the classes present); `brier`; `ece`; `n_examples`. A ratio whose
        denominator is 0 (no predicted positives for the precision, ...) is 0, as scikit-learn's `zero_division=0`.
    """
    p, y = check_probabilities(probs, labels)
    k = p.shape[1]
    if len(classes) != k:
        raise ValueError(f"probabilities have {k} classes but {len(classes)} class names were given: {list(classes)}")
    cm = confusion_matrix(y, predict(p, threshold), k)
    per_class = {**one_vs_rest(cm), **ranking(p, y)}
    present = cm.sum(axis=1) > 0
    out = {"accuracy": float(_ratio(np.trace(cm), cm.sum())),
           "balanced_accuracy": float(per_class["sensitivity"][present].mean()) if present.any() else float("nan"),
           "mcc": mcc(cm)}
    for name in PER_CLASS:
        values = per_class[name]
        if k == 2:
            out[name] = float(values[1])
            continue
        out[name] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        out.update({f"{name}/{c}": float(v) for c, v in zip(classes, values, strict=True)})
    out["brier"] = brier_score(p, y)
    out["ece"] = expected_calibration_error(p, y, n_bins)
    out["n_examples"] = len(y)
    return out


def _binary_mcc(tp: np.ndarray, fp: np.ndarray, n_pos: int, n_neg: int) -> np.ndarray:
    """MCC of binary calls from their true and false positive counts (0 where undefined)."""
    fn, tn = n_pos - tp, n_neg - fp
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return _ratio(tp * tn - fp * fn, den)


def mcc_threshold(probs: np.ndarray, labels: np.ndarray) -> float:
    """The decision threshold on the positive class's probability that maximises the MCC of a binary split.

    The candidates are the midpoints between consecutive distinct probabilities, so each splits the examples
    differently. Among candidates of equal MCC (within 1e-12) the one closest to 0.5 wins, then the lower. With one
    class only, or one distinct probability, no threshold separates anything and the result is 0.5.

    Args:
        probs: (N, 2) validation class probabilities.
        labels: (N,) validation class indices.

    Returns:
        The threshold (the positive class is predicted where its probability is >= it).
    """
    p, y = check_probabilities(probs, labels)
    if p.shape[1] != 2:
        raise ValueError(f"the MCC threshold is for binary tasks; these probabilities have {p.shape[1]} classes")
    scores, positive = p[:, 1], y == 1
    distinct = np.unique(scores)
    if len(distinct) < 2 or positive.all() or not positive.any():
        return 0.5
    cuts = (distinct[:-1] + distinct[1:]) / 2
    pos, neg = np.sort(scores[positive]), np.sort(scores[~positive])
    tp = (len(pos) - np.searchsorted(pos, cuts, side="left")).astype(np.float64)
    fp = (len(neg) - np.searchsorted(neg, cuts, side="left")).astype(np.float64)
    values = _binary_mcc(tp, fp, len(pos), len(neg))
    best = np.flatnonzero(values >= values.max() - 1e-12)
    return float(cuts[best[np.argmin(np.abs(cuts[best] - 0.5))]])


def choose_threshold(probs: np.ndarray, labels: np.ndarray, rule: float | str = 0.5) -> float | None:
    """The decision threshold of a task from its validation probabilities.

    Args:
        probs: (N, K) validation class probabilities.
        labels: (N,) validation class indices.
        rule: A threshold in (0, 1) on the positive class's probability, or `mcc` (`mcc_threshold`). Multi-class
            tasks predict the argmax and take only the default 0.5.

    Returns:
        The threshold; None for a multi-class task.

    Raises:
        ValueError: For another rule, or a rule other than 0.5 on a multi-class task.
    """
    k = np.shape(probs)[1]
    if isinstance(rule, str):
        if rule != "mcc":
            raise ValueError(f"threshold {rule!r} is unknown; use a number in (0, 1) or 'mcc'")
    elif isinstance(rule, bool) or not 0 < rule < 1:
        raise ValueError(f"threshold {rule!r} must be a number in (0, 1) or 'mcc'")
    if k > 2:
        if rule != 0.5:
            raise ValueError(f"threshold {rule!r} is for binary tasks; a task of {k} classes predicts the most "
                             "probable class (leave the threshold at 0.5)")
        return None
    return mcc_threshold(probs, labels) if rule == "mcc" else float(rule)


def _is_number(value: Any) -> bool:
    """True for ints and floats (not bools)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def summarise(per_run: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and 95% confidence interval over runs (seeds) of every numeric metric.

    The interval is Student's t: mean ± t_{0.975, n-1}·s/√n, with s the sample standard deviation (ddof 1) of the
    n runs whose value is a finite number. One run (n = 1) gives no interval (NaN bounds). Non-numeric values
    (class lists, calibration parameters) are left out.

    Args:
        per_run: One metrics dict per run (`evaluate_probabilities`' metrics or a `metrics.json`).

    Returns:
        Metric -> {"mean", "half_width", "low", "high", "n"}, metrics in order of first appearance; a metric no run
        has a finite value of has mean NaN and n 0.
    """
    keys = list(dict.fromkeys(k for run in per_run for k, v in run.items() if _is_number(v) or v is None))
    out = {}
    for key in keys:
        values = np.array([float(r[key]) for r in per_run if _is_number(r.get(key))], dtype=np.float64)
        values = values[np.isfinite(values)]
        n = len(values)
        mean = float(values.mean()) if n else float("nan")
        half = float("nan")
        if n > 1:
            half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n))
        out[key] = {"mean": mean, "half_width": half, "low": mean - half, "high": mean + half, "n": n}
    return out
