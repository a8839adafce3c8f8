"""Section qc: genome QC summary, the gated measures against their thresholds, Mash heat map, genes per window."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Genome QC"
HEADER = ["species", "length", "seqs", "N50", "GC", "N", "IUPAC", "Mash ref", "Mash distance (shared hashes)",
          "BUSCO", "repeats (gated)", "tandem / interspersed / union", "coding", "genes / window", "gate"]
#: Summary columns of the tandem (tantan), interspersed (WindowMasker) and union repeat fractions.
REPEAT_KINDS = ("tandem_repeat_fraction", "interspersed_repeat_fraction", "repeat_union_fraction")
REPEATS_NOTE = ("Repeats: tandem repeats found by tantan, interspersed (high-copy) repeats found by WindowMasker, "
                "and their union, a base found by both counted once; max_repeat_fraction gates the 'repeats (gated)' "
                "column, the method in brackets (qc.repeats.method; see docs/genome-qc.md).")
PASS_COLOUR = "#2e7d32"
FAIL_COLOUR = "#c62828"
#: (summary column, panel title, threshold key, scale for display, unit suffix) of each bar panel.
BARS: tuple[tuple[str, str, str | None, float, str], ...] = (
    ("mash_distance", "Mash distance to reference", "max_mash_distance", 1.0, ""),
    ("busco_complete", "BUSCO complete (C)", "min_busco_complete", 1.0, "%"),
    ("repeat_fraction", "Repeat fraction (gated)", "max_repeat_fraction", 100.0, "%"),
    ("coding_fraction", "Coding fraction", "min_coding_fraction", 100.0, "%"),
    ("n_fraction", "N fraction", "max_n_fraction", 100.0, "%"),
    ("genes_per_window_median", "Protein-coding genes per window (median)", None, 1.0, ""),
)


def _verdict(row: pd.Series, busco_skipped: bool) -> Markup:
    """The gate cell: admitted, or rejected with the reasons; then what was not checked."""
    unchecked = [p for p in str(row["not_checked"] or "").split("; ") if p and not (busco_skipped and "BUSCO" in p)]
    verdict = html.span("✓ admitted", "ok") if row["pass"] else html.join([html.span("✗", "bad"), " ", row["reasons"]])
    if not unchecked:
        return verdict
    return html.lines([verdict, html.span(f"not checked: {'; '.join(unchecked)}", "muted")])


def _qc_row(row: pd.Series, genome: dict[str, Any], busco_skipped: bool) -> list[html.Html]:
    """One row of the QC summary table."""
    mash = "–"
    if not html.is_missing(row["mash_distance"]):
        mash = f"{float(row['mash_distance']):.3f} ({html.fmt_int(row['mash_shared_hashes'])})"
    median, mean = row["genes_per_window_median"], row["genes_per_window_mean"]
    genes = "–" if html.is_missing(median) else f"{float(median):g} (mean {float(mean):.1f})"
    return [
        str(row["species"]),
        html.fmt_int(row["length"]),
        html.fmt_int(row["sequences"]),
        html.fmt_int(row["n50"]),
        html.pct(row["gc_fraction"]),
        html.pct(row["n_fraction"], 3),
        html.fmt_int(row["iupac_count"]),
        "–" if html.is_missing(row["mash_reference"]) else str(row["mash_reference"]),
        mash,
        str(genome.get("busco", {}).get("summary", "skipped")),
        f"{html.pct(row['repeat_fraction'])} ({row['repeat_method']})",
        " / ".join(html.pct(row.get(column)) for column in REPEAT_KINDS),
        html.pct(row["coding_fraction"]),
        genes,
        _verdict(row, busco_skipped),
    ]


def _bar_panel(ax: Any, summary: pd.DataFrame, spec: tuple, limits: dict[str, float], note_text: str | None) -> None:
    """One measure as bars per genome, green if admitted and red if not, with its threshold as a dashed line."""
    column, title, key, scale, unit = spec
    ax.set_title(title, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    x = np.arange(len(summary))
    ax.set_xticks(x, summary["species"].astype(str).tolist(), rotation=35, ha="right", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    if note_text:
        ax.set_ylim(0, 100 * scale)
        html.axes_note(ax, note_text, fontsize=8, color="#666")
        return
    values = pd.to_numeric(summary[column], errors="coerce") * scale
    ax.bar(x, values.fillna(0).to_numpy(), color=[PASS_COLOUR if ok else FAIL_COLOUR for ok in summary["pass"]])
    for xi, value in zip(x, values, strict=True):
        label = "n/a" if pd.isna(value) else f"{value:.3g}{unit}"
        ax.annotate(label, (xi, 0 if pd.isna(value) else value), ha="center", va="bottom", fontsize=7)
    limit = limits.get(key) if key else None
    if limit is not None:
        ax.axhline(limit * scale, color="#333", ls="--", lw=1)
        ax.annotate(f"{'max' if key.startswith('max') else 'min'} {limit * scale:g}{unit}", (0.0, limit * scale),
                    xycoords=("axes fraction", "data"), ha="left", va="bottom", fontsize=7, color="#333")
    ax.margins(y=0.15)


def _bars_figure(summary: pd.DataFrame, limits: dict[str, float], busco_skipped: bool) -> Markup:
    """Bars of the gated measures (and genes per window) with thresholds."""
    fig = Figure(figsize=(11, 6.4), layout="constrained")
    for ax, spec in zip(fig.subplots(2, 3).ravel(), BARS, strict=True):
        skipped = spec[0] == "busco_complete" and busco_skipped
        _bar_panel(ax, summary, spec, limits, "BUSCO skipped:\nqc.busco.lineage is null" if skipped else None)
    fig.legend(handles=[Patch(color=PASS_COLOUR, label="admitted"), Patch(color=FAIL_COLOUR, label="rejected"),
                        Line2D([], [], color="#333", ls="--", label="threshold")],
               loc="outside upper center", ncols=3, fontsize=8, frameon=False)
    return html.figure(fig, "QC measures per genome; dashed lines are the thresholds of qc.thresholds (n/a: not "
                       "measured, e.g. no annotation).")


def _mash_figure(matrix: pd.DataFrame) -> Markup:
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
    return html.figure(fig, "Mash distances between all genomes (mash triangle; 0 = identical k-mer sets, 1 = no "
                       "shared hash). Whole k-mer sets are compared: a chromosome against a whole genome is far "
                       "even when identical.")


def _genes_window_figure(genomes: dict[str, dict[str, Any]]) -> Markup:
    """Distribution of protein-coding genes per window, one line per annotated genome (nothing without any)."""
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
        return Markup("")
    ax.set_xlabel(f"protein-coding genes per {window:,} bp window")
    ax.set_ylabel("fraction of windows")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, frameon=False)
    return html.figure(fig, "Genes per window: each protein-coding gene counts in the window holding its midpoint; "
                       "windows tile each sequence, a last partial window is left out.")


def _gate_text(summary: pd.DataFrame, busco_skipped: bool) -> Markup:
    """Which genomes the gate admitted and why the others were rejected."""
    admitted = summary.loc[summary["pass"], "species"].astype(str).tolist()
    rejected = [f"{r.species} ({r.reasons})" for r in summary.loc[~summary["pass"]].itertuples()]
    text = (f"{len(summary)} genome(s) checked; the gate admitted {len(admitted)} to language-model pretraining "
            f"(results/qc/pretrain_genomes.txt): {', '.join(admitted) or 'none'}.")
    if rejected:
        text += f" Rejected: {'; '.join(rejected)}."
    parts = [html.note(text, "meta")]
    if busco_skipped:
        parts.append(html.note("BUSCO was not run: qc.busco.lineage is null (set it to a local *_odb10 lineage "
                               "directory). The BUSCO threshold was therefore not applied.", "bad"))
    return html.join(parts)


def _thresholds_table(path: str | None) -> tuple[Markup, dict[str, float], bool]:
    """The thresholds table, the active limits and whether BUSCO was skipped."""
    if path is None:
        return Markup(""), {}, False
    df = html.read_tsv(path, ["threshold", "limit", "status"])
    limits = {r.threshold: float(r.limit) for r in df.itertuples() if not html.is_missing(r.limit)}
    busco_skipped = df["status"].astype(str).str.contains("BUSCO skipped").any()
    rows = [[r.threshold, "–" if html.is_missing(r.limit) else f"{float(r.limit):g}", r.status]
            for r in df.itertuples()]
    return html.table(["threshold (qc.thresholds)", "limit", "status"], rows, numeric=[1]), limits, bool(busco_skipped)


def build(manifest: Manifest) -> Markup:
    """The QC summary, the thresholds, the gated measures as bars, the Mash heat map and genes per window."""
    path = manifest.path("qc_summary")
    if path is None:
        return html.note("Genome QC was not run (no species configured).")
    summary = html.read_tsv(path, ["species", "pass", "reasons", "not_checked"])
    summary["pass"] = summary["pass"].astype(str).str.lower() == "true"
    summary["reasons"] = summary["reasons"].fillna("")
    genomes = {s: html.read_json(p) for s, p in manifest.paths("qc_genome", "species").items()}
    thresholds, limits, busco_skipped = _thresholds_table(manifest.path("qc_thresholds"))
    rows = [_qc_row(r, genomes.get(str(r["species"]), {}), busco_skipped) for _, r in summary.iterrows()]
    parts = [_gate_text(summary, busco_skipped), html.table(HEADER, rows, numeric=[1, 2, 3, 4, 5, 6, 10, 11, 12]),
             html.note(REPEATS_NOTE, "meta"), thresholds, _bars_figure(summary, limits, busco_skipped)]
    mash = manifest.path("qc_mash_distances")
    if mash is not None:
        parts.append(_mash_figure(pd.read_csv(mash, sep="\t", index_col=0)))
    return html.join([*parts, _genes_window_figure(genomes)])
