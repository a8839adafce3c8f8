"""A whole bigWig read once, in a child process (`python -m dnalm.io.bigwig_check FILE`) that damage may crash."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

#: Bases of a chromosome pyBigWig reads at a time (as `dnalm.io.bigwig.rewrite_bigwig` does).
STEP = 10_000_000
#: Plain words for the error names of bigtools (Rust) that pybigtools passes on.
REASONS = {
    "BadData": "a compressed block is corrupt",
    "InsufficientSpace": "a block is larger than the header allows",
    "capacity overflow": "a size field is corrupt",
}
#: Prefix of the progress lines on stderr; the parent names the last one when this process dies.
PROGRESS = "reading "


class Damaged(Exception):
    """The file is not a readable bigWig; the message says what is wrong."""


class Steps:
    """The part of the file being read, said on stderr before it is read.

    Attributes:
        where: What is being read now, e.g. "zoom level 256 of chromosome 'II'".
    """

    def __init__(self) -> None:
        """Start at the header."""
        self.where = "the header"

    def at(self, where: str) -> None:
        """Say on stderr (flushed) that ``where`` is read next."""
        self.where = where
        print(PROGRESS + where, file=sys.stderr, flush=True)


def read_with_pybigtools(path: str, steps: Steps) -> tuple[dict[str, int], list[int], dict[str, int]]:
    """Read the header, the chromosome list, every data block and every zoom level with pybigtools.

    pybigtools returns most damage as an exception (a Rust panic as a ``BaseException``) with a short reason.

    Args:
        path: The bigWig.
        steps: Where the reading is.

    Returns:
        Chromosome sizes, the zoom levels, and the number of data records per chromosome.

    Raises:
        Damaged: If the file is a bigBed, or a record lies outside its chromosome.
    """
    import pybigtools

    steps.at("the header")
    with open(path, "rb") as handle, pybigtools.open(handle) as reader:  # a path would need a .bw or .bigWig name
        if not reader.is_bigwig:
            raise Damaged("a bigBed or other file, not a bigWig")
        reader.info()
        steps.at("the chromosome list")
        chroms = {str(name): int(size) for name, size in reader.chroms().items()}
        if not chroms:
            raise Damaged("no chromosome in its chromosome list")
        zooms = [int(level) for level in reader.zooms()]
        records = {}
        for name, size in chroms.items():
            steps.at(f"the data blocks of chromosome {name!r}")
            records[name] = 0
            for start, end, _ in reader.records(name):
                if not 0 <= start < end <= size:
                    raise Damaged(f"record {start}-{end} lies outside the chromosome (length {size})")
                records[name] += 1
        for level in zooms:
            for name in chroms:
                steps.at(f"zoom level {level} of chromosome {name!r}")
                for _ in reader.zoom_records(level, name):
                    pass
    return chroms, zooms, records


def read_with_pybigwig(path: str, chroms: Mapping[str, int], records: Mapping[str, int], steps: Steps) -> None:
    """Read every chromosome's intervals with pyBigWig, the reader of the later rules, and compare with pybigtools.

    Args:
        path: The bigWig.
        chroms: Chromosome sizes as pybigtools read them.
        records: Data records per chromosome as pybigtools read them.
        steps: Where the reading is.

    Raises:
        Damaged: If pyBigWig cannot open the file, reads other chromosomes or another number of records.
    """
    import pyBigWig

    steps.at("the header (pyBigWig)")
    try:
        reader = pyBigWig.open(path)
    except RuntimeError as err:
        raise Damaged(f"pyBigWig cannot open it ({err})") from err
    if reader is None or not reader.isBigWig():
        raise Damaged("pyBigWig does not read it as a bigWig")
    try:
        reader.header()  # the total summary, which pybigtools does not check
        if reader.chroms() != dict(chroms):
            raise Damaged(f"pyBigWig reads the chromosomes {reader.chroms()}, pybigtools {dict(chroms)}")
        for name, size in chroms.items():
            steps.at(f"the data blocks of chromosome {name!r} (pyBigWig)")
            found = sum(count_intervals(reader, name, start, min(start + STEP, size)) for start in range(0, size, STEP))
            if found != records[name]:
                raise Damaged(f"pyBigWig reads {found} records, pybigtools {records[name]}")
    finally:
        reader.close()


def count_intervals(reader: Any, name: str, start: int, end: int) -> int:
    """The number of pyBigWig intervals of ``name`` that start in [start, end)."""
    return sum(1 for interval in reader.intervals(name, start, end) or () if interval[0] >= start)


def describe(err: BaseException) -> str:
    """The error's type and message, with what a bigtools reason means."""
    meaning = [text for reason, text in REASONS.items() if reason in str(err)]
    return f"{type(err).__name__}: {err}" + (f" ({meaning[0]})" if meaning else "")


def check(path: str) -> dict[str, Any]:
    """Read the whole file with both readers.

    Args:
        path: The bigWig.

    Returns:
        {"chroms": sizes, "zooms": levels, "records": total} or, if it is damaged, {"error": what is wrong}.
    """
    steps = Steps()
    try:
        chroms, zooms, records = read_with_pybigtools(path, steps)
        read_with_pybigwig(path, chroms, records, steps)
    except ImportError as err:
        return {"error": f"cannot check the bigWig: {err.name} is not installed (see envs/requirements.txt)"}
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 (pybigtools raises Rust panics as BaseException)
        return {"error": f"damaged or not a bigWig: reading {steps.where}: {describe(err)}; check that the source "
                "is a bigWig track, and fetch it again"}
    return {"chroms": chroms, "zooms": zooms, "records": sum(records.values())}


if __name__ == "__main__":
    print(json.dumps(check(sys.argv[1])), flush=True)
