"""The report page: build every registered section from the manifest, render the page and write it atomically."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

from dnalm import __version__
from dnalm.io import umask_mode
from dnalm.report.html import ENV
from dnalm.report.manifest import Manifest
from dnalm.report.sections import Section, build_sections


def render_page(title: str, sections: Sequence[Section], generated: str) -> str:
    """The complete HTML page (`templates/page.html.j2`).

    Args:
        title: Page title.
        sections: Sections in order.
        generated: Generation time as text.

    Returns:
        The HTML document.
    """
    return ENV.get_template("page.html.j2").render(title=title, sections=sections, generated=generated,
                                                   version=__version__)


def write_atomic(path: str, text: str) -> None:
    """Write text to path via a temporary file in the same directory and `os.replace`, with the umask's mode."""
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


def write_report(out_html: str, manifest: Iterable[dict[str, Any]], *, n_examples: int, interpret_examples: int,
                 title: str = "dnalm report") -> None:
    """Write the self-contained HTML report.

    The records' order sets the order of tasks, models and language models; the first model's predictions of a task
    choose its example windows.

    Args:
        out_html: Output HTML file (written atomically).
        manifest: The report manifest (`dnalm.outputs.report_manifest`): records with `kind`, `path` and the names of
            `dnalm.report.manifest.KINDS`.
        n_examples: Example windows per task (0 turns the figures off).
        interpret_examples: Example windows drawn as attribution logos per task.
        title: Page title.

    Raises:
        FileNotFoundError: If an input file is missing (all missing files are named).
        ValueError: If a record is malformed, or a table lacks a column.
    """
    inputs = Manifest.from_records(manifest, n_examples=n_examples, interpret_examples=interpret_examples)
    sections = build_sections(inputs)
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_atomic(out_html, render_page(title, sections, generated))
