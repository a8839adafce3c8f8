"""Genome QC: assembly statistics, Mash distances, BUSCO, repeat and coding fractions, and the pretraining gate."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.io import umask_mode, write_tsv

log = logging.getLogger(__name__)

IUPAC = b"RYSWKMBDHV"
VALID = frozenset(b"ACGTN" + IUPAC + b"U" + b"acgtn" + IUPAC.lower() + b"u")
GENE_WINDOW = 16_384
AUGUSTUS_CONFIG = "/usr/share/augustus/config"
AUGUSTUS_SCRIPTS = "/usr/share/augustus/scripts"
BUSCO_KEYS = {  # our name: key in BUSCO's short_summary.json "results"
    "complete": "Complete",
    "single": "Single copy",
    "duplicated": "Multi copy",
    "fragmented": "Fragmented",
    "missing": "Missing",
    "n": "n_markers",
}
# (threshold key under qc.thresholds, summary column, "max" or "min"), in the order reasons are listed.
THRESHOLDS: tuple[tuple[str, str, str], ...] = (
    ("max_mash_distance", "mash_distance", "max"),
    ("min_busco_complete", "busco_complete", "min"),
    ("max_repeat_fraction", "repeat_fraction", "max"),
    ("min_coding_fraction", "coding_fraction", "min"),
    ("max_n_fraction", "n_fraction", "max"),
)
SUMMARY_COLUMNS = [
    "species", "length", "sequences", "n50", "gc_fraction", "n_fraction", "iupac_count", "mash_reference",
    "mash_distance", "mash_p_value", "mash_shared_hashes", "busco_complete", "busco_single", "busco_duplicated",
    "busco_fragmented", "busco_missing", "busco_n", "repeat_method", "repeat_fraction", "coding_fraction",
    "genes_per_window_median", "genes_per_window_mean", "pass", "reasons", "not_checked",
]  # fmt: skip


class QCError(ValueError):
    """A QC input is unusable; the message names the file and what is wrong with it."""


# ------------------------------------------------------------------------------------------------------------ FASTA


def read_fasta(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Yield the records of a FASTA file, checking that it has records and unique names.

    Args:
        path: A plain-text FASTA file.

    Yields:
        (name, sequence) pairs; the name is the first word of the header, the sequence keeps its case.

    Raises:
        QCError: If the file has no record, text before the first header, a header without a name or a name twice.
    """
    seen: set[str] = set()
    duplicates: list[str] = []
    name, parts = None, []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith(b">"):
                if name is not None:
                    yield name, b"".join(parts)
                name, parts = _header_name(line, number, path), []
                if name in seen:
                    duplicates.append(name)
                seen.add(name)
            elif name is None and line.strip():
                raise QCError(f"{path}, line {number}: sequence before the first '>' header; is this a FASTA file?")
            else:
                parts.append(line.strip())
    if name is not None:
        yield name, b"".join(parts)
    if not seen:
        raise QCError(f"{path}: empty FASTA (no '>' record); check the genome source in the config")
    if duplicates:
        raise QCError(f"{path}: duplicate sequence names {sorted(set(duplicates))}; every record needs its own name")


def _header_name(line: bytes, number: int, path: str | Path) -> str:
    """The first word of a FASTA header line."""
    words = line[1:].decode("utf-8", errors="replace").split()
    if not words:
        raise QCError(f"{path}, line {number}: FASTA header without a name")
    return words[0]


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
    for name, seq in read_fasta(path):
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
    upper = _upper_counts(scan.counts)
    length = int(sum(scan.lengths.values()))
    acgt = int(sum(upper[c] for c in b"ACGTU"))
    gc = int(upper[ord("G")] + upper[ord("C")])
    iupac = {chr(c): int(upper[c]) for c in IUPAC if upper[c]}
    lower = int(scan.counts[ord("a") : ord("z") + 1].sum())
    return {
        "length": length,
        "sequences": len(scan.lengths),
        "n50": n50(list(scan.lengths.values())),
        "gc_fraction": gc / acgt if acgt else None,
        "n_count": int(upper[ord("N")]),
        "n_fraction": int(upper[ord("N")]) / length,
        "iupac_count": int(sum(iupac.values())),
        "iupac": iupac,
        "lowercase_fraction": lower / length,
    }


def _upper_counts(counts: np.ndarray) -> np.ndarray:
    """Byte counts with lower-case letters added to their upper-case ones."""
    upper = counts.copy()
    upper[ord("A") : ord("Z") + 1] += counts[ord("a") : ord("z") + 1]
    return upper


# ---------------------------------------------------------------------------------------------------------- repeats


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


