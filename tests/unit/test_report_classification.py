"""Tests for the report's classification section, built from files written by dnalm.classification's own writers."""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dnalm.classification.calibration import softmax
from dnalm.classification.evaluation import evaluate_probabilities, write_metrics, write_predictions
from dnalm.classification.projection import projection_table
from dnalm.report import write_report
from dnalm.report.manifest import Manifest
from dnalm.report.sections import SECTIONS
from dnalm.report.sections.classification import COLUMNS, runs_by_model
from helpers import report_structure

BINARY = ["random", "promoter"]
THREE = ["archaea", "bacteria", "eukarya"]
#: (task, classes, {model: (point or None, run ids)}): bpnet has three seeds, nt_lora one run without a point.
TASKS = (
    ("promoters", BINARY, {"bpnet": ["bpnet~seed1", "bpnet~seed2", "bpnet~seed3"], "nt_lora": ["nt_lora"]}),
    ("kingdoms", THREE, {"bpnet": ["bpnet~seed1", "bpnet~seed2"]}),
)


def fake_projection(classes: list[str], seed: int) -> pd.DataFrame:
    """A projection.tsv table of 80 test sequences (PaCMAP takes seconds, so one per task serves all its runs)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(classes), 80)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (80, 30))].transpose(0, 2, 1)
    features = rng.normal(size=(80, 8)) + 3.0 * labels[:, None]
    return projection_table([f"seq{i}" for i in range(80)], np.asarray(classes)[labels], onehot, features, seed=0)


def fake_run(run_dir: Path, classes: list[str], seed: int, projection: pd.DataFrame) -> tuple[dict, dict[str, str]]:
    """Write one run's metrics.json, predictions.tsv and projection.tsv as the task type's evaluation will."""
    rng = np.random.default_rng(seed)
    k = len(classes)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        z = rng.normal(scale=1.5, size=(n, k))
        labels = np.array([rng.choice(k, p=p) for p in softmax(z)])
        return 3.0 * z, labels  # over-confident, so calibration has something to do

    (val_z, val_y), (test_z, test_y) = split(120), split(80)
    metrics, table = evaluate_probabilities(val_z, val_y, test_z, test_y, classes, calibration="temperature",
                                            threshold="mcc" if k == 2 else 0.5,
                                            test_ids=[f"seq{i}" for i in range(80)])
    paths = {name: str(run_dir / name) for name in ("metrics.json", "predictions.tsv", "projection.tsv")}
    write_metrics(metrics, paths["metrics.json"], arch="bpnet", best_epoch=3, trainable_params=1000, n_windows=80)
    write_predictions(table, paths["predictions.tsv"])
    projection.to_csv(paths["projection.tsv"], sep="\t", index=False)
    return metrics, paths


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, list[dict]]:
    """The report of both tasks (its text), each run's metrics by (task, run), and the manifest."""
    root = tmp_path_factory.mktemp("classification")
    records, metrics, seed = [], {}, 0
    for task, classes, models in TASKS:
        projection = fake_projection(classes, seed)
        for model, runs in models.items():
            for run in runs:
                seed += 1
                metrics[task, run], paths = fake_run(root / "results" / "eval" / task / run, classes, seed,
                                                     projection)
                names = {"task": task, "model": run, **({"point": model} if run != model else {})}
                records += [{"kind": "class_metrics", "path": paths["metrics.json"], **names},
                            {"kind": "class_predictions", "path": paths["predictions.tsv"], **names},
                            {"kind": "class_projection", "path": paths["projection.tsv"], **names}]
    out = root / "results" / "report.html"
    write_report(str(out), records, n_examples=0, interpret_examples=3)
    return out.read_text(encoding="utf-8"), metrics, records


def section(text: str, section_id: str) -> str:
    """The HTML of one top-level section (up to the next section's title)."""
    start = text.index(f'<section id="{section_id}"><h2>')
    end = text.find("<h2>", start + 30)
    return text[start : end if end != -1 else len(text)]


