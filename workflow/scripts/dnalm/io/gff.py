"""GFF3 and GTF annotations: feature lines checked, attributes parsed, seqids renamed, GTF → GFF3 by gffread."""

from __future__ import annotations

import logging
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from dnalm.io.errors import InputError, require
from dnalm.io.tables import numbered_lines

log = logging.getLogger(__name__)

GFF_ESCAPE = str.maketrans({c: f"%{ord(c):02X}" for c in "%;=&,\t\n\r"})
GTF_ATTRIBUTE = re.compile(r'([^\s;]+)\s+(?:"([^"]*)"|([^;\s]+))')
GTF_FIRST_ATTRIBUTE = re.compile(r'\s*[^\s;"=]+\s+"[^"]*"\s*;')
GENE_TYPES = frozenset({"gene"})
COORDINATE = re.compile(r"[0-9]+")
#: gffread: GFF3 out, all attributes kept where they are, gene lines kept (and made for transcripts without one).
GFFREAD = ("gffread", "-F", "--keep-exon-attrs", "--keep-genes")
#: Line numbers of reversed features listed in errors and the info JSON.
LISTED = 20

Lines = Iterable[tuple[int, str]]


def gff_lines(lines: Lines) -> Iterator[tuple[int, str]]:
    """Numbered non-blank lines of a GFF3 or GTF, up to a ``##FASTA`` section."""
    for number, line in lines:
        if line.startswith("##FASTA"):
            return
        if line.strip():
            yield number, line


def split_feature(line: str, number: int, source: str, error: type[InputError] = InputError) -> list[str]:
    """Split a GFF/GTF feature line into its 9 columns and check the coordinates.

    Args:
        line: The line, without line ending.
        number: Its 1-based line number.
        source: The file or source, named in errors.
        error: The error class to raise.

    Returns:
        The 9 columns.

    Raises:
        InputError: An instance of ``error`` if the line does not have 9 columns or its start and end are not
            non-negative integers.
    """
    fields = line.split("\t")
    if len(fields) != 9:
        raise error(f"{source}, line {number}: expected 9 tab-separated columns, found {len(fields)}: {line[:80]!r}")
    if not (COORDINATE.fullmatch(fields[3]) and COORDINATE.fullmatch(fields[4])):
        raise error(f"{source}, line {number}: start and end must be integers, found {fields[3]!r} and {fields[4]!r}")
    return fields


def feature_lines(lines: Lines, source: str, error: type[InputError] = InputError) -> Iterator[tuple[int, list[str]]]:
    """Yield the checked feature lines of a GFF3 or GTF, passing over comments and stopping at ``##FASTA``.

    Args:
        lines: (line number, line) pairs.
        source: The file or source, named in errors.
        error: The error class to raise.

    Yields:
        (line number, 9 columns) pairs.
    """
    for number, line in gff_lines(lines):
        if not line.startswith("#"):
            yield number, split_feature(line, number, source, error)


def listed(lines: Sequence[int]) -> str:
    """The first `LISTED` line numbers, and how many more there are."""
    more = f" and {len(lines) - LISTED} more" if len(lines) > LISTED else ""
    return ", ".join(map(str, lines[:LISTED])) + more


@dataclass
class ReversedFeatures:
    """Feature lines whose start is after their end: left out of the stored GFF3 (GFF3 wants start <= end, and
    gffread would swap them), counted and reported.

    Attributes:
        source: The annotation's source, named in messages.
        lines: Their 1-based line numbers in the input.
    """

    source: str
    lines: list[int] = field(default_factory=list)

    def found(self, number: int, fields: list[str]) -> bool:
        """Tell whether a feature line (its number and 9 columns) is reversed, noting it if so."""
        if int(fields[3]) > int(fields[4]):
            self.lines.append(number)
            return True
        return False

    def check(self, kept: int, error: type[InputError] = InputError) -> None:
        """Refuse the annotation if every feature was reversed, and log those left out.

        Args:
            kept: Features kept.
            error: The error class to raise.

        Raises:
            InputError: An instance of ``error`` if no feature is kept and some were reversed.
        """
        if not self.lines:
            return
        if not kept:
            raise error(
                f"{self.source}: every feature ({len(self.lines)}) has its start after its end (lines "
                f"{listed(self.lines)}); are columns 4 and 5 swapped? fix the file, or check its source in the config"
            )
        log.warning(
            "%s: %d features with start > end left out (lines %s)", self.source, len(self.lines), listed(self.lines)
        )

    def info(self) -> dict[str, Any]:
        """Their count and first line numbers, for the info JSON."""
        return {"count": len(self.lines), "lines": self.lines[:LISTED]}