def tantan_intervals(fasta: str | Path) -> dict[str, list[tuple[int, int]]]:
    """Tandem repeats found by tantan (``tantan -f3``: BED output, default settings).

    Args:
        fasta: Genome FASTA (tantan's search ignores case).

    Returns:
        Sequence name → repeat intervals (0-based, half-open), in tantan's order.

    Raises:
        QCError: If tantan is missing or fails.
    """
    _require("tantan")
    proc = subprocess.Popen(["tantan", "-f3", str(fasta)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    by_seq: dict[str, list[tuple[int, int]]] = {}
    for line in proc.stdout:
        name, start, end = line.split("\t")[:3]
        by_seq.setdefault(name, []).append((int(start), int(end)))
    stderr = proc.stderr.read()
    if proc.wait() != 0:
        raise QCError(f"tantan failed on {fasta} (exit {proc.returncode}): {stderr.strip()[-2000:]}")
    return by_seq


def tantan_repeats(fasta: str | Path) -> int:
    """Bases in tandem repeats found by tantan.

    Args:
        fasta: Genome FASTA.

    Returns:
        The number of bases tantan masks (overlaps counted once).
    """
    return sum(merged_length(v) for v in tantan_intervals(fasta).values())


def repeat_fraction(fasta: str | Path, scan: GenomeScan, method: str = "auto") -> dict[str, Any]:
    """Fraction of the genome in repeats, from its soft-masking or from tantan.

    ``auto`` reads the soft-masking (lower-case bases) when the FASTA has both lower- and upper-case bases, and runs
    tantan otherwise (an all upper-case or all lower-case file carries no masking information).

    Args:
        fasta: Genome FASTA.
        scan: Its scan.
        method: "auto", "softmask" or "tantan".

    Returns:
        method (the one used), bases and fraction.

    Raises:
        QCError: If the method is unknown.
    """
    if method not in ("auto", "softmask", "tantan"):
        raise QCError(f"unknown repeat method {method!r}; use auto, softmask or tantan")
    lower = int(scan.counts[ord("a") : ord("z") + 1].sum())
    upper = int(scan.counts[ord("A") : ord("Z") + 1].sum())
    if method == "auto":
        method = "softmask" if lower and upper else "tantan"
    length = sum(scan.lengths.values())
    if method == "softmask":
        if not lower:
            log.warning("%s: repeats.method softmask, but the FASTA has no lower-case base: repeat fraction 0", fasta)
        bases = lower
    else:
        bases = tantan_repeats(fasta)
    return {"method": method, "bases": bases, "fraction": bases / length}


# ------------------------------------------------------------------------------------------------------- annotation


@dataclass
class Annotation:
    """Coding sequence and protein-coding genes of a GFF3 annotation.

    Attributes:
        path: The GFF3 file.
        cds: Sequence name → CDS intervals (0-based, half-open).
        genes: Protein-coding genes (genes with a CDS) as (sequence, start, end), 0-based, half-open.
        clipped: Features that ran past their sequence's end and were clipped.
    """

    path: str
    cds: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    genes: list[tuple[str, int, int]] = field(default_factory=list)
    clipped: int = 0


def _gff_attributes(text: str) -> dict[str, list[str]]:
    """Column 9 of a GFF3 line as key → values (comma-separated values split)."""
    out: dict[str, list[str]] = {}
    for part in text.strip().split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.strip()] = value.split(",")
    return out


def _gff_features(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """Numbered 9-column feature lines of a GFF3, stopping at a ##FASTA section."""
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith("##FASTA"):
                return
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 9 or not (fields[3].isdigit() and fields[4].isdigit()):
                raise QCError(f"{path}, line {number}: not a GFF3 feature line (9 columns, integer start and end)")
            yield number, fields


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
        QCError: If a line is malformed or features name sequences the FASTA does not have.
    """
    ann = Annotation(str(path))
    spans: dict[str, tuple[str, int, int]] = {}
    parents: dict[str, list[str]] = {}
    cds_owner: list[tuple[str, str, int, int]] = []
    absent: dict[str, int] = {}
    for number, fields in _gff_features(path):
        seqid, kind = fields[0], fields[2]
        if seqid not in lengths:
            absent[seqid] = absent.get(seqid, 0) + 1
            continue
        start, end = int(fields[3]) - 1, min(int(fields[4]), lengths[seqid])
        ann.clipped += int(fields[4]) > lengths[seqid]
        attrs = _gff_attributes(fields[8])
        ident = attrs.get("ID", [f"{path}:{number}"])[0]
        if "ID" in attrs:
            old = spans.get(ident)
            spans[ident] = (seqid, min(start, old[1]), max(end, old[2])) if old else (seqid, start, end)
            parents.setdefault(ident, attrs.get("Parent", []))
        if kind == "CDS" and end > start:
            ann.cds.setdefault(seqid, []).append((start, end))
            for owner in attrs.get("Parent", [ident]):
                cds_owner.append((owner, seqid, start, end))
    if absent:
        names = ", ".join(f"{n} ({c} features)" for n, c in sorted(absent.items()))
        raise QCError(
            f"{path}: the annotation names sequences that are not in {fasta}: {names}; "
            "fix chrom_aliases in the config or use the annotation of this assembly"
        )
    ann.genes = _genes(cds_owner, spans, parents)
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
    cds_owner: Sequence[tuple[str, str, int, int]],
    spans: Mapping[str, tuple[str, int, int]],
    parents: Mapping[str, list[str]],
) -> list[tuple[str, int, int]]:
    """Protein-coding genes: the root ancestors of CDSs with their spans."""
    genes: dict[str, tuple[str, int, int]] = {}
    for owner, seqid, start, end in cds_owner:
        root = _root(owner, parents)
        if root in spans:
            genes[root] = spans[root]
        else:
            old = genes.get(root)
            genes[root] = (seqid, min(start, old[1]), max(end, old[2])) if old else (seqid, start, end)
    return sorted(genes.values(), key=lambda g: (g[0], g[1], g[2]))


def genes_per_window(genes: Sequence[tuple[str, int, int]], lengths: Mapping[str, int], window: int) -> np.ndarray:
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
        windows with 0, 1, 2, … genes), clipped_features.
    """
    ann = read_annotation(path, lengths, fasta)
    cds_bases = sum(merged_length(v) for v in ann.cds.values())
    counts = genes_per_window(ann.genes, lengths, window)
    if ann.clipped:
        log.warning("%s: %d features run past the end of their sequence; clipped", path, ann.clipped)
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
    }


# ------------------------------------------------------------------------------------------------------------- Mash


def _require(tool: str) -> None:
    """Raise a QCError naming the Debian package when a tool is not on PATH."""
    if shutil.which(tool) is None:
        raise QCError(f"{tool} is not installed (Debian package {tool}; see envs/apt.txt)")


def _run(cmd: Sequence[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run a command, raising a QCError with its stderr when it fails."""
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise QCError(f"{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stderr[-3000:]}")
    return proc


def mash_sketch(
    fasta: str | Path, sketch: str | Path, k: int = 21, sketch_size: int = 10_000, seed: int = 42
) -> None:
    """Sketch a genome (all its sequences together) with ``mash sketch``.

    Args:
        fasta: Genome FASTA.
        sketch: Output sketch; must end in ``.msh``.
        k: k-mer size; the same for every genome.
        sketch_size: Hashes kept per sketch; the same for every genome.
        seed: Hash seed; the same for every genome.

    Raises:
        QCError: If the output name does not end in .msh or mash fails.
    """
    if not str(sketch).endswith(".msh"):
        raise QCError(f"{sketch}: a Mash sketch name must end in .msh")
    _require("mash")
    cmd = ["mash", "sketch", "-k", k, "-s", sketch_size, "-S", seed, "-o", sketch, fasta]
    proc = _run(cmd, f"mash sketch of {fasta}")
    log.info("%s", proc.stderr.strip())


def mash_distance(reference: str | Path, query: str | Path) -> dict[str, Any]:
    """Mash distance between two sketches (``mash dist``).

    Args:
        reference: Sketch of the reference genome.
        query: Sketch of the genome measured.

    Returns:
        distance, p_value, shared_hashes and sketch_hashes (the denominator of the shared count).
    """
    _require("mash")
    out = _run(["mash", "dist", reference, query], "mash dist").stdout.strip().splitlines()
    fields = out[-1].split("\t")
    shared, hashes = fields[4].split("/")
    return {
        "distance": float(fields[2]),
        "p_value": float(fields[3]),
        "shared_hashes": int(shared),
        "sketch_hashes": int(hashes),
    }


def mash_matrix(sketches: Mapping[str, str | Path]) -> pd.DataFrame:
    """Symmetric matrix of Mash distances between genomes (``mash triangle`` on their sketches).

    Args:
        sketches: Species → sketch; the matrix keeps this order.

    Returns:
        A square DataFrame indexed by species on both axes.
    """
    _require("mash")
    names = list(sketches)
    matrix = pd.DataFrame(0.0, index=names, columns=names)
    lines = _run(["mash", "triangle", *sketches.values()], "mash triangle").stdout.strip().splitlines()[1:]
    if len(lines) != len(names):
        raise QCError(f"mash triangle returned {len(lines)} rows for {len(names)} sketches: {list(sketches.values())}")
    for i, line in enumerate(lines):
        for j, value in enumerate(line.split("\t")[1:]):
            matrix.iloc[i, j] = matrix.iloc[j, i] = float(value)
    matrix.index.name = "species"
    return matrix


def write_mash_matrix(sketches: Mapping[str, str | Path], out: str | Path) -> pd.DataFrame:
    """Write the Mash distance matrix of the genomes as TSV (first column ``species``).

    Args:
        sketches: Species → sketch, in the order of the matrix.
        out: Output TSV.

    Returns:
        The matrix.
    """
    matrix = mash_matrix(sketches)
    write_tsv(matrix.reset_index(), out)
    log.info("Mash distances of %d genomes -> %s", len(matrix), out)
    return matrix


# ------------------------------------------------------------------------------------------------------------ BUSCO


def read_lineage(lineage: str | Path) -> dict[str, str]:
    """Check a local BUSCO lineage directory and return its ``dataset.cfg``.

    Args:
        lineage: A ``*_odb10`` directory (as unpacked from busco-data.ezlab.org, or made locally).

    Returns:
        The dataset.cfg entries (name, domain, creation_date, number_of_BUSCOs, number_of_species, ...).

    Raises:
        QCError: If the directory, its name, dataset.cfg or hmms/ is not what BUSCO needs offline.
    """
    path = Path(lineage)
    if not path.is_dir():
        raise QCError(f"BUSCO lineage {lineage}: not a directory; set qc.busco.lineage to a local *_odb10 directory")
    if not path.name.endswith("_odb10"):
        raise QCError(f"BUSCO lineage {lineage}: BUSCO 5.4 needs a directory name ending in _odb10")
    cfg_path = path / "dataset.cfg"
    if not cfg_path.is_file() or not (path / "hmms").is_dir():
        raise QCError(f"BUSCO lineage {lineage}: dataset.cfg or hmms/ is missing")
    cfg = dict(line.strip().split("=", 1) for line in cfg_path.read_text().splitlines() if "=" in line)
    missing = [k for k in ("domain", "creation_date", "number_of_BUSCOs", "number_of_species") if k not in cfg]
    if missing or cfg["domain"] not in ("eukaryota", "prokaryota", "viruses"):
        raise QCError(f"{cfg_path}: needs domain (eukaryota, prokaryota or viruses) and {missing or 'valid values'}")
    return cfg


def augustus_config(target: str | Path, species: str) -> str:
    """Make a writable AUGUSTUS config directory with only the parameter sets BUSCO needs.

    BUSCO writes its retrained species into ``$AUGUSTUS_CONFIG_PATH/species``, so the system copy (read-only, 140 MB,
    nearly all of it species parameters) cannot be used in place: everything but ``species/`` is copied, plus
    ``species/generic`` and ``species/<species>``.

    Args:
        target: Directory to create (replaced if it exists).
        species: AUGUSTUS species of the lineage (dataset.cfg ``species``) or from ``qc.busco.augustus_species``.

    Returns:
        The path to set as AUGUSTUS_CONFIG_PATH.

    Raises:
        QCError: If no AUGUSTUS config is found or it lacks the species.
    """
    source = Path(os.environ.get("AUGUSTUS_CONFIG_PATH") or AUGUSTUS_CONFIG)
    if not (source / "species").is_dir():
        source = Path(AUGUSTUS_CONFIG)
    if not (source / "species" / species).is_dir():
        raise QCError(f"AUGUSTUS species {species!r} not found in {source}/species; set qc.busco.augustus_species")
    target = Path(target)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("species"))
    for name in dict.fromkeys(["generic", species]):
        if (source / "species" / name).is_dir():
            shutil.copytree(source / "species" / name, target / "species" / name)
    return str(target)


def busco_command(
    sequences: str | Path, lineage: Path, mode: str, workdir: Path, threads: int, augustus: bool
) -> list[str]:
    """The ``busco`` command line of an offline run in ``workdir``."""
    cmd = ["busco", "-i", str(Path(sequences).resolve()), "-l", str(lineage), "-m", mode, "-o", "run",
           "--out_path", str(workdir), "--download_path", str(workdir / "downloads"), "--offline", "-c", str(threads),
           "-f"]  # fmt: skip
    return cmd + ["--augustus"] if augustus else cmd


def run_busco(
    sequences: str | Path,
    lineage: str | Path,
    out: str | Path,
    workdir: str | Path,
    mode: str = "genome",
    threads: int = 1,
    augustus_species: str | None = None,
) -> dict[str, Any]:
    """Run BUSCO 5 offline on a genome or a proteome and write its scores as JSON.

    Genome mode with a eukaryote lineage uses AUGUSTUS (``--augustus``; metaeuk is not in Debian): a writable copy of
    its config goes in ``workdir`` and is removed afterwards. Prokaryote lineages use prodigal.

    Args:
        sequences: Genome FASTA (mode genome) or protein FASTA (mode proteins).
        lineage: Local ``*_odb10`` lineage directory.
        out: Output JSON: complete, single, duplicated, fragmented, missing (percent), n, counts, summary line,
            lineage, domain, mode, BUSCO version.
        workdir: BUSCO's working directory (its full output stays there).
        mode: "genome" or "proteins".
        threads: CPUs for BUSCO.
        augustus_species: AUGUSTUS species for eukaryote genomes; None takes the lineage's dataset.cfg ``species``.

    Returns:
        The scores written to ``out``.

    Raises:
        QCError: If the lineage is unusable, a tool is missing or BUSCO fails.
    """
    if mode not in ("genome", "proteins"):
        raise QCError(f"unknown BUSCO mode {mode!r}; use genome or proteins")
    lineage = Path(lineage).resolve()
    cfg = read_lineage(lineage)
    _require("busco")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    augustus = mode == "genome" and cfg["domain"] == "eukaryota"
    if augustus:
        species = augustus_species or cfg.get("species") or "generic"
        env["AUGUSTUS_CONFIG_PATH"] = augustus_config(workdir / "augustus_config", species)
        if Path(AUGUSTUS_SCRIPTS).is_dir():
            env["PATH"] = f"{AUGUSTUS_SCRIPTS}{os.pathsep}{env.get('PATH', '')}"
    cmd = busco_command(sequences, lineage, mode, workdir, threads, augustus)
    if augustus and augustus_species:
        cmd += ["--augustus_species", augustus_species]
    log.info("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    finally:
        shutil.rmtree(workdir / "augustus_config", ignore_errors=True)
    log.info("BUSCO output:\n%s", proc.stdout[-20000:])
    summary = workdir / "run" / f"run_{lineage.name}" / "short_summary.json"
    if proc.returncode != 0 or not summary.is_file():
        raise QCError(
            f"BUSCO failed on {sequences} (exit {proc.returncode}); see {workdir}:\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    scores = busco_scores(summary, lineage.name, cfg["domain"], mode)
    _write_json(scores, out)
    return scores


def busco_scores(summary: str | Path, lineage: str, domain: str, mode: str) -> dict[str, Any]:
    """BUSCO percentages and counts from a ``short_summary.json``.

    Args:
        summary: BUSCO's short_summary.json.
        lineage: Lineage name.
        domain: Lineage domain.
        mode: BUSCO mode run.

    Returns:
        The scores.
    """
    data = json.loads(Path(summary).read_text())
    results = data["results"]
    scores: dict[str, Any] = {ours: float(results[theirs]) for ours, theirs in BUSCO_KEYS.items()}
    scores["n"] = int(results["n_markers"])
    scores["counts"] = {k: round(scores[k] * scores["n"] / 100) for k in BUSCO_KEYS if k != "n"}
    scores.update(
        summary=results["one_line_summary"],
        lineage=lineage,
        domain=domain,
        mode=mode,
        version=str(data.get("versions", {}).get("busco", "")),
    )
    return scores


# ----------------------------------------------------------------------------------------------- one genome, the gate


def _write_json(data: Mapping[str, Any], path: str | Path) -> None:
    """Write indented JSON atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask_mode(tmp)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


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
        repeat_method: "auto", "softmask" or "tantan".
        window: Window length of the genes-per-window count.

    Returns:
        The measures written.
    """
    timer = time.perf_counter()
    scan = scan_genome(fasta)
    result: dict[str, Any] = {"species": species, "fasta": str(fasta), "assembly": assembly_stats(scan)}
    result["annotation"] = annotation_stats(annotation, scan.lengths, window, fasta) if annotation else None
    result["repeats"] = repeat_fraction(fasta, scan, repeat_method)  # after the cheap checks of the annotation
    result["mash"] = {"reference": reference, **dict(mash or {})}
    if sketch and reference_sketch:
        result["mash"].update(mash_distance(reference_sketch, sketch))
    result["busco"] = json.loads(Path(busco).read_text()) if busco else {"skipped": busco_skipped}
    result["seconds"] = round(time.perf_counter() - timer, 3)
    _write_json(result, out)
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
