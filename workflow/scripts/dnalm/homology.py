"""Homology filtering of windows with mappy (the minimap2 binding).

A query window is a homolog of a target window when one alignment of the query to the target reaches
`min_identity` (matching bases ÷ alignment block length, minimap2's `mlen / blen`) over at least `min_coverage`
of the shorter of the two windows (`(q_en − q_st) / min(len, ctg_len)`): a 500 bp held-out sequence wholly inside a
16 kb pretraining window covers all of the shorter one, though only 3% of the longer. The targets are indexed once (a minimap2 index written next to the
outputs); the queries are aligned in chunks by `threads` worker processes, each reading its windows from the
FASTAs itself: `mappy.Aligner.map` from several Python threads gave no speed-up in an earlier measurement here,
and processes scale with cores like the minimap2 command line.

Used for the splits of a task (train windows of every genome against the target's val and test windows; val
against test) and for the pretraining corpus (corpus windows against every task's val and test windows).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mappy
import pandas as pd

from dnalm.io import write_tsv
from dnalm.io.fasta import FastaCache
from dnalm.splits import SPLITS, renumber_rows
from dnalm.windows import read_windows

log = logging.getLogger(__name__)

HIT_COLUMNS = ["id", "hit", "identity", "coverage"]
#: Windows longer than this get `LONG_PRESET` when no preset is configured, shorter ones `SHORT_PRESET`.
SHORT_WINDOW = 2000
#: `sr` finds 1–3% diverged copies of 300 bp windows, which `asm5` misses (minimum alignment score).
SHORT_PRESET = "sr"
#: `asm20` finds 1–3% diverged copies of 16 kb windows, where `sr` splits the alignments.
LONG_PRESET = "asm20"
#: Query windows per worker task.
_CHUNK = 256
#: Seconds between progress lines in the log.
_PROGRESS_EVERY = 30.0


@dataclass(frozen=True)
class HomologySettings:
    """How homologs are found: minimap2 preset (None = by window length), thresholds and worker processes."""

    preset: str | None = None
    min_identity: float = 0.95
    min_coverage: float = 0.5
    threads: int = 1

    def preset_for(self, length: int) -> str:
        """The configured preset, or `sr` for windows up to `SHORT_WINDOW` bp and `asm20` above."""
        if self.preset:
            return self.preset
        return SHORT_PRESET if length <= SHORT_WINDOW else LONG_PRESET


def window_records(windows: pd.DataFrame, fastas: dict[str, str]) -> list[tuple[str, str, str, int, int]]:
    """(id, FASTA, chromosome, start, end) of each window, the FASTA chosen by the window's species.

    Raises:
        ValueError: A window's species has no genome.
    """
    missing = sorted(set(windows["species"]) - set(fastas))
    if missing:
        raise ValueError(f"windows of species {missing} but no genome FASTA for them (have {sorted(fastas)})")
    return [(str(i), fastas[s], str(c), int(a), int(b)) for i, s, c, a, b in
            windows[["id", "species", "chrom", "start", "end"]].itertuples(index=False)]


def write_targets(records: Iterable[tuple[str, str, str, int, int]], path: str | Path) -> int:
    """Write the target windows as a FASTA named by window id; returns the number written."""
    reader, n = FastaCache(), 0
    try:
        with open(path, "w") as out:
            for wid, fasta, chrom, start, end in records:
                out.write(f">{wid}\n{reader.seq(fasta, chrom, start, end)}\n")
                n += 1
    finally:
        reader.close()
    return n


# Worker state: set once per process by `_init_worker`.
_WORKER: dict = {}


def _init_worker(index: str, preset: str, min_identity: float, min_coverage: float) -> None:
    """Load the minimap2 index once per worker process."""
    _WORKER["aligner"] = mappy.Aligner(index, preset=preset)
    _WORKER["reader"] = FastaCache()
    _WORKER["min_identity"] = min_identity
    _WORKER["min_coverage"] = min_coverage


def best_hit(aligner: mappy.Aligner, seq: str, min_identity: float, min_coverage: float) -> tuple | None:
    """(target id, identity, coverage) of the longest qualifying alignment of `seq`, or None."""
    best = None
    for hit in aligner.map(seq):
        identity = hit.mlen / hit.blen if hit.blen else 0.0
        coverage = (hit.q_en - hit.q_st) / min(len(seq), hit.ctg_len)  # of the shorter window
        if identity >= min_identity and coverage >= min_coverage and (best is None or coverage > best[2]):
            best = (hit.ctg, identity, coverage)
    return best


def _map_chunk(chunk: list[tuple[str, str, str, int, int]]) -> list[tuple[str, str, float, float]]:
    """Align one chunk of query windows; the hits of the homologous ones."""
    out = []
    for wid, fasta, chrom, start, end in chunk:
        seq = _WORKER["reader"].seq(fasta, chrom, start, end)
        hit = best_hit(_WORKER["aligner"], seq, _WORKER["min_identity"], _WORKER["min_coverage"])
        if hit is not None:
            out.append((wid, *hit))
    return out


def _chunks(records: list, size: int) -> Iterator[list]:
    for i in range(0, len(records), size):
        yield records[i : i + size]


def find_homologs(queries: list[tuple[str, str, str, int, int]], targets: list[tuple[str, str, str, int, int]],
                  settings: HomologySettings, *, label: str = "windows") -> pd.DataFrame:
    """Query windows that have a homolog among the target windows.

    Args:
        queries: (id, FASTA, chromosome, start, end) of the windows to test (see `window_records`).
        targets: The same for the windows they are compared with.
        settings: Preset, thresholds and worker processes.
        label: What the queries are, for the progress lines in the log.

    Returns:
        One row per homologous query: id, hit (target id of its best alignment), identity, coverage.
    """
    if not queries or not targets:
        return pd.DataFrame(columns=HIT_COLUMNS)
    preset = settings.preset_for(max(end - start for *_, start, end in queries))
    with tempfile.TemporaryDirectory(prefix="dnalm_homology_") as tmp:
        fasta, index = os.path.join(tmp, "targets.fa"), os.path.join(tmp, "targets.mmi")
        write_targets(targets, fasta)
        aligner = mappy.Aligner(fasta, preset=preset, fn_idx_out=index, n_threads=max(settings.threads, 1))
        if not aligner:
            raise RuntimeError(f"minimap2 could not index the {len(targets)} target windows (preset {preset})")
        del aligner
        log.info("aligning %d %s to %d target windows (preset %s, %d processes)", len(queries), label,
                 len(targets), preset, settings.threads)
        init = (index, preset, settings.min_identity, settings.min_coverage)
        rows = _run_chunks(queries, init, settings.threads, label)
    return pd.DataFrame(rows, columns=HIT_COLUMNS)


def _run_chunks(queries: list, init: tuple, processes: int, label: str) -> list:
    """Map every chunk, in this process (1) or a pool of worker processes, logging progress."""
    rows, done, started, last = [], 0, time.monotonic(), time.monotonic()
    if processes <= 1:
        _init_worker(*init)
        results: Iterable = map(_map_chunk, _chunks(queries, _CHUNK))
        pool = None
    else:
        pool = multiprocessing.get_context("fork").Pool(processes, initializer=_init_worker, initargs=init)
        results = pool.imap(_map_chunk, _chunks(queries, _CHUNK))
    try:
        for chunk_rows in results:
            rows += chunk_rows
            done = min(done + _CHUNK, len(queries))
            if time.monotonic() - last > _PROGRESS_EVERY:
                last = time.monotonic()
                log.info("%s: %d of %d aligned, %d homologous, %.0f s", label, done, len(queries), len(rows),
                         last - started)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        else:
            _WORKER["reader"].close()
    log.info("%s: %d of %d homologous (%.1f s)", label, len(rows), len(queries), time.monotonic() - started)
    return rows


# ------------------------------------------------------------------------------------------------ task windows

REMOVED_COLUMNS = ["id", "species", "split", "hit", "hit_split", "identity", "coverage"]
SUMMARY_SPLITS = ("train", "test", "val")


def filter_task_windows(windows: pd.DataFrame, target_species: str, fastas: dict[str, str],
                        settings: HomologySettings, enabled: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop windows homologous to the target species' held-out windows.

    Every kept train window (of every species) is aligned to the target's val and test windows; then the val
    windows are aligned to the test windows, and a homologous val window is dropped (the test set stays the one
    chosen, so test metrics stay comparable; val only steers early stopping). Dropped windows get reason
    `homology`; the `row` column is renumbered per split.

    Args:
        windows: Window table from `assign_splits` (columns id, species, chrom, start, end, split, kept, row, ...).
        target_species: The task's species, whose val and test windows are the targets.
        fastas: Species → genome FASTA.
        settings: Preset, thresholds, processes.
        enabled: False keeps every window (the outputs are still written, with nothing removed).

    Returns:
        The filtered window table and the table of removed windows (`REMOVED_COLUMNS`).
    """
    out = windows.copy()
    removed = pd.DataFrame(columns=REMOVED_COLUMNS)
    if enabled:
        kept = out[out["kept"]]
        split_of = dict(zip(kept["id"], kept["split"]))
        held = kept[(kept["species"] == target_species) & kept["split"].isin(["val", "test"])]
        train_hits = find_homologs(window_records(kept[kept["split"] == "train"], fastas),
                                   window_records(held, fastas), settings, label="train windows")
        val_hits = find_homologs(window_records(held[held["split"] == "val"], fastas),
                                 window_records(held[held["split"] == "test"], fastas), settings,
                                 label="val windows")
        hits = pd.concat([train_hits, val_hits], ignore_index=True) if len(val_hits) else train_hits.copy()
        species_of = dict(zip(kept["id"], kept["species"]))
        hits["species"] = hits["id"].map(species_of)
        hits["split"] = hits["id"].map(split_of)
        hits["hit_split"] = hits["hit"].map(split_of)
        removed = hits[REMOVED_COLUMNS]
        drop = out["id"].isin(set(removed["id"])) & out["kept"]
        out.loc[drop, "kept"] = False
        out.loc[drop, "reason"] = "homology"
    renumber_rows(out)
    return out, removed


