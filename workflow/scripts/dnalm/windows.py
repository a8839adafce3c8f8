"""Site calling from stranded bigWigs and placement of site-centred windows."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig

from dnalm.io import read_fai, write_tsv
from dnalm.io.fasta import open_fasta

log = logging.getLogger(__name__)

WINDOW_COLUMNS = ["id", "species", "chrom", "start", "end", "strand", "site", "offset", "reads", "kept", "reason"]


def check_track_chroms(path: str | Path, track_chroms: Iterable[str], genome_chroms: Iterable[str],
                       species: str | None = None, needed: Iterable[str] | None = None) -> None:
    """Check that a bigWig's chromosome names are the genome's (after `chrom_aliases`).

    Args:
        path: The bigWig, named in the error.
        track_chroms: Its chromosome names.
        genome_chroms: The genome FASTA's names.
        species: Species id, for the config key in the error.
        needed: Chromosomes the task reads. None: every track chromosome must be in the genome. Otherwise a track
            chromosome missing from the genome is an error only when a needed chromosome is missing from the track
            (a naming mismatch, e.g. `chr18` vs `NC_041771.1`); extra contigs are logged and ignored.

    Raises:
        ValueError: Listing both sets of names and pointing at `species.<id>.chrom_aliases`.
    """
    track, genome = list(track_chroms), list(genome_chroms)
    unmatched = sorted(set(track) - set(genome))
    if not unmatched:
        return
    absent = sorted(set(needed) - set(track)) if needed is not None else []
    if needed is not None and not absent:
        log.warning("%s: chromosomes %s are not in the genome and are ignored", path, unmatched)
        return
    key = f"species.{species or '<id>'}.chrom_aliases"
    raise ValueError(
        f"{path}: bigWig chromosome names {unmatched} match neither the genome FASTA nor its aliases. "
        f"bigWig chromosomes: {', '.join(track)}; FASTA chromosomes: {', '.join(genome)}. "
        f"Map each bigWig name to its FASTA name in {key}, as {{name in the bigWig: name in the FASTA}}.")


def call_sites(plus: str | Path, minus: str | Path, min_reads: float, chroms: dict[str, int],
               species: str | None = None) -> pd.DataFrame:
    """Call sites: every base whose signal reaches `min_reads`, per strand.

    Args:
        plus: bigWig of the + strand signal.
        minus: bigWig of the - strand signal.
        min_reads: Smallest signal of a site.
        chroms: Chromosome lengths of the genome; a track chromosome missing there is an error.
        species: Species id, named in the chromosome-name error.

    Returns:
        Sites sorted by chromosome (genome order), position and strand: columns chrom, site (0-based), strand, reads.
    """
    frames = []
    for path, strand in ((plus, "+"), (minus, "-")):
        with pyBigWig.open(str(path)) as bw:
            check_track_chroms(path, bw.chroms(), chroms, species)
            for chrom in bw.chroms():
                frames.append(_strand_sites(bw, chrom, strand, min_reads))
    sites = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["chrom", "site", "strand", "reads"])
    order = {name: i for i, name in enumerate(chroms)}
    sites["_order"] = sites["chrom"].map(order)
    return sites.sort_values(["_order", "site", "strand"]).drop(columns="_order").reset_index(drop=True)


def _strand_sites(bw: pyBigWig.pyBigWig, chrom: str, strand: str, min_reads: float) -> pd.DataFrame:
    """Bases of one chromosome and strand whose value reaches `min_reads`."""
    intervals = bw.intervals(chrom) or ()
    positions, reads = [], []
    for start, end, value in intervals:
        if value >= min_reads:
            positions.extend(range(start, end))
            reads.extend([value] * (end - start))
    return pd.DataFrame({"chrom": chrom, "site": np.array(positions, dtype=np.int64), "strand": strand,
                         "reads": np.array(reads, dtype=np.float64)})


def place_windows(sites: pd.DataFrame, length: int, max_offset: int, seed: int) -> pd.DataFrame:
    """Place one window per site, the site at a seeded random offset from the window centre.

    Windows are oriented along the site's strand: on the - strand, window index i is genomic base end - 1 - i.
    The site sits at window index `length // 2 + offset` in both orientations.

    Args:
        sites: Output of `call_sites`.
        length: Window length.
        max_offset: Largest |offset|.
        seed: Seed of the offsets.

    Returns:
        Sites with window columns start, end (0-based, half-open, genomic) and offset added.
    """
    if max_offset >= length // 2:
        raise ValueError(f"window.max_offset ({max_offset}) must be smaller than half the window length ({length})")
    rng = np.random.default_rng(seed)
    offsets = rng.integers(-max_offset, max_offset + 1, size=len(sites))
    index = length // 2 + offsets
    site = sites["site"].to_numpy()
    plus = (sites["strand"] == "+").to_numpy()
    start = np.where(plus, site - index, site + 1 + index - length)
    out = sites.copy()
    out["start"] = start
    out["end"] = start + length
    out["offset"] = offsets
    return out


def check_windows(windows: pd.DataFrame, fasta: str | Path, chroms: dict[str, int], flank: int) -> pd.DataFrame:
    """Mark windows that leave their chromosome or hold a non-ACGT base (window plus flank) as dropped.

    Args:
        windows: Output of `place_windows`.
        fasta: Genome FASTA (indexed).
        chroms: Chromosome lengths.
        flank: Extra bases stored on each side.

    Returns:
        The windows with `kept` and `reason` columns (reason empty when kept).
    """
    out = windows.copy()
    lengths = out["chrom"].map(chroms).to_numpy()
    inside = (out["start"].to_numpy() - flank >= 0) & (out["end"].to_numpy() + flank <= lengths)
    reason = np.where(inside, "", "out_of_bounds").astype(object)
    genome = open_fasta(fasta)
    for i in np.flatnonzero(inside):
        row = out.iloc[i]
        seq = genome[row["chrom"]][int(row["start"]) - flank : int(row["end"]) + flank]
        if set(seq) - set("ACGT"):
            reason[i] = "contains_n"
    genome.close()
    out["kept"] = reason == ""
    out["reason"] = reason
    return out


def make_windows(fasta: str, fai: str, plus: str, minus: str, out_tsv: str, *, species: str, min_reads: float,
                 length: int, max_offset: int, flank: int, seed: int) -> pd.DataFrame:
    """Call sites, place and check windows, and write the candidate window table.

    Args:
        fasta: Genome FASTA.
        fai: Its index.
        plus: + strand bigWig of the site target.
        minus: - strand bigWig.
        out_tsv: Output table (columns `WINDOW_COLUMNS`).
        species: Species id written in the table.
        min_reads: Site threshold.
        length: Window length.
        max_offset: Largest random offset of the site from the window centre.
        flank: Extra stored bases on each side.
        seed: Seed of the offsets.

    Returns:
        The table written.
    """
    chroms = read_fai(fai)
    sites = call_sites(plus, minus, min_reads, chroms, species)
    if sites.empty:
        raise ValueError(f"no base of {plus} or {minus} reaches sites.min_reads={min_reads}; lower it in the config")
    windows = check_windows(place_windows(sites, length, max_offset, seed), fasta, chroms, flank)
    windows["species"] = species
    windows["id"] = [f"{species}:{c}:{s}:{st}" for c, s, st in zip(windows["chrom"], windows["site"], windows["strand"])]
    windows = windows[WINDOW_COLUMNS]
    log.info("%d sites with >= %s reads; %d windows kept, dropped: %s", len(sites), min_reads,
             int(windows["kept"].sum()), windows.loc[~windows["kept"], "reason"].value_counts().to_dict())
    write_tsv(windows, out_tsv)
    return windows


def read_windows(path: str | Path) -> pd.DataFrame:
    """Read a window table written by `make_windows` or `assign_splits`."""
    table = pd.read_csv(path, sep="\t", dtype={"chrom": str, "reason": str, "split": str}, keep_default_na=False)
    table["kept"] = table["kept"].astype(str).str.lower().isin(["true", "1"])
    return table
