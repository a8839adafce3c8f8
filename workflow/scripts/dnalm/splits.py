"""Assignment of windows to train, validation and test splits."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.io import read_fai, write_tsv
from dnalm.tracks import N_REASONS
from dnalm.windows import read_windows

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def chromosome_splits(chroms: dict[str, int], train: list[str] | None, val: list[str], test: list[str],
                      genome: str = "genome") -> dict[str, str]:
    """Map each chromosome to its split from a chromosome holdout.

    Args:
        chroms: Chromosome lengths of the genome.
        train: Train chromosomes, or None for every chromosome not in val or test.
        val: Validation chromosomes.
        test: Test chromosomes.
        genome: Name of the genome file, for error messages.

    Returns:
        Chromosome → split for every chromosome that has one.

    Raises:
        ValueError: A chromosome is not in the genome, or is in two splits.
    """
    named = {"val": val, "test": test}
    if train is not None:
        named["train"] = train
    assignment: dict[str, str] = {}
    for split, names in named.items():
        for name in names:
            if name not in chroms:
                raise ValueError(
                    f"split.chromosomes.{split} names chromosome {name!r}, which is not in {genome} "
                    f"(it has {', '.join(chroms)}); fix the name or add a chrom_aliases entry")
            if name in assignment:
                raise ValueError(f"chromosome {name!r} is in both split {assignment[name]!r} and {split!r}")
            assignment[name] = split
    if train is None:
        assignment.update({name: "train" for name in chroms if name not in assignment})
    return assignment


def subsample(windows: pd.DataFrame, max_windows: dict[str, int | None], seed: int) -> pd.DataFrame:
    """Drop kept windows beyond `max_windows[split]` at random (seeded), with reason `subsampled`."""
    out = windows.copy()
    rng = np.random.default_rng(seed)
    for split in SPLITS:
        limit = max_windows.get(split)
        kept = np.flatnonzero((out["split"] == split).to_numpy() & out["kept"].to_numpy())
        if limit is None or len(kept) <= limit:
            continue
        drop = np.sort(rng.choice(kept, size=len(kept) - limit, replace=False))
        out.loc[out.index[drop], "kept"] = False
        out.loc[out.index[drop], "reason"] = "subsampled"
    return out


def count_table(windows: pd.DataFrame) -> pd.DataFrame:
    """Windows per species and split: sites (candidate windows), dropped for N's/gaps/bounds, dropped by subsampling,
    and kept."""
    rows = []
    for (species, split), group in windows[windows["split"] != ""].groupby(["species", "split"], sort=False):
        rows.append({
            "species": species,
            "split": split,
            "sites": len(group),
            "dropped_n": int(group["reason"].isin(["contains_n", "out_of_bounds", *N_REASONS]).sum()),
            "dropped_subsample": int((group["reason"] == "subsampled").sum()),
            "windows": int(group["kept"].sum()),
        })
    table = pd.DataFrame(rows, columns=["species", "split", "sites", "dropped_n", "dropped_subsample", "windows"])
    table["_order"] = table["split"].map({s: i for i, s in enumerate(SPLITS)})
    return table.sort_values(["species", "_order"]).drop(columns="_order")


def assign_splits(candidates: str, fai: str, out_windows: str, out_counts: str, *, train: list[str] | None,
                  val: list[str], test: list[str], max_windows: dict[str, int | None], seed: int) -> pd.DataFrame:
    """Assign windows to splits by chromosome, subsample, and write the window and count tables.

    Windows on chromosomes in no split are dropped with reason `no_split`. Every kept window gets `row`, its
    position in its split's window store.

    Args:
        candidates: Table from `make_windows`.
        fai: Genome index (to check the chromosome names).
        out_windows: Output window table (candidates plus split and row).
        out_counts: Output count table.
        train: Train chromosomes, or None for the rest.
        val: Validation chromosomes.
        test: Test chromosomes.
        max_windows: Split → largest number of windows (None keeps all).
        seed: Seed of the subsampling.

    Returns:
        The window table written.
    """
    windows = read_windows(candidates)
    genome = str(Path(fai).with_suffix(""))
    assignment = chromosome_splits(read_fai(fai), train, val, test, genome)
    windows["split"] = windows["chrom"].map(assignment).fillna("")
    unassigned = (windows["split"] == "") & windows["kept"]
    windows.loc[unassigned, "reason"] = "no_split"
    windows.loc[unassigned, "kept"] = False
    windows = subsample(windows, max_windows, seed)
    windows["row"] = -1
    for split in SPLITS:
        rows = (windows["split"] == split) & windows["kept"]
        windows.loc[rows, "row"] = np.arange(int(rows.sum()))
        if not rows.any():
            raise ValueError(f"split {split!r} has no windows; check split.chromosomes and sites.min_reads")
    counts = count_table(windows)
    log.info("windows per split:\n%s", counts.to_string(index=False))
    write_tsv(windows, out_windows)
    write_tsv(counts, out_counts)
    return windows
