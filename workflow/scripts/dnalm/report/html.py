"""The report's building blocks: the Jinja2 environment, HTML fragments, number formats, figures, file readers."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from matplotlib.figure import Figure

#: Templates of the page and of the fragments below (`templates/`, next to this module).
TEMPLATES = Path(__file__).resolve().with_name("templates")
#: The one Jinja2 environment: autoescaped, so text is escaped once, where a template writes it.
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, keep_trailing_newline=True,
                  undefined=StrictUndefined)
_FRAGMENTS = ENV.get_template("fragments.html.j2").module

#: Colours the figures share: observed signal, predictions (and validation curves), training curves.
OBSERVED_COLOUR = "#9e9e9e"
PREDICTED_COLOUR = "#1f5fa8"
TRAIN_COLOUR = "#e08a1e"

#: Anything a template writes: plain text (escaped there) or a fragment made here (`Markup`, kept as is).
Html = str | Markup


# --------------------------------------------------------------------------------------------------------- fragments


def note(text: str, cls: str = "note") -> Markup:
    """A paragraph of text (`note`: an italic remark; `meta`: a summary line; `bad`: a warning)."""
    return _FRAGMENTS.note(text, cls)


def heading(text: str) -> Markup:
    """A fourth-level heading (a model or a part within a task block)."""
    return _FRAGMENTS.heading(text)


def span(text: Html, cls: str, title: str | None = None) -> Markup:
    """Text in a styled span (`ok`, `bad`, `muted`), with an optional tooltip."""
    return _FRAGMENTS.span(text, cls, title)


def code(text: str, title: str | None = None) -> Markup:
    """Text set as code (checksums, URLs, sequences), with an optional tooltip."""
    return _FRAGMENTS.code(text, title)


def strong(text: Html) -> Markup:
    """Bold text."""
    return _FRAGMENTS.strong(text)


def lines(parts: Iterable[Html]) -> Markup:
    """Parts on separate lines of one table cell."""
    return _FRAGMENTS.lines(list(parts))


def join(parts: Iterable[Html]) -> Markup:
    """Fragments one after the other (plain text among them is escaped)."""
    return Markup("").join(parts)


def table(header: Sequence[str], rows: Iterable[Sequence[Html]], numeric: Iterable[int] = (),
          row_classes: Sequence[str] | None = None) -> Markup:
    """A table.

    Args:
        header: Column titles.
        rows: Cells: plain text, or fragments made by this module.
        numeric: Indices of right-aligned numeric columns.
        row_classes: Optional CSS class per row ("" for none).

    Returns:
        The table's HTML.
    """
    return _FRAGMENTS.table(list(header), [list(r) for r in rows], set(numeric), row_classes)


def figure(fig: Figure, caption: str) -> Markup:
    """A figure embedded as a base64 PNG, with its caption (also the image's alt text)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return _FRAGMENTS.figure(base64.b64encode(buf.getvalue()).decode("ascii"), caption)


def task_block(section: str, task: str, body: Html) -> Markup:
    """A per-task sub-section with its own anchor (`<section>-<task>`)."""
    return _FRAGMENTS.task_block(section, re.sub(r"[^A-Za-z0-9_-]+", "-", task), task, body)


def task_blocks(section: str, tasks: Iterable[str], body: Callable[[str], Html]) -> Markup:
    """One `task_block` per task, its body made by `body(task)`."""
    return join(task_block(section, t, body(t)) for t in tasks)


def per_task(section: str, tasks: Sequence[str], body: Callable[[str], Html]) -> Markup:
    """A section's `task_blocks`, or a note saying that no task was run."""
    if not tasks:
        return note("No tasks were run, so there is nothing to show here.")
    return task_blocks(section, tasks, body)


def logo(ax: Any, matrix: np.ndarray, title: str, ylabel: str) -> None:
    """A sequence logo of an (L, 4) matrix (rows A, C, G, T) on `ax`."""
    import logomaker

    logomaker.Logo(pd.DataFrame(np.asarray(matrix, dtype=float), columns=list("ACGT")), ax=ax, show_spines=False)
    ax.set_title(title, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=7)
    ax.tick_params(labelsize=6)


def axes_note(ax: Any, text: str, **style: Any) -> None:
    """Text in the middle of empty axes (what a panel would show is missing)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, **style)


# ----------------------------------------------------------------------------------------------------------- numbers


def is_missing(value: Any) -> bool:
    """True for None, NaN and pandas' NA."""
    return value is None or (np.isscalar(value) and bool(pd.isna(value))) or value is pd.NA


def fmt_int(value: Any) -> str:
    """An integer with thousands separators, or an en dash when missing."""
    return "–" if is_missing(value) else f"{int(value):,}"


def fmt_num(value: Any, sd: Any = None) -> str:
    """A metric as text, as `mean ± sd` when an sd is given.

    Args:
        value: The metric (mean over seeds when sd is given).
        sd: Standard deviation over seeds, or None.

    Returns:
        The formatted value (one decimal from 100 up, as for losses; three below); an en dash when missing.
    """
    if is_missing(value):
        return "–"
    d = 1 if abs(float(value)) >= 100 else 3
    text = f"{float(value):,.{d}f}"
    if not is_missing(sd):
        text += f" ± {float(sd):,.{d}f}"
    return text


def pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage, or an en dash when missing."""
    return "–" if is_missing(value) else f"{100 * float(value):.{digits}f}%"


# ----------------------------------------------------------------------------------------------------------- readers


def read_tsv(path: str, required: Sequence[str]) -> pd.DataFrame:
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


def read_json(path: str) -> dict[str, Any]:
    """Read a JSON object.

    Raises:
        ValueError: If the file holds another JSON value.
    """
    with open(path) as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")  # noqa: TRY004 (file content)
    return data
