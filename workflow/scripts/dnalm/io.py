"""Small file helpers shared by the modules: FASTA indexes, atomic table writes, file modes."""

from __future__ import annotations

import os
from pathlib import Path

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


def write_tsv(table: pd.DataFrame, path: str | Path) -> None:
    """Write a table as TSV atomically (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_csv(tmp, sep="\t", index=False)
    tmp.replace(path)


def umask_mode(path: str | Path) -> None:
    """Give a file made by `tempfile.mkstemp` (mode 0600) the mode a normal `open` would have under the umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
