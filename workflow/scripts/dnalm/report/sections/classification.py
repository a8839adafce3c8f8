"""Section classification: metric tables, ROC/PR curves, reliability, confusion and projections per classifying task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from dnalm.classification.evaluation import read_metrics, read_predictions
from dnalm.classification.metrics import (
    N_BINS,
    confusion_matrix,
    expected_calibration_error,
    reliability,
    summarise,
)
from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Classification"
#: The record kinds this section reads (one file per training run; names: task, model = run, point = model).
KINDS = ("class_metrics", "class_predictions", "class_projection")
#: (metrics.json key, column header) of the metric table, in order.
COLUMNS = (("accuracy", "accuracy"), ("balanced_accuracy", "balanced accuracy"), ("mcc", "MCC"),
           ("sensitivity", "sensitivity"), ("specificity", "specificity"), ("precision", "precision"),
           ("f1", "F1"), ("auroc", "AUROC"), ("auprc", "AUPRC"), ("brier", "Brier"), ("ece", "ECE"))
#: One-vs-rest metrics shown per class for tasks of more than two classes.
PER_CLASS = (("sensitivity", "sensitivity"), ("specificity", "specificity"), ("precision", "precision"),
             ("f1", "F1"), ("auroc", "AUROC"), ("auprc", "AUPRC"))
#: Panels per row of the grids of per-model figures.
PANELS_PER_ROW = 4

Runs = dict[str, list[Any]]


def runs_by_model(manifest: Manifest, kind: str, task: str) -> dict[str, list[str]]:
    """Paths of a kind's records of a task by model (a record's `point`, else its `model`), in manifest order."""
    out: dict[str, list[str]] = {}
    for record in manifest.find(kind, task=task):
        out.setdefault(record.get("point") or record["model"], []).append(record["path"])
    return out


def _cell(summary: dict[str, dict[str, float]], key: str) -> str:
    """Mean ± 95% CI half-width (mean alone for one run), an en dash when no run has the metric."""
    entry = summary.get(key)
    if entry is None or not entry["n"]:
        return "–"
    return html.fmt_num(entry["mean"], entry["half_width"] if entry["n"] > 1 else None)


def _calibration_text(runs: list[dict[str, Any]]) -> str:
    """The calibration method and its fitted parameter, as a mean over runs (Platt: the slope)."""
    params = runs[0].get("calibration") or {"method": "none"}
    key = {"temperature": "temperature", "platt": "slope"}.get(params["method"])
    if key is None:
        return params["method"]
    return f"{params['method']} ({key} {np.mean([r['calibration'][key] for r in runs]):.2f})"


def metric_table(metrics: Runs) -> Markup:
    """Per model, a row of test metrics before calibration and one after (mean ± 95% CI over its runs)."""
    header = ["model", "calibration", "n runs", "threshold", *(h for _, h in COLUMNS)]
    rows = []
    for model, runs in metrics.items():
        summary = summarise(runs)
        for suffix, calibration in (("", "none"), ("_calibrated", _calibration_text(runs))):
            cells = [_cell(summary, f"{key}{suffix}") for key, _ in COLUMNS]
            rows.append([model, calibration, str(len(runs)), _cell(summary, f"threshold{suffix}"), *cells])
    return html.table(header, rows, numeric=range(2, len(header)))


def per_class_table(metrics: Runs, classes: Sequence[str]) -> Markup:
    """Per model and class, the one-vs-rest metrics before calibration (mean ± 95% CI over runs)."""
    rows = []
    for model, runs in metrics.items():
        summary = summarise(runs)
        rows += [[model, c, *(_cell(summary, f"{key}/{c}") for key, _ in PER_CLASS)] for c in classes]
    return html.table(["model", "class", *(h for _, h in PER_CLASS)], rows, numeric=range(2, 2 + len(PER_CLASS)))


def _grid(n: int, width: float = 3.2, height: float = 3.0) -> tuple[Figure, np.ndarray]:
    """A figure of n panels, `PANELS_PER_ROW` to a row (unused panels hidden)."""
    cols = min(n, PANELS_PER_ROW)
    rows = -(-n // cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _test(tables: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The test rows of each run's predictions."""
    return [t[t["split"] == "test"] for t in tables]


