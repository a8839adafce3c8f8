"""Self-contained HTML report: inputs, genome QC, splits, LM pretraining, training curves, test metrics,
species-token counterfactuals, example tracks and sweep summaries."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import h5py
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from dnalm import __version__
from dnalm.io import umask_mode

_PATTERNS: dict[str, tuple[str, re.Pattern[str]]] = {
    "input": (
        "resources/{species}/genome.json, resources/{species}/annotation.json or "
        "resources/{species}/tracks/{track}.json",
        re.compile(
            r"(?:^|/)resources/(?P<species>[^/]+)/" r"(?:(?P<kind>genome|annotation)|tracks/(?P<track>[^/]+))\.json$"
        ),
    ),
    "split": (
        "results/splits/{task}/counts.tsv",
        re.compile(r"(?:^|/)results/splits/(?P<task>[^/]+)/counts\.tsv$"),
    ),
    "history": (
        "results/models/{task}/{model}/history.tsv",
        re.compile(r"(?:^|/)results/models/(?P<task>[^/]+)/(?P<model>[^/]+)/history\.tsv$"),
    ),
    "model_info": (
        "results/models/{task}/{model}/model.json",
        re.compile(r"(?:^|/)results/models/(?P<task>[^/]+)/(?P<model>[^/]+)/model\.json$"),
    ),
    "comparison": (
        "results/eval/{task}/comparison.tsv",
        re.compile(r"(?:^|/)results/eval/(?P<task>[^/]+)/comparison\.tsv$"),
    ),
    "prediction": (
        "results/eval/{task}/{model}/predictions.h5",
        re.compile(r"(?:^|/)results/eval/(?P<task>[^/]+)/(?P<model>[^/]+)/predictions\.h5$"),
    ),
    "qc": (
        "results/qc/{species}.json, results/qc/summary.tsv, results/qc/thresholds.tsv or results/qc/mash_distances.tsv",
        re.compile(
            r"(?:^|/)results/qc/(?:(?P<table>summary|thresholds|mash_distances)\.tsv|(?P<species>[^/]+)\.json)$"
        ),
    ),
    "pretrain_history": (
        "results/pretrain/{lm}/history.tsv",
        re.compile(r"(?:^|/)results/pretrain/(?P<lm>[^/]+)/history\.tsv$"),
    ),
    "pretrain_summary": (
        "results/pretrain/{lm}/pretrain.json",
        re.compile(r"(?:^|/)results/pretrain/(?P<lm>[^/]+)/pretrain\.json$"),
    ),
    "counterfactual": (
        "results/eval/{task}/{model}/counterfactual.tsv",
        re.compile(r"(?:^|/)results/eval/(?P<task>[^/]+)/(?P<model>[^/]+)/counterfactual\.tsv$"),
    ),
    "homology": (
        "results/splits/{task}/summary.tsv",
        re.compile(r"(?:^|/)results/splits/(?P<task>[^/]+)/summary\.tsv$"),
    ),
    "pretrain_homology": (
        "results/pretrain/{lm}/homology_excluded.tsv",
        re.compile(r"(?:^|/)results/pretrain/(?P<lm>[^/]+)/homology_excluded\.tsv$"),
    ),
    "sweep": (
        "results/eval/{task}/sweeps/{model}.tsv",
        re.compile(r"(?:^|/)results/eval/(?P<task>[^/]+)/sweeps/(?P<model>[^/]+)\.tsv$"),
    ),
    "interpretation": (
        "results/interpret/{task}/{model}/attributions.npz, motifs.tsv or modisco.{output}.h5",
        re.compile(r"(?:^|/)results/interpret/(?P<task>[^/]+)/(?P<model>[^/]+)/"
                   r"(?P<file>attributions\.npz|motifs\.tsv|modisco\.(?:count|profile)\.h5)$"),
    ),
}

_SPLIT_ORDER = ("train", "val", "test")
_COUNT_COLUMNS = ("species", "split", "sites", "dropped_n", "dropped_subsample", "windows")
_HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss")
# Written by dnalm.pretrain (HISTORY_COLUMNS) and dnalm.evaluate (COUNTERFACTUAL_COLUMNS).
_PRETRAIN_HISTORY_COLUMNS = ("step", "train_loss", "val_loss", "val_accuracy")
_COUNTERFACTUAL_COLUMNS = ("species", "token_in_use", "mean_delta_log_count", "mean_abs_delta_log_count",
                           "profile_pearson_median", "n_windows")
# (column, header, higher is better); None means "not ranked".
_METRICS: tuple[tuple[str, str, bool | None], ...] = (
    ("pearson_median", "Pearson median", True),
    ("pearson_mean", "Pearson mean", True),
    ("auprc", "AUPRC", True),
    ("auroc", "AUROC", True),
    ("test_loss", "test loss", False),
    ("count_pearson", "count Pearson", True),
    ("n_windows", "n windows", None),
)
_OBSERVED_COLOUR = "#9e9e9e"
_PREDICTED_COLOUR = "#1f5fa8"
_TRAIN_COLOUR = "#e08a1e"

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;margin:0;background:#fafafa;
line-height:1.45}
main{max-width:1150px;margin:0 auto;padding:1.5em 2em 4em;background:#fff;box-shadow:0 0 6px #ddd}
header h1{margin:.2em 0}
.meta{color:#666;font-size:.9em}
nav ol{columns:2;font-size:.95em}
h2{border-bottom:2px solid #1f5fa8;padding-bottom:.2em;margin-top:2.2em}
h3{margin-top:1.6em;color:#1f3f68}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.88em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#eef2f7}
tr:nth-child(even) td{background:#f8f9fb}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font-size:.85em;word-break:break-all}
.ok{color:#1b7f2a;font-weight:bold}
.bad{color:#c62828;font-weight:bold}
tr.mismatch td{background:#fdecea}
.muted{color:#888}
figure{margin:.8em 0 1.4em}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.note{color:#555;font-style:italic}
"""


class Section(NamedTuple):
    """One report section: anchor id, title and HTML body."""

    id: str
    title: str
    html: str


@dataclass(frozen=True)
class QcFiles:
    """Genome QC outputs: per-genome JSONs by species, and the summary, thresholds and Mash tables (None if absent)."""

    genomes: dict[str, str] = field(default_factory=dict)
    summary: str | None = None
    thresholds: str | None = None
    mash_distances: str | None = None


@dataclass(frozen=True)
class ReportInputs:
    """Report input paths grouped by the task and model their paths encode."""

    inputs: list[str]
    splits: dict[str, str]
    histories: dict[tuple[str, str], str]
    model_infos: dict[tuple[str, str], str]
    comparisons: dict[str, str]
    predictions: dict[str, dict[str, str]]
    tasks: list[str]
    n_examples: int
    qc: QcFiles = field(default_factory=QcFiles)
    pretrain_histories: dict[str, str] = field(default_factory=dict)
    pretrain_summaries: dict[str, str] = field(default_factory=dict)
    counterfactuals: dict[str, dict[str, str]] = field(default_factory=dict)
    homology: dict[str, str] = field(default_factory=dict)
    pretrain_homology: dict[str, str] = field(default_factory=dict)
    sweeps: dict[tuple[str, str], str] = field(default_factory=dict)
    interpretations: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    interpret_examples: int = 3

    def lms(self) -> list[str]:
        """Pretrained language models, in input order (pretrain.json first, then histories)."""
        return list(dict.fromkeys([*self.pretrain_summaries, *self.pretrain_histories]))

    def models(self, task: str) -> list[str]:
        """Models trained for a task, in input order (model.json first, then histories).

        Args:
            task: Task name.

        Returns:
            Ordered, unique model names.
        """
        keys = [*self.model_infos, *self.histories]
        return list(dict.fromkeys(model for t, model in keys if t == task))


SectionBuilder = Callable[[ReportInputs], Section]


# ----------------------------------------------------------------------------------------------------------- helpers


def _esc(value: Any) -> str:
    """HTML-escape any value's string form."""
    return html.escape(str(value), quote=True)


