"""Tests for dnalm.metrics: per-row Pearson, site-call AUROC/AUPRC and the profile metric set."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from dnalm.metrics import pearson_rows, profile_metrics, site_auc


def test_pearson_rows_matches_corrcoef_over_all_remaining_axes():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(6, 2, 10))
    obs = pred * rng.uniform(-1, 1, size=(6, 1, 1)) + rng.normal(size=(6, 2, 10))
    r = pearson_rows(pred, obs)
    expected = [np.corrcoef(pred[i].ravel(), obs[i].ravel())[0, 1] for i in range(6)]
    np.testing.assert_allclose(r, expected, rtol=1e-10)


def test_pearson_rows_is_nan_for_constant_rows():
    pred = np.array([[1.0, 2.0, 3.0], [4.0, 4.0, 4.0], [1.0, 2.0, 3.0]])
    obs = np.array([[2.0, 4.0, 7.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    r = pearson_rows(pred, obs)
    assert r[0] == pytest.approx(np.corrcoef(pred[0], obs[0])[0, 1])
    assert np.isnan(r[1]) and np.isnan(r[2])


def test_site_auc_perfect_and_reversed():
    obs = np.array([[0.0, 5.0, 0.0], [3.0, 0.0, 0.0]])
    assert site_auc(obs, obs, threshold=2.0) == (1.0, 1.0)
    auroc, auprc = site_auc(-obs, obs, threshold=2.0)
    assert auroc == 0.0
    # 4 negatives ranked first, then the 2 positives: precision 1/5 at recall 1/2, 2/6 at recall 1
    assert auprc == pytest.approx(0.5 * 1 / 5 + 0.5 * 2 / 6)


def test_site_auc_threshold_is_inclusive():
    assert site_auc(np.array([0.1, 0.9]), np.array([1.0, 2.0]), threshold=2.0) == (1.0, 1.0)


@pytest.mark.parametrize("obs", [np.zeros(5), np.full(5, 9.0)])
def test_site_auc_single_class_is_nan(obs):
    auroc, auprc = site_auc(np.arange(5.0), obs, threshold=2.0)
    assert math.isnan(auroc) and math.isnan(auprc)


def test_profile_metrics_toy_case():
    obs = np.array([
        [[0, 4, 1, 0], [1, 0, 0, 2]],
        [[3, 0, 0, 1], [0, 0, 5, 0]],
        [[0, 0, 2, 0], [0, 1, 0, 0]],
        [[0, 0, 0, 0], [0, 0, 0, 0]],  # no signal: Pearson undefined, left out of median and mean
    ], dtype=float)
    pred = obs * 2.0
    pred[1] = obs[1][:, ::-1] + 0.5  # a poor prediction
    pred[3] = [[1, 2, 3, 4], [0, 1, 0, 1]]

    m = profile_metrics(pred, obs, site_threshold=2.0)

    assert set(m) == {"pearson_median", "pearson_mean", "auroc", "auprc", "count_pearson", "n_windows"}
    r = [np.corrcoef(pred[i].ravel(), obs[i].ravel())[0, 1] for i in range(3)]
    assert r[0] == pytest.approx(1.0) and r[2] == pytest.approx(1.0) and r[1] < 0.5
    assert m["pearson_median"] == pytest.approx(np.median(r))
    assert m["pearson_mean"] == pytest.approx(np.mean(r))
    labels = obs.ravel() >= 2.0
    assert m["auroc"] == pytest.approx(roc_auc_score(labels, pred.ravel()))
    assert m["auprc"] == pytest.approx(average_precision_score(labels, pred.ravel()))
    per_channel = [np.corrcoef(np.log1p(pred[:, c].sum(-1)), np.log1p(obs[:, c].sum(-1)))[0, 1] for c in range(2)]
    assert m["count_pearson"] == pytest.approx(np.mean(per_channel))
    assert m["n_windows"] == 4
