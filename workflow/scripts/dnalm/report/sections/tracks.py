"""Section tracks: the genome-wide bigWigs written (predictions and attributions), to open in IGV or a genome
browser."""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Genome-wide tracks"
INTRO = ("bigWigs of the genome's chromosome names and sizes: each listed run's predictions tiled over the genome "
         "(or prediction_tracks.regions), each base from the central part of one window, and the attributions of its "
         "interpreted test windows at their genomic places (docs/variants.md). Load them in IGV or a genome browser "
         "beside the input tracks.")


def _task(manifest: Manifest, task: str) -> Markup:
    rows = []
    for record in manifest.find("prediction_tracks", task=task):
        summary = html.read_json(record["path"])
        folder = Path(record["path"]).with_suffix("")
        files = [html.code(str(folder / name)) for name in summary.get("files", [])]
        files += [html.code(r["path"]) for r in manifest.find("attribution_track", task=task, model=record["model"])]
        tiling = (f"window {summary.get('length')}, overlap {summary.get('overlap')}" if summary.get("overlap")
                  is not None else f"window {summary.get('length')}, stride {summary.get('tile')}")
        rows.append([record["model"], html.fmt_int(summary.get("bases")), html.fmt_int(summary.get("windows")), tiling,
                     html.lines(files)])
    return html.table(["run", "bases", "windows", "tiling", "bigWigs"], rows, numeric=[1, 2])


def build(manifest: Manifest) -> Markup:
    """Per task, each run's prediction and attribution bigWigs (`prediction_tracks` records)."""
    if not manifest.find("prediction_tracks"):
        return html.note("No genome-wide tracks were written (the prediction_tracks block of the config).")
    tasks = [t for t in manifest.tasks if manifest.find("prediction_tracks", task=t)]
    return html.join([html.note(INTRO), html.task_blocks("tracks", tasks, lambda t: _task(manifest, t))])
