"""Evaluation metrics: per-window profile Pearson, site-call AUROC/AUPRC, count Pearson, per-track Pearson, per-kind
error detection of seqerror tasks."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def pearson_rows(pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of two (N, ...) arrays over all remaining axes; NaN where either is constant."""
    p = pred.reshape(len(pred), -1).astype(np.float64)
    o = obs.reshape(len(obs), -1).astype(np.float64)
    p = p - p.mean(axis=1, keepdims=True)
    o = o - o.mean(axis=1, keepdims=True)
    denom = np.sqrt((p * p).sum(axis=1) * (o * o).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (p * o).sum(axis=1) / denom, np.nan)


def site_auc(pred: np.ndarray, obs: np.ndarray, threshold: float) -> tuple[float, float]:
    """AUROC and AUPRC of per-base site calls: labels obs ≥ threshold, scores the predicted signal.

    Returns:
        (AUROC, AUPRC); NaN when the labels have one class only.
    """
    labels = (obs >= threshold).ravel()
    scores = pred.ravel()
    if labels.all() or not labels.any():
        return float("nan"), float("nan")
    return float(roc_auc_score(labels, scores)), float(average_precision_score(labels, scores))


def profile_metrics(pred: np.ndarray, obs: np.ndarray, site_threshold: float) -> dict[str, float]:
    """Profile metrics of SEEDS.md §1 over N windows.

    Args:
        pred: (N, C, L) predicted signal (expected counts per base).
        obs: (N, C, L) observed signal.
        site_threshold: Observed signal that makes a base a site.

    Returns:
        pearson_median, pearson_mean (over windows with signal), auroc, auprc, count_pearson, n_windows.
    """
    r = pearson_rows(pred, obs)
    auroc, auprc = site_auc(pred, obs, site_threshold)
    count_r = pearson_rows(np.log1p(pred.sum(axis=2)).T, np.log1p(obs.sum(axis=2)).T)
    return {
        "pearson_median": float(np.nanmedian(r)) if np.isfinite(r).any() else float("nan"),
        "pearson_mean": float(np.nanmean(r)) if np.isfinite(r).any() else float("nan"),
        "auroc": auroc,
        "auprc": auprc,
        "count_pearson": float(np.nanmean(count_r)),
        "n_windows": len(pred),
    }


def _nan_stat(values: np.ndarray, stat) -> float:
    """`stat` over the finite values, NaN when there are none."""
    finite = values[np.isfinite(values)]
    return float(stat(finite)) if len(finite) else float("nan")


def track_metrics(pred: np.ndarray, obs: np.ndarray, channels: list[str], suffix: str = "") -> dict[str, float]:
    """Metrics of binned multi-track predictions over N windows (tracks tasks).

    Args:
        pred: (N, C, bins) predicted signal.
        obs: (N, C, bins) observed signal, on the same scale.
        channels: Names of the C tracks.
        suffix: Appended to every key (e.g. `_transformed`).

    Returns:
        `pearson_median`/`pearson_mean`: Pearson over the bins of each window and track (windows with a flat track
        left out), median/mean over windows and tracks; per track `window_pearson_median/<track>` (the same, one
        track) and `track_pearson/<track>` (Pearson over all bins of all windows of that track); `count_pearson`:
        Pearson across windows of log(1 + window total), mean over tracks.
    """
    n, c, _ = obs.shape
    r = pearson_rows(pred.reshape(n * c, -1), obs.reshape(n * c, -1)).reshape(n, c)
    out = {f"pearson_median{suffix}": _nan_stat(r, np.median), f"pearson_mean{suffix}": _nan_stat(r, np.mean)}
    across = pearson_rows(pred.transpose(1, 0, 2), obs.transpose(1, 0, 2))
    totals = pearson_rows(np.log1p(np.clip(pred, 0, None).sum(axis=2)).T, np.log1p(np.clip(obs, 0, None).sum(axis=2)).T)
    out[f"count_pearson{suffix}"] = _nan_stat(totals, np.mean)
    for i, name in enumerate(channels):
        out[f"window_pearson_median{suffix}/{name}"] = _nan_stat(r[:, i], np.median)
        out[f"track_pearson{suffix}/{name}"] = float(across[i])
    return out


def kind_scores(prob: np.ndarray, tags: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(labels, scores) per error kind of per-base tags (seqerror tasks; channels of `dnalm.seqerrors.CHANNELS`).

    Substitutions and insertions are scored per noisy base (channels 0 and 1). A deletion is scored per gap between
    neighbouring bases j and j + 1: its label is channel 2 (deletion after) at j, which the store sets exactly when
    channel 3 (deletion before) is set at j + 1; its score is the mean of the two channels' probabilities there.

    Args:
        prob: (N, 4, L) predicted probabilities.
        tags: (N, 4, L) 0/1 tags.
    """
    return {"substitution": (tags[:, 0].ravel(), prob[:, 0].ravel()),
            "insertion": (tags[:, 1].ravel(), prob[:, 1].ravel()),
            "deletion": (tags[:, 2, :-1].ravel(), ((prob[:, 2, :-1] + prob[:, 3, 1:]) / 2).ravel())}


def tagging_metrics(prob: np.ndarray, tags: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Base-level detection metrics per error kind (`kind_scores`): precision, recall and F1 of the calls
    probability ≥ threshold, AUPRC (average precision) of the probabilities, the prevalence (AUPRC's chance
    level) and the number of errors.

    Keys `<metric>_<kind>`. Precision is NaN without calls, recall NaN without errors; F1 = 2 TP / (2 TP + FP + FN)
    (0 when errors exist and none is called, NaN with neither errors nor calls); AUPRC NaN without errors (or
    without correct bases).
    """
    out: dict[str, float] = {}
    for kind, (labels, scores) in kind_scores(prob, tags).items():
        labels = labels.astype(bool)
        called = scores >= threshold
        tp, n_called, n_pos = int((called & labels).sum()), int(called.sum()), int(labels.sum())
        precision = tp / n_called if n_called else float("nan")
        recall = tp / n_pos if n_pos else float("nan")
        f1 = 2 * tp / (n_called + n_pos) if n_called + n_pos else float("nan")
        both = 0 < n_pos < len(labels)
        out.update({f"precision_{kind}": precision, f"recall_{kind}": recall, f"f1_{kind}": f1,
                    f"auprc_{kind}": float(average_precision_score(labels, scores)) if both else float("nan"),
                    f"prevalence_{kind}": n_pos / max(len(labels), 1), f"errors_{kind}": n_pos})
    return out