def rows(fragment: str) -> list[list[str]]:
    """The text of every table row's cells in an HTML fragment."""
    return [[htmllib.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
             for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.DOTALL)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", fragment, flags=re.DOTALL)]


def mean_ci(values: list[float]) -> str:
    """mean ± t half-width, formatted as the report does."""
    a = np.asarray(values)
    half = stats.t.ppf(0.975, len(a) - 1) * stats.sem(a)
    return f"{a.mean():.3f} ± {half:.3f}"


def test_section_sits_after_the_metrics_section() -> None:
    assert SECTIONS[SECTIONS.index("metrics") + 1] == "classification"


def test_structure_of_both_tasks(written) -> None:
    text, _, _ = written
    structure = {s["id"]: s for s in report_structure(text)["sections"]}["classification"]
    assert structure["title"] == "Classification"
    assert structure["h3"] == ["Task promoters", "Task kingdoms"]
    header = ["model", "calibration", "n runs", "threshold", *(h for _, h in COLUMNS)]
    assert structure["tables"] == [header, header, ["model", "class", "sensitivity", "specificity", "precision",
                                                    "F1", "AUROC", "AUPRC"]]
    captions = structure["figures"]
    assert len(captions) == 8  # per task: curves, reliability, confusion, projections
    assert captions[0].startswith("Task promoters: ROC and precision-recall curves of the test split (positive class)")
    assert captions[1].startswith("Task promoters: reliability diagrams")
    assert captions[2].startswith("Task promoters: confusion matrices")
    assert captions[3].startswith("Task promoters: PaCMAP projections")
    assert "each class against the rest" in captions[4]


def test_metric_table_values(written) -> None:
    text, metrics, _ = written
    block = text[text.index('<section id="classification-promoters">'):text.index('id="classification-kingdoms"')]
    table = {(r[0], r[1].split(" ")[0]): r for r in rows(block)[1:]}
    assert list(table) == [("bpnet", "none"), ("bpnet", "temperature"), ("nt_lora", "none"),
                           ("nt_lora", "temperature")]
    runs = [metrics["promoters", f"bpnet~seed{s}"] for s in (1, 2, 3)]
    bpnet, bpnet_cal = table["bpnet", "none"], table["bpnet", "temperature"]
    assert bpnet[2] == "3" and bpnet[3] == mean_ci([r["threshold"] for r in runs])
    for i, (key, _) in enumerate(COLUMNS):
        assert bpnet[4 + i] == mean_ci([r[key] for r in runs]), key
        assert bpnet_cal[4 + i] == mean_ci([r[f"{key}_calibrated"] for r in runs]), key
    temperature = np.mean([r["calibration"]["temperature"] for r in runs])
    assert bpnet_cal[1] == f"temperature (temperature {temperature:.2f})" and temperature > 1.5
    single = metrics["promoters", "nt_lora"]
    nt = table["nt_lora", "none"]
    assert nt[2] == "1" and nt[4] == f"{single['accuracy']:.3f}" and "±" not in "".join(nt)


def test_per_class_table_of_a_three_class_task(written) -> None:
    text, metrics, _ = written
    block = text[text.index('<section id="classification-kingdoms">'):]
    table = rows(block)
    assert table[0][:4] == ["model", "calibration", "n runs", "threshold"]
    assert table[1][3] == "–"  # no threshold: the most probable class
    per_class = {(r[0], r[1]): r for r in table if r[1] in THREE and r[0] == "bpnet"}
    assert list(per_class) == [("bpnet", c) for c in THREE]
    runs = [metrics["kingdoms", f"bpnet~seed{s}"] for s in (1, 2)]
    assert per_class["bpnet", "eukarya"][2:] == [mean_ci([r[f"{key}/eukarya"] for r in runs])
                                                 for key in ("sensitivity", "specificity", "precision", "f1",
                                                             "auroc", "auprc")]
    assert block.count("<img") == 4


def test_runs_group_by_point_else_model(written) -> None:
    _, _, records = written
    manifest = Manifest.from_records(records)
    grouped = runs_by_model(manifest, "class_metrics", "promoters")
    assert list(grouped) == ["bpnet", "nt_lora"] and len(grouped["bpnet"]) == 3


def test_no_classification_task_gives_a_note(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    write_report(str(out), [], n_examples=0, interpret_examples=3)
    assert "No classification task was run." in section(out.read_text(), "classification")


def test_a_record_without_its_model_is_an_error(written) -> None:
    _, _, records = written
    bad = {k: v for k, v in records[0].items() if k != "model"}
    with pytest.raises(ValueError, match="class_metrics record .* lacks model"):
        Manifest.from_records([bad])