def curves_figure(task: str, predictions: Runs, classes: Sequence[str]) -> Markup:
    """ROC (top) and precision-recall (bottom) curves of the test split: one column per class scored (a binary
    task's positive class; every class, one against the rest, for more), one colour per model, a line per run."""
    scored = [classes[1]] if len(classes) == 2 else list(classes)
    fig = Figure(figsize=(3.4 * len(scored), 6.2), layout="constrained")
    axes = fig.subplots(2, len(scored), squeeze=False)
    for m, (model, tables) in enumerate(predictions.items()):
        for col, c in enumerate(scored):
            for r, t in enumerate(_test(tables)):
                truth, score = t["label"].to_numpy() == c, t[f"prob_{c}"].to_numpy()
                if truth.all() or not truth.any():
                    continue
                fpr, tpr, _ = roc_curve(truth, score)
                precision, recall, _ = precision_recall_curve(truth, score)
                label = model if r == 0 else None
                axes[0, col].plot(fpr, tpr, color=f"C{m}", lw=1, alpha=0.8, label=label)
                axes[1, col].step(recall, precision, where="post", color=f"C{m}", lw=1, alpha=0.8, label=label)
    for col, c in enumerate(scored):
        axes[0, col].plot([0, 1], [0, 1], ls="--", color=html.OBSERVED_COLOUR, lw=0.8)
        axes[0, col].set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {c}")
        axes[1, col].set(xlabel="recall", ylabel="precision", title=f"precision-recall: {c}", ylim=(0, 1.02))
    axes[0, 0].legend(fontsize=7, loc="lower right")
    return html.figure(fig, f"Task {task}: ROC and precision-recall curves of the test split "
                       f"({'positive class' if len(classes) == 2 else 'each class against the rest'}), "
                       "one line per run, one colour per model.")


