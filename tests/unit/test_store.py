"""Tests for dnalm.store: writing a split's window store and reading oriented, shifted, flipped batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig
import pyfaidx
import pytest

from dnalm.store import WindowStore, channel_layout, encode, store_arrays, store_paths, write_store

LENGTH, FLANK = 32, 4
BASE = {"A": [1, 0, 0, 0], "C": [0, 1, 0, 0], "G": [0, 0, 1, 0], "T": [0, 0, 0, 1]}
TARGETS = [{"name": "pa", "plus": "pa_plus", "minus": "pa_minus"}, {"name": "cov", "track": "cov"}]
# Window table rows, listed out of store order to check that rows follow the `row` column.
WINDOWS = [  # chrom, start, end, strand, split, kept, row
    ("chr1", 200, 232, "+", "train", True, 3),  # N at 210
    ("chr1", 20, 52, "+", "train", True, 0),
    ("chr1", 60, 92, "+", "val", True, 0),  # other split
    ("chr1", 20, 52, "-", "train", True, 1),  # same interval, other strand
    ("chr1", 100, 132, "-", "train", False, -1),  # dropped
    ("chr2", 10, 42, "-", "train", True, 2),  # chromosome absent from the stranded tracks
]


def revcomp(seq: str) -> str:
    return seq[::-1].translate(str.maketrans("ACGTN", "TGCAN"))


def onehot(seq: str) -> np.ndarray:
    """(4, L) one-hot, independent of the code under test; anything but ACGT is all zeros."""
    return np.array([BASE.get(b, [0, 0, 0, 0]) for b in seq.upper()], dtype=np.float32).T


@pytest.fixture(scope="module")
def genome(tmp_path_factory) -> dict:
    """A two-chromosome genome, per-base track values that identify track and position, and a written store."""
    tmp = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(0)
    chr1 = list(rng.choice(list("ACGT"), 300))
    chr1[210] = "N"
    chr1[25:30] = [b.lower() for b in chr1[25:30]]  # soft-masked
    seqs = {"chr1": "".join(chr1), "chr2": "".join(rng.choice(list("ACGT"), 80))}
    fasta = tmp / "g.fa"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in seqs.items()))
    pyfaidx.Fasta(str(fasta)).close()

    values = {"pa_plus": {"chr1": 1.0 + np.arange(300)}, "pa_minus": {"chr1": 1000.0 + np.arange(300)},
              "cov": {"chr1": 2000.0 + np.arange(300), "chr2": 5000.0 + np.arange(80)}}
    tracks = {}
    for name, per_chrom in values.items():
        path = tmp / f"{name}.bw"
        bw = pyBigWig.open(str(path), "w")
        bw.addHeader([(c, len(seqs[c])) for c in per_chrom])
        for chrom, vals in per_chrom.items():
            bw.addEntries(chrom, 0, values=vals.tolist(), span=1, step=1)
        bw.close()
        tracks[name] = str(path)

    table = pd.DataFrame(WINDOWS, columns=["chrom", "start", "end", "strand", "split", "kept", "row"])
    table["id"] = [f"w{i}" for i in range(len(table))]
    table["species"] = "toy"
    table["reason"] = ""
    table.to_csv(tmp / "windows.tsv", sep="\t", index=False)

    out = tmp / "out"
    out.mkdir()
    task = {"type": "profile", "species": "toy", "targets": TARGETS, "window": {"flank": FLANK}}
    n = write_store(str(tmp / "windows.tsv"), "train", str(out / "train"), task=task, genomes={"toy": str(fasta)},
                    tracks={"toy": tracks})
    return {"seqs": {k: v.upper() for k, v in seqs.items()}, "values": values, "paths": store_paths(out / "train"),
            "n": n, "out": out, "store": WindowStore(out / "train")}


def expected_seq(genome, chrom, start, end, strand) -> str:
    seq = genome["seqs"][chrom][start:end]
    return seq if strand == "+" else revcomp(seq)


def track(genome, name, chrom, start, end) -> np.ndarray:
    vals = genome["values"][name].get(chrom)
    return np.zeros(end - start, dtype=np.float32) if vals is None else vals[start:end].astype(np.float32)


def expected_targets(genome, chrom, start, end, strand) -> np.ndarray:
    """(3, L): pa on the window's strand, pa on the other strand, cov; reversed for a - window."""
    plus, minus = track(genome, "pa_plus", chrom, start, end), track(genome, "pa_minus", chrom, start, end)
    cov = track(genome, "cov", chrom, start, end)
    if strand == "+":
        return np.stack([plus, minus, cov])
    return np.stack([minus[::-1], plus[::-1], cov[::-1]])


def test_channel_layout():
    assert channel_layout(TARGETS) == (["pa/+", "pa/-", "cov"], [1, 0, 2])
    assert channel_layout([{"name": "x", "track": "x"}, {"name": "y", "plus": "a", "minus": "b"}]) == (
        ["x", "y/+", "y/-"], [0, 2, 1])


def test_encode():
    np.testing.assert_array_equal(encode("ACGTacgtNnRY"), [0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 4, 4])


