"""Windows tiled along the genome (tracks tasks), with N and assembly-gap checks."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from dnalm.io import read_fai, write_tsv
from dnalm.io.fasta import open_fasta
from dnalm.windows import WINDOW_COLUMNS

log = logging.getLogger(__name__)

#: Drop reasons of tiled windows that count as "dropped (N)" in the split counts.
N_REASONS = ("too_many_n", "gap")


def tile(chroms: dict[str, int], names: list[str], length: int, stride: int, flank: int) -> pd.DataFrame:
    """Windows of `length` every `stride` bp along each named chromosome, window plus flank inside it.

    Returns:
        Columns chrom, start, end (0-based, half-open), in chromosome then position order.
    """
    frames = []
    for name in names:
        starts = np.arange(flank, chroms[name] - length - flank + 1, stride, dtype=np.int64)
        frames.append(pd.DataFrame({"chrom": name, "start": starts, "end": starts + length}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["chrom", "start", "end"])


def n_drop_reasons(windows: pd.DataFrame, fasta: str, flank: int, max_n_fraction: float,
                   gap_length: int) -> np.ndarray:
    """Reason to drop each window (window plus flank), '' to keep it.

    `gap` when it overlaps a run of at least `gap_length` non-ACGT bases of its chromosome (an assembly gap, found
    on the whole chromosome, so a window touching only the end of a gap is caught too); otherwise `too_many_n`
    when its fraction of non-ACGT bases exceeds `max_n_fraction`. One pass per chromosome with cumulative N counts.
    """
    reason = np.full(len(windows), "", dtype=object)
    gap = re.compile(f"[^ACGT]{{{gap_length},}}")
    genome = open_fasta(fasta)
    try:
        for chrom, rows in windows.groupby("chrom", sort=False).indices.items():
            seq = genome[chrom][:]
            is_n = ~np.isin(np.frombuffer(seq.encode("ascii"), dtype=np.uint8), np.frombuffer(b"ACGT", np.uint8))
            cum = np.concatenate([[0], np.cumsum(is_n)])
            lo = windows["start"].to_numpy()[rows] - flank
            hi = windows["end"].to_numpy()[rows] + flank
            too_many = cum[hi] - cum[lo] > max_n_fraction * (hi - lo)
            spans = np.array([m.span() for m in gap.finditer(seq)], dtype=np.int64).reshape(-1, 2)
            spans = np.vstack([spans, [[len(seq) + 1, len(seq) + 1]]])  # a sentinel so every lookup is defined
            before = np.searchsorted(spans[:, 0], hi)  # gaps starting before each window's end
            in_gap = (before > 0) & (spans[np.maximum(before - 1, 0), 1] > lo)
            reason[rows] = np.where(in_gap, "gap", np.where(too_many, "too_many_n", ""))
    finally:
        genome.close()
    return reason


def tile_windows(fasta: str, fai: str, out_tsv: str, *, species: str, chromosomes: list[str] | None, length: int,
                 stride: int | None, flank: int, max_n_fraction: float, gap_length: int) -> pd.DataFrame:
    """Tile a genome into windows, mark those over gaps or with too many N's as dropped, write the window table.

    The table has the layout of `dnalm.windows.make_windows` (`WINDOW_COLUMNS`): every window is on the + strand,
    `site` is its centre, `offset` 0 and `reads` 0, so splitting, subsampling and the store treat both task types
    alike.

    Args:
        fasta: Genome FASTA.
        fai: Its index.
        out_tsv: Output table.
        species: Species id written in the table.
        chromosomes: Chromosomes to tile (the split's), or None for all of the genome.
        length: Window length.
        stride: Step between window starts (None: length).
        flank: Extra stored bases on each side (kept inside the chromosome).
        max_n_fraction: Largest fraction of non-ACGT bases in a kept window (plus flank).
        gap_length: Shortest run of N's that makes an assembly gap; a window touching one is dropped.

    Returns:
        The table written.
    """
    chroms = read_fai(fai)
    names = [c for c in chroms if chromosomes is None or c in set(chromosomes)]
    missing = sorted(set(chromosomes or []) - set(chroms))
    if missing:
        raise ValueError(f"split chromosomes {missing} are not in {fasta} (it has {', '.join(chroms)}); "
                         f"fix split.chromosomes or species.{species}.chrom_aliases")
    windows = tile(chroms, names, length, stride or length, flank)
    if windows.empty:
        raise ValueError(f"no {length} bp window fits on chromosomes {names} of {fasta}; lower window.length")
    windows["reason"] = n_drop_reasons(windows, fasta, flank, max_n_fraction, gap_length)
    windows["kept"] = windows["reason"] == ""
    windows["species"] = species
    windows["strand"] = "+"
    windows["site"] = (windows["start"] + windows["end"]) // 2
    windows["offset"] = 0
    windows["reads"] = 0.0
    windows["merged"] = 0
    windows["id"] = [f"{species}:{c}:{s}-{e}" for c, s, e in zip(windows["chrom"], windows["start"], windows["end"])]
    windows = windows[WINDOW_COLUMNS]
    log.info("%d tiled windows of %d bp (stride %d) on %d chromosomes; %d kept, dropped: %s", len(windows), length,
             stride or length, len(names), int(windows["kept"].sum()),
             windows.loc[~windows["kept"], "reason"].value_counts().to_dict())
    write_tsv(windows, out_tsv)
    return windows
