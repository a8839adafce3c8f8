"""Tests for dnalm.classification: metrics against scikit-learn and by hand, calibration, thresholds, CIs, files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from dnalm.classification.calibration import fit_calibration, fit_platt, fit_temperature, platt_targets, softmax
from dnalm.classification.evaluation import (
    evaluate_probabilities,
    read_metrics,
    read_predictions,
    suffixed,
    write_metrics,
    write_predictions,
)
from dnalm.classification.metrics import (
    brier_score,
    choose_threshold,
    classification_metrics,
    expected_calibration_error,
    mcc,
    mcc_threshold,
    predict,
    reliability,
    summarise,
)

BINARY = ["neg", "pos"]
THREE = ["a", "b", "c"]


def toy(n: int, k: int, seed: int, sharpness: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a model whose true class probabilities are softmax(z), labels drawn from them; the model reports
    `sharpness`·z (> 1: over-confident)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, k))
    labels = np.array([rng.choice(k, p=p) for p in softmax(z)])
    return sharpness * z, labels


def ovr_specificity(labels: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """One-vs-rest specificity per class from scikit-learn's multilabel confusion matrices."""
    cms = skm.multilabel_confusion_matrix(labels, predicted, labels=list(range(k)))
    return np.array([cm[0, 0] / (cm[0, 0] + cm[0, 1]) for cm in cms])


# ------------------------------------------------------------------------------------------ against scikit-learn


def test_binary_metrics_match_scikit_learn() -> None:
    z, y = toy(300, 2, seed=1)
    p = softmax(z)
    pred = (p[:, 1] >= 0.3).astype(int)
    m = classification_metrics(p, y, BINARY, threshold=0.3)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m["sensitivity"] == pytest.approx(skm.recall_score(y, pred))
    assert m["specificity"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]))
    assert m["auprc"] == pytest.approx(skm.average_precision_score(y, p[:, 1]))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p[:, 1]))
    assert m["n_examples"] == 300
    assert not any("/" in key for key in m)  # binary: the positive class only


def test_three_class_metrics_match_scikit_learn_per_class_and_macro() -> None:
    z, y = toy(400, 3, seed=2)
    p = softmax(z)
    pred = p.argmax(axis=1)
    m = classification_metrics(p, y, THREE)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    expected = {"sensitivity": skm.recall_score(y, pred, average=None),
                "specificity": ovr_specificity(y, pred, 3),
                "precision": skm.precision_score(y, pred, average=None),
                "f1": skm.f1_score(y, pred, average=None),
                "auroc": [skm.roc_auc_score(y == c, p[:, c]) for c in range(3)],
                "auprc": [skm.average_precision_score(y == c, p[:, c]) for c in range(3)]}
    for name, values in expected.items():
        np.testing.assert_allclose([m[f"{name}/{c}"] for c in THREE], values, rtol=1e-12)
        assert m[name] == pytest.approx(np.mean(values)), name
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    # Brier: sklearn's multi-class score sums over classes; ours is the mean over classes
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p, scale_by_half=False) / 3)


# ------------------------------------------------------------------------------------------------------ by hand


def test_mcc_by_hand_binary_and_three_classes() -> None:
    # TP 2, FN 1, TN 4, FP 1: (2·4 − 1·1) / sqrt(3·3·5·5) = 7/15
    p1 = np.array([0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.3, 0.4])
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    m = classification_metrics(np.c_[1 - p1, p1], y, BINARY)
    assert m["mcc"] == pytest.approx(7 / 15)
    assert (m["sensitivity"], m["specificity"], m["precision"]) == pytest.approx((2 / 3, 4 / 5, 2 / 3))
    # t = (3, 2, 2), p = (3, 3, 1), c = 5, s = 7: (35 − 17) / sqrt((49 − 19)(49 − 17))
    assert mcc(np.array([[2, 1, 0], [0, 2, 0], [1, 0, 1]])) == pytest.approx(18 / math.sqrt(30 * 32))
    assert mcc(np.array([[5, 0], [3, 0]])) == 0.0  # nothing predicted positive: undefined, reported as 0


def test_ece_by_hand() -> None:
    p1 = np.array([0.95, 0.85, 0.25, 0.65])
    y = np.array([1, 0, 0, 1])  # top-class confidences 0.95, 0.85, 0.75, 0.65; correct, wrong, correct, correct
    probs = np.c_[1 - p1, p1]
    # 15 bins: one example per bin: (0.05 + 0.85 + 0.25 + 0.35) / 4
    assert expected_calibration_error(probs, y) == pytest.approx(1.5 / 4)
    # 5 bins: (0.8, 1] holds 0.95, 0.85 (confidence 0.9, accuracy 0.5); (0.6, 0.8] holds 0.75, 0.65 (0.7, 1.0)
    assert expected_calibration_error(probs, y, n_bins=5) == pytest.approx(0.5 * 0.4 + 0.5 * 0.3)
    rel = reliability(probs, y, n_bins=5)
    np.testing.assert_array_equal(rel["count"], [0, 0, 0, 2, 2])
    np.testing.assert_allclose(rel["accuracy"][3:], [1.0, 0.5])


