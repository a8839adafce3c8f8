"""Tests for dnalm.splits: chromosome holdout, seeded subsampling, and the split and count tables."""

from __future__ import annotations

import pandas as pd
import pytest

from dnalm.splits import assign_splits, chromosome_splits, subsample
from dnalm.windows import WINDOW_COLUMNS, read_windows, write_tsv

CHROMS = {"c1": 1000, "c2": 800, "c3": 600, "c4": 400}


# ---------------------------------------------------------------- chromosome_splits

def test_chromosome_splits_train_none_takes_the_rest():
    assert chromosome_splits(CHROMS, None, ["c2"], ["c3"]) == {"c1": "train", "c2": "val", "c3": "test",
                                                               "c4": "train"}


def test_chromosome_splits_explicit_train_leaves_others_unassigned():
    assert chromosome_splits(CHROMS, ["c1"], ["c2"], ["c3"]) == {"c1": "train", "c2": "val", "c3": "test"}


def test_chromosome_splits_unknown_chromosome_names_it_and_the_genome():
    with pytest.raises(ValueError, match=r"'chrX'.*genome\.fa"):
        chromosome_splits(CHROMS, None, ["chrX"], ["c3"], genome="genome.fa")


@pytest.mark.parametrize("train, val, test", [(None, ["c2"], ["c2"]), (["c1", "c3"], ["c2"], ["c3"])])
def test_chromosome_splits_one_chromosome_in_two_splits(train, val, test):
    with pytest.raises(ValueError, match="both split"):
        chromosome_splits(CHROMS, train, val, test)


# ---------------------------------------------------------------- subsample

def split_table() -> pd.DataFrame:
    splits = ["train"] * 12 + ["val"] * 3 + ["test"] * 5
    kept = [True] * 10 + [False] * 2 + [True] * 8
    reason = ["" if k else "contains_n" for k in kept]
    return pd.DataFrame({"id": [f"w{i}" for i in range(20)], "split": splits, "kept": kept, "reason": reason})


def test_subsample_keeps_exactly_max_and_marks_the_rest():
    windows = split_table()
    before = windows.copy()
    out = subsample(windows, {"train": 4, "val": None, "test": 10}, seed=0)

    pd.testing.assert_frame_equal(windows, before)  # input untouched
    train = out[out["split"] == "train"]
    assert train["kept"].sum() == 4
    assert (train.loc[~train["kept"], "reason"] == "subsampled").sum() == 6
    assert list(train["reason"].iloc[10:]) == ["contains_n", "contains_n"]  # already dropped: reason kept
    assert set(train.loc[train["kept"], "id"]) <= {f"w{i}" for i in range(10)}
    pd.testing.assert_frame_equal(out[out["split"] != "train"], before[before["split"] != "train"])


def test_subsample_is_seeded():
    limits = {"train": 4, "val": 2, "test": None}
    a = subsample(split_table(), limits, seed=11)
    b = subsample(split_table(), limits, seed=11)
    c = subsample(split_table(), limits, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not a["kept"].equals(c["kept"])
    assert a.loc[a["split"] == "val", "kept"].sum() == 2


# ---------------------------------------------------------------- assign_splits

def candidate_table() -> pd.DataFrame:
    """c1: 5 kept + 1 N; c2: 3 kept; c3: 2 kept + 1 out of bounds; c4 (in no split): 2 kept + 1 N."""
    spec = [("c1", "")] * 3 + [("c1", "contains_n")] + [("c1", "")] * 2 + [("c2", "")] * 3 \
        + [("c3", ""), ("c3", "out_of_bounds"), ("c3", "")] + [("c4", ""), ("c4", "contains_n"), ("c4", "")]
    rows = []
    for i, (chrom, reason) in enumerate(spec):
        site = 100 + 10 * i
        rows.append({"id": f"sp:{chrom}:{site}:+", "species": "sp", "chrom": chrom, "start": site - 16,
                     "end": site + 16, "strand": "+", "site": site, "offset": 0, "reads": 3.0, "merged": 0,
                     "kept": reason == "", "reason": reason})
    return pd.DataFrame(rows, columns=WINDOW_COLUMNS)


def write_inputs(tmp_path) -> tuple[str, str]:
    candidates = tmp_path / "candidates.tsv"
    write_tsv(candidate_table(), candidates)
    fai = tmp_path / "genome.fa.fai"
    fai.write_text("".join(f"{name}\t{size}\t0\t60\t61\n" for name, size in CHROMS.items()))
    return str(candidates), str(fai)


def test_assign_splits_end_to_end(tmp_path):
    candidates, fai = write_inputs(tmp_path)
    out_windows, out_counts = tmp_path / "windows.tsv", tmp_path / "counts.tsv"

    returned = assign_splits(candidates, fai, str(out_windows), str(out_counts), train=["c1"], val=["c2"],
                             test=["c3"], max_windows={"train": 3, "val": None, "test": None}, seed=0)

    windows = read_windows(out_windows)
    assert list(windows.columns) == WINDOW_COLUMNS + ["split", "row"]
    assert list(windows["id"]) == list(candidate_table()["id"])
    pd.testing.assert_frame_equal(windows, returned.reset_index(drop=True), check_dtype=False)

    c4 = windows[windows["chrom"] == "c4"]
    assert list(c4["split"]) == ["", "", ""]
    assert list(c4["reason"]) == ["no_split", "contains_n", "no_split"]
    assert not c4["kept"].any()

    expected_split = {"c1": "train", "c2": "val", "c3": "test", "c4": ""}
    assert list(windows["split"]) == list(windows["chrom"].map(expected_split))
    for split, n in (("train", 3), ("val", 3), ("test", 2)):
        kept = windows[(windows["split"] == split) & windows["kept"]]
        assert list(kept["row"]) == list(range(n)), split
    assert (windows.loc[~windows["kept"], "row"] == -1).all()
    assert (windows["reason"] == "subsampled").sum() == 2
    assert list(windows.loc[windows["reason"] == "subsampled", "chrom"]) == ["c1", "c1"]

    counts = pd.read_csv(out_counts, sep="\t")
    expected = pd.DataFrame({"species": ["sp"] * 3, "split": ["train", "val", "test"], "sites": [6, 3, 3],
                             "merged_bases": [0, 0, 0], "dropped_n": [1, 0, 1], "dropped_subsample": [2, 0, 0], "dropped_fold": [0, 0, 0],
                             "windows": [3, 3, 2]})
    pd.testing.assert_frame_equal(counts, expected)


def test_assign_splits_unknown_chromosome_names_the_genome(tmp_path):
    candidates, fai = write_inputs(tmp_path)
    with pytest.raises(ValueError, match=r"'chr9'.*genome\.fa"):
        assign_splits(candidates, fai, str(tmp_path / "w.tsv"), str(tmp_path / "c.tsv"), train=None, val=["chr9"],
                      test=["c3"], max_windows={}, seed=0)


def test_assign_splits_empty_split_is_an_error(tmp_path):
    candidates, fai = write_inputs(tmp_path)
    with pytest.raises(ValueError, match="'val' has no windows"):
        assign_splits(candidates, fai, str(tmp_path / "w.tsv"), str(tmp_path / "c.tsv"), train=None, val=["c4"],
                      test=["c3"], max_windows={"val": 0}, seed=0)
    assert not (tmp_path / "w.tsv").exists()