def read_features(path: str | Path, error: type[InputError] = InputError) -> Iterator[tuple[int, list[str]]]:
    """Yield the checked feature lines of a plain-text GFF3 file, as `feature_lines` does."""
    return feature_lines(numbered_lines(path), str(path), error)


def parse_attributes(text: str) -> dict[str, list[str]]:
    """Parse GFF3 column 9 into key → values (comma-separated values split, escapes kept).

    Args:
        text: Column 9 of a GFF3 line.

    Returns:
        The attributes; a part without ``=`` is passed over.
    """
    out: dict[str, list[str]] = {}
    for part in text.strip().split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.strip()] = value.split(",")
    return out


def is_gtf(lines: Lines) -> bool:
    """Tell whether an annotation is GTF from its first feature line.

    Args:
        lines: Numbered lines of the annotation.

    Returns:
        True if the first feature line has 9 columns and GTF-style ``key "value";`` attributes.
    """
    for _, line in lines:
        if line.strip() and not line.startswith("#"):
            fields = line.split("\t")
            return len(fields) == 9 and GTF_FIRST_ATTRIBUTE.match(fields[8]) is not None
    return False


def copy_gff3(
    lines: Lines,
    out: TextIO,
    rename: Callable[[str], str],
    skipped: ReversedFeatures,
    error: type[InputError] = InputError,
) -> int:
    """Copy GFF3 lines to ``out`` with renamed seqids, leaving out features whose start is after their end.

    The input's own ``##gff-version`` line and any ``##FASTA`` section are dropped; other comments are kept.

    Args:
        lines: Numbered lines of the GFF3.
        out: Text stream to write to.
        rename: Maps a seqid to the name written.
        skipped: Collects the reversed features; its source is named in errors.
        error: The error class to raise.

    Returns:
        The number of features written.
    """
    features = 0
    for number, line in gff_lines(lines):
        if line.startswith("##gff-version"):
            continue
        if line.startswith("##sequence-region"):
            parts = line.split()
            parts[1:2] = [rename(name) for name in parts[1:2]]
            line = " ".join(parts)
        elif not line.startswith("#"):
            fields = split_feature(line, number, skipped.source, error)
            if skipped.found(number, fields):
                continue
            line = "\t".join([rename(fields[0]), *fields[1:]])
            features += 1
        out.write(line + "\n")
    return features


def parse_gtf_attributes(text: str) -> list[tuple[str, str]]:
    """Parse GTF attributes (``key "value"; key 1;``) into ordered (key, value) pairs.

    Args:
        text: Column 9 of a GTF line.

    Returns:
        The pairs in order; repeated keys appear repeatedly.
    """
    return [(key, quoted if quoted or not bare else bare) for key, quoted, bare in GTF_ATTRIBUTE.findall(text)]


def escaped_gtf_attributes(pairs: list[tuple[str, str]]) -> str:
    """Format GTF attributes with GFF3 escapes, the values of a repeated key joined by commas.

    gffread copies attribute values as they are and keeps only the last value of a repeated key: escaping the
    values it is given (``%;=&,`` and control characters) and joining repeated keys first makes its GFF3 valid
    and complete.

    Args:
        pairs: Attribute pairs in order.

    Returns:
        ``key "value"; key "v1,v2";`` with the keys and values escaped.
    """
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key.translate(GFF_ESCAPE), []).append(value.translate(GFF_ESCAPE))
    return " ".join(f'{key} "{",".join(values)}";' for key, values in grouped.items())