def _pooled(tables: list[pd.DataFrame], prefix: str, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Test probabilities (`prob_` or `calibrated_` columns) and label indices of all runs, stacked."""
    test = pd.concat(_test(tables), ignore_index=True)
    return test[[f"{prefix}{c}" for c in classes]].to_numpy(dtype=np.float64), test["label_index"].to_numpy()


def reliability_figure(task: str, predictions: Runs, classes: Sequence[str]) -> Markup:
    """Per model, accuracy against top-class confidence in `N_BINS` bins before and after calibration."""
    fig, axes = _grid(len(predictions))
    for ax, (model, tables) in zip(axes, predictions.items(), strict=True):
        ax.plot([0, 1], [0, 1], ls="--", color=html.OBSERVED_COLOUR, lw=0.8)
        for prefix, name, colour in (("prob_", "before", html.TRAIN_COLOUR),
                                     ("calibrated_", "after", html.PREDICTED_COLOUR)):
            probs, labels = _pooled(tables, prefix, classes)
            rel = reliability(probs, labels, N_BINS)
            full = rel["count"] > 0
            ece = expected_calibration_error(probs, labels, N_BINS)
            ax.plot(rel["confidence"][full], rel["accuracy"][full], "o-", ms=3, color=colour,
                    label=f"{name} (ECE {ece:.3f})")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top class)", ylabel="accuracy", title=model)
        ax.legend(fontsize=7, loc="upper left")
    return html.figure(fig, f"Task {task}: reliability diagrams of the test split before and after calibration (fitted "
                       f"on validation): accuracy against mean top-class confidence in {N_BINS} equal-width bins, "
                       "runs pooled; the diagonal is perfect calibration.")


def confusion_figure(task: str, predictions: Runs, classes: Sequence[str]) -> Markup:
    """Per model, the test confusion matrix (rows true, columns predicted) as row fractions with mean counts."""
    fig, axes = _grid(len(predictions), height=3.0)
    index = {c: i for i, c in enumerate(classes)}
    for ax, (model, tables) in zip(axes, predictions.items(), strict=True):
        test = pd.concat(_test(tables), ignore_index=True)
        cm = confusion_matrix(test["label_index"].to_numpy(), test["predicted"].map(index).to_numpy(), len(classes))
        fractions = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(fractions, vmin=0, vmax=1, cmap="Blues")
        for (i, j), value in np.ndenumerate(fractions):
            ax.text(j, i, f"{value:.2f}\n({cm[i, j] / len(tables):.0f})", ha="center", va="center", fontsize=7,
                    color="white" if value > 0.6 else "black")
        ax.set_xticks(range(len(classes)), classes, fontsize=7, rotation=45 if len(classes) > 3 else 0)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set(xlabel="predicted", ylabel="true", title=model)
    return html.figure(fig, f"Task {task}: confusion matrices of the test split (with each run's threshold): fraction "
                       "of each true class, and in brackets the count (mean over runs).")


def _scatter(ax: Any, table: pd.DataFrame, prefix: str, classes: Sequence[str], title: str) -> None:
    """One projection panel, coloured by label."""
    for i, c in enumerate(classes):
        part = table[table["label"] == c]
        ax.scatter(part[f"{prefix}_x"], part[f"{prefix}_y"], s=4, color=f"C{i}", alpha=0.7, label=c)
    ax.set(title=title, xticks=[], yticks=[])


def projection_figure(task: str, projections: dict[str, list[pd.DataFrame]], classes: Sequence[str]) -> Markup:
    """The input 3-mer profiles' projection beside each model's (its first run's) pooled features, coloured by label."""
    first = next(iter(projections.values()))[0]
    method = str(first["method"].iloc[0]) if "method" in first.columns and len(first) else "2-D projection"
    fig, axes = _grid(1 + len(projections), width=3.0)
    _scatter(axes[0], first, "input", classes, "input 3-mer profiles")
    for ax, (model, tables) in zip(axes[1:], projections.items(), strict=True):
        _scatter(ax, tables[0], "model", classes, f"{model}: pooled features")
    axes[0].legend(fontsize=7, markerscale=3)
    return html.figure(fig, f"Task {task}: {method} projections of the test sequences, coloured by label: their 3-mer "
                       "frequency profiles (left) and each model's pooled trunk features (its first run).")


def _read_projection(path: str) -> pd.DataFrame:
    """A run's projection.tsv."""
    return html.read_tsv(path, ["id", "label", "input_x", "input_y", "model_x", "model_y"]).astype({"label": str})


#: Outcomes of binary calls whose attributions are averaged (study 3's saliency logos per outcome class).
OUTCOMES = ("TP", "FN", "TN", "FP")


def outcome_logos(manifest: Manifest, task: str) -> list[Markup]:
    """Per interpreted model: the attributions of the class logit averaged over the attributed test windows of each
    outcome (TP, FN, TN, FP of its predictions.tsv), drawn as logos."""
    figures = []
    for record in manifest.find("attributions", task=task):
        found = manifest.find("class_predictions", task=task, model=record["model"])
        if not found:
            continue
        table, _ = read_predictions(found[0]["path"])
        outcome = table[table["split"] == "test"].set_index("id")["outcome"].astype(str)
        with np.load(record["path"]) as npz:
            if "class_attr" not in npz:
                continue
            ids, attr = npz["window_ids"].astype(str), npz["class_attr"]
        calls = outcome.reindex(ids).to_numpy()
        fig = Figure(figsize=(10, 1.6 * len(OUTCOMES)))
        axes = fig.subplots(len(OUTCOMES), 1, squeeze=False)[:, 0]
        for ax, name in zip(axes, OUTCOMES, strict=True):
            rows = calls == name
            if rows.any():
                html.logo(ax, attr[rows].mean(axis=0).T, f"{name} (n = {int(rows.sum())})", "attribution")
            else:
                html.axes_note(ax, f"no {name} among the attributed windows")
        fig.tight_layout()
        figures.append(html.figure(fig, f"{task}, {record['model']}: attributions of the class logit averaged per "
                                        "outcome of the test windows attributed (position along the example)."))
    return figures


def _task(manifest: Manifest, task: str) -> Markup:
    """Tables and figures of one task (each part only where its files are listed)."""
    metrics = {m: [read_metrics(p) for p in ps] for m, ps in runs_by_model(manifest, KINDS[0], task).items()}
    read = {m: [read_predictions(p) for p in ps] for m, ps in runs_by_model(manifest, KINDS[1], task).items()}
    predictions = {m: [table for table, _ in runs] for m, runs in read.items()}
    projections = {m: [_read_projection(p) for p in ps] for m, ps in runs_by_model(manifest, KINDS[2], task).items()}
    classes = _classes(metrics, read, projections)
    parts = []
    if metrics:
        parts += [html.heading("Test metrics"), metric_table(metrics),
                  html.note("Mean ± 95% confidence interval (Student's t over runs) where a model has several runs; "
                            "threshold: on the positive class's probability (binary tasks), chosen on validation.",
                            "meta")]
        if len(classes) > 2:
            parts += [html.heading("Per class (one against the rest)"), per_class_table(metrics, classes)]
    if predictions:
        parts += [html.heading("Curves, calibration and errors"), curves_figure(task, predictions, classes),
                  reliability_figure(task, predictions, classes), confusion_figure(task, predictions, classes)]
    if projections:
        parts += [html.heading("Projections"), projection_figure(task, projections, classes)]
    logos = outcome_logos(manifest, task) if len(classes) == 2 else []
    if logos:
        parts += [html.heading("Attributions per outcome"), *logos]
    return html.join(parts)


def _classes(metrics: Runs, predictions: Runs, projections: Runs) -> list[str]:
    """A task's class names: from its metrics, else its predictions' columns, else its projections' labels."""
    if metrics:
        return list(next(iter(metrics.values()))[0]["classes"])
    if predictions:
        return next(iter(predictions.values()))[0][1]
    return list(dict.fromkeys(next(iter(projections.values()))[0]["label"]))


def build(manifest: Manifest) -> Markup:
    """Per classification task, its tables and figures (`class_metrics`, `class_predictions`, `class_projection`)."""
    tasks = manifest.names("task", KINDS)
    if not tasks:
        return html.note("No classification task was run.")
    return html.task_blocks("classification", tasks, lambda t: _task(manifest, t))
