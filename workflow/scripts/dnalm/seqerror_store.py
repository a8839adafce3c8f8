"""Window stores of seqerror tasks: noisy copies of the genome windows (`dnalm.seqerrors`) and their per-base tags."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from dnalm.io.fasta import FastaCache
from dnalm.seqerrors import CHANNELS, RC_PERM, ErrorProfile, simulate, true_length, window_rng
from dnalm.store import COMPLEMENT, encode, store_arrays, store_paths
from dnalm.windows import read_windows

log = logging.getLogger(__name__)


def copy_ids(window: str, copies: int) -> list[str]:
    """Store ids of a window's noisy copies: the window id alone for one copy, else `<id>~copy<c>`."""
    return [window] if copies == 1 else [f"{window}~copy{c}" for c in range(copies)]


def true_sequence(genome, chrom: str, start: int, end: int, strand: str, flank: int, need: int) -> np.ndarray:
    """`need` true bases from the window's start (minus its flank) along its strand: the window plus flanks and,
    beyond them, the bases deletions may pull in (fewer at a chromosome end: the read is then padded)."""
    size = len(genome[chrom])
    if strand == "-":
        hi = end + flank
        codes = encode(genome[chrom][max(0, hi - need) : hi])
        return COMPLEMENT[codes[::-1]]
    lo = start - flank
    return encode(genome[chrom][lo : min(size, lo + need)])


def write_noisy_store(windows_tsv: str, split: str, prefix: str, *, task: dict, genomes: dict[str, str]) -> int:
    """Write the noisy sequences and tags of one split's kept windows into memory-mapped `.npy` files.

    Rows are window × copy (the table's `row` order; `errors.copies` copies of each training window, one of each
    validation and test window). Each row is the noisy sequence of window plus `window.flank` bases on each side
    (`dnalm.seqerrors.simulate` on the true bases from the flank's start), so jitter crops a longer noisy read.

    Args:
        windows_tsv: Window table from `filter_homology`.
        split: train, val or test.
        prefix: Output prefix (`dnalm.store.store_paths`): uint8 codes (N, length + 2 flank), uint8 tags
            (N, 4, length + 2 flank) and the JSON (channels `dnalm.seqerrors.CHANNELS`, their reverse-complement
            permutation, ids, `copies`, the error block and the padded bases).
        task: The task's config block (`window.flank`, `errors`).
        genomes: Species id → genome FASTA.

    Returns:
        Number of rows written.
    """
    out = store_paths(prefix)
    errors, flank = task["errors"], task["window"]["flank"]
    profile = ErrorProfile.from_config(errors, "errors")
    copies = int(errors["copies"]) if split == "train" else 1
    full = read_windows(windows_tsv)
    table = full[(full["split"] == split) & full["kept"]].sort_values("row")
    length = int((table["end"] - table["start"]).iloc[0]) if len(table) else 0
    width = length + 2 * flank
    need = true_length(width, profile)
    n = len(table) * copies
    fastas, ids, padded = FastaCache(), [], 0
    try:
        with store_arrays(prefix, (n, width), (n, len(CHANNELS), width), np.uint8) as (seq, tgt):
            rows = table[["species", "chrom", "start", "end", "strand", "id"]].itertuples(index=False)
            for i, (species, chrom, start, end, strand, window) in enumerate(rows):
                true = true_sequence(fastas.get(genomes[species]), chrom, int(start), int(end), strand, flank, need)
                for c in range(copies):
                    read = simulate(true, width, profile, window_rng(errors["seed"], window, c))
                    seq[i * copies + c], tgt[i * copies + c] = read.noisy, read.tags
                    padded += read.padded
                ids += copy_ids(window, copies)
    finally:
        fastas.close()
    meta = {"split": split, "n": n, "length": length, "flank": flank, "channels": list(CHANNELS),
            "rc_perm": RC_PERM, "ids": ids, "site_index": None, "task_type": "seqerror", "bin_size": 1,
            "labels": False, "aggregate": None, "transform": None, "copies": copies, "errors": errors,
            "padded_bases": padded}
    Path(out["meta"]).write_text(json.dumps(meta))
    if padded:
        log.warning("%s: %d bases of N padding (true sequence ran out at a chromosome end)", split, padded)
    log.info("%s: %d windows × %d noisy copies of %d bp (+%d flank)", split, len(table), copies, length, flank)
    return n
