"""FASTA files: records read and checked, rewritten with renamed headers and wrapped lines, and the pyfaidx cache."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Self, TextIO

from dnalm.io.errors import InputError
from dnalm.io.tables import numbered_lines

if TYPE_CHECKING:  # pyfaidx is imported where it is used: the QC environment (envs/qc.yaml) does not have it
    import pyfaidx

FASTA_WIDTH = 60


def header_name(line: str, number: int, source: str, error: type[InputError] = InputError) -> str:
    """Return the first word of a FASTA header line.

    Args:
        line: The header line, starting with ``>``.
        number: Its 1-based line number.
        source: The file or source, named in errors.
        error: The error class to raise.

    Returns:
        The record's name.

    Raises:
        InputError: An instance of ``error`` if the header has no name.
    """
    words = line[1:].split(maxsplit=1)
    if not words:
        raise error(f"{source}, line {number}: FASTA header without a name")
    return words[0]


def parse_fasta(
    lines: Iterable[tuple[int, str]], source: str, error: type[InputError] = InputError
) -> Iterator[tuple[int, str | None, str]]:
    """Walk the lines of a FASTA, checking that it has records with unique names.

    Args:
        lines: (line number, line) pairs.
        source: The file or source, named in errors.
        error: The error class to raise.

    Yields:
        (line number, name, "") for a header, (line number, None, bases) for a sequence line (whitespace removed);
        blank lines are passed over.

    Raises:
        InputError: An instance of ``error`` on sequence before the first header, a header without a name, a name
            seen before, or no record at all.
    """
    seen: set[str] = set()
    for number, line in lines:
        if line.startswith(">"):
            name = header_name(line, number, source, error)
            if name in seen:
                raise error(f"{source}, line {number}: duplicate FASTA record {name!r}; every record needs its own name")
            seen.add(name)
            yield number, name, ""
        elif line.strip():
            if not seen:
                raise error(f"{source}, line {number}: sequence before the first '>' header; is this a FASTA file?")
            yield number, None, "".join(line.split())
    if not seen:
        raise error(f"{source}: empty FASTA (no '>' record); is this a FASTA file? check its source in the config")


def read_fasta(path: str | Path, error: type[InputError] = InputError) -> Iterator[tuple[str, bytes]]:
    """Yield the records of a plain-text FASTA file, checked as `parse_fasta` does.

    Args:
        path: The FASTA file.
        error: The error class to raise.

    Yields:
        (name, sequence) pairs; the sequence keeps its case and is given as bytes (read as latin-1, so any byte
        comes back as itself).
    """
    name, parts = None, []
    for _, header, bases in parse_fasta(numbered_lines(path, "latin-1"), str(path), error):
        if header is None:
            parts.append(bases)
            continue
        if name is not None:
            yield name, "".join(parts).encode("latin-1")
        name, parts = header, []
    if name is not None:
        yield name, "".join(parts).encode("latin-1")


def write_fasta(
    lines: Iterable[tuple[int, str]],
    out: TextIO,
    rename: Callable[[str], str],
    source: str,
    error: type[InputError] = InputError,
) -> tuple[int, int]:
    """Copy FASTA records to ``out`` with renamed, single-word headers and `FASTA_WIDTH`-base lines.

    Args:
        lines: Numbered lines of the input FASTA.
        out: Text stream to write to.
        rename: Maps a record's name to the name written.
        source: The input's source, named in errors.
        error: The error class to raise.

    Returns:
        The number of records and their total length.

    Raises:
        InputError: An instance of ``error`` as `parse_fasta` raises it, or naming the records without sequence.
    """
    wrapper = LineWrapper(out)
    records = length = 0
    empty: list[tuple[str, int]] = []
    current: tuple[str, int] | None = None
    for number, name, bases in parse_fasta(lines, source, error):
        if name is None:
            wrapper.add(bases)
            length += len(bases)
            current = None
            continue
        if current:
            empty.append(current)  # the previous record had no sequence line
        wrapper.flush()
        out.write(f">{rename(name)}\n")
        records += 1
        current = (name, number)
    wrapper.flush()
    if current:
        empty.append(current)
    check_no_empty_records(empty, source, error)
    return records, length


def check_no_empty_records(empty: list[tuple[str, int]], source: str, error: type[InputError] = InputError) -> None:
    """Refuse FASTA records without sequence, naming them.

    Args:
        empty: (name, line number of the header) of each record without sequence.
        source: The input's source, named in errors.
        error: The error class to raise.

    Raises:
        InputError: An instance of ``error`` listing up to 10 of the records, if there are any.
    """
    if not empty:
        return
    listed = ", ".join(f"{name!r} (line {number})" for name, number in empty[:10])
    more = f" and {len(empty) - 10} more" if len(empty) > 10 else ""
    raise error(
        f"{source}: {len(empty)} FASTA record(s) without sequence: {listed}{more}; a header-only FASTA is often a "
        "truncated or wrong download: fetch it again, or remove these records"
    )


class LineWrapper:
    """Buffer sequence text and write it as lines of a fixed number of bases."""

    def __init__(self, out: TextIO, width: int = FASTA_WIDTH) -> None:
        """Set up an empty buffer.

        Args:
            out: Text stream to write to.
            width: Bases per line.
        """
        self.out = out
        self.width = width
        self.parts: list[str] = []
        self.size = 0

    def add(self, bases: str) -> None:
        """Append bases, writing out whole lines once enough are buffered."""
        self.parts.append(bases)
        self.size += len(bases)
        if self.size >= self.width * 1000:
            self._write(final=False)

    def flush(self) -> None:
        """Write everything buffered, the last line possibly short."""
        self._write(final=True)

    def _write(self, final: bool) -> None:
        """Write whole lines (and the remainder if ``final``) and keep the rest buffered."""
        text = "".join(self.parts)
        cut = len(text) if final else len(text) - len(text) % self.width
        self.out.writelines(f"{text[i : i + self.width]}\n" for i in range(0, cut, self.width))
        rest = text[cut:]
        self.parts = [rest] if rest else []
        self.size = len(rest)


def index_fasta(path: str | Path) -> None:
    """Write (or rewrite) the samtools-style ``.fai`` index next to a FASTA file."""
    import pyfaidx

    with pyfaidx.Fasta(str(path), rebuild=True):
        pass


def open_fasta(path: str | Path) -> pyfaidx.Fasta:
    """Open an indexed FASTA for random access: sequences come back as upper-case strings.

    Args:
        path: The FASTA file (its ``.fai`` is made if missing).

    Returns:
        The open ``pyfaidx.Fasta``; close it (or use it in a ``with`` block) when done.
    """
    import pyfaidx

    return pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=True)


class FastaCache:
    """FASTAs opened lazily by `open_fasta`, one handle per path, closed together.

    Attributes:
        handles: Path → open FASTA.
    """

    def __init__(self) -> None:
        """Start with no FASTA open."""
        self.handles: dict[str, pyfaidx.Fasta] = {}

    def get(self, path: str | Path) -> pyfaidx.Fasta:
        """Return the open FASTA of ``path``, opening it the first time."""
        key = str(path)
        if key not in self.handles:
            self.handles[key] = open_fasta(key)
        return self.handles[key]

    def seq(self, path: str | Path, chrom: str, start: int, end: int) -> str:
        """Return the upper-case sequence of ``chrom[start:end]`` (0-based, half-open) in ``path``."""
        return self.get(path)[chrom][start:end]

    def close(self) -> None:
        """Close every open FASTA."""
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()

    def __enter__(self) -> Self:
        """Use the cache in a ``with`` block that closes it."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close every open FASTA."""
        self.close()
