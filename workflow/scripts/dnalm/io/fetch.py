"""Fetching inputs: sources resolved, http(s) downloads retried, md5 checked, temporary files staged."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import io
import logging
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dnalm.io.errors import DownloadError
from dnalm.io.tables import umask_mode

log = logging.getLogger(__name__)

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
RETRY_STATUS = frozenset({429}) | frozenset(range(500, 600))
NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)
GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


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

    def corrupt(self, err: Exception) -> DownloadError:
        """The error for a truncated or corrupt gzip stream of this input."""
        return DownloadError(f"{self.source}: truncated or corrupt gzip from {self.resolved} ({err}); fetch it again")


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
        raise DownloadError("empty source: set the URL or path of this input in the config")
    if source.startswith(("http://", "https://")):
        return source
    path = local_path(source)
    candidates = [path] if os.path.isabs(path) else [os.path.join(d, path) for d in search_dirs]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    raise DownloadError(
        f"{source}: file not found; tried {', '.join(candidates) or 'no directories'}; "
        "fix the path in the config or put the file there"
    )


def local_path(source: str) -> str:
    """The path of a ``file:`` URL, or a plain path as it is.

    ``file:///abs/x``, ``file://localhost/abs/x`` and ``file:/abs/x`` (RFC 8089) give ``/abs/x``; ``file://rel/x``
    gives the relative path ``rel/x`` (dnalm's shorthand, as in the demo config). Percent escapes are kept as written.

    Args:
        source: A ``file:`` URL or a plain path.

    Returns:
        The path.
    """
    for prefix, keep in (("file://localhost/", "/"), ("file://", ""), ("file:/", "/")):
        if source.startswith(prefix):
            return keep + source.removeprefix(prefix)
    return source


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


def _download(url: str, path: str, retries: int, backoff: float, timeout: float) -> tuple[str, int]:
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
                raise DownloadError(f"{url}: HTTP {err.code} {err.reason}; check the URL in the config") from err
            problem: Exception = err
        except NETWORK_ERRORS as err:
            problem = err
        if attempt < retries:
            delay = backoff * 2**attempt
            log.warning("%s: attempt %d failed (%s); retrying in %.2f s", url, attempt + 1, problem, delay)
            time.sleep(delay)
    raise DownloadError(f"{url}: download failed after {retries + 1} attempts: {problem}") from problem


def _download_once(url: str, path: str, timeout: float) -> tuple[str, int]:
    """Stream ``url`` into ``path`` once and return its md5 and size."""
    digest = hashlib.md5()
    size = 0
    request = urllib.request.Request(url, headers={"User-Agent": "dnalm"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(path, "wb") as out:
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
        binary = gzip.open(raw.path, "rb") if raw.gzip else open(raw.path, "rb")  # noqa: SIM115 (closed by the wrapper)
        with io.TextIOWrapper(binary, encoding="utf-8") as text:
            for number, line in enumerate(text, start=1):
                yield number, line.rstrip("\r\n")
    except GZIP_ERRORS as err:
        raise raw.corrupt(err) from err
    except UnicodeDecodeError as err:
        raise DownloadError(
            f"{raw.source}: not a text file ({err}); check that the source is the right kind of input"
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
    except GZIP_ERRORS as err:
        raise raw.corrupt(err) from err
