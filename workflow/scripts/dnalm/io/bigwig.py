"""bigWig tracks: opened and checked, copied or rewritten under new chromosome names."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from typing import Any

from dnalm.io.errors import InputError

#: Bases of a chromosome read at a time when a bigWig is rewritten.
BIGWIG_STEP = 10_000_000


def open_bigwig(path: str, source: str, error: type[InputError] = InputError) -> Any:
    """Open a bigWig for reading, checking that it is one.

    Args:
        path: The file.
        source: The input's source, named in errors.
        error: The error class to raise.

    Returns:
        The open ``pyBigWig`` reader; close it when done.

    Raises:
        InputError: An instance of ``error`` if ``path`` is not a readable bigWig.
    """
    import pyBigWig  # imported here: the QC environment (envs/qc.yaml) does not have it

    try:
        reader = pyBigWig.open(path)
    except RuntimeError as err:
        raise error(f"{source}: not a readable bigWig ({err}); check that the source is a bigWig track") from err
    if reader is None or not reader.isBigWig():
        raise error(f"{source}: not a bigWig file; check that the source is a bigWig track")
    return reader


def write_bigwig(
    path: str, target: str, rename: Callable[[str], str], source: str, error: type[InputError] = InputError
) -> int:
    """Copy a bigWig to ``target``, rewriting it only if a chromosome name changes.

    Args:
        path: The input bigWig.
        target: The file to write.
        rename: Maps a chromosome name to the name written.
        source: The input's source, named in errors.
        error: The error class to raise.

    Returns:
        The number of chromosomes.
    """
    reader = open_bigwig(path, source, error)
    try:
        chroms = reader.chroms()
        names = {name: rename(name) for name in chroms}
        if all(old == new for old, new in names.items()):
            shutil.copyfile(path, target)
        else:
            rewrite_bigwig(reader, target, names)
    finally:
        reader.close()
    return len(chroms)


def rewrite_bigwig(reader: Any, target: str, names: Mapping[str, str]) -> None:
    """Write the intervals of an open bigWig to ``target`` under new chromosome names.

    Args:
        reader: The open ``pyBigWig`` reader.
        target: The bigWig to write.
        names: Old chromosome name → new name, for every chromosome.
    """
    import pyBigWig

    chroms = reader.chroms()
    writer = pyBigWig.open(target, "w")
    try:
        writer.addHeader([(names[name], size) for name, size in chroms.items()])
        for name, size in chroms.items():
            for start in range(0, size, BIGWIG_STEP):
                end = min(start + BIGWIG_STEP, size)
                intervals = [iv for iv in reader.intervals(name, start, end) or () if iv[0] >= start]
                if intervals:
                    starts, ends, values = (list(column) for column in zip(*intervals, strict=True))
                    writer.addEntries([names[name]] * len(starts), starts, ends=ends, values=values)
    finally:
        writer.close()
