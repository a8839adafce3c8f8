"""Section positions: attributions aligned on the site, and the strongest positional elements (site-centred tasks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Interpretation: positions relative to the site"
KINDS = ("positional_elements", "positional_profile")
COLUMNS = ("output", "kmer", "start", "end", "mean_contribution", "windows", "enrichment")
HEADER = ["output", "element", "offsets", "mean contribution per window", "windows with it there",
          "enrichment against shuffled windows"]
INTRO = ("The attributed test windows aligned on their site (offset 0; negative offsets are upstream on the site's "
         "strand): the mean contribution of each base at each offset, and the k-mers (2 to interpret.positional.max_k "
         "bases) whose contribution at one offset is largest per window, each skipped when it overlaps a stronger "
         "one. Enrichment: occurrences there against dinucleotide-shuffled copies of the windows. Position shows "
         "what motif matching cannot: elements too short for a motif database, such as a dinucleotide at the "
         "cleavage site, and the spacing of elements from the site.")


def profile_figure(profiles: np.lib.npyio.NpzFile, model: str) -> Markup:
    """One logo per output of the mean contribution per base by offset, the site marked."""
    offsets = profiles["offsets"]
    outputs = [k[: -len("_profile")] for k in profiles.files if k.endswith("_profile")]
    fig = Figure(figsize=(10, 1.5 * len(outputs) + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(outputs), 1))
    ticks = [i for i, o in enumerate(offsets) if o % 10 == 0]
    for ax, output in zip(axes, outputs, strict=True):
        html.logo(ax, profiles[f"{output}_profile"].T, f"{model}: {output}", "mean contribution")
        ax.axvline(int(np.flatnonzero(offsets == 0)[0]) if 0 in offsets else 0, color="#c62828", lw=0.6, ls=":")
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(int(offsets[i])) for i in ticks])
    axes[-1].set_xlabel("offset from the site (bp)", fontsize=8)
    return html.figure(fig, f"{model}: mean contribution per base by offset from the site (dotted: the site).")


def _rows(elements: pd.DataFrame) -> list[list[html.Html]]:
    return [[str(r.output), html.code(str(r.kmer)), f"{int(r.start)} … {int(r.end)}",
             html.fmt_num(r.mean_contribution), html.pct(r.windows), f"{float(r.enrichment):.2f}"]
            for r in elements.itertuples(index=False)]


def _task(manifest: Manifest, task: str) -> Markup:
    parts = []
    for model in manifest.names("model", KINDS, task=task):
        elements = html.read_tsv(manifest.path("positional_elements", task=task, model=model), COLUMNS)
        with np.load(manifest.path("positional_profile", task=task, model=model)) as profiles:
            figure = profile_figure(profiles, model)
        parts += [html.heading(model), figure, html.table(HEADER, _rows(elements), numeric=[3, 4, 5])]
    return html.join(parts)


def build(manifest: Manifest) -> Markup:
    """Site profiles and positional elements per task and model (`positional_*` records)."""
    tasks = manifest.names("task", KINDS)
    if not tasks:
        return html.note("No site-centred task was interpreted.")
    return html.join([html.note(INTRO, "meta"), html.task_blocks("positions", tasks, lambda t: _task(manifest, t))])
