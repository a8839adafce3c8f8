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

WINDOW_COLUMNS = ["id", "species", "chrom", "start", "end", "strand", "site", "offset", "reads", "merged", "kept",
                  "reason"]


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
               species: str | None = None, min_distance: int = 0) -> pd.DataFrame:
    """Call sites per strand: local maxima of the signal at least `min_distance` + 1 bp apart.

    3'-end reads of one cleavage site spread over a few bases. Each base with signal is a candidate; from the
    strongest down, a candidate becomes a site unless a site already lies within `min_distance` bp, and a site's
    reads are the signal summed over its ±`min_distance` bp (the cluster, as poly(A) cluster tables count it). A site
    is kept when those reads reach `min_reads`. With `min_distance` 0, every base reaching `min_reads` is a site.

    Args:
        plus: bigWig of the + strand signal.
        minus: bigWig of the - strand signal.
        min_reads: Smallest signal of a site (summed over its cluster).
        chroms: Chromosome lengths of the genome; a track chromosome missing there is an error.
        species: Species id, named in the chromosome-name error.
        min_distance: Bases with signal this close to a stronger site are merged into it.

    Returns:
        Sites sorted by chromosome (genome order), position and strand: columns chrom, site (0-based), strand, reads,
        merged (bases with signal merged into the site).
    """
    frames = []
    for path, strand in ((plus, "+"), (minus, "-")):
        with pyBigWig.open(str(path)) as bw:
            check_track_chroms(path, bw.chroms(), chroms, species)
            for chrom in bw.chroms():
                frames.append(_strand_sites(bw, chrom, strand, min_reads, min_distance))
    columns = ["chrom", "site", "strand", "reads", "merged"]
    sites = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    order = {name: i for i, name in enumerate(chroms)}
    sites["_order"] = sites["chrom"].map(order)
    return sites.sort_values(["_order", "site", "strand"]).drop(columns="_order").reset_index(drop=True)


def _strand_sites(bw: pyBigWig.pyBigWig, chrom: str, strand: str, min_reads: float,
                  min_distance: int) -> pd.DataFrame:
    """Sites of one chromosome and strand (see `call_sites`)."""
    intervals = [(s, e, v) for s, e, v in (bw.intervals(chrom) or ()) if v > 0]
    pos = np.concatenate([np.arange(s, e) for s, e, _ in intervals]) if intervals else np.zeros(0, np.int64)
    val = np.concatenate([np.full(e - s, v) for s, e, v in intervals]) if intervals else np.zeros(0)
    peaks = local_maxima(pos, val, min_distance)
    cum = np.concatenate([[0.0], np.cumsum(val)])
    lo = np.searchsorted(pos, pos[peaks] - min_distance)
    hi = np.searchsorted(pos, pos[peaks] + min_distance, side="right")
    reads = cum[hi] - cum[lo]
    keep = reads >= min_reads
    return pd.DataFrame({"chrom": chrom, "site": pos[peaks][keep].astype(np.int64), "strand": strand,
                         "reads": reads[keep], "merged": (hi - lo - 1)[keep].astype(np.int64)})


def local_maxima(pos: np.ndarray, val: np.ndarray, min_distance: int) -> np.ndarray:
    """Indices (in position order) of greedy non-maximum suppression: from the largest value down (ties: leftmost
    first), a base is kept unless a kept base lies within `min_distance` bp.

    Args:
        pos: Sorted positions of the bases with signal.
        val: Their signal.
        min_distance: Suppression radius in bp (0 keeps every base).
    """
    if min_distance <= 0:
        return np.arange(len(pos))
    taken = np.zeros(len(pos), dtype=bool)
    kept = []
    for i in np.lexsort((pos, -val)):
        if not taken[i]:
            kept.append(i)
            lo = np.searchsorted(pos, pos[i] - min_distance)
            hi = np.searchsorted(pos, pos[i] + min_distance, side="right")
            taken[lo:hi] = True
    return np.sort(np.asarray(kept, dtype=np.int64))


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
                 length: int, max_offset: int, flank: int, seed: int, min_distance: int = 0) -> pd.DataFrame:
    """Call sites, place and check windows, and write the candidate window table.

    Args:
        fasta: Genome FASTA.
        fai: Its index.
        plus: + strand bigWig of the site target.
        minus: - strand bigWig.
        out_tsv: Output table (columns `WINDOW_COLUMNS`).
        species: Species id written in the table.
        min_reads: Site threshold (reads summed over the site's cluster).
        length: Window length.
        max_offset: Largest random offset of the site from the window centre.
        flank: Extra stored bases on each side.
        seed: Seed of the offsets.
        min_distance: Bases with signal within this many bp of a stronger site are merged into it (`call_sites`).

    Returns:
        The table written.
    """
    chroms = read_fai(fai)
    sites = call_sites(plus, minus, min_reads, chroms, species, min_distance)
    if sites.empty:
        raise ValueError(f"no base of {plus} or {minus} reaches sites.min_reads={min_reads}; lower it in the config")
    windows = check_windows(place_windows(sites, length, max_offset, seed), fasta, chroms, flank)
    windows["species"] = species
    windows["id"] = [f"{species}:{c}:{s}:{st}" for c, s, st in zip(windows["chrom"], windows["site"], windows["strand"])]
    windows = windows[WINDOW_COLUMNS]
    log.info("%d sites with >= %s reads (%d bases with signal within %d bp merged into them); %d windows kept, "
             "dropped: %s", len(sites), min_reads, int(sites["merged"].sum()), min_distance, int(windows["kept"].sum()),
             windows.loc[~windows["kept"], "reason"].value_counts().to_dict())
    write_tsv(windows, out_tsv)
    return windows


def read_windows(path: str | Path) -> pd.DataFrame:
    """Read a window table written by `make_windows` or `assign_splits`."""
    table = pd.read_csv(path, sep="\t", dtype={"chrom": str, "reason": str, "split": str}, keep_default_na=False)
    table["kept"] = table["kept"].astype(str).str.lower().isin(["true", "1"])
    return table