def test_ece_bins_are_closed_on_the_right() -> None:
    probs = np.array([[0.5, 0.5], [0.25, 0.75]])
    rel = reliability(probs, np.array([1, 1]), n_bins=2)
    np.testing.assert_array_equal(rel["count"], [1, 1])  # 0.5 falls in (0, 0.5], 0.75 in (0.5, 1]
    assert rel["accuracy"][0] == 0.0  # a tie's top class is the first class (argmax)


def test_brier_by_hand() -> None:
    assert brier_score(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1])) == pytest.approx((0.01 + 0.64) / 2)
    assert brier_score(np.array([[0.7, 0.2, 0.1]]), np.array([0])) == pytest.approx((0.09 + 0.04 + 0.01) / 3)


def test_bad_probabilities_are_rejected() -> None:
    with pytest.raises(ValueError, match="labels must be class indices"):
        classification_metrics(np.array([[0.5, 0.5]]), np.array([2]), BINARY)
    with pytest.raises(ValueError, match="distribution"):
        classification_metrics(np.array([[0.5, 0.7]]), np.array([1]), BINARY)
    with pytest.raises(ValueError, match="3 class names"):
        classification_metrics(np.array([[0.5, 0.5]]), np.array([1]), THREE)


# ---------------------------------------------------------------------------------------------------- calibration


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("method", ["temperature", "platt"])
def test_calibration_lowers_the_ece_of_an_over_confident_model(k: int, method: str) -> None:
    val_z, val_y = toy(3000, k, seed=3, sharpness=4.0)
    test_z, test_y = toy(3000, k, seed=4, sharpness=4.0)
    metrics, _ = evaluate_probabilities(val_z, val_y, test_z, test_y, (BINARY if k == 2 else THREE),
                                        calibration=method)
    assert metrics["ece"] > 0.1
    assert metrics["ece_calibrated"] < 0.03
    assert metrics["brier_calibrated"] < metrics["brier"]
    assert metrics["auroc_calibrated"] == pytest.approx(metrics["auroc"], abs=0.01)  # the ranking barely moves
    params = metrics["calibration"]
    assert params["method"] == method
    assert params.get("temperature", 1 / params.get("slope", 1)) == pytest.approx(4.0, rel=0.15)


@pytest.mark.parametrize("k", [2, 3])
def test_calibration_leaves_a_calibrated_model_about_as_good(k: int) -> None:
    val_z, val_y = toy(3000, k, seed=5)
    test_z, test_y = toy(3000, k, seed=6)
    for method in ("temperature", "platt"):
        metrics, _ = evaluate_probabilities(val_z, val_y, test_z, test_y, (BINARY if k == 2 else THREE),
                                            calibration=method)
        assert metrics["ece"] < 0.04
        assert metrics["ece_calibrated"] < metrics["ece"] + 0.015
        assert metrics["brier_calibrated"] == pytest.approx(metrics["brier"], abs=0.003)
    assert fit_temperature(val_z, val_y) == pytest.approx(1.0, abs=0.1)


def test_binary_platt_is_logistic_regression_on_the_logit_difference() -> None:
    z, y = toy(2000, 2, seed=7, sharpness=2.0)
    slope, bias = fit_platt(z, y)
    d = z[:, 1] - z[:, 0]
    targets = platt_targets(y, 2)[:, 1]
    p = 1 / (1 + np.exp(-(slope * d + bias[1])))
    # at the optimum the gradient of the cross-entropy against Platt's targets vanishes
    assert np.mean(p - targets) == pytest.approx(0, abs=1e-4)
    assert np.mean((p - targets) * d) == pytest.approx(0, abs=1e-4)
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    assert set(np.round(targets, 12)) == {round((n_pos + 1) / (n_pos + 2), 12), round(1 / (n_neg + 2), 12)}


def test_calibration_stays_finite_on_a_separable_split() -> None:
    z = np.array([[2.0, -2.0], [1.0, -1.0], [-1.0, 1.0], [-3.0, 3.0]])
    y = np.array([0, 0, 1, 1])
    slope, bias = fit_platt(z, y)
    assert np.isfinite(slope) and np.isfinite(bias).all() and slope > 0
    assert 0 < fit_temperature(z, y) < 1  # sharper, bounded (1/T at most 1000)


