"""Tests for dnalm.windows: site calling from bigWigs, window placement and checks, the candidate table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyBigWig
import pyfaidx
import pytest

from dnalm.windows import (
    WINDOW_COLUMNS,
    call_sites,
    check_windows,
    make_windows,
    place_windows,
    read_fai,
    read_windows,
)


def write_bigwig(path, sizes: dict[str, int], intervals: list[tuple[str, int, int, float]]) -> str:
    """Write a bigWig with the given header and (chrom, start, end, value) intervals (sorted)."""
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(sizes.items()))
    for chrom, start, end, value in intervals:
        bw.addEntries([chrom], [start], ends=[end], values=[float(value)])
    bw.close()
    return str(path)


def write_fasta(path, seqs: dict[str, str]) -> str:
    """Write a FASTA (wrapped at 30 columns) and index it with pyfaidx."""
    with open(path, "w") as handle:
        for name, seq in seqs.items():
            handle.write(f">{name}\n")
            handle.writelines(seq[i : i + 30] + "\n" for i in range(0, len(seq), 30))
    pyfaidx.Fasta(str(path)).close()
    return str(path)


# ---------------------------------------------------------------- call_sites

def test_call_sites_both_strands_threshold_and_genome_order(tmp_path):
    chroms = {"chrB": 50, "chrA": 100}  # genome order: chrB first, unlike the bigWig headers
    header = {"chrA": 100, "chrB": 50}
    plus = write_bigwig(tmp_path / "p.bw", header, [
        ("chrA", 10, 11, 5.0),
        ("chrA", 20, 23, 3.0),  # three bases: three sites
        ("chrA", 30, 31, 1.9),  # below the threshold
        ("chrB", 5, 6, 2.0),  # exactly the threshold
    ])
    minus = write_bigwig(tmp_path / "m.bw", header, [("chrA", 10, 11, 7.0), ("chrA", 15, 16, 4.0)])

    sites = call_sites(plus, minus, 2.0, chroms, min_distance=0)  # every base reaching the threshold

    assert list(sites.columns) == ["chrom", "site", "strand", "reads", "merged"]
    got = list(sites.drop(columns="merged").itertuples(index=False, name=None))
    assert got == [
        ("chrB", 5, "+", 2.0),
        ("chrA", 10, "+", 5.0),
        ("chrA", 10, "-", 7.0),
        ("chrA", 15, "-", 4.0),
        ("chrA", 20, "+", 3.0),
        ("chrA", 21, "+", 3.0),
        ("chrA", 22, "+", 3.0),
    ]
    assert (sites["merged"] == 0).all()


def test_reads_spread_over_nearby_bases_give_one_site_at_their_peak(tmp_path):
    """A cleavage site's reads spread over ±2 bp: one site, at the strongest base, with the cluster's reads."""
    header = {"chrA": 200}
    plus = write_bigwig(tmp_path / "p.bw", header, [
        ("chrA", 48, 49, 2.0), ("chrA", 49, 50, 5.0), ("chrA", 50, 51, 8.0), ("chrA", 51, 52, 5.0),
        ("chrA", 52, 53, 2.0),  # one spread site: 22 reads over 5 bases, peak at 50
        ("chrA", 60, 61, 3.0), ("chrA", 61, 62, 3.0),  # a weaker one 10 bp away: its own site (6 reads), leftmost peak
        ("chrA", 100, 101, 4.0), ("chrA", 102, 103, 4.0), ("chrA", 104, 105, 4.0),  # no base reaches 10, the sum does
        ("chrA", 150, 151, 9.0),  # alone and below the threshold
    ])
    minus = write_bigwig(tmp_path / "m.bw", header, [])
    sites = call_sites(plus, minus, 6.0, {"chrA": 200}, min_distance=5)
    assert list(sites.itertuples(index=False, name=None)) == [
        ("chrA", 50, "+", 22.0, 4), ("chrA", 60, "+", 6.0, 1), ("chrA", 100, "+", 12.0, 2), ("chrA", 150, "+", 9.0, 0)]
    assert call_sites(plus, minus, 10.0, {"chrA": 200}, min_distance=5)["site"].tolist() == [50, 100]


def test_call_sites_track_chromosome_missing_from_genome(tmp_path):
    plus = write_bigwig(tmp_path / "p.bw", {"chrA": 100, "chrZ": 20}, [("chrA", 1, 2, 9.0)])
    minus = write_bigwig(tmp_path / "m.bw", {"chrA": 100}, [("chrA", 1, 2, 9.0)])
    with pytest.raises(ValueError, match="chrZ"):
        call_sites(plus, minus, 1.0, {"chrA": 100})


def test_read_fai(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", {"c2": "ACGT" * 10, "c1": "AC" * 3})
    assert read_fai(fasta + ".fai") == {"c2": 40, "c1": 6}


# ---------------------------------------------------------------- place_windows

def random_sites(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"chrom": "chr1", "site": rng.integers(100, 10_000, n),
                         "strand": rng.choice(["+", "-"], n), "reads": 1.0})


@pytest.mark.parametrize("length", [20, 21])
def test_place_windows_site_at_centre_plus_offset_on_both_strands(length):
    sites = random_sites(300)
    max_offset = 3
    out = place_windows(sites, length, max_offset, seed=0)

    assert (out["end"] - out["start"] == length).all()
    assert out["offset"].abs().max() <= max_offset
    assert set(out["offset"]) == set(range(-max_offset, max_offset + 1))  # the offsets really vary
    assert set(out["strand"]) == {"+", "-"}
    index = np.where(out["strand"] == "+", out["site"] - out["start"], out["end"] - 1 - out["site"])
    np.testing.assert_array_equal(index, length // 2 + out["offset"].to_numpy())
    pd.testing.assert_frame_equal(out[sites.columns], sites)  # the site columns are untouched


def test_place_windows_is_seeded():
    sites = random_sites(100)
    a = place_windows(sites, 50, 10, seed=7)
    b = place_windows(sites, 50, 10, seed=7)
    c = place_windows(sites, 50, 10, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not np.array_equal(a["offset"], c["offset"])


def test_place_windows_max_offset_must_be_below_half_the_length():
    sites = random_sites(5)
    place_windows(sites, 20, 9, seed=0)  # largest allowed
    with pytest.raises(ValueError, match="max_offset"):
        place_windows(sites, 20, 10, seed=0)


# ---------------------------------------------------------------- check_windows

def test_check_windows_marks_n_and_out_of_bounds(tmp_path):
    chr_a = list("ACGT" * 10)  # 40 bp, N at 30, soft-masked (lowercase) bases at 0..9
    chr_a[30] = "N"
    chr_a[:10] = [b.lower() for b in chr_a[:10]]
    fasta = write_fasta(tmp_path / "g.fa", {"chrA": "".join(chr_a), "chrB": "ACGT" * 5})
    chroms = read_fai(fasta + ".fai")
    windows = pd.DataFrame(
        [("chrA", 2, 12), ("chrA", 20, 29), ("chrA", 26, 34), ("chrA", 1, 11), ("chrA", 30, 39), ("chrB", 2, 18)],
        columns=["chrom", "start", "end"])

    out = check_windows(windows, fasta, chroms, flank=2)

    assert list(out["reason"]) == [
        "",  # soft-masked bases are fine
        "contains_n",  # N in the right flank only (window ends at 29, flank reaches 30)
        "contains_n",  # N inside the window
        "out_of_bounds",  # the left flank starts at -1
        "out_of_bounds",  # the right flank ends at 41 > 40
        "",  # flanks reach exactly both chromosome ends
    ]
    assert list(out["kept"]) == [True, False, False, False, False, True]


# ---------------------------------------------------------------- make_windows

def test_make_windows_writes_candidate_table(tmp_path):
    rng = np.random.default_rng(3)
    chr1 = "".join(rng.choice(list("ACGT"), 200))
    chr2 = "".join(rng.choice(list("ACGT"), 100))
    chr2 = chr2[:60] + "N" + chr2[61:]
    fasta = write_fasta(tmp_path / "g.fa", {"chr1": chr1, "chr2": chr2})
    sizes = {"chr1": 200, "chr2": 100}
    plus = write_bigwig(tmp_path / "p.bw", sizes, [("chr1", 50, 51, 4.0), ("chr1", 100, 101, 9.0),
                                                    ("chr1", 150, 151, 0.5), ("chr2", 60, 61, 3.0)])
    minus = write_bigwig(tmp_path / "m.bw", sizes, [("chr1", 120, 121, 6.0), ("chr2", 5, 6, 2.0)])
    out_tsv = tmp_path / "candidates.tsv"

    table = make_windows(fasta, fasta + ".fai", plus, minus, str(out_tsv), species="yeast", min_reads=1.0,
                         length=32, max_offset=4, flank=4, seed=0)

    written = read_windows(out_tsv)
    assert list(written.columns) == WINDOW_COLUMNS
    pd.testing.assert_frame_equal(written, table.reset_index(drop=True), check_dtype=False)
    assert list(written["id"]) == ["yeast:chr1:50:+", "yeast:chr1:100:+", "yeast:chr1:120:-",
                                   "yeast:chr2:5:-", "yeast:chr2:60:+"]
    assert (written["species"] == "yeast").all()
    assert list(written["reads"]) == [4.0, 9.0, 6.0, 2.0, 3.0]
    assert list(written["reason"]) == ["", "", "", "out_of_bounds", "contains_n"]
    assert list(written["kept"]) == [True, True, True, False, False]
    index = np.where(written["strand"] == "+", written["site"] - written["start"],
                     written["end"] - 1 - written["site"])
    np.testing.assert_array_equal(index, 16 + written["offset"].to_numpy())
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp file left


def test_make_windows_without_sites_is_an_error(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", {"chr1": "ACGT" * 25})
    plus = write_bigwig(tmp_path / "p.bw", {"chr1": 100}, [("chr1", 50, 51, 1.0)])
    minus = write_bigwig(tmp_path / "m.bw", {"chr1": 100}, [("chr1", 60, 61, 1.0)])
    with pytest.raises(ValueError, match="min_reads"):
        make_windows(fasta, fasta + ".fai", plus, minus, str(tmp_path / "c.tsv"), species="s", min_reads=5.0,
                     length=32, max_offset=4, flank=4, seed=0)


def test_a_planted_genome_with_reads_over_five_bases_gets_one_window_per_site(tmp_path):
    """dnalm.synthetic with reads spread over ±2 bp: every planted site gets exactly one window, at the site; calling
    every base above the threshold a site (min_distance 0) makes near-duplicate windows instead."""
    from dnalm.synthetic import write_synthetic

    data = write_synthetic(tmp_path / "synth", n_chroms=2, length=30_000, spread=2)
    pyfaidx.Fasta(str(data["genome"])).close()
    planted = pd.read_csv(data["sites"], sep="\t")
    args = (str(data["genome"]), str(data["genome"]) + ".fai", str(data["plus"]), str(data["minus"]))
    kw = {"species": "synth", "min_reads": 10.0, "length": 200, "max_offset": 30, "flank": 8, "seed": 0}
    table = make_windows(*args, str(tmp_path / "w.tsv"), min_distance=5, **kw)
    called = set(zip(table["chrom"], table["site"], table["strand"], strict=True))
    assert called == set(zip(planted["chrom"], planted["site"], planted["strand"], strict=True))
    assert (table["merged"] > 0).all()  # the neighbours' reads went into the site
    every_base = make_windows(*args, str(tmp_path / "all.tsv"), min_distance=0, **kw)
    assert len(every_base) > 1.5 * len(planted)
