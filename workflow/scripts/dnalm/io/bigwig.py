"""bigWig tracks: read whole once in a child process, compared with the genome, copied or rewritten."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dnalm.io.bigwig_check import PROGRESS
from dnalm.io.errors import InputError

log = logging.getLogger(__name__)

#: Bases of a chromosome read at a time when a bigWig is rewritten.
BIGWIG_STEP = 10_000_000
#: The directory holding the dnalm package, put on the checking child's PYTHONPATH (Snakemake puts it on the
#: path of its scripts only).
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def check_bigwig(path: str, source: str, error: type[InputError] = InputError) -> dict[str, int]:
    """Read a whole bigWig once, in a child process, and return its chromosome sizes.

    The child (`dnalm.io.bigwig_check`) reads the header, the chromosome list, every data block and every zoom level
    with pybigtools, then every chromosome's intervals with pyBigWig (the reader of the later rules). Both readers can
    crash on a damaged file (pyBigWig with SIGSEGV, pybigtools by aborting on a huge allocation): in a child, that
    is an error naming the file and the part being read, not the end of the job.

    Args:
        path: The bigWig.
        source: The input's source, named in errors.
        error: The error class to raise.

    Returns:
        Chromosome name → size, in file order.

    Raises:
        InputError: An instance of ``error`` if the file is not a bigWig or is damaged.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))}
    env["RUST_BACKTRACE"] = "0"
    command = [sys.executable, "-m", "dnalm.io.bigwig_check", path]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if proc.returncode < 0:
        raise error(
            f"{source}: damaged bigWig: the reader crashed ({signal_name(-proc.returncode)}) reading "
            f"{last_step(proc.stderr)}; fetch the file again, or check that the source is an intact bigWig"
        )
    result = last_json(proc.stdout)
    if result is None:
        raise error(f"{source}: the bigWig check failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    if "error" in result:
        raise error(f"{source}: {result['error']}")
    chroms, records, zooms = result["chroms"], result["records"], result["zooms"]
    log.info("%s: read whole: %d chromosomes, %d records, zoom levels %s", source, len(chroms), records, zooms)
    return {name: int(size) for name, size in chroms.items()}


def signal_name(number: int) -> str:
    """The name of a signal number (SIGSEGV), or the number if it has none."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def last_step(stderr: str) -> str:
    """The last part of the file the child said it was reading."""
    steps = [line.removeprefix(PROGRESS) for line in stderr.splitlines() if line.startswith(PROGRESS)]
    return steps[-1] if steps else "the file"


def last_json(stdout: str) -> dict[str, Any] | None:
    """The JSON object on the last line of the child's stdout, or None."""
    lines = stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return result if isinstance(result, dict) else None


def length_mismatches(sizes: Mapping[str, int], genome: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """Chromosomes whose length in a track differs from the genome's.

    Args:
        sizes: The track's chromosome sizes (names after `chrom_aliases`).
        genome: The genome's sequence lengths.

    Returns:
        Name → (length in the track, length in the genome), for the chromosomes both have.
    """
    return {name: (size, genome[name]) for name, size in sizes.items() if name in genome and genome[name] != size}


def write_bigwig(path: str, target: str, names: Mapping[str, str], sizes: Mapping[str, int]) -> dict[str, int]:
    """Copy a checked bigWig to ``target``, or rewrite it if a chromosome's name or size changes.

    Args:
        path: The input bigWig, read whole by `check_bigwig` before.
        target: The file to write.
        names: Every chromosome of the input → its name in ``target``.
        sizes: Every name in ``target`` → its size there; values past a smaller size are dropped.

    Returns:
        Name in ``target`` → bases with a value that were dropped, for the chromosomes made shorter.
    """
    import pyBigWig  # imported here: the QC environment (envs/qc.yaml) does not have it

    reader = pyBigWig.open(path)
    try:
        chroms = reader.chroms()
        if all(old == new and sizes[new] == chroms[old] for old, new in names.items()):
            shutil.copyfile(path, target)
            return {}
        return rewrite_bigwig(reader, target, names, sizes)
    finally:
        reader.close()


def rewrite_bigwig(reader: Any, target: str, names: Mapping[str, str], sizes: Mapping[str, int]) -> dict[str, int]:
    """Write the intervals of an open bigWig to ``target`` under new chromosome names and sizes.

    Args:
        reader: The open ``pyBigWig`` reader.
        target: The bigWig to write.
        names: Old chromosome name → new name, for every chromosome.
        sizes: New name → size; an interval is cut at it, and one starting at or past it is dropped.

    Returns:
        New name → bases with a value that were dropped, for the chromosomes made shorter.
    """
    import pyBigWig

    chroms = reader.chroms()
    dropped = {names[name]: 0 for name, size in chroms.items() if sizes[names[name]] < size}
    writer = pyBigWig.open(target, "w")
    try:
        writer.addHeader([(names[name], sizes[names[name]]) for name in chroms])
        for name, size in chroms.items():
            new = names[name]
            for start in range(0, size, BIGWIG_STEP):
                stop = min(start + BIGWIG_STEP, size)
                intervals = [iv for iv in reader.intervals(name, start, stop) or () if iv[0] >= start]
                intervals, lost = clip_intervals(intervals, sizes[new])
                if lost:
                    dropped[new] += lost
                if intervals:
                    starts, ends, values = (list(column) for column in zip(*intervals, strict=True))
                    writer.addEntries([new] * len(starts), starts, ends=ends, values=values)
    finally:
        writer.close()
    return dropped


def clip_intervals(intervals: list[tuple[int, int, float]], limit: int) -> tuple[list[tuple[int, int, float]], int]:
    """Cut (start, end, value) intervals at ``limit``.

    Args:
        intervals: The intervals, 0-based, half-open.
        limit: The new chromosome size.

    Returns:
        The intervals that start before ``limit``, ended at it at most, and the number of bases cut off.
    """
    lost = sum(end - max(start, limit) for start, end, _ in intervals if end > limit)
    return [(start, min(end, limit), value) for start, end, value in intervals if start < limit], lost