def test_unknown_calibration_and_empty_validation_are_errors() -> None:
    with pytest.raises(ValueError, match="calibration 'isotonic' is unknown"):
        fit_calibration(np.zeros((2, 2)), np.array([0, 1]), "isotonic")
    with pytest.raises(ValueError, match="validation split is empty"):
        fit_calibration(np.zeros((0, 2)), np.zeros(0, dtype=int), "temperature")
    assert fit_calibration(np.zeros((0, 2)), np.zeros(0, dtype=int), "none") == {"method": "none"}


# ------------------------------------------------------------------------------------------------------ threshold


def test_mcc_threshold_where_half_is_clearly_wrong() -> None:
    rng = np.random.default_rng(8)
    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, n)
        p1 = np.where(y == 1, rng.uniform(0.2, 0.35, n), rng.uniform(0.05, 0.15, n))
        return np.log(np.c_[1 - p1, p1]), y

    (val_z, val_y), (test_z, test_y) = split(200), split(200)
    threshold = mcc_threshold(softmax(val_z), val_y)
    assert 0.15 < threshold < 0.2
    fixed, _ = evaluate_probabilities(val_z, val_y, test_z, test_y, BINARY, calibration="none", threshold=0.5)
    tuned, table = evaluate_probabilities(val_z, val_y, test_z, test_y, BINARY, calibration="none", threshold="mcc")
    assert fixed["mcc"] == 0.0 and fixed["sensitivity"] == 0.0
    assert tuned["threshold"] == pytest.approx(threshold) and tuned["mcc"] == 1.0
    assert set(table.loc[table["split"] == "test", "outcome"]) == {"TP", "TN"}


def test_mcc_threshold_is_the_best_of_every_cut() -> None:
    z, y = toy(150, 2, seed=9)
    p = softmax(z)
    threshold = mcc_threshold(p, y)
    best = max(skm.matthews_corrcoef(y, p[:, 1] >= s) for s in np.unique(p[:, 1]))
    assert skm.matthews_corrcoef(y, predict(p, threshold)) == pytest.approx(best)


def test_mcc_threshold_ties_go_to_the_cut_closest_to_half_then_the_lower() -> None:
    y = np.array([0, 1, 0, 1])
    # cuts 0.2 and 0.75 both give MCC 1/√3 (0.45 gives 0): 0.75 is closer to 0.5
    p1 = np.array([0.1, 0.3, 0.6, 0.9])
    assert mcc_threshold(np.c_[1 - p1, p1], y) == pytest.approx(0.75)
    # cuts 0.2 and 0.8 tie and are equally close: the lower
    p1 = np.array([0.1, 0.3, 0.7, 0.9])
    assert mcc_threshold(np.c_[1 - p1, p1], y) == pytest.approx(0.2)
    assert mcc_threshold(np.c_[1 - p1, p1], np.ones(4, dtype=int)) == 0.5  # one class: nothing to choose


def test_threshold_rules() -> None:
    p, y = softmax(np.zeros((4, 3))), np.array([0, 1, 2, 0])
    assert choose_threshold(p, y, 0.5) is None  # multi-class: the argmax
    with pytest.raises(ValueError, match="for binary tasks"):
        choose_threshold(p, y, "mcc")
    with pytest.raises(ValueError, match="must be a number in"):
        choose_threshold(p[:, :2] * 1.5, y % 2, 1.5)
    with pytest.raises(ValueError, match="unknown"):
        choose_threshold(p[:, :2] * 1.5, y % 2, "youden")


# ------------------------------------------------------------------------------------------------ CI over seeds


def test_summarise_gives_the_t_interval_over_runs() -> None:
    runs = [{"accuracy": a, "auroc": r, "calibration": {"method": "none"}, "classes": BINARY, "threshold": None}
            for a, r in [(0.80, 0.90), (0.84, float("nan")), (0.79, 0.86), (0.83, 0.88)]]
    summary = summarise(runs)
    acc = np.array([0.80, 0.84, 0.79, 0.83])
    low, high = stats.t.interval(0.95, df=3, loc=acc.mean(), scale=stats.sem(acc))
    assert summary["accuracy"]["mean"] == pytest.approx(acc.mean())
    assert (summary["accuracy"]["low"], summary["accuracy"]["high"]) == pytest.approx((low, high))
    assert summary["accuracy"]["half_width"] == pytest.approx((high - low) / 2) and summary["accuracy"]["n"] == 4
    assert summary["auroc"]["n"] == 3  # NaN runs are left out
    assert summary["auroc"]["mean"] == pytest.approx(0.88)
    assert "calibration" not in summary and "classes" not in summary
    assert summary["threshold"]["n"] == 0 and math.isnan(summary["threshold"]["mean"])


def test_summarise_of_one_run_has_no_interval() -> None:
    summary = summarise([{"mcc": 0.5}])
    assert summary["mcc"]["mean"] == 0.5 and math.isnan(summary["mcc"]["half_width"])


# ---------------------------------------------------------------------------------------- evaluation and files


