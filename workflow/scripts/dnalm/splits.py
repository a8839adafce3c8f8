"""Assignment of windows to train, validation and test splits."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.folds import read_folds, window_folds
from dnalm.io import read_fai, write_tsv
from dnalm.tiling import N_REASONS
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


def renumber_rows(windows: pd.DataFrame) -> None:
    """Give the kept windows of each split their store row (0, 1, ...) in table order, -1 to the rest (in place)."""
    windows["row"] = -1
    for split in SPLITS:
        rows = (windows["split"] == split) & windows["kept"]
        windows.loc[rows, "row"] = np.arange(int(rows.sum()))


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
    """Windows per species and split: sites (candidate windows), bases with signal merged into the sites, dropped for
    N's/gaps/bounds, dropped by subsampling, and kept."""
    rows = []
    for (species, split), group in windows[windows["split"] != ""].groupby(["species", "split"], sort=False):
        rows.append({
            "species": species,
            "split": split,
            "sites": len(group),
            "merged_bases": int(group["merged"].sum()) if "merged" in group else 0,
            "dropped_n": int(group["reason"].isin(["contains_n", "out_of_bounds", *N_REASONS]).sum()),
            "dropped_subsample": int((group["reason"] == "subsampled").sum()),
            "dropped_fold": int((group["reason"] == "crosses_fold").sum()),
            "windows": int(group["kept"].sum()),
        })
    table = pd.DataFrame(rows, columns=["species", "split", "sites", "merged_bases", "dropped_n", "dropped_subsample",
                                        "dropped_fold", "windows"])
    table["_order"] = table["split"].map({s: i for i, s in enumerate(SPLITS)})
    return table.sort_values(["species", "_order"]).drop(columns="_order")


def fold_splits(windows: pd.DataFrame, layout: pd.DataFrame, val: int, test: int) -> pd.Series:
    """Split of each window from the fold of its start: val fold, test fold, or train for the other folds.

    Marks windows that cross into another fold as dropped (reason `crosses_fold`), in place.
    """
    fold, inside = window_folds(windows, layout)
    split = pd.Series(np.where(fold == val, "val", np.where(fold == test, "test", "train")), index=windows.index)
    split[fold < 0] = ""
    crossing = (fold >= 0) & ~inside & windows["kept"].to_numpy()
    windows.loc[crossing, "kept"] = False
    windows.loc[crossing, "reason"] = "crosses_fold"
    return split


def stratified_splits(labels: pd.Series, val: float, test: float, seed: int) -> pd.Series:
    """A seeded split stratified by class: in each class, round(val · n) examples to val, round(test · n) to test
    (at least one each when the class has three examples or more), the rest to train."""
    if val + test >= 1:
        raise ValueError(f"split.random: val ({val}) + test ({test}) must leave examples to train on (sum < 1)")
    rng = np.random.default_rng(seed)
    split = pd.Series("train", index=labels.index)
    for _, rows in labels.groupby(labels, sort=True):
        index = rng.permutation(rows.index.to_numpy())
        n = len(index)
        n_val, n_test = (max(round(f * n), 1 if n >= 3 else 0) for f in (val, test))
        split[index[:n_val]] = "val"
        split[index[n_val : n_val + n_test]] = "test"
    return split


def given_splits(windows: pd.DataFrame) -> pd.Series:
    """The split each example came with (examples.table's train, dev and test files)."""
    given = windows["given_split"].astype(str)
    if (given == "").any():
        raise ValueError("split.given: some examples have no given split; give examples.table train, dev and test")
    return given


def on_source(windows: pd.DataFrame) -> pd.DataFrame:
    """Example windows placed at their genome interval (`source_*`), so chromosome and fold splits read positions."""
    out = windows.copy()
    out["chrom"] = out["source_chrom"].astype(str)
    out["start"] = pd.to_numeric(out["source_start"]).astype(int)
    out["end"] = pd.to_numeric(out["source_end"]).astype(int)
    return out


def extra_train_windows(paths: list[str]) -> pd.DataFrame:
    """Candidate windows of the extra train species: all train (their genomes give no val or test windows)."""
    tables = [read_windows(p) for p in paths]
    out = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if len(out):
        out["split"] = "train"
    return out


def assign_splits(candidates: str, fai: str, out_windows: str, out_counts: str, *, train: list[str] | None = None,
                  val: list[str] | None = None, test: list[str] | None = None,
                  max_windows: dict[str, int | None], seed: int, folds: dict | None = None,
                  folds_tsv: str | None = None, extra: list[str] = (), random: dict | None = None,
                  given: dict | None = None) -> pd.DataFrame:
    """Assign windows to splits by chromosome or genome fold, subsample, and write the window and count tables.

    Windows on chromosomes in no split are dropped with reason `no_split`; with folds, windows that cross a fold
    boundary are dropped with reason `crosses_fold`. Windows of the extra train species are all train. Every kept
    window gets `row`, its position in its split's window store.

    Args:
        candidates: Table from `make_windows`.
        fai: Genome index (to check the chromosome names).
        out_windows: Output window table (candidates plus split and row).
        out_counts: Output count table.
        train: Train chromosomes, or None for the rest (chromosome holdout).
        val: Validation chromosomes (chromosome holdout).
        test: Test chromosomes (chromosome holdout).
        max_windows: Split → largest number of windows (None keeps all).
        seed: Seed of the subsampling.
        folds: {k, val, test, ...} for a k-fold split instead of a chromosome holdout.
        folds_tsv: Fold layout from `dnalm.folds.make_folds` (with `folds`).
        extra: Candidate tables of the extra train species.
        random: {val, test} fractions of a seeded split stratified by `label` (classification examples).
        given: {} to keep each example's `given_split` (classification examples from given files).

    Classification examples (tables with `source_chrom`) are split by their genome interval under a chromosome or
    fold split.

    Returns:
        The window table written.
    """
    windows = read_windows(candidates)
    genome = str(Path(fai).with_suffix(""))
    placed = on_source(windows) if "source_chrom" in windows and random is None and given is None else windows
    if random is not None:
        windows["split"] = stratified_splits(windows["label"].astype(str), random["val"], random["test"], seed)
    elif given is not None:
        windows["split"] = given_splits(windows)
    elif folds is not None:
        windows["split"] = fold_splits(placed, read_folds(folds_tsv), folds["val"], folds["test"])
        windows[["kept", "reason"]] = placed[["kept", "reason"]]
    else:
        assignment = chromosome_splits(read_fai(fai), train, val or [], test or [], genome)
        windows["split"] = placed["chrom"].map(assignment).fillna("")
    unassigned = (windows["split"] == "") & windows["kept"]
    windows.loc[unassigned, "reason"] = "no_split"
    windows.loc[unassigned, "kept"] = False
    if extra:
        windows = pd.concat([windows, extra_train_windows(list(extra))], ignore_index=True)
    windows = subsample(windows, max_windows, seed)
    renumber_rows(windows)
    for split in SPLITS:
        if not ((windows["split"] == split) & windows["kept"]).any():
            raise ValueError(f"split {split!r} has no windows; check split.chromosomes (or split.folds) and "
                             "sites.min_reads")
    counts = count_table(windows)
    log.info("windows per split:\n%s", counts.to_string(index=False))
    write_tsv(windows, out_windows)
    write_tsv(counts, out_counts)
    return windows
