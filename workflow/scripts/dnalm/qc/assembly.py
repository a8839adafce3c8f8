"""Assembly QC: one pass over a genome FASTA, N50, base composition and the repeats (tandem, interspersed)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dnalm.io.errors import QCError
from dnalm.io.fasta import read_fasta
from dnalm.qc.tools import tantan_intervals, windowmasker_intervals

log = logging.getLogger(__name__)

IUPAC = b"RYSWKMBDHV"
VALID = frozenset(b"ACGTN" + IUPAC + b"U" + b"acgtn" + IUPAC.lower() + b"u")
LOWER = slice(ord("a"), ord("z") + 1)
#: qc.repeats.method values; every one but softmask names the tool(s) whose masked bases are the gated fraction.
REPEAT_METHODS = ("auto", "softmask", "tantan", "windowmasker", "tantan+windowmasker")
UPPER = slice(ord("A"), ord("Z") + 1)


@dataclass
class GenomeScan:
    """What one pass over a genome FASTA learns.

    Attributes:
        path: The FASTA file.
        lengths: Sequence name → length, in file order.
        counts: Occurrences of every byte value over all sequences (case kept).
    """

    path: str
    lengths: dict[str, int] = field(default_factory=dict)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64))


def scan_genome(path: str | Path) -> GenomeScan:
    """Read a genome once: sequence lengths and letter counts, with the letters checked.

    Args:
        path: Genome FASTA.

    Returns:
        The scan.

    Raises:
        QCError: If the FASTA is empty, has duplicate names, empty records or letters that are not nucleotide codes.
    """
    scan = GenomeScan(str(path))
    for name, seq in read_fasta(path, QCError):
        counts = np.bincount(np.frombuffer(seq, dtype=np.uint8), minlength=256)
        bad = [chr(c) for c in np.flatnonzero(counts) if c not in VALID]
        if bad:
            raise QCError(f"{path}: sequence {name!r} has characters that are not IUPAC nucleotide codes: {bad}")
        scan.lengths[name] = len(seq)
        scan.counts += counts
    empty = [name for name, length in scan.lengths.items() if length == 0]
    if empty:
        raise QCError(f"{path}: empty sequence(s) {empty}; remove them from the genome")
    return scan


def n50(lengths: Sequence[int]) -> int:
    """The N50: the length of the sequence at which the longest sequences first cover half the genome.

    Args:
        lengths: Sequence lengths.

    Returns:
        N50 in bp (0 for no sequences).
    """
    ordered = np.sort(np.asarray(lengths, dtype=np.int64))[::-1]
    if ordered.size == 0:
        return 0
    covered = np.cumsum(ordered)
    return int(ordered[np.searchsorted(covered, covered[-1] / 2)])


def assembly_stats(scan: GenomeScan) -> dict[str, Any]:
    """Assembly statistics of a scanned genome.

    GC fraction is over unambiguous bases (G + C) / (A + C + G + T); the N fraction is over the total length;
    ``iupac_count`` counts every other ambiguity code (R, Y, S, W, K, M, B, D, H, V; U as T is not counted).

    Args:
        scan: The genome's scan.

    Returns:
        length, sequences, n50, gc_fraction, n_count, n_fraction, iupac_count, iupac (per code), lowercase_fraction.
    """
    upper = scan.counts.copy()
    upper[UPPER] += scan.counts[LOWER]
    length = int(sum(scan.lengths.values()))
    acgt = int(sum(upper[c] for c in b"ACGTU"))
    gc = int(upper[ord("G")] + upper[ord("C")])
    iupac = {chr(c): int(upper[c]) for c in IUPAC if upper[c]}
    return {
        "length": length,
        "sequences": len(scan.lengths),
        "n50": n50(list(scan.lengths.values())),
        "gc_fraction": gc / acgt if acgt else None,
        "n_count": int(upper[ord("N")]),
        "n_fraction": int(upper[ord("N")]) / length,
        "iupac_count": int(sum(iupac.values())),
        "iupac": iupac,
        "lowercase_fraction": int(scan.counts[LOWER].sum()) / length,
    }


def merged_length(intervals: Sequence[tuple[int, int]]) -> int:
    """Bases covered by half-open intervals, overlaps counted once.

    Args:
        intervals: (start, end) pairs on one sequence.

    Returns:
        The number of covered bases.
    """
    total, current_start, current_end = 0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def covered_bases(*interval_sets: Mapping[str, Sequence[tuple[int, int]]]) -> int:
    """Bases covered by one or more sets of intervals per sequence, every base counted once.

    Args:
        interval_sets: Each a mapping of sequence name → (start, end) pairs (0-based, half-open).

    Returns:
        The number of bases covered by any interval of any set.
    """
    names = {name for intervals in interval_sets for name in intervals}
    return sum(merged_length([iv for intervals in interval_sets for iv in intervals.get(name, ())]) for name in names)


def tantan_repeats(fasta: str | Path) -> int:
    """Bases in tandem repeats found by tantan.

    Args:
        fasta: Genome FASTA.

    Returns:
        The number of bases tantan masks (overlaps counted once).
    """
    return covered_bases(tantan_intervals(fasta))


def repeat_kinds(fasta: str | Path, length: int, min_interspersed_length: int = 100) -> dict[str, dict[str, Any]]:
    """Tandem repeats (tantan), interspersed repeats (WindowMasker) and their union, as bases and fractions.

    Args:
        fasta: Genome FASTA.
        length: Its length in bases.
        min_interspersed_length: WindowMasker intervals shorter than this are left out.

    Returns:
        ``tandem``, ``interspersed`` and ``union``, each with bases and fraction; the first two name their tool,
        ``interspersed`` also records WindowMasker's unit, thresholds and the minimum interval length.
    """
    tandem = tantan_intervals(fasta)
    masker = windowmasker_intervals(fasta, length, min_interspersed_length)
    bases = {"tandem": covered_bases(tandem), "interspersed": covered_bases(masker["intervals"]),
             "union": covered_bases(tandem, masker["intervals"])}  # fmt: skip
    kinds = {kind: {"bases": n, "fraction": n / length} for kind, n in bases.items()}
    kinds["tandem"] = {"tool": "tantan", **kinds["tandem"]}
    kinds["interspersed"] = {"tool": "windowmasker", "unit": masker["unit"], "thresholds": masker["thresholds"],
                             "min_length": min_interspersed_length, **kinds["interspersed"]}  # fmt: skip
    kinds["union"] = {"tool": "tantan+windowmasker", **kinds["union"]}
    return kinds


def repeat_fraction(
    fasta: str | Path, scan: GenomeScan, method: str = "auto", min_interspersed_length: int = 100
) -> dict[str, Any]:
    """The genome's repeats: tandem, interspersed and their union, and the fraction the gate reads.

    Tandem (tantan), interspersed (WindowMasker) and union are measured on every genome. ``method`` picks the gated
    ``fraction``: ``softmask`` (the FASTA's lower-case bases), ``tantan``, ``windowmasker`` or
    ``tantan+windowmasker`` (the union, every base counted once). ``auto`` reads the soft-masking when the FASTA
    has both lower- and upper-case bases (an all upper-case or all lower-case file carries no masking information)
    and takes the union otherwise.

    Args:
        fasta: Genome FASTA.
        scan: Its scan.
        method: "auto" or one of the methods above.
        min_interspersed_length: WindowMasker intervals shorter than this are left out.

    Returns:
        method (the one used), bases and fraction (the gated figure), then tandem, interspersed and union.

    Raises:
        QCError: If the method is unknown, or a tool is missing or fails.
    """
    if method not in REPEAT_METHODS:
        raise QCError(f"unknown repeat method {method!r}; use one of {', '.join(REPEAT_METHODS)}")
    lower = int(scan.counts[LOWER].sum())
    upper = int(scan.counts[UPPER].sum())
    if method == "auto":
        method = "softmask" if lower and upper else "tantan+windowmasker"
    if method == "softmask" and not lower:
        log.warning("%s: repeats.method softmask, but the FASTA has no lower-case base: repeat fraction 0", fasta)
    length = sum(scan.lengths.values())
    kinds = repeat_kinds(fasta, length, min_interspersed_length)
    by_method = {"softmask": lower, "tantan": kinds["tandem"]["bases"],
                 "windowmasker": kinds["interspersed"]["bases"], "tantan+windowmasker": kinds["union"]["bases"]}  # fmt: skip
    bases = by_method[method]
    return {"method": method, "bases": bases, "fraction": bases / length, **kinds}