def _gffread_input(
    lines: Lines, out: TextIO, rename: Callable[[str], str], skipped: ReversedFeatures, error: type[InputError]
) -> None:
    """Check the GTF records (malformed, no gene_id, no transcript_id on a line other than a gene line: gffread
    would drop it) and write them for gffread with renamed seqids and escaped attributes, leaving out reversed ones;
    arguments as `gtf_to_gff3`.
    """
    source = skipped.source
    for number, fields in feature_lines(lines, source, error):
        pairs = parse_gtf_attributes(fields[8])
        keys = {key for key, value in pairs if value}
        if "gene_id" not in keys:
            raise error(f"{source}, line {number}: GTF record without a gene_id attribute; every GTF record needs one")
        if "transcript_id" not in keys and fields[2] not in GENE_TYPES:
            raise error(
                f"{source}, line {number}: GTF {fields[2]} record without a transcript_id attribute; only gene "
                "lines may lack one: add it, or give the annotation as GFF3"
            )
        if not skipped.found(number, fields):
            out.write("\t".join([rename(fields[0]), *fields[1:8], escaped_gtf_attributes(pairs)]) + "\n")


def prefixed_ids(fields: list[str]) -> str:
    """Column 9 of a gffread GFF3 line with ``gene:`` and ``transcript:`` prefixes on ID and Parent, quotes removed.

    gffread names a gene by its gene_id and a transcript by its transcript_id, so the two clash where a GTF uses
    one name for both; the prefixes keep them apart.

    Args:
        fields: The 9 columns of a line written by gffread.

    Returns:
        The new column 9.
    """
    attrs = {}
    for key, value in (part.split("=", 1) for part in fields[8].split(";") if "=" in part):
        attrs[key] = value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value
    if "ID" in attrs:
        attrs["ID"] = f"{'gene' if fields[2] in GENE_TYPES else 'transcript'}:{attrs['ID']}"
    if "Parent" in attrs:
        attrs["Parent"] = f"{'gene' if 'ID' in attrs else 'transcript'}:{attrs['Parent']}"
    return ";".join(f"{key}={value}" for key, value in attrs.items())


def run_gffread(gtf: str, gff3: str, source: str, error: type[InputError] = InputError) -> str:
    """Convert a GTF file to GFF3 with gffread.

    Args:
        gtf: The GTF, as `_gffread_input` wrote it.
        gff3: The GFF3 to write.
        source: The annotation's source, named in errors.
        error: The error class to raise.

    Returns:
        gffread's version.

    Raises:
        InputError: An instance of ``error`` if gffread is missing or fails.
    """
    require("gffread", error)
    proc = subprocess.run([*GFFREAD, "-o", gff3, gtf], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise error(f"{source}: gffread failed (exit {proc.returncode}) converting the GTF: {proc.stderr[-2000:]}")
    if proc.stderr.strip():
        log.warning("%s: gffread says: %s", source, proc.stderr.strip()[-2000:])
    return subprocess.run(["gffread", "--version"], capture_output=True, text=True, check=False).stdout.strip()


def gtf_to_gff3(
    lines: Lines,
    out: TextIO,
    rename: Callable[[str], str],
    skipped: ReversedFeatures,
    workdir: str,
    error: type[InputError] = InputError,
) -> tuple[int, str]:
    """Convert a GTF to GFF3 feature lines with gffread (which makes missing gene and transcript lines).

    Args:
        lines: Numbered lines of the GTF.
        out: Text stream to write to (after the ``##gff-version`` line).
        rename: Maps a seqid to the name written.
        skipped: Collects the records whose start is after their end (left out); its source is named in errors.
        workdir: Where the temporary directory of gffread's input and output is made (and removed).
        error: The error class to raise.

    Returns:
        The number of features written and gffread's version.
    """
    source = skipped.source
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".gffread.") as tmp:
        gtf, gff3 = f"{tmp}/in.gtf", f"{tmp}/out.gff3"
        with open(gtf, "w") as handle:
            _gffread_input(lines, handle, rename, skipped, error)
        version = run_gffread(gtf, gff3, source, error)
        features = 0
        for _, fields in feature_lines(numbered_lines(gff3), f"gffread output of {source}", error):
            out.write("\t".join([*fields[:8], prefixed_ids(fields)]) + "\n")
            features += 1
    return features, version
