"""The pretraining corpus: which genomes and chromosomes, the index of its windows, and reading them batch by batch.

Windows of `window` bp are tiled with `stride` over the train (and validation) chromosomes of each genome. Windows
with a base other than A, C, G, T are dropped and counted. Only an index of (genome, chromosome, start) is held in
memory; batches are read from the FASTAs with pyfaidx.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.io import read_fai
from dnalm.io.fasta import FastaCache, open_fasta
from dnalm.store import encode

log = logging.getLogger(__name__)

#: Bases read per FASTA access while indexing windows.
_CHUNK = 1 << 20


@dataclass
class WindowIndex:
    """Windows of one split: genome number, chromosome (index into `chrom_names`) and start of each window.

    `dropped` counts the windows left out for a base other than A, C, G, T.
    """

    genome: np.ndarray
    chrom: np.ndarray
    start: np.ndarray
    chrom_names: list[str]
    dropped: int

    def __len__(self) -> int:
        return len(self.start)


def corpus_genomes(genomes: list[dict], gate: str | Path | None = None) -> list[dict]:
    """The pretraining corpus in `pretrain_lm`'s form, from the workflow's genome list and the QC gate.

    Args:
        genomes: Dicts with `id` (species id of the config), `species` (token), `fasta`, `fai`, `exclude`
            (chromosomes never trained on: the tasks' validation and test chromosomes) and `val` (validation ones).
        gate: The QC gate's list of admitted species ids (one per line), or None to take every genome.

    Returns:
        Dicts with `species`, `fasta`, `train_chroms` (every chromosome of the index not excluded) and `val_chroms`.

    Raises:
        ValueError: when the gate admits none of the genomes.
    """
    if gate is not None:
        admitted = set(Path(gate).read_text().split())
        kept = [g for g in genomes if g["id"] in admitted]
        if not kept:
            raise ValueError(f"the QC gate ({gate}) admitted none of the candidate genomes "
                             f"{[g['id'] for g in genomes]}; relax qc.thresholds or set pretrain.<name>.corpus")
        log.info("corpus: %d of %d genomes admitted by the QC gate: %s", len(kept), len(genomes),
                 ", ".join(g["id"] for g in kept))
        genomes = kept
    out = []
    for g in genomes:
        chroms = list(read_fai(g["fai"]))
        out.append({"id": g["id"], "species": g["species"], "fasta": g["fasta"],
                    "train_chroms": [c for c in chroms if c not in set(g["exclude"])],
                    "val_chroms": [c for c in g["val"] if c in chroms]})
    return out


def valid_starts(codes: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """The starts (offsets into `codes`) whose window holds only A, C, G, T."""
    bad = np.concatenate([[0], np.cumsum(codes >= 4, dtype=np.int64)])
    return starts[bad[starts + window] == bad[starts]]


def index_windows(genomes: list[dict], split: str, window: int, stride: int) -> WindowIndex:
    """Index the windows of one split (`train` or `val` chromosomes) of every genome, reading chunk by chunk.

    Args:
        genomes: Dicts with `species`, `fasta`, `train_chroms` and optionally `val_chroms`.
        split: `train` or `val`.
        window: Window length (bp).
        stride: Distance between window starts (bp).

    Returns:
        The index; `dropped` counts windows with a base other than ACGT.
    """
    parts, names, dropped = [], [], 0
    for g, genome in enumerate(genomes):
        fasta = open_fasta(genome["fasta"])
        try:
            for chrom in genome.get(f"{split}_chroms") or []:
                if chrom not in fasta:
                    raise ValueError(f"chromosome {chrom!r} ({split}) is not in {genome['fasta']}")
                length = len(fasta[chrom])
                names.append(chrom)
                for lo in range(0, max(length - window + 1, 0), _CHUNK):
                    starts = np.arange(lo + (-lo) % stride, min(lo + _CHUNK, length - window + 1), stride)
                    codes = encode(fasta[chrom][lo : min(lo + _CHUNK + window - 1, length)])
                    kept = valid_starts(codes, starts - lo, window) + lo
                    dropped += len(starts) - len(kept)
                    kept = _drop_excluded(kept, genome, chrom, split)
                    parts.append((np.full(len(kept), g), np.full(len(kept), len(names) - 1), kept))
            if split == "val":
                for chrom, starts in (genome.get("val_starts") or {}).items():
                    names.append(chrom)
                    parts.append((np.full(len(starts), g), np.full(len(starts), len(names) - 1),
                                  np.asarray(starts, dtype=np.int64)))
        finally:
            fasta.close()
    if not parts:
        return WindowIndex(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64), names, dropped)
    g, c, s = (np.concatenate(x) for x in zip(*parts))
    return WindowIndex(g.astype(np.int64), c.astype(np.int32), s.astype(np.int64), names, dropped)


def _drop_excluded(starts: np.ndarray, genome: dict, chrom: str, split: str) -> np.ndarray:
    """Train window starts without those `exclude_windows` listed for the genome (val windows are kept)."""
    excluded = (genome.get("exclude_starts") or {}).get(chrom)
    if split != "train" or not excluded:
        return starts
    return starts[~np.isin(starts, np.asarray(excluded, dtype=np.int64))]


def exclude_windows(genomes: list[dict], excluded_tsv: str | Path) -> None:
    """Attach the train windows the homology filter excludes (rule pretrain_homology's table) to the genomes.

    Each genome gets `exclude_starts`: chromosome → sorted window starts, which `index_windows` leaves out of the
    train split, and `val_starts`, those wholly inside a fold task's val fold (reason `val_fold`), which it adds to
    the val split. The table must come from the same window length and stride.
    """
    table = pd.read_csv(excluded_tsv, sep="\t", dtype={"genome": str, "chrom": str, "reason": str})
    for genome in genomes:
        rows = table[table["genome"] == genome.get("id")]
        genome["exclude_starts"] = {c: sorted(int(x) for x in g["start"]) for c, g in rows.groupby("chrom")}
        val = rows[rows["reason"] == "val_fold"]
        genome["val_starts"] = {c: sorted(int(x) for x in g["start"]) for c, g in val.groupby("chrom")}
    log.info("homology filter: %d corpus windows excluded (%s)", len(table), excluded_tsv)


class WindowReader:
    """Reads windows of an index as base codes, opening each genome's FASTA lazily on first use."""

    def __init__(self, genomes: list[dict], window: int):
        self.paths = [g["fasta"] for g in genomes]
        self.window = window
        self.fastas = FastaCache()

    def codes(self, index: WindowIndex, rows: np.ndarray) -> np.ndarray:
        """(len(rows), window) uint8 codes of the given rows of the index."""
        out = np.empty((len(rows), self.window), dtype=np.uint8)
        for i, row in enumerate(rows):
            start = int(index.start[row])
            chrom = index.chrom_names[index.chrom[row]]
            out[i] = encode(self.fastas.seq(self.paths[int(index.genome[row])], chrom, start, start + self.window))
        return out

    def close(self) -> None:
        """Close every FASTA opened so far."""
        self.fastas.close()
