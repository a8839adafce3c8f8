"""Fetch, verify, decompress and rename genome FASTA, annotation GFF3/GTF and bigWig inputs."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dnalm.io import umask_mode

log = logging.getLogger(__name__)

CHUNK = 1 << 20
FASTA_WIDTH = 60
GZIP_MAGIC = b"\x1f\x8b"
BIGWIG_STEP = 10_000_000
GFF_ESCAPE = str.maketrans({c: f"%{ord(c):02X}" for c in "%;=&,\t\n\r"})
GTF_ATTRIBUTE = re.compile(r'([^\s;]+)\s+(?:"([^"]*)"|([^;\s]+))')
GTF_FIRST_ATTRIBUTE = re.compile(r'\s*[^\s;"=]+\s+"[^"]*"\s*;')
GENE_TYPES = frozenset({"gene"})
TRANSCRIPT_TYPES = frozenset({"transcript", "mRNA"})
INTEGER = re.compile(r"-?[0-9]+")
RETRY_STATUS = frozenset({429}) | frozenset(range(500, 600))


class DownloadError(ValueError):
    """An input could not be fetched, verified or converted; the message names its source."""


@dataclass
class Raw:
    """Raw bytes of one input as fetched, before decompression.

    Attributes:
        source: The source as configured.
        resolved: The URL fetched or the absolute path read.
        path: Local file holding the raw bytes.
        md5: Hex md5 of the raw bytes.
        size: Number of raw bytes.
        gzip: Whether the raw bytes are gzip (or bgzip) compressed.
    """

    source: str
    resolved: str
    path: str
    md5: str
    size: int
    gzip: bool = False


@dataclass
class Staging:
    """Temporary files next to the outputs: moved into place on commit, removed otherwise.

    Attributes:
        pending: (temporary, final) pairs, moved in order on commit.
        scratch: Temporary files that are always removed.
    """

    pending: list[tuple[str, str]] = field(default_factory=list)
    scratch: list[str] = field(default_factory=list)

    def temp(self, final: str) -> str:
        """Create an empty temporary file in the directory of ``final`` and stage it.

        Args:
            final: The output path the temporary file will become.

        Returns:
            The temporary file's path.
        """
        path = _mktemp(os.path.dirname(os.path.abspath(final)), Path(final).name)
        self.pending.append((path, final))
        return path

    def scratch_file(self, directory: str, name: str) -> str:
        """Create an empty temporary file in ``directory`` that is removed at the end.

        Args:
            directory: Where to create it.
            name: A hint used in the file name.

        Returns:
            The temporary file's path.
        """
        path = _mktemp(directory, name)
        self.scratch.append(path)
        return path


def _mktemp(directory: str, name: str) -> str:
    """Create an empty, hidden temporary file in ``directory`` and return its path."""
    os.makedirs(directory, exist_ok=True)
    fd, path = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    umask_mode(path)
    return path


@contextlib.contextmanager
def staged() -> Iterator[Staging]:
    """Yield a Staging whose files are moved into place only if the block succeeds.

    Yields:
        The Staging to create temporary files with.
    """
    stage = Staging()
    try:
        yield stage
        for temp, final in stage.pending:
            os.replace(temp, final)
    except BaseException:
        for temp, _ in stage.pending:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temp)
        raise
    finally:
        for path in stage.scratch:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


class Renamer:
    """Map chromosome names through aliases, refusing two names that land on one target.

    Attributes:
        renamed: Source names that changed, mapped to their new names.
    """

    def __init__(self, aliases: Mapping[str, str] | None, source: str) -> None:
        """Check the aliases and set up an empty mapping.

        Args:
            aliases: Source chromosome name to normalised name.
            source: The input's source, named in errors.

        Raises:
            DownloadError: If an alias is empty or contains whitespace.
        """
        self.aliases = dict(aliases or {})
        self.source = source
        self.renamed: dict[str, str] = {}
        self._origin: dict[str, str] = {}
        for old, new in self.aliases.items():
            if not all(
                isinstance(n, str) and n and not re.search(r"\s", n) for n in (old, new)
            ):
                raise DownloadError(
                    f"{source}: alias {old!r} -> {new!r} is not a pair of non-empty names "
                    "without whitespace; fix `aliases` in the config"
                )

    def __call__(self, name: str) -> str:
        """Return the normalised name of ``name``.

        Args:
            name: A chromosome name as found in the input.

        Returns:
            Its alias, or the name itself.

        Raises:
            DownloadError: If another name in the input already maps to the same target.
        """
        new = self.aliases.get(name, name)
        first = self._origin.setdefault(new, name)
        if first != name:
            raise DownloadError(
                f"{self.source}: chromosome names {first!r} and {name!r} both become {new!r}; "
                "fix `aliases` in the config so that each name in this input has its own target"
            )
        if new != name:
            self.renamed[name] = new
        return new


def resolve(source: str, search_dirs: Sequence[str]) -> str:
    """Turn a configured source into a URL to fetch or an absolute local path.

    Args:
        source: An http(s) URL, a ``file://`` URL or a plain path.
        search_dirs: Directories in which relative paths are looked up, in order.

    Returns:
        The http(s) URL unchanged, or the absolute path of the first existing file.

    Raises:
        DownloadError: If the source is empty or no directory has the file.
    """
    if not source:
        raise DownloadError(
            "empty source: set the URL or path of this input in the config"
        )
    if source.startswith(("http://", "https://")):
        return source
    path = source[len("file://") :] if source.startswith("file://") else source
    if os.path.isabs(path):
        candidates = [path]
    else:
        candidates = [os.path.join(d, path) for d in search_dirs]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    raise DownloadError(
        f"{source}: file not found; tried {', '.join(candidates) or 'no directories'}; "
        "fix the path in the config or put the file there"
    )


def fetch(
    source: str,
    directory: str,
    stage: Staging,
    search_dirs: Sequence[str] = (".",),
    md5: str | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> Raw:
    """Fetch the raw bytes of a source and check their md5.

    URLs are downloaded to a scratch file in ``directory``; local files are read in place.

    Args:
        source: An http(s) URL, a ``file://`` URL or a plain path.
        directory: Where the scratch file of a download goes.
        stage: Owner of the scratch file.
        search_dirs: Directories in which relative paths are looked up, in order.
        md5: Expected hex md5 of the raw bytes, or None to skip the check.
        retries: Further attempts after a network error, 5xx or 429.
        backoff: Seconds before the first retry, doubled for each next one.
        timeout: Seconds to wait on the network before an attempt fails.

    Returns:
        The fetched bytes' location and checksum.

    Raises:
        DownloadError: If the source cannot be fetched or its md5 differs.
    """
    resolved = resolve(source, search_dirs)
    if resolved.startswith(("http://", "https://")):
        path = stage.scratch_file(directory, "download")
        digest, size = _download(resolved, path, retries, backoff, timeout)
    else:
        path = resolved
        digest, size = _md5_file(resolved)
    log.info("%s: %d bytes from %s, md5 %s", source, size, resolved, digest)
    if md5 is not None and md5.strip().lower() != digest:
        raise DownloadError(
            f"{source}: md5 mismatch for {resolved}: expected {md5.strip().lower()}, "
            f"observed {digest}; fix the md5 in the config or the source"
        )
    if md5 is not None:
        log.info("%s: md5 ok", source)
    with open(path, "rb") as handle:
        is_gzip = handle.read(2) == GZIP_MAGIC
    return Raw(source, resolved, path, digest, size, is_gzip)


def _md5_file(path: str) -> tuple[str, int]:
    """Return the hex md5 and size of a local file."""
    digest = hashlib.md5()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _download(
    url: str, path: str, retries: int, backoff: float, timeout: float
) -> tuple[str, int]:
    """Download ``url`` into ``path``, retrying network errors, 5xx and 429 with back-off.

    Args:
        url: The http(s) URL.
        path: The file to write (overwritten on each attempt).
        retries: Further attempts after a retryable failure.
        backoff: Seconds before the first retry, doubled each time.
        timeout: Socket timeout in seconds.

    Returns:
        The hex md5 and the number of bytes downloaded.

    Raises:
        DownloadError: On a 4xx other than 429, or when all attempts failed.
    """
    for attempt in range(retries + 1):
        try:
            return _download_once(url, path, timeout)
        except urllib.error.HTTPError as err:
            if err.code not in RETRY_STATUS:
                raise DownloadError(
                    f"{url}: HTTP {err.code} {err.reason}; check the URL in the config"
                ) from err
            problem: Exception = err
        except (
            urllib.error.URLError,
            http.client.HTTPException,
            ConnectionError,
            TimeoutError,
        ) as err:
            problem = err
        if attempt < retries:
            delay = backoff * 2**attempt
            log.warning(
                "%s: attempt %d failed (%s); retrying in %.2f s",
                url,
                attempt + 1,
                problem,
                delay,
            )
            time.sleep(delay)
    raise DownloadError(
        f"{url}: download failed after {retries + 1} attempts: {problem}"
    ) from problem


def _download_once(url: str, path: str, timeout: float) -> tuple[str, int]:
    """Stream ``url`` into ``path`` once and return its md5 and size."""
    digest = hashlib.md5()
    size = 0
    request = urllib.request.Request(url, headers={"User-Agent": "dnalm"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(
        path, "wb"
    ) as out:
        expected = response.headers.get("Content-Length")
        while chunk := response.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    if expected is not None and expected.isdigit() and int(expected) != size:
        raise http.client.IncompleteRead(b"", int(expected) - size)
    return digest.hexdigest(), size


def read_lines(raw: Raw) -> Iterator[tuple[int, str]]:
    """Yield numbered lines of the decompressed text, without line endings.

    Args:
        raw: The fetched input.

    Yields:
        (1-based line number, line) pairs.

    Raises:
        DownloadError: If the gzip stream is truncated or corrupt, or the text is not UTF-8.
    """
    try:
        binary = gzip.open(raw.path, "rb") if raw.gzip else open(raw.path, "rb")
        with io.TextIOWrapper(binary, encoding="utf-8") as text:
            for number, line in enumerate(text, start=1):
                yield number, line.rstrip("\r\n")
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DownloadError(
            f"{raw.source}: truncated or corrupt gzip from {raw.resolved} ({err}); fetch it again"
        ) from err
    except UnicodeDecodeError as err:
        raise DownloadError(
            f"{raw.source}: not a text file ({err}); "
            "check that the source is the right kind of input"
        ) from err


def decompress(raw: Raw, target: str) -> None:
    """Write the decompressed bytes of ``raw`` to ``target``.

    Args:
        raw: The fetched input.
        target: The file to write.

    Raises:
        DownloadError: If the gzip stream is truncated or corrupt.
    """
    try:
        with gzip.open(raw.path, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DownloadError(
            f"{raw.source}: truncated or corrupt gzip from {raw.resolved} ({err}); fetch it again"
        ) from err


def base_info(kind: str, raw: Raw, md5: str | None, renamed: Mapping[str, str]) -> dict:
    """Build the fields every info JSON has.

    Args:
        kind: "genome", "annotation" or "track".
        raw: The fetched input.
        md5: The configured md5, or None.
        renamed: Chromosome names that changed.

    Returns:
        The info dictionary.
    """
    return {
        "kind": kind,
        "source": raw.source,
        "resolved": raw.resolved,
        "md5": raw.md5,
        "md5_expected": md5.strip().lower() if md5 else None,
        "bytes": raw.size,
        "gzip": raw.gzip,
        "renamed": dict(renamed),
    }


def write_json(data: dict, path: str) -> None:
    """Write ``data`` as indented JSON to ``path``."""
    with open(path, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


def _log_renamed(source: str, renamed: Mapping[str, str]) -> None:
    """Log the chromosome names that changed."""
    if renamed:
        pairs = ", ".join(f"{old}->{new}" for old, new in renamed.items())
        log.info("%s: renamed %d chromosomes: %s", source, len(renamed), pairs)


# --- genome -------------------------------------------------------------------------------------


def prepare_genome(
    source: str,
    fasta: str,
    fai: str,
    info: str,
    md5: str | None = None,
    aliases: Mapping[str, str] | None = None,
    search_dirs: Sequence[str] = (".",),
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> dict:
    """Fetch a genome FASTA, rename its records and write it with its .fai and info JSON.

    Args:
        source: An http(s) URL, a ``file://`` URL or a plain path, gzip or plain.
        fasta: Output FASTA (decompressed, 60 bases a line).
        fai: Output samtools index of ``fasta``.
        info: Output info JSON.
        md5: Expected md5 of the raw bytes, or None.
        aliases: Source chromosome name to normalised name.
        search_dirs: Directories in which relative paths are looked up, in order.
        retries: Further download attempts after a network error, 5xx or 429.
        backoff: Seconds before the first retry, doubled each time.
        timeout: Network timeout in seconds.

    Returns:
        The info dictionary, with "sequences" and "length".

    Raises:
        DownloadError: If the source cannot be fetched, verified or parsed.
    """
    from pyfaidx import Fasta

    directory = os.path.dirname(os.path.abspath(fasta))
    with staged() as stage:
        raw = fetch(
            source, directory, stage, search_dirs, md5, retries, backoff, timeout
        )
        renamer = Renamer(aliases, source)
        temp_fasta = stage.temp(fasta)
        with open(temp_fasta, "w") as out:
            sequences, length = write_fasta(read_lines(raw), out, renamer, raw.source)
        stage.pending.append((temp_fasta + ".fai", fai))
        with Fasta(temp_fasta, rebuild=True):
            pass
        result = base_info("genome", raw, md5, renamer.renamed)
        result.update(sequences=sequences, length=length)
        write_json(result, stage.temp(info))
    _log_renamed(source, renamer.renamed)
    log.info("%s: %d sequences, %d bp -> %s", source, sequences, length, fasta)
    return result


def write_fasta(
    lines: Iterator[tuple[int, str]], out: io.TextIOBase, renamer: Renamer, source: str
) -> tuple[int, int]:
    """Copy FASTA records to ``out`` with renamed, single-token headers and 60-base lines.

    Args:
        lines: Numbered lines of the input FASTA.
        out: Text stream to write to.
        renamer: Chromosome name mapping.
        source: The input's source, named in errors.

    Returns:
        The number of records and their total length.

    Raises:
        DownloadError: On sequence before the first header, a header without a name,
            a duplicate name or no record at all.
    """
    names: set[str] = set()
    wrapper = LineWrapper(out)
    length = 0
    for number, line in lines:
        if line.startswith(">"):
            wrapper.flush()
            name = _fasta_name(line, number, source)
            new = renamer(name)
            if new in names:
                raise DownloadError(
                    f"{source}, line {number}: duplicate FASTA record {name!r}"
                )
            names.add(new)
            out.write(f">{new}\n")
        elif not names and line.strip():
            raise DownloadError(
                f"{source}, line {number}: sequence before the first '>' header; "
                "is this a FASTA file?"
            )
        else:
            bases = "".join(line.split())
            wrapper.add(bases)
            length += len(bases)
    wrapper.flush()
    if not names:
        raise DownloadError(f"{source}: no '>' record found; is this a FASTA file?")
    return len(names), length


def _fasta_name(header: str, number: int, source: str) -> str:
    """Return the first whitespace token of a FASTA header line, or raise if it has none."""
    tokens = header[1:].split(maxsplit=1)
    if not tokens:
        raise DownloadError(f"{source}, line {number}: FASTA header without a name")
    return tokens[0]


class LineWrapper:
    """Buffer sequence text and write it as lines of FASTA_WIDTH bases."""

    def __init__(self, out: io.TextIOBase, width: int = FASTA_WIDTH) -> None:
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
        self.out.writelines(
            f"{text[i : i + self.width]}\n" for i in range(0, cut, self.width)
        )
        rest = text[cut:]
        self.parts = [rest] if rest else []
        self.size = len(rest)


# --- annotation ---------------------------------------------------------------------------------


def prepare_annotation(
    source: str,
    gff3: str,
    info: str,
    md5: str | None = None,
    aliases: Mapping[str, str] | None = None,
    search_dirs: Sequence[str] = (".",),
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> dict:
    """Fetch a GFF3 or GTF annotation, rename its seqids and write it as GFF3 with an info JSON.

    Args:
        source: An http(s) URL, a ``file://`` URL or a plain path, gzip or plain.
        gff3: Output GFF3.
        info: Output info JSON.
        md5: Expected md5 of the raw bytes, or None.
        aliases: Source chromosome name to normalised name.
        search_dirs: Directories in which relative paths are looked up, in order.
        retries: Further download attempts after a network error, 5xx or 429.
        backoff: Seconds before the first retry, doubled each time.
        timeout: Network timeout in seconds.

    Returns:
        The info dictionary, with "features" and "format" ("gff3" or "gtf").

    Raises:
        DownloadError: If the source cannot be fetched or verified, or a line is malformed.
    """
    directory = os.path.dirname(os.path.abspath(gff3))
    with staged() as stage:
        raw = fetch(
            source, directory, stage, search_dirs, md5, retries, backoff, timeout
        )
        renamer = Renamer(aliases, source)
        is_gtf = detect_gtf(read_lines(raw))
        with open(stage.temp(gff3), "w") as out:
            out.write("##gff-version 3\n")
            if is_gtf:
                features = gtf_to_gff3(raw, out, renamer)
            else:
                features = copy_gff3(read_lines(raw), out, renamer, raw.source)
        result = base_info("annotation", raw, md5, renamer.renamed)
        result.update(features=features, format="gtf" if is_gtf else "gff3")
        write_json(result, stage.temp(info))
    _log_renamed(source, renamer.renamed)
    log.info("%s: %d features (%s) -> %s", source, features, result["format"], gff3)
    return result


def detect_gtf(lines: Iterator[tuple[int, str]]) -> bool:
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


def split_feature(line: str, number: int, source: str) -> list[str]:
    """Split a GFF/GTF feature line into its 9 columns and check the coordinates.

    Args:
        line: The line, without line ending.
        number: Its 1-based line number.
        source: The input's source, named in errors.

    Returns:
        The 9 columns.

    Raises:
        DownloadError: If the line does not have 9 columns or its coordinates are not integers.
    """
    fields = line.split("\t")
    if len(fields) != 9:
        raise DownloadError(
            f"{source}, line {number}: expected 9 tab-separated columns, "
            f"found {len(fields)}: {line[:80]!r}"
        )
    if not (_is_int(fields[3]) and _is_int(fields[4])):
        raise DownloadError(
            f"{source}, line {number}: start and end must be integers, "
            f"found {fields[3]!r} and {fields[4]!r}"
        )
    return fields


def _is_int(text: str) -> bool:
    """Tell whether ``text`` is a plain decimal integer."""
    return INTEGER.fullmatch(text.strip()) is not None


def copy_gff3(
    lines: Iterator[tuple[int, str]], out: io.TextIOBase, renamer: Renamer, source: str
) -> int:
    """Copy GFF3 feature lines to ``out`` with renamed seqids.

    The input's own ``##gff-version`` line and any ``##FASTA`` section are dropped.

    Args:
        lines: Numbered lines of the GFF3.
        out: Text stream to write to.
        renamer: Chromosome name mapping.
        source: The input's source, named in errors.

    Returns:
        The number of features written.
    """
    features = 0
    for number, line in lines:
        if line.startswith("##FASTA"):
            break
        if not line.strip() or line.startswith("##gff-version"):
            continue
        if line.startswith("##sequence-region"):
            parts = line.split()
            if len(parts) >= 2:
                parts[1] = renamer(parts[1])
            out.write(" ".join(parts) + "\n")
        elif line.startswith("#"):
            out.write(line + "\n")
        else:
            fields = split_feature(line, number, source)
            fields[0] = renamer(fields[0])
            out.write("\t".join(fields) + "\n")
            features += 1
    return features


@dataclass
class Span:
    """Extent of a gene or transcript inferred from its GTF records.

    Attributes:
        fields: The first record's 9 columns (seqid, source and strand are reused).
        start: Smallest start.
        end: Largest end.
        attributes: Gene- or transcript-level attributes of the first record.
    """

    fields: list[str]
    start: int
    end: int
    attributes: list[tuple[str, str]]

    def extend(self, start: int, end: int) -> None:
        """Grow the span to include [start, end]."""
        self.start = min(self.start, start)
        self.end = max(self.end, end)


@dataclass
class GtfIndex:
    """What the first pass over a GTF learns: explicit parents and inferred spans.

    Attributes:
        genes: gene_ids that have a gene line.
        transcripts: transcript_ids that have a transcript or mRNA line.
        gene_spans: Extent of every gene_id over all its records.
        transcript_spans: Extent of every transcript_id over all its records.
    """

    genes: set[str] = field(default_factory=set)
    transcripts: set[str] = field(default_factory=set)
    gene_spans: dict[str, Span] = field(default_factory=dict)
    transcript_spans: dict[str, Span] = field(default_factory=dict)


def parse_gtf_attributes(text: str) -> list[tuple[str, str]]:
    """Parse GTF attributes (``key "value"; key 1;``) into ordered (key, value) pairs.

    Args:
        text: Column 9 of a GTF line.

    Returns:
        The pairs in order; repeated keys appear repeatedly.
    """
    return [
        (key, quoted if quoted or not bare else bare)
        for key, quoted, bare in GTF_ATTRIBUTE.findall(text)
    ]


def _gtf_records(
    raw: Raw,
) -> Iterator[tuple[int, list[str], dict[str, str], list[tuple[str, str]]]]:
    """Yield (line number, columns, first value per key, attribute pairs) for each GTF feature.

    Raises:
        DownloadError: If a line is malformed or lacks a gene_id.
    """
    for number, line in read_lines(raw):
        if not line.strip() or line.startswith("#"):
            continue
        fields = split_feature(line, number, raw.source)
        pairs = parse_gtf_attributes(fields[8])
        keys: dict[str, str] = {}
        for key, value in pairs:
            keys.setdefault(key, value)
        if "gene_id" not in keys:
            raise DownloadError(
                f"{raw.source}, line {number}: GTF record without a gene_id attribute"
            )
        yield number, fields, keys, pairs


def index_gtf(raw: Raw) -> GtfIndex:
    """First pass over a GTF: find explicit genes and transcripts and the span of every one.

    Args:
        raw: The fetched GTF.

    Returns:
        The index.
    """
    index = GtfIndex()
    for _, fields, keys, pairs in _gtf_records(raw):
        start, end = int(fields[3]), int(fields[4])
        gene, transcript = keys["gene_id"], keys.get("transcript_id")
        if fields[2] in GENE_TYPES:
            index.genes.add(gene)
        elif fields[2] in TRANSCRIPT_TYPES and transcript:
            index.transcripts.add(transcript)
        _extend(index.gene_spans, gene, fields, start, end, pairs, ("gene_",))
        if transcript:
            _extend(
                index.transcript_spans,
                transcript,
                fields,
                start,
                end,
                pairs,
                ("gene_", "transcript_"),
            )
    return index


def _extend(
    spans: dict[str, Span],
    key: str,
    fields: list[str],
    start: int,
    end: int,
    pairs: list[tuple[str, str]],
    prefixes: tuple[str, ...],
) -> None:
    """Add [start, end] to the span of ``key``, creating it from this record if new."""
    if key in spans:
        spans[key].extend(start, end)
    else:
        kept = [(k, v) for k, v in pairs if k.startswith(prefixes)]
        spans[key] = Span(fields[:], start, end, kept)


def gtf_to_gff3(raw: Raw, out: io.TextIOBase, renamer: Renamer) -> int:
    """Convert a GTF to GFF3 feature lines, synthesising missing gene and transcript lines.

    Args:
        raw: The fetched GTF (read twice: once to index, once to write).
        out: Text stream to write to.
        renamer: Chromosome name mapping.

    Returns:
        The number of features written.
    """
    index = index_gtf(raw)
    done: set[str] = set()
    features = 0
    for _, fields, keys, pairs in _gtf_records(raw):
        gene, transcript = keys["gene_id"], keys.get("transcript_id")
        for kind, name, explicit, spans in (
            ("gene", gene, index.genes, index.gene_spans),
            ("transcript", transcript, index.transcripts, index.transcript_spans),
        ):
            if name and name not in explicit and f"{kind}:{name}" not in done:
                done.add(f"{kind}:{name}")
                out.write(_synthesised_line(kind, spans[name], keys, renamer))
                features += 1
        fields[0] = renamer(fields[0])
        fields[8] = gff3_attributes(_gtf_ids(fields[2], gene, transcript) + pairs)
        out.write("\t".join(fields) + "\n")
        features += 1
    return features


def _gtf_ids(feature: str, gene: str, transcript: str | None) -> list[tuple[str, str]]:
    """Return the GFF3 ID/Parent pairs of a GTF record."""
    if feature in GENE_TYPES:
        return [("ID", f"gene:{gene}")]
    if feature in TRANSCRIPT_TYPES and transcript:
        return [("ID", f"transcript:{transcript}"), ("Parent", f"gene:{gene}")]
    if transcript:
        return [("Parent", f"transcript:{transcript}")]
    return [("Parent", f"gene:{gene}")]


def _synthesised_line(
    kind: str, span: Span, keys: Mapping[str, str], renamer: Renamer
) -> str:
    """Return a GFF3 gene or transcript line covering ``span``."""
    gene = keys["gene_id"]
    ids = _gtf_ids(kind, gene, keys.get("transcript_id"))
    fields = [
        renamer(span.fields[0]),
        span.fields[1],
        kind,
        str(span.start),
        str(span.end),
        ".",
        span.fields[6],
        ".",
    ]
    return "\t".join([*fields, gff3_attributes(ids + span.attributes)]) + "\n"


def gff3_attributes(pairs: list[tuple[str, str]]) -> str:
    """Format (key, value) pairs as a GFF3 column 9, joining repeated keys with commas.

    Args:
        pairs: Attribute pairs in order.

    Returns:
        ``key=value;key=v1,v2`` with ``%;=&,`` and control characters URL-escaped.
    """
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key.translate(GFF_ESCAPE), []).append(
            value.translate(GFF_ESCAPE)
        )
    return (
        ";".join(f"{key}={','.join(values)}" for key, values in grouped.items()) or "."
    )


# --- track --------------------------------------------------------------------------------------


def prepare_track(
    source: str,
    bigwig: str,
    info: str,
    md5: str | None = None,
    aliases: Mapping[str, str] | None = None,
    search_dirs: Sequence[str] = (".",),
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> dict:
    """Fetch a bigWig track, rename its chromosomes and write it with an info JSON.

    Args:
        source: An http(s) URL, a ``file://`` URL or a plain path (gzip is undone).
        bigwig: Output bigWig.
        info: Output info JSON.
        md5: Expected md5 of the raw bytes, or None.
        aliases: Source chromosome name to normalised name.
        search_dirs: Directories in which relative paths are looked up, in order.
        retries: Further download attempts after a network error, 5xx or 429.
        backoff: Seconds before the first retry, doubled each time.
        timeout: Network timeout in seconds.

    Returns:
        The info dictionary, with "chroms".

    Raises:
        DownloadError: If the source cannot be fetched or verified, or is not a bigWig.
    """
    directory = os.path.dirname(os.path.abspath(bigwig))
    with staged() as stage:
        raw = fetch(
            source, directory, stage, search_dirs, md5, retries, backoff, timeout
        )
        plain = raw.path
        if raw.gzip:
            plain = stage.scratch_file(directory, "bigwig")
            decompress(raw, plain)
        renamer = Renamer(aliases, source)
        chroms = write_bigwig(plain, stage.temp(bigwig), renamer, source)
        result = base_info("track", raw, md5, renamer.renamed)
        result.update(chroms=chroms)
        write_json(result, stage.temp(info))
    _log_renamed(source, renamer.renamed)
    log.info("%s: %d chromosomes -> %s", source, chroms, bigwig)
    return result


def write_bigwig(path: str, target: str, renamer: Renamer, source: str) -> int:
    """Copy a bigWig to ``target``, rewriting it only if a chromosome name changes.

    Args:
        path: The input bigWig.
        target: The file to write.
        renamer: Chromosome name mapping.
        source: The input's source, named in errors.

    Returns:
        The number of chromosomes.

    Raises:
        DownloadError: If ``path`` is not a readable bigWig.
    """
    import pyBigWig

    try:
        reader = pyBigWig.open(path)
    except RuntimeError as err:
        raise DownloadError(f"{source}: not a readable bigWig ({err})") from err
    if reader is None or not reader.isBigWig():
        raise DownloadError(
            f"{source}: not a bigWig file; check that the source is a bigWig track"
        )
    try:
        chroms = reader.chroms()
        names = {name: renamer(name) for name in chroms}
        if names == {name: name for name in chroms}:
            shutil.copyfile(path, target)
        else:
            _rewrite_bigwig(reader, target, names)
    finally:
        reader.close()
    return len(chroms)


def _rewrite_bigwig(reader, target: str, names: Mapping[str, str]) -> None:
    """Write the intervals of an open bigWig to ``target`` under new chromosome names."""
    import pyBigWig

    chroms = reader.chroms()
    writer = pyBigWig.open(target, "w")
    try:
        writer.addHeader([(names[name], size) for name, size in chroms.items()])
        for name, size in chroms.items():
            for start in range(0, size, BIGWIG_STEP):
                intervals = [
                    iv
                    for iv in reader.intervals(
                        name, start, min(start + BIGWIG_STEP, size)
                    )
                    or ()
                    if iv[0] >= start
                ]
                if intervals:
                    starts, ends, values = zip(*intervals)
                    writer.addEntries(
                        [names[name]] * len(starts),
                        list(starts),
                        ends=list(ends),
                        values=list(values),
                    )
    finally:
        writer.close()
