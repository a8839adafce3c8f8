"""k-fold contiguous genome folds: the genome cut into k contiguous pieces of about equal length.

The chromosomes are laid end to end (FASTA order) and cut at the k − 1 points that split the total length
evenly. A cut point within `SNAP` of a fold's length of a natural break — a chromosome end or the middle of a gap
(a run of at least `min_gap` N's) — moves to that break; otherwise the chromosome is cut there, at a multiple of
`step` bp from its start (the window length or stride, so tiled windows line up with fold starts). Every base of
every chromosome is in exactly one fold, and every fold is within about ±2·SNAP of the genome length ÷ k.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.io import read_fai, write_tsv
from dnalm.io.fasta import open_fasta

FOLD_COLUMNS = ["chrom", "start", "end", "fold"]
#: A cut point moves to a chromosome end or gap within this fraction of a fold's length.
SNAP = 0.04


def find_gaps(fasta: str | Path, min_gap: int) -> dict[str, list[tuple[int, int]]]:
    """Runs of at least `min_gap` N's (or n's) per chromosome, as 0-based half-open intervals."""
    gaps: dict[str, list[tuple[int, int]]] = {}
    genome = open_fasta(fasta)
    try:
        for chrom in genome.keys():  # noqa: SIM118 (a pyfaidx.Fasta iterates over records, not names)
            is_n = np.frombuffer(genome[chrom][:].encode("ascii"), dtype=np.uint8) == ord("N")
            edges = np.diff(np.concatenate([[0], is_n.astype(np.int8), [0]]))
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
            gaps[chrom] = [(int(s), int(e)) for s, e in zip(starts, ends) if e - s >= min_gap]
    finally:
        genome.close()
    return gaps


def _cut_points(chroms: dict[str, int], gaps: dict[str, list[tuple[int, int]]], k: int, step: int) -> list[int]:
    """The k + 1 fold boundaries on the chromosomes laid end to end."""
    offsets = np.concatenate([[0], np.cumsum(list(chroms.values()))])
    total = int(offsets[-1])
    breaks = [int(o) for o in offsets[1:-1]]
    for off, chrom in zip(offsets, chroms):
        breaks += [int(off) + (s + e) // 2 for s, e in gaps.get(chrom, [])]
    breaks_arr = np.array(sorted(breaks), dtype=np.int64)
    size = total / k
    cuts = [0]
    for i in range(1, k):
        ideal = i * size
        near = breaks_arr[np.abs(breaks_arr - ideal) <= SNAP * size] if len(breaks_arr) else breaks_arr
        if len(near):
            cut = int(near[np.argmin(np.abs(near - ideal))])
        else:
            c = int(np.searchsorted(offsets, ideal, side="right")) - 1
            cut = int(offsets[c]) + min(round((ideal - offsets[c]) / step) * step, int(offsets[c + 1] - offsets[c]))
        if cut <= cuts[-1]:
            raise ValueError(f"the genome ({total:,} bp) is too small to cut into {k} folds of whole {step} bp steps")
        cuts.append(cut)
    return cuts + [total]


def fold_layout(chroms: dict[str, int], gaps: dict[str, list[tuple[int, int]]], k: int, step: int = 1) -> pd.DataFrame:
    """Cut the genome into k contiguous folds balanced by length.

    Args:
        chroms: Chromosome lengths in genome order.
        gaps: Gaps per chromosome (see `find_gaps`), preferred cut points.
        k: Number of folds.
        step: Cuts inside a chromosome fall on multiples of this many bp from its start.

    Returns:
        BED-like rows (chrom, start, end, fold): each fold's pieces, in genome order.
    """
    cuts = _cut_points(chroms, gaps, k, step)
    rows, off = [], 0
    for chrom, length in chroms.items():
        for fold in range(k):
            lo, hi = max(cuts[fold], off), min(cuts[fold + 1], off + length)
            if lo < hi:
                rows.append((chrom, lo - off, hi - off, fold))
        off += length
    return pd.DataFrame(rows, columns=FOLD_COLUMNS)


def make_folds(fasta: str, fai: str, out_tsv: str, *, k: int, min_gap: int, step: int) -> pd.DataFrame:
    """Write the fold layout of a genome (results/splits/<task>/folds.tsv); see `fold_layout`."""
    layout = fold_layout(read_fai(fai), find_gaps(fasta, min_gap), k, step)
    write_tsv(layout, out_tsv)
    return layout


def read_folds(path: str | Path) -> pd.DataFrame:
    """Read a fold layout written by `make_folds`."""
    return pd.read_csv(path, sep="\t", dtype={"chrom": str})


def window_folds(windows: pd.DataFrame, layout: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The fold of each window's start, and whether the window lies wholly inside that fold's piece.

    Returns:
        (fold of the start, or -1 off the layout; True where the window's end is inside the same piece).
    """
    fold = np.full(len(windows), -1, dtype=np.int64)
    inside = np.zeros(len(windows), dtype=bool)
    starts, ends = windows["start"].to_numpy(), windows["end"].to_numpy()
    chrom_col = windows["chrom"].to_numpy()
    for chrom, pieces in layout.groupby("chrom", sort=False):
        pieces = pieces.sort_values("start")
        rows = np.flatnonzero(chrom_col == chrom)
        idx = np.searchsorted(pieces["start"].to_numpy(), starts[rows], side="right") - 1
        ok = idx >= 0
        fold[rows[ok]] = pieces["fold"].to_numpy()[idx[ok]]
        inside[rows[ok]] = ends[rows[ok]] <= pieces["end"].to_numpy()[idx[ok]]
    return fold, inside
