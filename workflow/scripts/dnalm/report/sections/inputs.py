"""Section inputs: every downloaded genome, annotation and track with its checksum status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markupsafe import Markup

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Inputs"
HEADER = ["species", "kind", "name", "source", "md5 (observed)", "md5 expected", "match", "bytes", "contents"]


def _md5_match(info: dict[str, Any]) -> tuple[Markup, bool | None]:
    """The match cell and whether the md5 matched (None when not checked)."""
    expected = info.get("md5_expected")
    if not expected:
        return html.span("–", "muted", "no expected md5 given"), None
    ok = str(expected).strip().lower() == str(info.get("md5", "")).strip().lower()
    return (html.span("✓", "ok"), True) if ok else (html.span("✗", "bad"), False)


def _contents(info: dict[str, Any]) -> str | Markup:
    """What a file holds: sequences and length for genomes, features or chromosomes otherwise."""
    units = (("sequences", "sequences"), ("length", "bp"), ("features", "features"), ("chroms", "chromosomes"),
             ("kept", "variants"))
    parts = [f"{html.fmt_int(info[key])} {unit}" for key, unit in units if key in info]
    return ", ".join(parts) if parts else html.span("–", "muted")


def _input_row(record: dict[str, Any]) -> tuple[list[str | Markup], bool | None]:
    """One inputs-table row and its md5 status."""
    info = html.read_json(record["path"])
    kind = info.get("kind", record["input"])
    name = record.get("track") or record.get("vcf") or Path(str(info.get("resolved") or info.get("source") or kind).split("?")[0]).name
    match, ok = _md5_match(info)
    row = [
        record["species"],
        kind,
        name,
        html.code(info.get("source", ""), f"resolved: {info.get('resolved', '')}"),
        html.code(info.get("md5", "")),
        html.code(info.get("md5_expected") or "–"),
        match,
        html.fmt_int(info.get("bytes")),
        _contents(info),
    ]
    return row, ok


def build(manifest: Manifest) -> Markup:
    """Every input with its observed and expected md5, size and contents; mismatches are flagged."""
    records = manifest.find("input")
    if not records:
        return html.note("No input files were downloaded.")
    rows = [_input_row(r) for r in records]
    statuses = [ok for _, ok in rows]
    n_bad = statuses.count(False)
    checked = len(rows) - statuses.count(None)
    summary = f"{len(rows)} input file(s); {checked} with an expected md5, {n_bad} mismatch(es)."
    classes = ["mismatch" if ok is False else "" for ok in statuses]
    return html.join([html.note(summary, "meta" if n_bad == 0 else "bad"),
                      html.table(HEADER, [r for r, _ in rows], numeric=[7], row_classes=classes)])
