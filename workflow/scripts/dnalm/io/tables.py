"""Plain files: FASTA indexes, numbered text lines, atomic TSV and JSON writes, file modes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd


def read_fai(fai: str | Path) -> dict[str, int]:
    """Read chromosome lengths from a FASTA index.

    Args:
        fai: Path of a `.fai` file.

    Returns:
        Chromosome name → length, in file order.
    """
    sizes = {}
    with open(fai) as handle:
        for line in handle:
            name, length = line.split("\t")[:2]
            sizes[name] = int(length)
    return sizes


def numbered_lines(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield the lines of a plain text file with their numbers.

    Args:
        path: The file.
        encoding: Its encoding (``latin-1`` reads any bytes).

    Yields:
        (1-based line number, line without its line ending) pairs.
    """
    with open(path, encoding=encoding) as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip("\r\n")


def write_tsv(table: pd.DataFrame, path: str | Path) -> None:
    """Write a table as TSV atomically (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_csv(tmp, sep="\t", index=False)
    tmp.replace(path)


def write_json(data: Mapping[str, Any], path: str | Path) -> None:
    """Write indented JSON atomically (temp file, then rename), creating the directory.

    Args:
        data: JSON-serialisable mapping.
        path: Output file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask_mode(tmp)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def umask_mode(path: str | Path) -> None:
    """Give a file made by `tempfile.mkstemp` (mode 0600) the mode a normal `open` would have under the umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