def test_store_files_and_metadata(genome):
    store = genome["store"]
    assert genome["n"] == 4
    assert sorted(p.name for p in genome["out"].iterdir()) == ["train.json", "train.seq.npy",
                                                              "train.targets.npy"]  # no temp files
    assert isinstance(store.seq, np.memmap) and isinstance(store.targets, np.memmap)
    assert store.seq.shape == (4, LENGTH + 2 * FLANK) and store.seq.dtype == np.uint8
    assert store.targets.shape == (4, 3, LENGTH + 2 * FLANK) and store.targets.dtype == np.float32
    meta = json.loads(Path(genome["paths"]["meta"]).read_text())
    assert meta["ids"] == ["w1", "w3", "w5", "w0"]  # ordered by `row`
    assert (meta["n"], meta["length"], meta["flank"], meta["split"]) == (4, LENGTH, FLANK, "train")
    assert store.channels == ["pa/+", "pa/-", "cov"]
    assert list(store.rc_perm) == [1, 0, 2]
    assert len(store) == 4


def test_batch_sequences_and_targets_follow_the_window_strand(genome):
    store = genome["store"]
    rows = [WINDOWS[1], WINDOWS[3], WINDOWS[5], WINDOWS[0]]
    x, y = store.batch(np.arange(4))
    assert x.shape == (4, 4, LENGTH) and x.dtype == np.float32
    assert y.shape == (4, 3, LENGTH) and y.dtype == np.float32
    for i, (chrom, start, end, strand, *_) in enumerate(rows):
        np.testing.assert_array_equal(x[i], onehot(expected_seq(genome, chrom, start, end, strand)), err_msg=str(i))
        np.testing.assert_array_equal(y[i], expected_targets(genome, chrom, start, end, strand), err_msg=str(i))
    assert y[2, :2].sum() == 0 and y[2, 2].min() >= 5000  # chr2: no stranded data, cov present


def test_n_is_an_all_zero_column(genome):
    x, _ = genome["store"].batch(np.array([3]))  # window chr1:200-232 +, N at 210
    sums = x[0].sum(axis=0)
    assert sums[10] == 0
    assert (np.delete(sums, 10) == 1).all()


def test_batch_index_order_and_duplicates(genome):
    store = genome["store"]
    x, y = store.batch(np.array([2, 0, 3, 0]))
    for i, row in enumerate([2, 0, 3, 0]):
        xi, yi = store.batch(np.array([row]))
        np.testing.assert_array_equal(x[i], xi[0])
        np.testing.assert_array_equal(y[i], yi[0])


@pytest.mark.parametrize("shift", [-FLANK, -1, 2, FLANK])
def test_shifts_move_the_crop(genome, shift):
    store = genome["store"]
    x, y = store.batch(np.array([0, 1]), shifts=np.array([shift, shift]))
    # + window: the crop moves downstream along the genome; - window: downstream along the - strand.
    for i, (start, strand) in enumerate([(20 + shift, "+"), (20 - shift, "-")]):
        end = start + LENGTH
        np.testing.assert_array_equal(x[i], onehot(expected_seq(genome, "chr1", start, end, strand)))
        np.testing.assert_array_equal(y[i], expected_targets(genome, "chr1", start, end, strand))


def test_revcomp_turns_a_window_into_its_other_strand(genome):
    store = genome["store"]  # rows 0 and 1: chr1:20-52 on + and on -
    plus_x, plus_y = store.batch(np.array([0]))
    minus_x, minus_y = store.batch(np.array([1]))
    flipped_x, flipped_y = store.batch(np.array([0, 1, 2]), revcomp=np.array([True, True, False]))

    np.testing.assert_array_equal(flipped_x[0], minus_x[0])
    np.testing.assert_array_equal(flipped_y[0], minus_y[0])
    np.testing.assert_array_equal(flipped_x[1], plus_x[0])  # twice = back to the original
    np.testing.assert_array_equal(flipped_y[1], plus_y[0])
    # explicitly: sequence reverse-complemented, targets reversed with the strand channels swapped
    np.testing.assert_array_equal(flipped_x[0], plus_x[0][::-1, ::-1])
    np.testing.assert_array_equal(flipped_y[0], plus_y[0][[1, 0, 2], ::-1])
    unflipped_x, unflipped_y = store.batch(np.array([2]))
    np.testing.assert_array_equal(flipped_x[2], unflipped_x[0])
    np.testing.assert_array_equal(flipped_y[2], unflipped_y[0])


def test_revcomp_after_shift(genome):
    store = genome["store"]
    x, y = store.batch(np.array([0]), shifts=np.array([3]), revcomp=np.array([True]))
    x2, y2 = store.batch(np.array([1]), shifts=np.array([-3]))  # the same bases, chr1:23-55, on the - strand
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_site_index_is_the_site_in_the_strand_oriented_window() -> None:
    from dnalm.store import site_index

    table = pd.DataFrame({"start": [100, 100], "end": [132, 132], "site": [110, 110], "strand": ["+", "-"]})
    assert site_index(table) == [10, 21]  # the − strand window reads 131 … 100: base 110 is its 22nd
    assert site_index(table.drop(columns="site")) is None


def test_store_arrays_leave_no_partial_store_when_writing_fails(tmp_path):
    paths = store_paths(tmp_path / "train")
    with pytest.raises(RuntimeError, match="window 3"), store_arrays(tmp_path / "train", (4, 8), (4, 2, 8)) as (seq, _):
        seq[0] = 1
        raise RuntimeError("window 3 unreadable")
    assert list(tmp_path.iterdir()) == []  # neither the store's files nor the temporary ones
    with store_arrays(tmp_path / "train", (4, 8), (4, 2, 8)) as (seq, tgt):
        seq[1], tgt[2] = 3, 0.5
    assert np.load(paths["seq"])[1].tolist() == [3] * 8 and np.load(paths["targets"])[2].min() == 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(paths[k]).name for k in ("seq", "targets"))
