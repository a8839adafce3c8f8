"""k-fold contiguous genome folds: exact cover, balanced sizes, cuts at gaps, windows never cross a fold boundary."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyfaidx
import pytest

from dnalm.folds import SNAP, find_gaps, fold_layout, make_folds, read_folds
from dnalm.io import read_fai
from dnalm.splits import assign_splits
from dnalm.windows import WINDOW_COLUMNS

REPO = Path(__file__).resolve().parents[2]
R64 = REPO / "resources" / "demo" / "scer" / "Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz"


def check_exact_cover(layout: pd.DataFrame, chroms: dict[str, int], k: int) -> None:
    """Every base of every chromosome in exactly one fold; folds are 0..k-1 and contiguous in genome order."""
    assert set(layout["fold"]) == set(range(k))
    for chrom, length in chroms.items():
        pieces = layout[layout["chrom"] == chrom].sort_values("start")
        assert pieces["start"].iloc[0] == 0 and pieces["end"].iloc[-1] == length
        assert (pieces["start"].to_numpy()[1:] == pieces["end"].to_numpy()[:-1]).all()
        assert (pieces["end"] > pieces["start"]).all()
    assert list(layout["fold"]) == sorted(layout["fold"])  # each fold one contiguous run in genome order


def fold_sizes(layout: pd.DataFrame) -> np.ndarray:
    return (layout["end"] - layout["start"]).groupby(layout["fold"]).sum().to_numpy()


@pytest.fixture(scope="module")
def r64(tmp_path_factory) -> tuple[str, str]:
    fasta = tmp_path_factory.mktemp("r64") / "genome.fa"
    with gzip.open(R64, "rb") as src, open(fasta, "wb") as dst:
        shutil.copyfileobj(src, dst)
    pyfaidx.Faidx(str(fasta)).close()
    return str(fasta), f"{fasta}.fai"


def test_r64_eight_folds(r64, tmp_path: Path) -> None:
    fasta, fai = r64
    layout = make_folds(fasta, fai, str(tmp_path / "folds.tsv"), k=8, min_gap=100, step=300)
    chroms = read_fai(fai)
    check_exact_cover(layout, chroms, 8)
    sizes = fold_sizes(layout)
    assert sizes.max() / sizes.min() <= 1.2, sizes
    assert 1.3e6 <= sizes.min() and sizes.max() <= 1.7e6  # study 2: ~1.3-1.5 Mb folds on R64
    # cuts inside a chromosome fall on multiples of the step
    for chrom, pieces in layout.groupby("chrom"):
        inner = pieces["start"].to_numpy()[1:]
        assert (inner % 300 == 0).all(), (chrom, inner)
    pd.testing.assert_frame_equal(read_folds(tmp_path / "folds.tsv"), layout)


def synthetic_genome(tmp_path: Path) -> tuple[str, dict[str, int], dict[str, list[tuple[int, int]]]]:
    """Chromosomes of very different lengths; a 500 N gap near where the 2nd cut would fall; a 50 N run (no gap)."""
    rng = np.random.default_rng(0)
    lengths = {"a": 300_000, "b": 40_000, "c": 520_000, "d": 90_000, "e": 250_000}
    seqs = {c: np.array(list("ACGT"))[rng.integers(0, 4, n)] for c, n in lengths.items()}
    seqs["c"][260_000:260_500] = "N"  # total 1.2 Mb, k = 6: ideal cut at 400,000 = c:60,000 ... 600,000 = c:260,000
    seqs["c"][100_000:100_050] = "N"
    path = tmp_path / "synthetic.fa"
    path.write_text("".join(f">{c}\n{''.join(s)}\n" for c, s in seqs.items()))
    pyfaidx.Faidx(str(path)).close()
    return str(path), lengths, {"c": [(260_000, 260_500)]}


def test_synthetic_genome_folds_cut_at_gaps_and_chromosome_ends(tmp_path: Path) -> None:
    fasta, lengths, gaps = synthetic_genome(tmp_path)
    assert find_gaps(fasta, 100) == {"a": [], "b": [], "c": gaps["c"], "d": [], "e": []}
    layout = fold_layout(lengths, find_gaps(fasta, 100), 6, step=100)
    check_exact_cover(layout, lengths, 6)
    sizes = fold_sizes(layout)
    assert sizes.max() / sizes.min() <= 1.2, sizes
    assert abs(sizes - 200_000).max() <= 2 * SNAP * 200_000 + 100
    starts = set(zip(layout["chrom"], layout["start"]))
    assert ("c", 260_250) in starts  # the cut near the gap moved to the gap's middle
    assert ("e", 0) in starts  # ... and the one near the end of d (1,000,000 − 50,000) to the chromosome end


def test_too_many_folds_for_the_genome() -> None:
    with pytest.raises(ValueError, match="too small to cut into 8 folds"):
        fold_layout({"a": 1000}, {}, 8, step=300)


def test_windows_crossing_a_fold_boundary_are_dropped(tmp_path: Path) -> None:
    lengths = {"a": 10_000, "b": 10_000}
    layout = fold_layout(lengths, {}, 4, step=100)  # folds a:0-5000, a:5000-10000, b:0-5000, b:5000-10000
    layout.to_csv(tmp_path / "folds.tsv", sep="\t", index=False)
    (tmp_path / "g.fa.fai").write_text("a\t10000\t3\t60\t61\nb\t10000\t10200\t60\t61\n")
    starts = np.arange(0, 9700, 250)
    rows = [{"id": f"{c}:{s}", "species": "sp", "chrom": c, "start": s, "end": s + 300, "strand": "+",
             "site": s + 150, "offset": 0, "reads": 10.0, "merged": 0, "kept": True, "reason": ""}
            for c in lengths for s in starts]
    pd.DataFrame(rows)[WINDOW_COLUMNS].to_csv(tmp_path / "candidates.tsv", sep="\t", index=False)
    windows = assign_splits(str(tmp_path / "candidates.tsv"), str(tmp_path / "g.fa.fai"),
                            str(tmp_path / "windows.tsv"), str(tmp_path / "counts.tsv"),
                            max_windows={}, seed=0, folds={"k": 4, "val": 1, "test": 2},
                            folds_tsv=str(tmp_path / "folds.tsv"))
    kept = windows[windows["kept"]]
    for piece in layout.itertuples():
        on = kept[kept["chrom"] == piece.chrom]
        crossing = (on["start"] < piece.end) & (on["end"] > piece.start) & ~(
            (on["start"] >= piece.start) & (on["end"] <= piece.end))
        assert not crossing.any()
    dropped = windows[windows["reason"] == "crosses_fold"]
    assert sorted(dropped["id"]) == ["a:4750", "b:4750"]
    split_of = {0: "train", 1: "val", 2: "test", 3: "train"}
    for w in kept.itertuples():
        fold = layout[(layout["chrom"] == w.chrom) & (layout["start"] <= w.start)]["fold"].iloc[-1]
        assert w.split == split_of[fold]
    counts = pd.read_csv(tmp_path / "counts.tsv", sep="\t").set_index("split")
    # a:4750 starts in fold 0 (train), b:4750 in fold 2 (test)
    assert counts["dropped_fold"].to_dict() == {"train": 1, "val": 0, "test": 1}
