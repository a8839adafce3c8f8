"""Section homology: windows the homology filter removed, per task (study 2's table) and from pretraining corpora."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Homology filter"
COLUMNS = ("species", "train_before", "test_before", "val_before", "train_after", "test_after", "val_after",
           "removed", "removed_train", "removed_train_percent")
HEADER = ["species", "train / test / val before", "after", "train removed", "removed (all splits)"]
INTRO = ("Train windows (of every genome feeding a task) that align to one of the task species' val or test windows, "
         "and val windows that align to a test window, are removed before training.")


def _triple(row: Any, stage: str) -> str:
    """Train / test / val windows of one row before or after the filter."""
    return " / ".join(html.fmt_int(getattr(row, f"{s}_{stage}")) for s in ("train", "test", "val"))


def _task(path: str) -> Markup:
    """Study 2's table for one task: train / test / val windows before and after, and the removed windows."""
    rows = [[str(r.species), _triple(r, "before"), _triple(r, "after"),
             f"{html.fmt_int(r.removed_train)} ({float(r.removed_train_percent):.1f}%)", html.fmt_int(r.removed)]
            for r in html.read_tsv(path, COLUMNS).itertuples(index=False)]
    return html.table(HEADER, rows, range(1, 5))


def _corpus_lines(manifest: Manifest) -> Markup:
    """One line per pretrained language model: corpus windows left out, by reason."""
    parts = []
    for lm, path in manifest.paths("pretrain_homology", "lm").items():
        excluded = html.read_tsv(path, ("genome", "reason"))
        reasons = ", ".join(f"{n:,} {r.replace('_', ' ')}" for r, n in excluded["reason"].value_counts().items())
        parts.append(html.note(f"Language model {lm}: {len(excluded):,} corpus train windows excluded"
                               + (f" ({reasons})." if reasons else "."), "meta"))
    return html.join(parts)


def build(manifest: Manifest) -> Markup:
    """The before / after table of each task with a homology summary, then the corpora's exclusions."""
    summaries = manifest.paths("homology_summary", "task")
    if not summaries and not manifest.find("pretrain_homology"):
        return html.note("No homology summaries were given.")
    return html.join([html.note(INTRO), html.task_blocks("homology", summaries, lambda t: _task(summaries[t])),
                      _corpus_lines(manifest)])
