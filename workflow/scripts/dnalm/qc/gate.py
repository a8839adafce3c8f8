"""The QC of one genome put together, the summary rows and the pretraining gate with its thresholds."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dnalm.io.tables import write_json, write_tsv
from dnalm.qc.annotation import GENE_WINDOW, annotation_stats
from dnalm.qc.assembly import assembly_stats, repeat_fraction, scan_genome
from dnalm.qc.tools import BUSCO_KEYS, mash_distance

log = logging.getLogger(__name__)

# (threshold key under qc.thresholds, summary column, "max" or "min"), in the order reasons are listed.
THRESHOLDS: tuple[tuple[str, str, str], ...] = (
    ("max_mash_distance", "mash_distance", "max"),
    ("min_busco_complete", "busco_complete", "min"),
    ("max_repeat_fraction", "repeat_fraction", "max"),
    ("min_coding_fraction", "coding_fraction", "min"),
    ("max_n_fraction", "n_fraction", "max"),
)
#: Repeat kind in a genome's QC JSON → its summary column.
REPEAT_COLUMNS = {"tandem": "tandem_repeat_fraction", "interspersed": "interspersed_repeat_fraction",
                  "union": "repeat_union_fraction"}  # fmt: skip
SUMMARY_COLUMNS = [
    "species", "length", "sequences", "n50", "gc_fraction", "n_fraction", "iupac_count", "mash_reference",
    "mash_distance", "mash_p_value", "mash_shared_hashes", "busco_complete", "busco_single", "busco_duplicated",
    "busco_fragmented", "busco_missing", "busco_n", "repeat_method", "repeat_fraction", "tandem_repeat_fraction",
    "interspersed_repeat_fraction", "repeat_union_fraction", "coding_fraction",
    "genes_per_window_median", "genes_per_window_mean", "pass", "reasons", "not_checked",
]  # fmt: skip


def assess_genome(
    species: str,
    fasta: str | Path,
    out: str | Path,
    annotation: str | Path | None = None,
    sketch: str | Path | None = None,
    reference_sketch: str | Path | None = None,
    reference: str | None = None,
    mash: Mapping[str, Any] | None = None,
    busco: str | Path | None = None,
    busco_skipped: str = "qc.busco.lineage is null",
    repeat_method: str = "auto",
    min_interspersed_length: int = 100,
    window: int = GENE_WINDOW,
) -> dict[str, Any]:
    """Measure one genome and write ``results/qc/<species>.json``.

    Args:
        species: Species id.
        fasta: Genome FASTA.
        out: Output JSON.
        annotation: GFF3 annotation, or None (coding fraction and genes per window are then not measured).
        sketch: Mash sketch of this genome.
        reference_sketch: Mash sketch of the reference genome, or None when there is no reference.
        reference: Species id of the reference.
        mash: Sketch settings recorded with the distance (k, sketch_size, seed).
        busco: JSON written by ``run_busco``, or None when BUSCO did not run.
        busco_skipped: Why BUSCO did not run (recorded when ``busco`` is None).
        repeat_method: qc.repeats.method: which repeat fraction the gate reads (dnalm.qc.assembly.repeat_fraction).
        min_interspersed_length: Shortest WindowMasker interval counted as an interspersed repeat.
        window: Window length of the genes-per-window count.

    Returns:
        The measures written.
    """
    timer = time.perf_counter()
    scan = scan_genome(fasta)
    result: dict[str, Any] = {"species": species, "fasta": str(fasta), "assembly": assembly_stats(scan)}
    result["annotation"] = annotation_stats(annotation, scan.lengths, window, fasta) if annotation else None
    # after the cheap checks of the annotation
    result["repeats"] = repeat_fraction(fasta, scan, repeat_method, min_interspersed_length)
    result["mash"] = {"reference": reference, **dict(mash or {})}
    if sketch and reference_sketch:
        result["mash"].update(mash_distance(reference_sketch, sketch))
    result["busco"] = json.loads(Path(busco).read_text()) if busco else {"skipped": busco_skipped}
    result["seconds"] = round(time.perf_counter() - timer, 3)
    write_json(result, out)
    log.info("%s: QC in %.1f s -> %s", species, result["seconds"], out)
    return result


def summary_row(qc: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """One genome's QC as a flat summary row, and why measures are missing.

    Args:
        qc: A genome's QC (the JSON of ``assess_genome``).

    Returns:
        The row (columns of SUMMARY_COLUMNS except the gate's), and measure → why it was not measured.
    """
    asm, mash, busco, ann = qc["assembly"], qc["mash"], qc["busco"], qc.get("annotation")
    per_window = (ann or {}).get("genes_per_window") or {}
    row = {
        "species": qc["species"],
        **{k: asm[k] for k in ("length", "sequences", "n50", "gc_fraction", "n_fraction", "iupac_count")},
        "mash_reference": mash.get("reference"),
        "mash_distance": mash.get("distance"),
        "mash_p_value": mash.get("p_value"),
        "mash_shared_hashes": mash.get("shared_hashes"),
        **{f"busco_{k}": busco.get(k) for k in BUSCO_KEYS},
        "repeat_method": qc["repeats"]["method"],
        "repeat_fraction": qc["repeats"]["fraction"],
        **{column: qc["repeats"].get(kind, {}).get("fraction") for kind, column in REPEAT_COLUMNS.items()},
        "coding_fraction": ann["coding_fraction"] if ann else None,
        "genes_per_window_median": per_window.get("median"),
        "genes_per_window_mean": per_window.get("mean"),
    }
    missing = {}
    if row["mash_distance"] is None:
        missing["mash_distance"] = "no reference species"
    if "skipped" in busco:
        missing["busco_complete"] = f"BUSCO skipped: {busco['skipped']}"
    if ann is None:
        missing["coding_fraction"] = "no annotation"
    return row, missing


def gate(row: Mapping[str, Any], missing: Mapping[str, str], thresholds: Mapping[str, float | None]) -> dict[str, Any]:
    """Apply the thresholds to one genome.

    A threshold that is null is off. A measure that was not taken (no reference, no lineage, no annotation) cannot
    fail its threshold: it is listed under ``not_checked`` with the reason instead.

    Args:
        row: The genome's summary row.
        missing: Measure → why it was not measured.
        thresholds: qc.thresholds of the config.

    Returns:
        pass (bool), reasons (failed measures, ``measure value > limit`` joined by "; ") and not_checked.
    """
    reasons, unchecked = [], []
    for key, column, kind in THRESHOLDS:
        limit = thresholds.get(key)
        if limit is None:
            continue
        value = row.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            unchecked.append(f"{column} ({missing.get(column, 'not measured')})")
        elif (kind == "max" and value > limit) or (kind == "min" and value < limit):
            reasons.append(f"{column} {value:.4g} {'>' if kind == 'max' else '<'} {limit:g}")
    return {"pass": not reasons, "reasons": "; ".join(reasons), "not_checked": "; ".join(unchecked)}


def threshold_table(thresholds: Mapping[str, float | None], busco_skipped: bool) -> pd.DataFrame:
    """The thresholds as applied: one row per threshold with its limit and status.

    Args:
        thresholds: qc.thresholds of the config.
        busco_skipped: Whether BUSCO was skipped (no lineage configured).

    Returns:
        Columns threshold, measure, kind (max or min), limit, status.
    """
    rows = []
    for key, column, kind in THRESHOLDS:
        limit = thresholds.get(key)
        status = "applied" if limit is not None else "off (null)"
        if limit is not None and column == "busco_complete" and busco_skipped:
            status = "not applied: BUSCO skipped (qc.busco.lineage is null)"
        rows.append({"threshold": key, "measure": column, "kind": kind, "limit": limit, "status": status})
    return pd.DataFrame(rows)


def gate_genomes(
    genomes: Sequence[str | Path],
    summary: str | Path,
    pretrain: str | Path,
    thresholds_out: str | Path,
    thresholds: Mapping[str, float | None],
    busco_skipped: bool = False,
) -> pd.DataFrame:
    """Write the QC summary (one row per genome, with pass and reasons), the thresholds and the admitted genomes.

    Args:
        genomes: Per-genome QC JSONs, in the order of the summary.
        summary: Output ``summary.tsv``.
        pretrain: Output list of the species that pass, one per line.
        thresholds_out: Output ``thresholds.tsv``.
        thresholds: qc.thresholds of the config.
        busco_skipped: Whether BUSCO was skipped for all genomes (no lineage configured).

    Returns:
        The summary table.
    """
    rows = []
    for path in genomes:
        row, missing = summary_row(json.loads(Path(path).read_text()))
        rows.append({**row, **gate(row, missing, thresholds)})
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    write_tsv(table, summary)
    write_tsv(threshold_table(thresholds, busco_skipped), thresholds_out)
    admitted = table.loc[table["pass"], "species"].tolist()
    Path(pretrain).write_text("".join(f"{s}\n" for s in admitted))
    log.info("QC gate: %d of %d genomes admitted: %s", len(admitted), len(table), ", ".join(admitted) or "none")
    for r in table.loc[~table["pass"]].itertuples():
        log.info("QC gate: %s rejected: %s", r.species, r.reasons)
    return table
