"""Annotation QC: coding fraction and protein-coding genes per window, from the GFF3 of a genome."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dnalm.io.errors import QCError
from dnalm.io.gff import listed, parse_attributes, read_features
from dnalm.qc.assembly import merged_length

log = logging.getLogger(__name__)

GENE_WINDOW = 16_384

Span = tuple[str, int, int]


@dataclass
class Annotation:
    """Coding sequence and protein-coding genes of a GFF3 annotation.

    Attributes:
        path: The GFF3 file.
        cds: Sequence name → CDS intervals (0-based, half-open).
        genes: Protein-coding genes (genes with a CDS) as (sequence, start, end), 0-based, half-open.
        clipped: Features that ran past their sequence's end and were clipped.
        reversed: Line numbers of the features whose start is after their end (left out).
        spans: Feature ID → its (sequence, start, end), over all lines with that ID.
        parents: Feature ID → its parents' IDs.
        cds_owner: (owner ID, sequence, start, end) of each CDS: its parents, or itself when it has none.
        absent: Sequence names the genome lacks → number of features naming them.
    """

    path: str
    cds: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    genes: list[Span] = field(default_factory=list)
    clipped: int = 0
    reversed: list[int] = field(default_factory=list)
    spans: dict[str, Span] = field(default_factory=dict)
    parents: dict[str, list[str]] = field(default_factory=dict)
    cds_owner: list[tuple[str, str, int, int]] = field(default_factory=list)
    absent: dict[str, int] = field(default_factory=dict)

    def add(self, number: int, fields: list[str], lengths: Mapping[str, int]) -> None:
        """Add one feature line (its 1-based number and 9 columns), clipped to its sequence; a reversed one is noted."""
        seqid, kind = fields[0], fields[2]
        if int(fields[3]) > int(fields[4]):
            self.reversed.append(number)
            return
        if seqid not in lengths:
            self.absent[seqid] = self.absent.get(seqid, 0) + 1
            return
        start, end = int(fields[3]) - 1, min(int(fields[4]), lengths[seqid])
        self.clipped += int(fields[4]) > lengths[seqid]
        attrs = parse_attributes(fields[8])
        ident = attrs.get("ID", [f"{self.path}:{number}"])[0]
        if "ID" in attrs:
            self.spans[ident] = _union(self.spans.get(ident), (seqid, start, end))
            self.parents.setdefault(ident, attrs.get("Parent", []))
        if kind == "CDS" and end > start:
            self.cds.setdefault(seqid, []).append((start, end))
            self.cds_owner.extend((owner, seqid, start, end) for owner in attrs.get("Parent", [ident]))


def _union(old: Span | None, new: Span) -> Span:
    """The smallest span holding ``old`` (if any) and ``new``, on the sequence of ``new``."""
    return (new[0], min(old[1], new[1]), max(old[2], new[2])) if old else new


def read_annotation(path: str | Path, lengths: Mapping[str, int], fasta: str | Path = "the genome") -> Annotation:
    """Read CDS intervals and protein-coding genes from a GFF3, checked against the genome's sequences.

    A gene is the top-most ancestor (through ``Parent``) of a CDS: a ``gene`` line for GFF3 with gene → mRNA → CDS,
    or the CDS's own ID when it has no parent. Its span is that feature's own span, or the span of its CDSs when the
    ancestor has no line of its own.

    Args:
        path: GFF3 file.
        lengths: Sequence name → length of the genome.
        fasta: The genome's path, named in errors.

    Returns:
        The annotation.

    Raises:
        QCError: If a line is malformed, features name sequences the FASTA does not have, or every feature has its
            start after its end.
    """
    ann = Annotation(str(path))
    features = 0
    for number, fields in read_features(path, QCError):
        ann.add(number, fields, lengths)
        features += 1
    if ann.reversed and len(ann.reversed) == features:
        raise QCError(
            f"{path}: every feature ({features}) has its start after its end (lines {listed(ann.reversed)}); "
            "are columns 4 and 5 swapped? fix the annotation's source in the config"
        )
    if ann.absent:
        names = ", ".join(f"{n} ({c} features)" for n, c in sorted(ann.absent.items()))
        raise QCError(
            f"{path}: the annotation names sequences that are not in {fasta}: {names}; "
            "fix chrom_aliases in the config or use the annotation of this assembly"
        )
    ann.genes = _genes(ann.cds_owner, ann.spans, ann.parents)
    return ann


def _root(ident: str, parents: Mapping[str, list[str]]) -> str:
    """Follow the first Parent of each feature up to a feature that has none (cycles stop the walk)."""
    seen = {ident}
    while parents.get(ident):
        nxt = parents[ident][0]
        if nxt in seen:
            break
        seen.add(nxt)
        ident = nxt
    return ident


def _genes(
    cds_owner: Sequence[tuple[str, str, int, int]], spans: Mapping[str, Span], parents: Mapping[str, list[str]]
) -> list[Span]:
    """Protein-coding genes: the root ancestors of CDSs with their spans."""
    genes: dict[str, Span] = {}
    for owner, seqid, start, end in cds_owner:
        root = _root(owner, parents)
        genes[root] = spans[root] if root in spans else _union(genes.get(root), (seqid, start, end))
    return sorted(genes.values(), key=lambda g: (g[0], g[1], g[2]))


def genes_per_window(genes: Sequence[Span], lengths: Mapping[str, int], window: int) -> np.ndarray:
    """Genes per non-overlapping window: each gene counts in the window holding its midpoint.

    Windows tile every sequence from its start; a last window shorter than ``window`` is left out (it would count
    few genes only because it is short), and so are sequences shorter than one window.

    Args:
        genes: (sequence, start, end) spans.
        lengths: Sequence name → length.
        window: Window length in bp.

    Returns:
        One count per full window, sequences in ``lengths`` order.
    """
    offsets, total = {}, 0
    for name, length in lengths.items():
        offsets[name] = (total, length // window)
        total += length // window
    counts = np.zeros(total, dtype=np.int64)
    for seqid, start, end in genes:
        first, n_windows = offsets[seqid]
        index = (start + end) // 2 // window
        if index < n_windows:
            counts[first + index] += 1
    return counts


def annotation_stats(
    path: str | Path, lengths: Mapping[str, int], window: int = GENE_WINDOW, fasta: str | Path = "the genome"
) -> dict[str, Any]:
    """Coding fraction (merged CDS length ÷ genome length) and protein-coding genes per window.

    Args:
        path: GFF3 file.
        lengths: Sequence name → length of the genome.
        window: Window length of the genes-per-window count.
        fasta: The genome's path, named in errors.

    Returns:
        cds_bases, coding_fraction, genes, window, windows, genes_per_window (median, mean, histogram: number of
        windows with 0, 1, 2, … genes), clipped_features, reversed_features (start after end, left out).
    """
    ann = read_annotation(path, lengths, fasta)
    cds_bases = sum(merged_length(v) for v in ann.cds.values())
    counts = genes_per_window(ann.genes, lengths, window)
    if ann.clipped:
        log.warning("%s: %d features run past the end of their sequence; clipped", path, ann.clipped)
    if ann.reversed:
        log.warning(
            "%s: %d features with start > end left out (lines %s)", path, len(ann.reversed), listed(ann.reversed)
        )
    per_window = None
    if counts.size:
        histogram = np.bincount(counts).tolist()
        per_window = {"median": float(np.median(counts)), "mean": float(counts.mean()), "histogram": histogram}
    return {
        "path": str(path),
        "cds_bases": int(cds_bases),
        "coding_fraction": cds_bases / sum(lengths.values()),
        "genes": len(ann.genes),
        "window": window,
        "windows": int(counts.size),
        "genes_per_window": per_window,
        "clipped_features": ann.clipped,
        "reversed_features": len(ann.reversed),
    }
