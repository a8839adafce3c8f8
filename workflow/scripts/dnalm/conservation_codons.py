"""The codon-position control of LM conservation: coding third positions should score lower than first and second.

Codons come from the CDS features of a GFF3 with their strand and phase (column 8: the bases to skip from the
feature's 5' end to the first whole codon). A codon is kept when its three bases lie in one CDS feature (codons split
by an intron are left out) and in the scored regions; codons of overlapping CDS features (alternative transcripts)
count once. The test is paired over codons: one-sided Wilcoxon signed-rank tests of C1 − C3 > 0 and C2 − C3 > 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from dnalm.io.errors import InputError
from dnalm.io.gff import read_features

#: Significance level of the control's `holds`.
ALPHA = 0.01


def cds_codons(start: int, end: int, strand: str, phase: int) -> np.ndarray:
    """(n, 3) 0-based positions of codon positions 1, 2, 3 of the whole codons of one CDS feature [start, end)."""
    if strand == "+":
        first = np.arange(start + phase, end - 2, 3)
        return np.stack([first, first + 1, first + 2], axis=1)
    first = np.arange(end - 1 - phase, start + 1, -3)
    return np.stack([first, first - 1, first - 2], axis=1)


def read_codons(path: str | Path, sizes: Mapping[str, int]) -> dict[str, np.ndarray]:
    """The codons of a GFF3's CDS features per chromosome: (n, 3) positions of codon positions 1, 2, 3, unique.

    Raises:
        InputError: naming the file and line of a CDS on a chromosome the genome lacks, without a strand, or with a
            phase other than 0, 1, 2.
    """
    found: dict[str, list[np.ndarray]] = {}
    for number, fields in read_features(path):
        if fields[2] != "CDS":
            continue
        chrom, strand, phase = fields[0], fields[6], fields[7]
        if chrom not in sizes:
            raise InputError(f"{path}, line {number}: CDS on {chrom!r}, not a chromosome of the genome (its names: "
                             f"{', '.join(list(sizes)[:20])}); set chrom_aliases or use this assembly's annotation")
        if strand not in "+-" or phase not in ("0", "1", "2"):
            raise InputError(f"{path}, line {number}: a CDS needs strand + or - and phase 0, 1 or 2 "
                             f"(found {strand!r}, {phase!r}) for its codon positions; fix the annotation")
        found.setdefault(chrom, []).append(cds_codons(int(fields[3]) - 1, int(fields[4]), strand, int(phase)))
    return {chrom: np.unique(np.concatenate(parts), axis=0) for chrom, parts in found.items()}


def codon_positions(codons: Mapping[str, np.ndarray], regions: Sequence[tuple[str, int, int]]) -> list[np.ndarray]:
    """Per region, each base's codon position (int8: 1, 2, 3; 0 outside every codon)."""
    out = []
    for chrom, start, end in regions:
        positions = np.zeros(end - start, dtype=np.int8)
        c = codons.get(chrom, np.zeros((0, 3), dtype=np.int64))
        for i in range(3):
            inside = c[:, i][(c[:, i] >= start) & (c[:, i] < end)]
            positions[inside - start] = i + 1
        out.append(positions)
    return out


def codon_scores(codons: Mapping[str, np.ndarray], regions: Sequence[tuple[str, int, int]],
                 scores: Sequence[np.ndarray]) -> np.ndarray:
    """(n, 3) scores at codon positions 1, 2, 3 of the codons whose three bases are scored (finite) in the regions."""
    rows = []
    for (chrom, start, end), values in zip(regions, scores, strict=True):
        c = codons.get(chrom, np.zeros((0, 3), dtype=np.int64))
        inside = c[((c >= start) & (c < end)).all(axis=1)] - start
        picked = values[inside]
        rows.append(picked[np.isfinite(picked).all(axis=1)])
    return np.concatenate(rows) if rows else np.zeros((0, 3))


def codon_control(codons: Mapping[str, np.ndarray], regions: Sequence[tuple[str, int, int]],
                  scores: Sequence[np.ndarray]) -> dict:
    """Mean conservation at codon positions 1, 2, 3 and the paired tests of C3 < C1 and C3 < C2.

    Args:
        codons: `read_codons` output.
        regions: Scored regions (chrom, start, end).
        scores: Conservation per base of each region (NaN: not scored).

    Returns:
        `codons` (how many), `mean_c1`, `mean_c2`, `mean_c3`, `mean_noncoding` (scored bases in no codon),
        `c3_below_c1`, `c3_below_c2` (means), `p_c3_below_c1`, `p_c3_below_c2` (one-sided Wilcoxon signed-rank
        over codons; None under 10 codons, 1 when every difference is 0), and `holds`: both below with p < `ALPHA`.
    """
    from scipy.stats import wilcoxon

    table = codon_scores(codons, regions, scores)
    n = len(table)
    means = table.mean(axis=0) if n else np.full(3, np.nan)
    out = {"codons": n, **{f"mean_c{i + 1}": _number(means[i]) for i in range(3)},
           "mean_noncoding": _number(_noncoding_mean(codons, regions, scores))}
    for i in (1, 2):
        below = bool(n and means[2] < means[i - 1])
        diff = table[:, i - 1] - table[:, 2]
        p = np.nan if n < 10 else wilcoxon(diff, alternative="greater").pvalue if diff.any() else 1.0
        out.update({f"c3_below_c{i}": below, f"p_c3_below_c{i}": _number(p)})
    out["holds"] = bool(out["c3_below_c1"] and out["c3_below_c2"] and all(
        out[f"p_c3_below_c{i}"] is not None and out[f"p_c3_below_c{i}"] < ALPHA for i in (1, 2)))
    out["alpha"] = ALPHA
    return out


def _noncoding_mean(codons: Mapping[str, np.ndarray], regions: Sequence[tuple[str, int, int]],
                    scores: Sequence[np.ndarray]) -> float:
    """Mean score of the scored bases that are in no codon."""
    total, count = 0.0, 0
    for (chrom, start, end), values in zip(regions, scores, strict=True):
        coding = np.zeros(end - start, dtype=bool)
        c = codons.get(chrom, np.zeros((0, 3), dtype=np.int64)).ravel()
        coding[c[(c >= start) & (c < end)] - start] = True
        keep = ~coding & np.isfinite(values)
        total, count = total + float(values[keep].sum()), count + int(keep.sum())
    return total / count if count else np.nan


def _number(value: float) -> float | None:
    """A float for JSON (None for NaN)."""
    return None if value is None or not np.isfinite(value) else float(value)
