"""Windows of the pretraining corpus that must not be trained on: homologs of the tasks' val and test windows.

The corpus windows are tiled exactly as `dnalm.corpus.index_windows` tiles them (same window and stride), so the
excluded table names them by (genome, chromosome, start) and `dnalm.corpus.exclude_windows` drops them.
Reasons: `val_fold` (the window lies wholly inside the val fold of a fold task on its genome: pretraining validates on
it instead), `held_out_fold` (it overlaps a val or test fold otherwise; chromosome holdouts are excluded whole by the
chromosome lists) and `homology` (it aligns to a task's val or test window, see `dnalm.homology`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from dnalm.corpus import index_windows
from dnalm.folds import read_folds
from dnalm.homology import HomologySettings, find_homologs
from dnalm.io import write_tsv
from dnalm.windows import read_windows

log = logging.getLogger(__name__)

EXCLUDED_COLUMNS = ["genome", "chrom", "start", "end", "reason", "hit", "identity", "coverage"]


def held_out_windows(tasks: dict[str, dict]) -> pd.DataFrame:
    """Kept val and test windows of the task species of every task (columns of the window table plus `fasta`)."""
    frames = []
    for task, spec in tasks.items():
        table = read_windows(spec["windows"])
        table = table[table["kept"] & table["split"].isin(["val", "test"]) & (table["species"] == spec["species"])]
        frames.append(table.assign(id=task + "|" + table["id"].astype(str), fasta=spec["fasta"]))
    empty = pd.DataFrame(columns=["id", "species", "fasta", "chrom", "start", "end"])
    return pd.concat(frames, ignore_index=True) if frames else empty


def corpus_table(genomes: list[dict], window: int, stride: int) -> pd.DataFrame:
    """Every train window of the corpus (genome id, chrom, start, end, fasta), tiled as pretraining tiles them."""
    index = index_windows(genomes, "train", window, stride)
    return pd.DataFrame({
        "genome": [genomes[g]["id"] for g in index.genome],
        "chrom": [index.chrom_names[c] for c in index.chrom],
        "start": index.start,
        "end": index.start + window,
        "fasta": [genomes[g]["fasta"] for g in index.genome],
    })


def in_held_out_folds(corpus: pd.DataFrame, tasks: dict[str, dict]) -> tuple[np.ndarray, np.ndarray]:
    """Corpus windows that overlap a val or test fold of a fold task on the same genome, and those of them that lie
    wholly inside a val fold (pretraining validates on these)."""
    hit = np.zeros(len(corpus), dtype=bool)
    inside_val = np.zeros(len(corpus), dtype=bool)
    for spec in tasks.values():
        if not spec.get("folds"):
            continue
        layout = read_folds(spec["folds"])
        val_fold = spec["held_out_folds"][0]
        for piece in layout[layout["fold"].isin(spec["held_out_folds"])].itertuples(index=False):
            same = ((corpus["genome"] == spec["species"]) & (corpus["chrom"] == piece.chrom)).to_numpy()
            start, end = corpus["start"].to_numpy(), corpus["end"].to_numpy()
            hit |= same & (start < piece.end) & (end > piece.start)
            if piece.fold == val_fold:
                inside_val |= same & (start >= piece.start) & (end <= piece.end)
    return hit, inside_val


def excluded_corpus_windows(genomes: list[dict], tasks: dict[str, dict], out_tsv: str, *, window: int, stride: int,
                            homology: dict) -> pd.DataFrame:
    """Write the corpus windows pretraining must leave out (`EXCLUDED_COLUMNS`).

    Args:
        genomes: The corpus (`dnalm.corpus.corpus_genomes`), each with `id`, `fasta`, `train_chroms`.
        tasks: Task → {species, fasta, windows (filtered window table), folds (layout or None), held_out_folds}.
        out_tsv: Output table.
        window: Pretraining window length.
        stride: Pretraining stride.
        homology: {enabled, preset, min_identity, min_coverage, threads}.

    Returns:
        The table written.
    """
    corpus = corpus_table(genomes, window, stride)
    corpus["id"] = corpus["genome"] + "|" + corpus["chrom"] + "|" + corpus["start"].astype(str)
    fold_hit, inside_val = in_held_out_folds(corpus, tasks)
    out = corpus.loc[fold_hit, ["genome", "chrom", "start", "end"]].assign(
        reason=np.where(inside_val[fold_hit], "val_fold", "held_out_fold"), hit="", identity=np.nan, coverage=np.nan)
    rest = corpus[~fold_hit]
    if homology["enabled"]:
        settings = HomologySettings(homology["preset"], homology["min_identity"], homology["min_coverage"],
                                    homology["threads"])
        queries = list(rest[["id", "fasta", "chrom", "start", "end"]].itertuples(index=False, name=None))
        held = held_out_windows(tasks)
        targets = list(held[["id", "fasta", "chrom", "start", "end"]].itertuples(index=False, name=None))
        hits = find_homologs(queries, targets, settings, label="corpus windows").set_index("id")
        found = rest[rest["id"].isin(hits.index)]
        out = pd.concat([out, found[["genome", "chrom", "start", "end"]].assign(
            reason="homology", hit=hits.loc[found["id"], "hit"].to_numpy(),
            identity=hits.loc[found["id"], "identity"].to_numpy(),
            coverage=hits.loc[found["id"], "coverage"].to_numpy())], ignore_index=True)
    log.info("%d of %d corpus train windows excluded: %s", len(out), len(corpus), out["reason"].value_counts().to_dict())
    write_tsv(out[EXCLUDED_COLUMNS], out_tsv)
    return out