def _slug(text: str) -> str:
    """A string safe to use in an HTML id."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text)


def _p(text: str, cls: str = "note") -> str:
    """A paragraph of escaped text."""
    return f'<p class="{cls}">{_esc(text)}</p>'


def _is_missing(value: Any) -> bool:
    """True for None, NaN and pandas' NA."""
    return value is None or (np.isscalar(value) and bool(pd.isna(value))) or value is pd.NA


def _fmt_int(value: Any) -> str:
    """An integer with thousands separators, or an en dash when missing."""
    return "–" if _is_missing(value) else f"{int(value):,}"


def _decimals(value: float) -> int:
    """Decimals to show: one for large values (losses), three for scores."""
    return 1 if abs(value) >= 100 else 3


def _fmt_num(value: Any, sd: Any = None) -> str:
    """A metric as text, as ``mean ± sd`` when an sd is given.

    Args:
        value: The metric (mean over seeds when sd is given).
        sd: Standard deviation over seeds, or None.

    Returns:
        The formatted value; an en dash when missing.
    """
    if _is_missing(value):
        return "–"
    d = _decimals(float(value))
    text = f"{float(value):,.{d}f}"
    if not _is_missing(sd):
        text += f" ± {float(sd):,.{d}f}"
    return text


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: Iterable[int] = (),
    row_classes: Sequence[str] | None = None,
) -> str:
    """An HTML table.

    Args:
        header: Column titles (plain text, escaped here).
        rows: Cells as ready-made HTML (escape data before passing it).
        numeric: Indices of right-aligned numeric columns.
        row_classes: Optional CSS class per row ("" for none).

    Returns:
        The table's HTML.
    """
    num = set(numeric)
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for r, row in enumerate(rows):
        cells = "".join(f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>" for i, c in enumerate(row))
        cls = row_classes[r] if row_classes else ""
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure_html(fig: Figure, caption: str) -> str:
    """Embed a figure as a base64 PNG with an escaped caption."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(caption)}">'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _read_tsv(path: str, required: Sequence[str]) -> pd.DataFrame:
    """Read a tab-separated table and check its columns.

    Args:
        path: The file.
        required: Columns it must have.

    Returns:
        The table.

    Raises:
        ValueError: If a required column is missing.
    """
    df = pd.read_csv(path, sep="\t")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}")
    return df


def _read_json(path: str) -> dict[str, Any]:
    """Read a JSON object."""
    with open(path) as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _task_block(section: str, task: str, body: str) -> str:
    """A per-task sub-section with its own anchor."""
    return f'<section id="{_esc(section)}-{_esc(_slug(task))}"><h3>Task {_esc(task)}</h3>{body}</section>'


def _no_tasks(section_id: str, title: str) -> Section:
    """A section that says no task was run."""
    return Section(section_id, title, _p("No tasks were run, so there is nothing to show here."))


# ------------------------------------------------------------------------------------------------------ input parsing


def _parse(kind: str, path: str) -> dict[str, str]:
    """Wildcards encoded in an input path.

    Args:
        kind: Key of ``_PATTERNS``.
        path: The path.

    Returns:
        The named groups of the path's pattern.

    Raises:
        ValueError: If the path does not follow the layout.
    """
    template, pattern = _PATTERNS[kind]
    match = pattern.search(str(path).replace(os.sep, "/"))
    if match is None:
        raise ValueError(f"{kind} path {path!r} does not follow the layout {template}")
    return match.groupdict()


def _check_exist(paths: Iterable[str]) -> None:
    """Raise FileNotFoundError naming every missing report input."""
    missing = [str(p) for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"report input(s) not found: {', '.join(missing)}")


def _by_task(kind: str, paths: Sequence[str]) -> dict[str, str]:
    """Map task to path for per-task files, rejecting duplicates."""
    out: dict[str, str] = {}
    for path in paths:
        task = _parse(kind, path)["task"]
        if task in out:
            raise ValueError(f"two {kind} files for task {task!r}: {out[task]} and {path}")
        out[task] = str(path)
    return out


def _by_lm(kind: str, paths: Sequence[str]) -> dict[str, str]:
    """Map language model to path for per-LM pretraining files, rejecting duplicates."""
    out: dict[str, str] = {}
    for path in paths:
        lm = _parse(kind, path)["lm"]
        if lm in out:
            raise ValueError(f"two {kind} files for language model {lm!r}: {out[lm]} and {path}")
        out[lm] = str(path)
    return out


def _by_model(kind: str, paths: Sequence[str]) -> dict[tuple[str, str], str]:
    """Map (task, model) to path for per-model files, rejecting duplicates."""
    out: dict[tuple[str, str], str] = {}
    for path in paths:
        groups = _parse(kind, path)
        key = (groups["task"], groups["model"])
        if key in out:
            raise ValueError(f"two {kind} files for task {key[0]!r}, model {key[1]!r}: {out[key]} and {path}")
        out[key] = str(path)
    return out


def _gather(
    inputs: Sequence[str],
    splits: Sequence[str],
    histories: Sequence[str],
    model_infos: Sequence[str],
    comparisons: Sequence[str],
    predictions: Sequence[str],
    n_examples: int,
    qc: Sequence[str] = (),
    pretrain_histories: Sequence[str] = (),
    pretrain_summaries: Sequence[str] = (),
    counterfactuals: Sequence[str] = (),
    homology: Sequence[str] = (),
    pretrain_homology: Sequence[str] = (),
    sweeps: Sequence[str] = (),
    interpretations: Sequence[str] = (),
    interpret_examples: int = 3,
) -> ReportInputs:
    """Check and group all report inputs (see ``write_report`` for the arguments)."""
    if n_examples < 0:
        raise ValueError(f"n_examples must be >= 0, got {n_examples}")
    for path in inputs:
        _parse("input", path)
    _check_exist([*inputs, *splits, *histories, *model_infos, *comparisons, *predictions, *qc, *pretrain_histories,
                  *pretrain_summaries, *counterfactuals, *homology, *pretrain_homology, *sweeps,
                  *interpretations])
    preds: dict[str, dict[str, str]] = {}
    for (task, model), path in _by_model("prediction", predictions).items():
        preds.setdefault(task, {})[model] = path
    swaps: dict[str, dict[str, str]] = {}
    for (task, model), path in _by_model("counterfactual", counterfactuals).items():
        swaps.setdefault(task, {})[model] = path
    data = ReportInputs(
        inputs=[str(p) for p in inputs],
        splits=_by_task("split", splits),
        histories=_by_model("history", histories),
        model_infos=_by_model("model_info", model_infos),
        comparisons=_by_task("comparison", comparisons),
        predictions=preds,
        tasks=[],
        n_examples=n_examples,
        qc=_qc_files(qc),
        pretrain_histories=_by_lm("pretrain_history", pretrain_histories),
        pretrain_summaries=_by_lm("pretrain_summary", pretrain_summaries),
        counterfactuals=swaps,
        homology=_by_task("homology", homology),
        pretrain_homology=_by_lm("pretrain_homology", pretrain_homology),
        sweeps=_by_model("sweep", sweeps),
        interpretations=_interpretation_files(interpretations),
        interpret_examples=interpret_examples,
    )
    keys = [*data.splits, *data.homology, *(t for t, _ in data.model_infos), *(t for t, _ in data.histories)]
    tasks = list(dict.fromkeys([*keys, *data.comparisons, *data.predictions, *data.counterfactuals]))
    return replace(data, tasks=tasks)


# ------------------------------------------------------------------------------------------------------------ inputs


def _md5_match(info: dict[str, Any]) -> tuple[str, bool | None]:
    """The match cell's HTML and whether the md5 matched (None when not checked)."""
    expected = info.get("md5_expected")
    if not expected:
        return '<span class="muted" title="no expected md5 given">–</span>', None
    ok = str(expected).strip().lower() == str(info.get("md5", "")).strip().lower()
    return ('<span class="ok">✓</span>', True) if ok else ('<span class="bad">✗</span>', False)


def _contents(info: dict[str, Any]) -> str:
    """What a file holds: sequences and length for genomes, features or chromosomes otherwise."""
    parts = []
    if "sequences" in info:
        parts.append(f"{_fmt_int(info['sequences'])} sequences")
    if "length" in info:
        parts.append(f"{_fmt_int(info['length'])} bp")
    if "features" in info:
        parts.append(f"{_fmt_int(info['features'])} features")
    if "chroms" in info:
        parts.append(f"{_fmt_int(info['chroms'])} chromosomes")
    return _esc(", ".join(parts)) if parts else '<span class="muted">–</span>'


def _input_row(path: str) -> tuple[list[str], bool | None]:
    """One inputs-table row and its md5 status."""
    groups = _parse("input", path)
    info = _read_json(path)
    kind = info.get("kind", groups["kind"] or "track")
    name = groups["track"] or Path(str(info.get("resolved") or info.get("source") or kind).split("?")[0]).name
    match_html, ok = _md5_match(info)
    resolved = info.get("resolved", "")
    row = [
        _esc(groups["species"]),
        _esc(kind),
        _esc(name),
        f'<code title="resolved: {_esc(resolved)}">{_esc(info.get("source", ""))}</code>',
        f"<code>{_esc(info.get('md5', ''))}</code>",
        f"<code>{_esc(info.get('md5_expected') or '–')}</code>",
        match_html,
        _fmt_int(info.get("bytes")),
        _contents(info),
    ]
    return row, ok


def inputs_section(data: ReportInputs) -> Section:
    """Section 1: every downloaded input with its checksum status.

    Args:
        data: The grouped report inputs.

    Returns:
        The section.
    """
    if not data.inputs:
        return Section("inputs", "Inputs", _p("No input files were downloaded."))
    rows = [_input_row(p) for p in data.inputs]
    header = ["species", "kind", "name", "source", "md5 (observed)", "md5 expected", "match", "bytes", "contents"]
    statuses = [ok for _, ok in rows]
    n_bad = statuses.count(False)
    summary = (
        f"{len(rows)} input file(s); {len(rows) - statuses.count(None)} with an expected md5, " f"{n_bad} mismatch(es)."
    )
    table = _table(
        header, [r for r, _ in rows], numeric=[7], row_classes=["mismatch" if ok is False else "" for ok in statuses]
    )
    return Section("inputs", "Inputs", _p(summary, "meta" if n_bad == 0 else "bad") + table)


# ----------------------------------------------------------------------------------------------------------- splits


def _split_key(split: str) -> int:
    """Sort train, val, test first, anything else after."""
    return _SPLIT_ORDER.index(split) if split in _SPLIT_ORDER else len(_SPLIT_ORDER)


def _splits_figure(counts: pd.DataFrame, task: str) -> str:
    """Bar chart of windows per split, stacked by species when there are few species."""
    table = counts.pivot_table(index="split", columns="species", values="windows", aggfunc="sum", sort=False)
    table = table.loc[sorted(table.index, key=_split_key)].fillna(0)
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.subplots()
    x = np.arange(len(table.index))
    if 1 < table.shape[1] <= 8:
        bottom = np.zeros(len(x))
        for species in table.columns:
            ax.bar(x, table[species].to_numpy(), bottom=bottom, label=str(species))
            bottom += table[species].to_numpy()
        ax.legend(title="species", fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        ax.bar(x, table.sum(axis=1).to_numpy(), color=_PREDICTED_COLOUR)
    for xi, total in zip(x, table.sum(axis=1).to_numpy()):
        ax.annotate(f"{int(total):,}", (xi, total), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [str(s) for s in table.index])
    ax.set_ylabel("windows")
    ax.margins(y=0.12)
    ax.set_title(f"{task}: windows per split", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return _figure_html(fig, f"Windows per split for task {task}.")


def _splits_task(task: str, path: str | None) -> str:
    """Counts table and chart for one task."""
    if path is None:
        return _p(f"No split counts for task {task}.")
    counts = _read_tsv(path, _COUNT_COLUMNS)
    if counts.empty:
        return _p(f"The split counts of task {task} are empty ({path}).")
    counts = counts.assign(_k=counts["split"].astype(str).map(_split_key)).sort_values(["_k", "species"], kind="stable")
    # fold tasks also count windows dropped for crossing a fold boundary (shown before the kept windows)
    columns = list(_COUNT_COLUMNS)
    header = ["species", "split", "sites", "dropped (N)", "dropped (subsample)", "windows"]
    if "dropped_fold" in counts.columns and counts["dropped_fold"].any():
        columns.insert(-1, "dropped_fold")
        header.insert(-1, "dropped (crosses fold)")
    rows = [
        [_esc(r.species), _esc(r.split), *(_fmt_int(getattr(r, c)) for c in columns[2:])]
        for r in counts.itertuples(index=False)
    ]
    totals = counts.groupby("split", sort=False)["windows"].sum()
    totals_text = ", ".join(f"{s}: {int(n):,}" for s, n in sorted(totals.items(), key=lambda kv: _split_key(kv[0])))
    return (
        _p(f"Windows per split: {totals_text}.", "meta")
        + _table(header, rows, range(2, len(header)))
        + _splits_figure(counts, task)
    )


def splits_section(data: ReportInputs) -> Section:
    """Section 2: windows per species and split, per task.

    Args:
        data: The grouped report inputs.

    Returns:
        The section.
    """
    if not data.tasks:
        return _no_tasks("splits", "Windows and splits")
    body = "".join(_task_block("splits", t, _splits_task(t, data.splits.get(t))) for t in data.tasks)
    return Section("splits", "Windows and splits", body)


_HOMOLOGY_COLUMNS = ("species", "train_before", "test_before", "val_before", "train_after", "test_after",
                     "val_after", "removed", "removed_train", "removed_train_percent")


def _homology_task(task: str, path: str | None) -> str:
    """Study 2's table for one task: train / test / val windows before and after, and the removed windows."""
    if path is None:
        return _p(f"No homology summary for task {task}.")
    table = _read_tsv(path, _HOMOLOGY_COLUMNS)

    def triple(r: Any, stage: str) -> str:
        return " / ".join(_fmt_int(getattr(r, f"{s}_{stage}")) for s in ("train", "test", "val"))

    rows = [[_esc(r.species), triple(r, "before"), triple(r, "after"),
             f"{_fmt_int(r.removed_train)} ({float(r.removed_train_percent):.1f}%)", _fmt_int(r.removed)]
            for r in table.itertuples(index=False)]
    header = ["species", "train / test / val before", "after", "train removed", "removed (all splits)"]
    return _table(header, rows, range(1, 5))


def _pretrain_homology_text(data: ReportInputs) -> str:
    """One line per pretrained LM: corpus windows left out, by reason."""
    lines = []
    for lm, path in data.pretrain_homology.items():
        table = _read_tsv(path, ("genome", "reason"))
        reasons = ", ".join(f"{n:,} {r.replace('_', ' ')}" for r, n in table["reason"].value_counts().items())
        lines.append(_p(f"Language model {lm}: {len(table):,} corpus train windows excluded"
                        + (f" ({reasons})." if reasons else "."), "meta"))
    return "".join(lines)


def homology_section(data: ReportInputs) -> Section:
    """Windows removed by the homology filter, per task (study 2's table), and from the pretraining corpora."""
    title = "Homology filter"
    if not data.homology and not data.pretrain_homology:
        return Section("homology", title, _p("No homology summaries were given."))
    intro = _p("Train windows (of every genome feeding a task) that align to one of the task species' val or test "
               "windows, and val windows that align to a test window, are removed before training.")
    body = "".join(_task_block("homology", t, _homology_task(t, data.homology.get(t))) for t in data.homology)
    return Section("homology", title, intro + body + _pretrain_homology_text(data))


# ---------------------------------------------------------------------------------------------------- LM pretraining


def _pretrain_figure(lm: str, history: pd.DataFrame) -> str:
    """Train and validation masked-LM loss, and validation masked-token accuracy, per evaluation step."""
    fig = Figure(figsize=(9.0, 3.1), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax in (loss_ax, acc_ax):
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_xlabel("step")
    if history.empty:
        for ax in (loss_ax, acc_ax):
            ax.text(0.5, 0.5, "no evaluation recorded", ha="center", va="center", transform=ax.transAxes, color="#666")
    else:
        loss_ax.plot(history["step"], history["train_loss"], "o-", ms=3, color=_TRAIN_COLOUR, label="train")
        loss_ax.plot(history["step"], history["val_loss"], "o-", ms=3, color=_PREDICTED_COLOUR, label="validation")
        loss_ax.legend(fontsize=7, frameon=False)
        acc_ax.plot(history["step"], 100 * history["val_accuracy"], "o-", ms=3, color=_PREDICTED_COLOUR)
    loss_ax.set_title(f"{lm}: masked-token loss", fontsize=10)
    loss_ax.set_ylabel("cross-entropy")
    acc_ax.set_title(f"{lm}: validation masked-token accuracy", fontsize=10)
    acc_ax.set_ylabel("accuracy (%)")
    return _figure_html(fig, f"Pretraining of {lm}: train loss is the mean over the steps since the previous "
                        "evaluation; validation loss and accuracy are on fixed validation windows with fixed masks. "
                        "No chance line is drawn: pretrain.json records no token frequencies.")


def _pretrain_row(lm: str, summary: dict[str, Any]) -> list[str]:
    """One row of the pretraining summary table (en dashes for what pretrain.json lacks)."""
    get = summary.get
    corpus = get("corpus")
    if corpus:
        genomes = ", ".join(f"{g['genome']} ({g['species']})" for g in corpus)
    else:
        genomes = "not recorded; vocabulary: " + ", ".join(map(str, get("species") or [])) or "–"
    arch = " / ".join(_fmt_int(get(k)) for k in ("layers", "hidden", "heads"))
    val = f"{_fmt_int(get('val_windows_used'))} of {_fmt_int(get('val_windows_available'))}"
    return [
        _esc(lm),
        _esc(get("tokenizer", "–")),
        _esc(genomes),
        f"{_fmt_int(get('window'))} / {_fmt_int(get('stride'))}",
        f"{_fmt_int(get('train_windows'))} ({_fmt_int(get('dropped_train_windows'))})",
        f"{val} ({_fmt_int(get('dropped_val_windows'))})",
        arch,
        _fmt_int(get("parameters")),
        f"{_fmt_int(get('steps_run'))} of {_fmt_int(get('steps'))}",
        _esc(_fmt_num(get("final_val_loss"))),
        _pct(get("final_val_accuracy")),
    ]


def pretrain_section(data: ReportInputs) -> Section:
    """Masked-LM pretraining of each language model: summary table and loss / accuracy curves.

    Args:
        data: The grouped report inputs.

    Returns:
        The section.
    """
    lms = data.lms()
    if not lms:
        return Section("pretrain", "Language model pretraining",
                       _p("No language model was pretrained by this workflow (pretrain is empty)."))
    summaries = {lm: _read_json(data.pretrain_summaries[lm]) if lm in data.pretrain_summaries else {} for lm in lms}
    header = ["language model", "tokenizer", "corpus genomes (species token)", "window / stride (bp)",
              "train windows (dropped)", "val windows used of available (dropped)", "layers / hidden / heads",
              "parameters", "steps run", "final val loss", "final val masked acc."]
    note = _p("Windows tile the train (or validation) chromosomes of the corpus genomes; dropped: windows with a base "
              "other than A, C, G, T. The corpus is pretrain.<lm>.corpus, or the genomes the QC gate admitted; the "
              "vocabulary holds every configured species token.")
    body = _table(header, [_pretrain_row(lm, summaries[lm]) for lm in lms], numeric=range(3, 11)) + note
    for lm in lms:
        path = data.pretrain_histories.get(lm)
        if path is None:
            body += _p(f"No pretraining history for {lm}.")
        else:
            body += _pretrain_figure(lm, _read_tsv(path, _PRETRAIN_HISTORY_COLUMNS))
    return Section("pretrain", "Language model pretraining", body)


# --------------------------------------------------------------------------------------------------------- training


def _read_history(path: str | None) -> pd.DataFrame | None:
    """A training history, or None when there is none."""
    return None if path is None else _read_tsv(path, _HISTORY_COLUMNS)


def _plot_history(ax: Any, model: str, history: pd.DataFrame | None) -> None:
    """Train and validation loss per epoch with the best (lowest val loss) epoch marked."""
    ax.set_title(model, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    if history is None or history.empty:
        text = "no history" if history is None else "not trained (baseline)"
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
        ax.set_axis_off()
        return
    ax.plot(history["epoch"], history["train_loss"], "o-", ms=3, color=_TRAIN_COLOUR, label="train")
    ax.plot(history["epoch"], history["val_loss"], "o-", ms=3, color=_PREDICTED_COLOUR, label="validation")
    if history["val_loss"].notna().any():
        best = history.loc[history["val_loss"].idxmin()]
        ax.axvline(best["epoch"], color="#555", ls=":", lw=1)
        ax.plot(
            [best["epoch"]], [best["val_loss"]], "*", ms=12, color="#c62828", label=f"best (epoch {int(best['epoch'])})"
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7, frameon=False)


def _training_figure(task: str, histories: dict[str, pd.DataFrame | None]) -> str:
    """One loss panel per model."""
    n = len(histories)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.1 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (model, history) in zip(axes, histories.items()):
        _plot_history(ax, model, history)
    for ax in axes[n:]:
        ax.set_visible(False)
    return _figure_html(fig, f"Training curves for task {task} (★ = epoch with the lowest validation loss).")


def _training_row(model: str, info: dict[str, Any], history: pd.DataFrame | None) -> list[str]:
    """One row of the parameter table."""
    total, trainable = info.get("total_params"), info.get("trainable_params")
    share = f"{100 * trainable / total:.1f}%" if total and trainable is not None else "–"
    if history is None:
        status, best_epoch, best_loss = "no history", "–", "–"
    elif history.empty:
        status, best_epoch, best_loss = "not trained (baseline)", "–", "–"
    else:
        best = history.loc[history["val_loss"].idxmin()] if history["val_loss"].notna().any() else None
        status = f"{len(history)} epoch(s)"
        best_epoch = _fmt_int(best["epoch"]) if best is not None else "–"
        best_loss = _fmt_num(best["val_loss"]) if best is not None else "–"
    return [
        _esc(model),
        _esc(info.get("arch", "–")),
        _fmt_int(total),
        _fmt_int(trainable),
        share,
        _esc(status),
        best_epoch,
        best_loss,
    ]


def _training_task(data: ReportInputs, task: str) -> str:
    """Curves and parameter counts for one task."""
    models = data.models(task)
    if not models:
        return _p(f"No models were trained for task {task}.")
    histories = {m: _read_history(data.histories.get((task, m))) for m in models}
    infos = {m: _read_json(data.model_infos[(task, m)]) if (task, m) in data.model_infos else {} for m in models}
    header = [
        "model",
        "arch",
        "total params",
        "trainable params",
        "trainable",
        "training",
        "best epoch",
        "best val loss",
    ]
    rows = [_training_row(m, infos[m], histories[m]) for m in models]
    baselines = [m for m in models if histories[m] is not None and histories[m].empty]
    note = _p(f"Not trained (baseline): {', '.join(baselines)}.") if baselines else ""
    return _training_figure(task, histories) + note + _table(header, rows, numeric=[2, 3, 4, 6, 7])


def training_section(data: ReportInputs) -> Section:
    """Section 3: training curves and parameter counts, per task.

    Args:
        data: The grouped report inputs.

    Returns:
        The section.
    """
    if not data.tasks:
        return _no_tasks("training", "Training")
    body = "".join(_task_block("training", t, _training_task(data, t)) for t in data.tasks)
    return Section("training", "Training", body)


# ----------------------------------------------------------------------------------------------------- test metrics


def _best_values(df: pd.DataFrame) -> dict[str, float]:
    """Best value per ranked metric column: highest, or lowest for the loss."""
    best = {}
    for col, _, higher in _METRICS:
        if higher is None or col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        if values.notna().any():
            best[col] = values.max() if higher else values.min()
    return best


def _metric_cell(row: pd.Series, col: str, best: dict[str, float]) -> str:
    """A metric cell, ``mean ± sd`` when an sd column exists, bold when it is the column's best."""
    if col == "n_windows":
        return _fmt_int(row.get(col))
    sd_col = f"{col}_sd"
    text = _esc(_fmt_num(row.get(col), row.get(sd_col) if sd_col in row.index else None))
    value = pd.to_numeric(row.get(col), errors="coerce")
    if col in best and not pd.isna(value) and np.isclose(value, best[col], rtol=1e-12, atol=0):
        return f"<strong>{text}</strong>"
    return text


def _metrics_task(task: str, path: str | None) -> str:
    """The comparison table of one task."""
    if path is None:
        return _p(f"No test metrics for task {task}.")
    df = _read_tsv(path, ["model", *(c for c, _, _ in _METRICS)])
    if df.empty:
        return _p(f"The comparison table of task {task} is empty ({path}).")
    has_sd = any(c.endswith("_sd") for c in df.columns)
    best = _best_values(df)
    header = ["model", *(h for _, h, _ in _METRICS), *(["n seeds"] if has_sd else []), "arch"]
    rows = []
    for _, row in df.iterrows():
        cells = [_esc(row["model"]), *(_metric_cell(row, c, best) for c, _, _ in _METRICS)]
        if has_sd:
            cells.append(_fmt_int(row.get("n_seeds")))
        rows.append([*cells, _esc(row.get("arch", "–"))])
    note = "Values are mean ± sd over seeds. " if has_sd else ""
    note += "Bold: best in column (highest; lowest for test loss)."
    return _table(header, rows, numeric=range(1, len(_METRICS) + 1 + has_sd)) + _p(note, "meta")


def metrics_section(data: ReportInputs) -> Section:
    """Section 4: test-set comparison of models, per task (layout of SEEDS.md §1).

    Args:
        data: The grouped report inputs.

    Returns:
        The section.
    """
    if not data.tasks:
        return _no_tasks("metrics", "Test metrics")
    body = "".join(_task_block("metrics", t, _metrics_task(t, data.comparisons.get(t))) for t in data.tasks)
    return Section("metrics", "Test metrics", body)


# ------------------------------------------------------------------------------------ species-token counterfactual


def _read_counterfactual(path: str) -> pd.DataFrame:
    """A counterfactual table with `token_in_use` as booleans (empty for models without a species token)."""
    df = _read_tsv(path, _COUNTERFACTUAL_COLUMNS)
    return df.assign(token_in_use=df["token_in_use"].astype(str).str.strip().str.lower().isin(["true", "1"]))


def _counterfactual_cell(row: pd.Series | None) -> str:
    """Mean change of predicted log count (and its mean absolute value) and profile Pearson for one species."""
    if row is None:
        return '<span class="muted" title="not in the vocabulary">–</span>'
    delta = pd.to_numeric(row["mean_delta_log_count"], errors="coerce")
    signed = "–" if pd.isna(delta) else f"{delta:+.3f}"
    cell = (f"Δ {signed} (|Δ| {_esc(_fmt_num(row['mean_abs_delta_log_count']))})"
            f"<br>r {_esc(_fmt_num(row['profile_pearson_median']))}")
    return f"<strong>● in use</strong><br>{cell}" if row["token_in_use"] else cell


def _counterfactual_task(task: str, paths: dict[str, str]) -> str:
    """Model × species table of one task; models without a species token are listed, not tabulated."""
    tables = {m: _read_counterfactual(p) for m, p in paths.items()}
    skipped = [m for m, df in tables.items() if df.empty]
    tables = {m: df for m, df in tables.items() if not df.empty}
    note = _p(f"No species token, so no counterfactual: {', '.join(skipped)}.", "meta") if skipped else ""
    if not tables:
        return _p(f"No model of task {task} has a species token.") + note
    species = list(dict.fromkeys(str(s) for df in tables.values() for s in df["species"]))
    rows = []
    for model, df in tables.items():
        by_species = {str(r["species"]): r for _, r in df.iterrows()}
        rows.append([_esc(model), *(_counterfactual_cell(by_species.get(s)) for s in species),
                     _fmt_int(df["n_windows"].max())])
    return _table(["model", *species, "test windows"], rows, numeric=range(1, len(species) + 2)) + note


def counterfactual_section(data: ReportInputs) -> Section:
    """Species-token counterfactual: how the predictions of LM models change with another species' token, per task.

    Args:
        data: The grouped report inputs.

    Returns:
        The section.
    """
    title = "Species-token counterfactual"
    if not data.counterfactuals:
        return Section("counterfactual", title, _p("No species-token counterfactual was computed."))
    intro = _p("Each model predicts the same test windows again with its species token swapped for every species of "
               "its vocabulary, which shows how much it relies on the token. Δ: mean change of the predicted "
               "log(1 + total count) against the prediction with the token in use (● in use; |Δ|: mean absolute "
               "change, over windows and channels); r: median per-window Pearson between the swapped and the original "
               "predicted profile. Δ ≈ 0 and r ≈ 1: the species token barely matters.")
    body = "".join(
        _task_block("counterfactual", t, _counterfactual_task(t, data.counterfactuals[t]) if t in data.counterfactuals
                    else _p(f"No counterfactual for task {t}."))
        for t in data.tasks
    )
    return Section("counterfactual", title, intro + body)


# --------------------------------------------------------------------------------------------------- example tracks


def _decode(values: Iterable[Any]) -> list[str]:
    """Byte or str values as str."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _row_totals(ds: h5py.Dataset, max_elements: int = 1 << 22) -> np.ndarray:
    """Sum of each row of an (N, ...) dataset, read in chunks."""
    per_row = max(1, int(np.prod(ds.shape[1:])))
    step = max(1, max_elements // per_row)
    totals = np.empty(ds.shape[0], dtype=np.float64)
    for start in range(0, ds.shape[0], step):
        block = ds[start : start + step]
        totals[start : start + step] = np.nansum(block.reshape(len(block), -1), axis=1, dtype=np.float64)
    return totals


def _example_windows(path: str, n: int) -> list[tuple[str, float]]:
    """n typical windows: those at evenly spaced quantiles (50th to 95th percentile) of total observed signal.

    The strongest windows are often outliers (a few loci with 1000x the median signal), so they are not shown.

    Returns:
        (window id, total) pairs, the strongest first.
    """
    with h5py.File(path, "r") as fh:
        totals = _row_totals(fh["observed"])
        ids = _decode(fh["window_id"][:])
    ranked = [i for i in np.argsort(totals, kind="stable") if totals[i] > 0]
    if not ranked or n == 0:
        return []
    picks = np.unique(np.round(np.linspace(0.5, 0.95, n) * (len(ranked) - 1)).astype(int))
    return [(ids[ranked[p]], float(totals[ranked[p]])) for p in picks[::-1]]


def _window_rows(path: str, window_ids: Sequence[str]) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Channel names and (observed, predicted) arrays of the given windows in one predictions file."""
    with h5py.File(path, "r") as fh:
        obs, pred = fh["observed"], fh["predicted"]
        if obs.shape != pred.shape or obs.ndim != 3:
            raise ValueError(f"{path}: observed {obs.shape} and predicted {pred.shape} must be equal (N, C, L)")
        channels = _decode(fh.attrs.get("channels", [f"channel {i}" for i in range(obs.shape[1])]))
        index = {wid: i for i, wid in enumerate(_decode(fh["window_id"][:]))}
        rows = {w: (obs[index[w]], pred[index[w]]) for w in window_ids if w in index}
    return channels, rows


def _plot_track(ax: Any, observed: np.ndarray, predicted: np.ndarray) -> None:
    """Observed (grey bars, left axis) and predicted (blue line, right axis) profile of one channel.

    The two get their own y axes: a base-resolution observed profile is often one tall spike while a model spreads
    the same total over several bases, and on one axis the prediction would look flat.
    """
    x = np.arange(len(observed))
    ax.fill_between(x, observed, step="mid", color=_OBSERVED_COLOUR, alpha=0.8, lw=0.8, edgecolor=_OBSERVED_COLOUR,
                    label="observed")
    ax.spines[["top"]].set_visible(False)
    ax.tick_params(labelsize=7)
    right = ax.twinx()
    right.plot(x, predicted, color=_PREDICTED_COLOUR, lw=1, label="predicted")
    right.set_ylim(bottom=0)
    right.spines[["top"]].set_visible(False)
    right.tick_params(labelsize=7, colors=_PREDICTED_COLOUR)


def _window_figure(window: str, total: float, per_model: dict[str, tuple[list[str], dict]]) -> str:
    """One figure per window: a row per model, a column per channel."""
    n_ch = max(len(ch) for ch, _ in per_model.values())
    fig = Figure(figsize=(max(6.0, 3.6 * n_ch), 1.5 * len(per_model) + 0.9), layout="constrained")
    axes = fig.subplots(len(per_model), n_ch, squeeze=False, sharex=True)
    for r, (model, (channels, rows)) in enumerate(per_model.items()):
        axes[r, 0].set_ylabel(model, fontsize=8)
        for c in range(n_ch):
            ax = axes[r, c]
            if r == 0:
                ax.set_title(channels[c] if c < len(channels) else f"channel {c}", fontsize=9)
            if window not in rows or c >= len(channels):
                ax.text(0.5, 0.5, "window not in predictions", ha="center", va="center", transform=ax.transAxes)
                continue
            _plot_track(ax, rows[window][0][c], rows[window][1][c])
    handles = [Patch(color=_OBSERVED_COLOUR, label="observed (left axis)"),
               Line2D([], [], color=_PREDICTED_COLOUR, label="predicted (right axis)")]
    axes[0, 0].legend(handles=handles, fontsize=7, frameon=False, loc="upper left")
    for ax in axes[-1]:
        ax.set_xlabel("position in window", fontsize=8)
    fig.suptitle(f"{window} (total observed signal {total:,.0f})", fontsize=10)
    return _figure_html(fig, f"Window {window}: observed (grey) vs predicted (blue), total observed {total:,.0f}.")


def _examples_task(task: str, predictions: dict[str, str], n_examples: int) -> str:
    """Example-track figures of one task."""
    if not predictions:
        return _p(f"No predictions for task {task}.")
    if n_examples == 0:
        return _p("Example tracks are turned off (n_examples: 0).")
    first_model, first_path = next(iter(predictions.items()))
    top = _example_windows(first_path, n_examples)
    if not top:
        return _p(f"The test set of task {task} has no windows.")
    ids = [w for w, _ in top]
    per_model = {m: _window_rows(p, ids) for m, p in predictions.items()}
    missing = sorted({f"{m}: {w}" for m, (_, rows) in per_model.items() for w in ids if w not in rows})
    intro = _p(
        f"{len(top)} typical test window(s), at evenly spaced quantiles (50th to 95th percentile) of total observed "
        f"signal in the predictions of {first_model}, shown for every model. Grey: observed signal (left axis); blue: "
        "predicted signal, profile × predicted total count (right axis)."
    )
    note = _p(f"Windows missing from some predictions: {'; '.join(missing)}.", "bad") if missing else ""
    return intro + note + "".join(_window_figure(w, t, per_model) for w, t in top)


def examples_section(data: ReportInputs) -> Section:
    """Section 5: observed vs predicted profiles of typical test windows, per task.

    Args:
        data: The grouped report inputs.

    Returns:
        The section.
    """
    if not data.tasks:
        return _no_tasks("examples", "Example tracks")
    body = "".join(
        _task_block("examples", t, _examples_task(t, data.predictions.get(t, {}), data.n_examples)) for t in data.tasks
    )
    return Section("examples", "Example tracks", body)


# ---------------------------------------------------------------------------------------------------------- genome QC

_PASS_COLOUR = "#2e7d32"
_FAIL_COLOUR = "#c62828"
# (summary column, panel title, threshold key, scale for display, unit suffix)
_QC_BARS: tuple[tuple[str, str, str | None, float, str], ...] = (
    ("mash_distance", "Mash distance to reference", "max_mash_distance", 1.0, ""),
    ("busco_complete", "BUSCO complete (C)", "min_busco_complete", 1.0, "%"),
    ("repeat_fraction", "Repeat fraction", "max_repeat_fraction", 100.0, "%"),
    ("coding_fraction", "Coding fraction", "min_coding_fraction", 100.0, "%"),
    ("n_fraction", "N fraction", "max_n_fraction", 100.0, "%"),
    ("genes_per_window_median", "Protein-coding genes per window (median)", None, 1.0, ""),
)


def _qc_files(paths: Sequence[str]) -> QcFiles:
    """Group QC outputs by the kind their path encodes."""
    tables: dict[str, str] = {}
    genomes: dict[str, str] = {}
    for path in paths:
        groups = _parse("qc", path)
        if groups["table"]:
            tables[groups["table"]] = str(path)
        else:
            genomes[groups["species"]] = str(path)
    return QcFiles(genomes, tables.get("summary"), tables.get("thresholds"), tables.get("mash_distances"))


def _pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage, or an en dash when missing."""
    return "–" if _is_missing(value) else f"{100 * float(value):.{digits}f}%"


def _qc_row(row: pd.Series, genome: dict[str, Any], busco_skipped: bool) -> list[str]:
    """One row of the QC summary table."""
    busco = genome.get("busco", {})
    mash = "–"
    if not _is_missing(row["mash_distance"]):
        mash = f"{float(row['mash_distance']):.3f} ({_fmt_int(row['mash_shared_hashes'])})"
    median, mean = row["genes_per_window_median"], row["genes_per_window_mean"]
    genes = "–" if _is_missing(median) else f"{float(median):g} (mean {float(mean):.1f})"
    unchecked = [p for p in str(row["not_checked"] or "").split("; ") if p and not (busco_skipped and "BUSCO" in p)]
    verdict = '<span class="ok">✓ admitted</span>'
    if not row["pass"]:
        verdict = f'<span class="bad">✗</span> {_esc(row["reasons"])}'
    if unchecked:
        verdict += f'<br><span class="muted">not checked: {_esc("; ".join(unchecked))}</span>'
    return [
        _esc(row["species"]),
        _fmt_int(row["length"]),
        _fmt_int(row["sequences"]),
        _fmt_int(row["n50"]),
        _pct(row["gc_fraction"]),
        _pct(row["n_fraction"], 3),
        _fmt_int(row["iupac_count"]),
        _esc(row["mash_reference"] if not _is_missing(row["mash_reference"]) else "–"),
        _esc(mash),
        _esc(busco.get("summary", "skipped")),
        f"{_pct(row['repeat_fraction'])} ({_esc(row['repeat_method'])})",
        _pct(row["coding_fraction"]),
        _esc(genes),
        verdict,
    ]


def _qc_bar_panel(ax: Any, table: pd.DataFrame, spec: tuple, limits: dict[str, float], note: str | None) -> None:
    """One measure as bars per genome, green if admitted and red if not, with its threshold as a dashed line."""
    column, title, key, scale, unit = spec
    ax.set_title(title, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    x = np.arange(len(table))
    ax.set_xticks(x, table["species"].astype(str).tolist(), rotation=35, ha="right", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    if note:
        ax.set_ylim(0, 100 * scale)
        ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, fontsize=8, color="#666")
        return
    values = pd.to_numeric(table[column], errors="coerce") * scale
    colours = [_PASS_COLOUR if ok else _FAIL_COLOUR for ok in table["pass"]]
    ax.bar(x, values.fillna(0).to_numpy(), color=colours)
    for xi, value in zip(x, values):
        label = "n/a" if pd.isna(value) else f"{value:.3g}{unit}"
        ax.annotate(label, (xi, 0 if pd.isna(value) else value), ha="center", va="bottom", fontsize=7)
    limit = limits.get(key) if key else None
    if limit is not None:
        ax.axhline(limit * scale, color="#333", ls="--", lw=1)
        ax.annotate(f"{'max' if key.startswith('max') else 'min'} {limit * scale:g}{unit}", (0.0, limit * scale),
                    xycoords=("axes fraction", "data"), ha="left", va="bottom", fontsize=7, color="#333")
    ax.margins(y=0.15)


def _qc_bars_figure(table: pd.DataFrame, limits: dict[str, float], busco_skipped: bool) -> str:
    """Bars of the gated measures (and genes per window) with thresholds."""
    fig = Figure(figsize=(11, 6.4), layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    for ax, spec in zip(axes, _QC_BARS):
        note = "BUSCO skipped:\nqc.busco.lineage is null" if spec[0] == "busco_complete" and busco_skipped else None
        _qc_bar_panel(ax, table, spec, limits, note)
    fig.legend(handles=[Patch(color=_PASS_COLOUR, label="admitted"), Patch(color=_FAIL_COLOUR, label="rejected"),
                        Line2D([], [], color="#333", ls="--", label="threshold")],
               loc="outside upper center", ncols=3, fontsize=8, frameon=False)
    return _figure_html(fig, "QC measures per genome; dashed lines are the thresholds of qc.thresholds (n/a: not "
                        "measured, e.g. no annotation).")


def _mash_figure(matrix: pd.DataFrame) -> str:
    """Heat map of the Mash distance matrix, values written in the cells."""
    n = len(matrix)
    fig = Figure(figsize=(max(4.5, 0.75 * n + 2.5), max(3.6, 0.6 * n + 1.6)), layout="constrained")
    ax = fig.subplots()
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="viridis_r", vmin=0, vmax=max(float(np.nanmax(values)), 1e-9))
    labels = [str(s) for s in matrix.index]
    ax.set_xticks(range(n), labels, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    if n <= 25:
        for i in range(n):
            for j in range(n):
                dark = values[i, j] > 0.5 * np.nanmax(values)
                ax.text(j, i, f"{values[i, j]:.3f}", ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
    fig.colorbar(image, ax=ax, label="Mash distance", shrink=0.8)
    return _figure_html(fig, "Mash distances between all genomes (mash triangle; 0 = identical k-mer sets, 1 = no "
                        "shared hash). Whole k-mer sets are compared: a chromosome against a whole genome is far "
                        "even when identical.")


def _genes_window_figure(genomes: dict[str, dict[str, Any]]) -> str:
    """Distribution of protein-coding genes per window, one line per annotated genome."""
    fig = Figure(figsize=(6.5, 3.4), layout="constrained")
    ax = fig.subplots()
    window = None
    for species, genome in genomes.items():
        per_window = (genome.get("annotation") or {}).get("genes_per_window")
        if not per_window:
            continue
        window = genome["annotation"]["window"]
        hist = np.asarray(per_window["histogram"], dtype=float)
        ax.step(np.arange(hist.size), hist / hist.sum(), where="mid",
                label=f"{species} (median {per_window['median']:g}, {int(hist.sum())} windows)")
    if window is None:
        return ""
    ax.set_xlabel(f"protein-coding genes per {window:,} bp window")
    ax.set_ylabel("fraction of windows")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, frameon=False)
    return _figure_html(fig, "Genes per window: each protein-coding gene counts in the window holding its midpoint; "
                        "windows tile each sequence, a last partial window is left out.")


def _qc_gate_text(table: pd.DataFrame, busco_skipped: bool) -> str:
    """Which genomes the gate admitted and why the others were rejected."""
    admitted = table.loc[table["pass"], "species"].astype(str).tolist()
    rejected = [f"{r.species} ({r.reasons})" for r in table.loc[~table["pass"]].itertuples()]
    text = (f"{len(table)} genome(s) checked; the gate admitted {len(admitted)} to language-model pretraining "
            f"(results/qc/pretrain_genomes.txt): {', '.join(admitted) or 'none'}.")
    if rejected:
        text += f" Rejected: {'; '.join(rejected)}."
    html_text = _p(text, "meta")
    if busco_skipped:
        html_text += _p("BUSCO was not run: qc.busco.lineage is null (set it to a local *_odb10 lineage directory). "
                        "The BUSCO threshold was therefore not applied.", "bad")
    return html_text


def _thresholds_table(path: str | None) -> tuple[str, dict[str, float], bool]:
    """The thresholds table, the active limits and whether BUSCO was skipped."""
    if path is None:
        return "", {}, False
    df = _read_tsv(path, ["threshold", "limit", "status"])
    limits = {r.threshold: float(r.limit) for r in df.itertuples() if not _is_missing(r.limit)}
    busco_skipped = df["status"].astype(str).str.contains("BUSCO skipped").any()
    rows = [[_esc(r.threshold), "–" if _is_missing(r.limit) else _esc(f"{float(r.limit):g}"), _esc(r.status)]
            for r in df.itertuples()]
    return _table(["threshold (qc.thresholds)", "limit", "status"], rows, numeric=[1]), limits, bool(busco_skipped)


def qc_section(data: ReportInputs) -> Section:
    """Genome QC: summary table, gated measures against their thresholds, Mash heat map, genes per window.

    Args:
        data: The grouped report inputs.

    Returns:
        The section.
    """
    qc = data.qc
    if qc.summary is None:
        return Section("qc", "Genome QC", _p("Genome QC was not run (no species configured)."))
    table = _read_tsv(qc.summary, ["species", "pass", "reasons", "not_checked"])
    table["pass"] = table["pass"].astype(str).str.lower() == "true"
    table["reasons"] = table["reasons"].fillna("")
    genomes = {s: _read_json(p) for s, p in qc.genomes.items()}
    thresholds_html, limits, busco_skipped = _thresholds_table(qc.thresholds)
    header = ["species", "length", "seqs", "N50", "GC", "N", "IUPAC", "Mash ref", "Mash distance (shared hashes)",
              "BUSCO", "repeats", "coding", "genes / window", "gate"]
    rows = [_qc_row(r, genomes.get(str(r["species"]), {}), busco_skipped) for _, r in table.iterrows()]
    body = (_qc_gate_text(table, busco_skipped) + _table(header, rows, numeric=[1, 2, 3, 4, 5, 6, 10, 11])
            + thresholds_html + _qc_bars_figure(table, limits, busco_skipped))
    if qc.mash_distances is not None:
        body += _mash_figure(pd.read_csv(qc.mash_distances, sep="\t", index_col=0))
    return Section("qc", "Genome QC", body + _genes_window_figure(genomes))


# ---------------------------------------------------------------------------------------------------- interpretation


def _interpretation_files(paths: Sequence[str]) -> dict[tuple[str, str], dict[str, str]]:
    """Interpretation outputs by (task, model), keyed attributions, motifs and modisco.<output>."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for path in paths:
        groups = _parse("interpretation", path)
        name = groups["file"].rsplit(".", 1)[0]
        out.setdefault((groups["task"], groups["model"]), {})[name] = str(path)
    for key, files in out.items():
        if "motifs" not in files:
            raise ValueError(f"interpretation of task {key[0]!r}, model {key[1]!r} has no motifs.tsv: {files}")
    return out


def interpretation_section(data: ReportInputs) -> Section:
    """TF-MoDISco patterns, known-motif matches and attribution logos (built in dnalm.report_interpret)."""
    from dnalm.report_interpret import interpretation_section as build

    return build(data)


# ------------------------------------------------------------------------------------------------------------- page

# Add a section: write a builder taking ReportInputs and returning a Section, then append it here.
# ------------------------------------------------------------------------------------------------------------ sweeps

# Columns of dnalm.evaluate.sweep_table after the swept parameters, and the metrics shown against them.
_SWEEP_FIXED = ("n_seeds", "val_loss", "val_loss_sd")
_SWEEP_SHOWN = (("val_loss", "validation loss"), ("pearson_median", "test Pearson median"), ("auroc", "test AUROC"))


def _sweep_params(df: pd.DataFrame) -> list[str]:
    """The swept keys: the columns between ``model`` and ``n_seeds``."""
    columns = list(df.columns)
    return columns[1 : columns.index("n_seeds")]


def _plot_sweep_panel(ax: Any, df: pd.DataFrame, param: str, others: list[str], metric: str, label: str) -> None:
    """Mean ± sd of a metric against one swept key; one line per combination of the other keys."""
    values = list(dict.fromkeys(df[param]))
    numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values)
    groups = df.groupby(others, sort=False) if others else [((), df)]
    for key, group in groups:
        x = group[param].astype(float) if numeric else [values.index(v) for v in group[param]]
        name = ", ".join(f"{o}={v}" for o, v in zip(others, np.atleast_1d(key))) if others else None
        ax.errorbar(x, group[metric], yerr=group[f"{metric}_sd"].fillna(0), marker="o", capsize=3, label=name)
    best = df[df["best"].astype(bool)]
    bx = best[param].astype(float) if numeric else [values.index(v) for v in best[param]]
    ax.plot(bx, best[metric], "*", color="black", markersize=12, zorder=5)
    if not numeric:
        ax.set_xticks(range(len(values)), [str(v) for v in values])
    ax.set_xlabel(param)
    ax.set_ylabel(label)
    if others and len(df) > len(values):
        ax.legend(fontsize=7)


def _sweep_figure(task: str, model: str, df: pd.DataFrame) -> str:
    """A grid of panels: one row per metric, one column per swept key."""
    params = _sweep_params(df)
    fig = Figure(figsize=(4.0 * len(params), 2.8 * len(_SWEEP_SHOWN)), layout="constrained")
    axes = fig.subplots(len(_SWEEP_SHOWN), len(params), squeeze=False)
    for col, param in enumerate(params):
        others = [q for q in params if q != param]
        for row, (metric, label) in enumerate(_SWEEP_SHOWN):
            _plot_sweep_panel(axes[row, col], df, param, others, metric, label)
    return _figure_html(fig, f"Sweep of {model} on task {task}: mean ± sd over seeds against each swept key "
                             "(★ = best point, lowest mean validation loss).")


def _sweep_block(task: str, model: str, path: str) -> str:
    """Figure, table and best point of one model's sweep on one task."""
    df = _read_tsv(path, ["model", *_SWEEP_FIXED, *(m for m, _ in _SWEEP_SHOWN), "best"])
    if df.empty:
        return _p(f"The sweep table of {model} on task {task} is empty ({path}).")
    params = _sweep_params(df)
    rows = []
    for _, row in df.iterrows():
        metrics = [_fmt_num(row[m], row.get(f"{m}_sd")) for m, _ in _SWEEP_SHOWN]
        cells = [_esc(row["model"]), *(_esc(row[q]) for q in params), _fmt_int(row["n_seeds"]), *map(_esc, metrics)]
        rows.append([f"<strong>{c}</strong>" for c in cells] if bool(row["best"]) else cells)
    header = ["point", *params, "n seeds", *(label for _, label in _SWEEP_SHOWN)]
    best = df[df["best"].astype(bool)]
    text = (f"Best point (lowest mean validation loss): {best['model'].iloc[0]}." if len(best)
            else "No point has a validation loss.")
    return (f"<h4>{_esc(model)}</h4>" + _sweep_figure(task, model, df)
            + _table(header, rows, numeric=range(1 + len(params), len(header))) + _p(text, "meta"))


def sweeps_section(data: ReportInputs) -> Section:
    """Sweeps (models.<id>.sweep): per task and swept model, metrics against the swept values and the best point.

    Args:
        data: The grouped report inputs.

    Returns:
        The section.
    """
    if not data.sweeps:
        return Section("sweeps", "Sweeps", _p("No model has a sweep (models.<id>.sweep)."))
    tasks = list(dict.fromkeys(t for t, _ in data.sweeps))
    body = "".join(
        _task_block("sweeps", t, "".join(_sweep_block(t, m, p) for (tt, m), p in data.sweeps.items() if tt == t))
        for t in tasks)
    return Section("sweeps", "Sweeps", body)


SECTIONS: tuple[SectionBuilder, ...] = (
    inputs_section,
    qc_section,
    splits_section,
    homology_section,
    pretrain_section,
    training_section,
    metrics_section,
    counterfactual_section,
    examples_section,
    sweeps_section,
    interpretation_section,
)


def render_page(title: str, sections: Sequence[Section], generated: str) -> str:
    """The complete HTML page.

    Args:
        title: Page title.
        sections: Sections in order.
        generated: Generation time as text.

    Returns:
        The HTML document.
    """
    toc = "".join(f'<li><a href="#{_esc(s.id)}">{_esc(s.title)}</a></li>' for s in sections)
    body = "".join(f'<section id="{_esc(s.id)}"><h2>{_esc(s.title)}</h2>{s.html}</section>' for s in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>"
        f'<header><h1>{_esc(title)}</h1><p class="meta">Generated {_esc(generated)} · dnalm {_esc(__version__)}'
        "</p></header>"
        f"<nav><h2>Contents</h2><ol>{toc}</ol></nav>{body}</main></body></html>\n"
    )


def _write_atomic(path: str, text: str) -> None:
    """Write text to path via a temporary file in the same directory and os.replace."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    umask_mode(tmp)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_report(
    path: str,
    *,
    inputs: Sequence[str],
    splits: Sequence[str],
    histories: Sequence[str],
    model_infos: Sequence[str],
    comparisons: Sequence[str],
    predictions: Sequence[str],
    n_examples: int = 4,
    qc: Sequence[str] = (),
    pretrain_histories: Sequence[str] = (),
    pretrain_summaries: Sequence[str] = (),
    counterfactuals: Sequence[str] = (),
    homology: Sequence[str] = (),
    pretrain_homology: Sequence[str] = (),
    sweeps: Sequence[str] = (),
    interpretations: Sequence[str] = (),
    interpret_examples: int = 3,
    title: str = "dnalm report",
) -> None:
    """Write the self-contained HTML report.

    Task and model names are parsed from the paths (see ``_PATTERNS``); the order of the
    paths sets the order of models, and the first model's predictions of a task choose its
    example windows.

    Args:
        path: Output HTML file (written atomically).
        inputs: Download info JSONs (``resources/{species}/…json``).
        splits: ``results/splits/{task}/counts.tsv`` files.
        histories: ``results/models/{task}/{model}/history.tsv`` files.
        model_infos: ``results/models/{task}/{model}/model.json`` files.
        comparisons: ``results/eval/{task}/comparison.tsv`` files.
        predictions: ``results/eval/{task}/{model}/predictions.h5`` files.
        n_examples: Example windows per task (0 turns the figures off).
        qc: Genome QC outputs (``results/qc/{species}.json``, ``summary.tsv``, ``thresholds.tsv``,
            ``mash_distances.tsv``); none leaves the QC section empty.
        pretrain_histories: ``results/pretrain/{lm}/history.tsv`` files (masked-LM pretraining curves).
        pretrain_summaries: ``results/pretrain/{lm}/pretrain.json`` files (pretraining summaries).
        counterfactuals: ``results/eval/{task}/{model}/counterfactual.tsv`` files (species-token swaps;
            header-only files of models without a species token are skipped).
        homology: ``results/splits/{task}/summary.tsv`` files (windows before and after the homology filter).
        pretrain_homology: ``results/pretrain/{lm}/homology_excluded.tsv`` files (corpus windows left out).
        sweeps: ``results/eval/{task}/sweeps/{model}.tsv`` files (written by ``dnalm.evaluate.sweep_table``).
        interpretations: ``results/interpret/{task}/{model}/`` files (``attributions.npz``, ``motifs.tsv``,
            ``modisco.{output}.h5``); none leaves the interpretation section empty.
        interpret_examples: Example windows drawn as attribution logos per task.
        title: Page title.

    Raises:
        FileNotFoundError: If an input file is missing (all missing files are named).
        ValueError: If a path does not follow its layout or a table lacks a column.
    """
    data = _gather(inputs, splits, histories, model_infos, comparisons, predictions, n_examples, qc,
                   pretrain_histories, pretrain_summaries, counterfactuals, homology, pretrain_homology, sweeps,
                   interpretations, interpret_examples)
    sections = [build(data) for build in SECTIONS]
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    _write_atomic(path, render_page(title, sections, generated))