def summary_table(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Windows per species before and after the filter, in the layout of study 2's table.

    One row per species (and an `all` row when there are several): train, test and val windows before and after,
    train windows removed and their percentage, and windows removed from val.
    """
    rows = []
    groups = [(s, before["species"] == s, after["species"] == s) for s in dict.fromkeys(before["species"])]
    if len(groups) > 1:
        groups.append(("all", before["species"] == before["species"], after["species"] == after["species"]))
    for species, b_mask, a_mask in groups:
        row: dict = {"species": species}
        for stage, table, mask in (("before", before, b_mask), ("after", after, a_mask)):
            for split in SUMMARY_SPLITS:
                row[f"{split}_{stage}"] = int((table.loc[mask, "split"].eq(split) & table.loc[mask, "kept"]).sum())
        row["removed"] = sum(row[f"{s}_before"] - row[f"{s}_after"] for s in SUMMARY_SPLITS)
        row["removed_train"] = row["train_before"] - row["train_after"]
        row["removed_train_percent"] = round(100 * row["removed_train"] / row["train_before"], 2) \
            if row["train_before"] else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def check_not_empty(windows: pd.DataFrame, removed: pd.DataFrame, source: str) -> None:
    """Raise when a split has no kept window after filtering, with the counts before and after."""
    for split in SPLITS:
        after = int(((windows["split"] == split) & windows["kept"]).sum())
        if after == 0:
            lost = int((removed["split"] == split).sum())
            raise ValueError(
                f"{source}: split {split!r} has no windows after the homology filter ({lost} removed as homologous, "
                f"{after} left); raise split.homology.min_identity or min_coverage, or choose other val/test "
                "chromosomes or folds")


def filter_splits(windows_tsv: str, out_windows: str, out_homology: str, out_summary: str, *, species: str,
                  fastas: dict[str, str], enabled: bool, preset: str | None, min_identity: float,
                  min_coverage: float, threads: int) -> pd.DataFrame:
    """Homology-filter a task's window table and write the filtered table, the removed windows and the summary.

    Args:
        windows_tsv: Window table from `assign_splits`.
        out_windows: Filtered window table (read by build_window_store).
        out_homology: Removed windows with their best hit (`REMOVED_COLUMNS`).
        out_summary: Counts before and after (see `summary_table`).
        species: The task's target species.
        fastas: Species → genome FASTA for every species in the table.
        enabled: False writes the outputs without filtering.
        preset: minimap2 preset, or None for `sr` up to 2 kb windows and `asm20` above.
        min_identity: Smallest identity of a homologous alignment.
        min_coverage: Smallest fraction of the query window the alignment covers.
        threads: Worker processes.

    Returns:
        The filtered window table.
    """
    before = read_windows(windows_tsv)
    settings = HomologySettings(preset, min_identity, min_coverage, threads)
    after, removed = filter_task_windows(before, species, fastas, settings, enabled)
    check_not_empty(after, removed, windows_tsv)
    summary = summary_table(before, after)
    log.info("homology filter:\n%s", summary.to_string(index=False))
    write_tsv(removed, out_homology)
    write_tsv(summary, out_summary)
    write_tsv(after, out_windows)
    return after