def test_evaluate_probabilities_table_and_keys() -> None:
    val_z, val_y = toy(40, 3, seed=10, sharpness=2.0)
    test_z, test_y = toy(30, 3, seed=11, sharpness=2.0)
    metrics, table = evaluate_probabilities(val_z, val_y, test_z, test_y, THREE, calibration="platt",
                                            test_ids=[f"seq{i}" for i in range(30)])
    assert list(table.columns) == ["id", "split", "label", "label_index", "prob_a", "prob_b", "prob_c",
                                   "calibrated_a", "calibrated_b", "calibrated_c", "predicted", "outcome",
                                   "predicted_calibrated", "outcome_calibrated"]
    assert list(table["split"]) == ["val"] * 40 + ["test"] * 30
    assert table["id"].iloc[0] == "val_0" and table["id"].iloc[40] == "seq0"
    test = table[table["split"] == "test"]
    np.testing.assert_allclose(test[["prob_a", "prob_b", "prob_c"]], softmax(test_z))
    assert (test["outcome"] == "correct").mean() == pytest.approx(metrics["accuracy"])
    assert (test["outcome_calibrated"] == "correct").mean() == pytest.approx(metrics["accuracy_calibrated"])
    assert metrics["threshold"] is None and metrics["classes"] == THREE and metrics["n_examples"] == 30
    assert "f1_calibrated/b" in metrics and "n_examples_calibrated" not in metrics
    assert len(metrics["calibration"]["bias"]) == 3


def test_binary_outcomes_count_the_confusion_matrix() -> None:
    val_z, val_y = toy(50, 2, seed=12)
    test_z, test_y = toy(60, 2, seed=13)
    metrics, table = evaluate_probabilities(val_z, val_y, test_z, test_y, BINARY, calibration="temperature")
    counts = table[table["split"] == "test"]["outcome"].value_counts()
    assert counts.get("TP", 0) / (counts.get("TP", 0) + counts.get("FN", 0)) == pytest.approx(metrics["sensitivity"])
    assert counts.get("TN", 0) / (counts.get("TN", 0) + counts.get("FP", 0)) == pytest.approx(metrics["specificity"])
    assert set(table.loc[table["outcome"] == "TP", "label"]) == {"pos"}


def test_evaluate_probabilities_rejects_mismatched_inputs() -> None:
    z, y = toy(10, 2, seed=14)
    with pytest.raises(ValueError, match="3 class names"):
        evaluate_probabilities(z, y, z, y, THREE)
    with pytest.raises(ValueError, match="test logits: 10 rows but labels of shape"):
        evaluate_probabilities(z, y, z, y[:5], BINARY)
    with pytest.raises(ValueError, match="test: 3 ids for 10 examples"):
        evaluate_probabilities(z, y, z, y, BINARY, test_ids=["a", "b", "c"])


def test_suffixed_goes_before_the_class() -> None:
    assert suffixed({"f1/a": 1, "mcc": 2}, "_calibrated") == {"f1_calibrated/a": 1, "mcc_calibrated": 2}


def test_files_round_trip(tmp_path: Path) -> None:
    val_z, val_y = toy(20, 2, seed=15)
    metrics, table = evaluate_probabilities(val_z, val_y, val_z, np.zeros(20, dtype=int), BINARY)
    write_metrics(metrics, tmp_path / "run" / "metrics.json", arch="bpnet", n_windows=20)
    write_predictions(table, tmp_path / "run" / "predictions.tsv")
    text = (tmp_path / "run" / "metrics.json").read_text()
    assert "NaN" not in text and json.loads(text)["auroc"] is None  # one class in test: AUROC undefined
    back = read_metrics(tmp_path / "run" / "metrics.json")
    assert math.isnan(back["auroc"]) and back["arch"] == "bpnet" and back["accuracy"] == metrics["accuracy"]
    read, classes = read_predictions(tmp_path / "run" / "predictions.tsv")
    assert classes == BINARY and read["id"].tolist() == table["id"].tolist()
    np.testing.assert_allclose(read["prob_pos"], table["prob_pos"])
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.json", "predictions.tsv"]


def test_read_predictions_names_the_file_and_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "predictions.tsv"
    path.write_text("id\tsplit\tlabel\tprob_a\tprob_b\nx\ttest\ta\t0.5\t0.5\n")
    with pytest.raises(ValueError, match=f"{path}: .*missing column.*label_index"):
        read_predictions(path)
    val_z, val_y = toy(4, 2, seed=16)
    _, table = evaluate_probabilities(val_z, val_y, val_z, val_y, BINARY)
    table.loc[2, "label_index"] = 5
    write_predictions(table, path)
    with pytest.raises(ValueError, match=r"row 4: label_index 5 is not a class index in \[0, 2\)"):
        read_predictions(path)
