"""Section seqerror: per error kind, how well each model finds simulated sequencing errors (mean ± CI over seeds)."""

from __future__ import annotations

from markupsafe import Markup

from dnalm.classification.metrics import summarise
from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Sequencing-error detection"
#: The record kind this section reads (one metrics.json per training run; names: task, model = run, point = model).
KIND = "seqerror_metrics"
#: Error kinds, in row order.
ERROR_KINDS = ("substitution", "insertion", "deletion")
#: (metrics.json key prefix, column header).
COLUMNS = (("precision", "precision"), ("recall", "recall"), ("f1", "F1"), ("auprc", "AUPRC"),
           ("prevalence", "chance AUPRC (error rate)"), ("errors", "errors in test"))


def _cell(summary: dict, key: str) -> str:
    """Mean ± 95% CI half-width (mean alone for one run), an en dash when no run has the metric."""
    entry = summary.get(key)
    if entry is None or not entry["n"]:
        return "–"
    if key.startswith("errors_"):
        return html.fmt_int(entry["mean"])
    return html.fmt_num(entry["mean"], entry["half_width"] if entry["n"] > 1 else None)


def model_table(runs: list[dict]) -> Markup:
    """One model's table: a row per error kind, its detection metrics as mean ± 95% CI over the model's runs."""
    summary = summarise(runs)
    rows = [[kind, *(_cell(summary, f"{key}_{kind}") for key, _ in COLUMNS)] for kind in ERROR_KINDS]
    return html.table(["error kind", *(h for _, h in COLUMNS)], rows, numeric=range(1, len(COLUMNS) + 1))


def _task(manifest: Manifest, task: str) -> Markup:
    """The tables of one task's models."""
    by_model: dict[str, list[dict]] = {}
    for record in manifest.find(KIND, task=task):
        by_model.setdefault(record.get("point") or record["model"], []).append(html.read_json(record["path"]))
    parts = [html.note("Base-level detection on the test windows' simulated errors: calls are bases whose "
                       "predicted probability is ≥ 0.5; AUPRC ranks every base by that probability, so a model "
                       "that knows nothing scores the error rate (the chance column). Deletions are scored per gap "
                       "between neighbouring bases (docs/seqerror.md). Mean ± 95% confidence interval (Student's t "
                       "over seeds) where a model has several runs.", "meta")]
    for model, runs in by_model.items():
        parts += [html.heading(f"{model} ({len(runs)} run{'s' if len(runs) != 1 else ''})"), model_table(runs)]
    return html.join(parts)


def build(manifest: Manifest) -> Markup:
    """Per seqerror task, a table per model (`seqerror_metrics` records)."""
    tasks = manifest.names("task", (KIND,))
    if not tasks:
        return html.note("No sequencing-error detection task was run.")
    return html.task_blocks("seqerror", tasks, lambda t: _task(manifest, t))
