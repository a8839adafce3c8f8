"""Homology filter: planted near-copies of val/test windows are removed, unrelated and diverged windows kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyfaidx
import pytest

from dnalm.corpus import corpus_genomes, exclude_windows, index_windows
from dnalm.homology import HomologySettings, filter_splits, find_homologs
from dnalm.pretrain_homology import excluded_corpus_windows
from dnalm.windows import WINDOW_COLUMNS

L = 300
BASES = np.array(list("ACGT"))


def random_seq(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(BASES, n))


def diverge(rng: np.random.Generator, seq: str, fraction: float) -> str:
    """Substitute `fraction` of the bases (each by another base)."""
    out = np.array(list(seq))
    pos = rng.choice(len(seq), round(fraction * len(seq)), replace=False)
    for p in pos:
        out[p] = rng.choice([b for b in BASES if b != out[p]])
    return "".join(out)


def write_fasta(path: Path, chroms: dict[str, str]) -> str:
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in chroms.items()))
    pyfaidx.Faidx(str(path)).close()
    return str(path)


def window_rows(species: str, chrom: str, n: int, split: str, gap: int = 0) -> list[dict]:
    """n adjacent windows of L bp (separated by `gap`) from the start of a chromosome."""
    return [{"id": f"{species}:{chrom}:{i}", "species": species, "chrom": chrom, "start": i * (L + gap),
             "end": i * (L + gap) + L, "strand": "+", "site": i * (L + gap) + L // 2, "offset": 0, "reads": 10.0,
             "merged": 0, "kept": True, "reason": "", "split": split, "row": 0} for i in range(n)]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict:
    """Target genome (train/val/test chromosomes) and a second genome, with planted copies of held-out windows.

    Train windows 0-2 are 1%, 2% and 3% diverged copies of val windows 0-1 and test window 0; train window 3 a
    15%-diverged copy of val window 2; train windows 4-9 unrelated. Second genome: window 0 a 2% copy of test
    window 1, windows 1-3 unrelated. Val window 4 is a 1% copy of test window 2 (val side dropped).
    """
    tmp = tmp_path_factory.mktemp("homology")
    rng = np.random.default_rng(1)
    test = [random_seq(rng, L) for _ in range(5)]
    val = [random_seq(rng, L) for _ in range(4)] + [diverge(rng, test[2], 0.01)]
    train = ([diverge(rng, val[0], 0.01), diverge(rng, val[1], 0.02), diverge(rng, test[0], 0.03),
              diverge(rng, val[2], 0.15)] + [random_seq(rng, L) for _ in range(6)])
    other = [diverge(rng, test[1], 0.02)] + [random_seq(rng, L) for _ in range(3)]
    target = write_fasta(tmp / "target.fa", {"tr": "".join(train), "va": "".join(val), "te": "".join(test)})
    second = write_fasta(tmp / "second.fa", {"c1": "".join(other)})
    rows = (window_rows("sp", "tr", 10, "train") + window_rows("sp", "va", 5, "val")
            + window_rows("sp", "te", 5, "test") + window_rows("sp2", "c1", 4, "train"))
    table = pd.DataFrame(rows)[[*WINDOW_COLUMNS, "split", "row"]]
    table.to_csv(tmp / "assigned.tsv", sep="\t", index=False)
    return {"tmp": tmp, "fastas": {"sp": target, "sp2": second}, "table": table}


def run_filter(planted: dict, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    tmp = planted["tmp"]
    settings = {"enabled": True, "preset": None, "min_identity": 0.95, "min_coverage": 0.5, "threads": 1, **kwargs}
    out = [tmp / "windows.tsv", tmp / "homology.tsv", tmp / "summary.tsv"]
    windows = filter_splits(str(tmp / "assigned.tsv"), *map(str, out), species="sp", fastas=planted["fastas"],
                            **settings)
    return windows, pd.read_csv(out[1], sep="\t"), pd.read_csv(out[2], sep="\t")


EXPECTED_REMOVED = {"sp:tr:0": "sp:va:0", "sp:tr:1": "sp:va:1", "sp:tr:2": "sp:te:0", "sp2:c1:0": "sp:te:1",
                    "sp:va:4": "sp:te:2"}


@pytest.mark.parametrize("threads", [1, 2])
def test_planted_copies_removed_and_others_kept(planted: dict, threads: int) -> None:
    windows, removed, summary = run_filter(planted, threads=threads)
    assert dict(zip(removed["id"], removed["hit"])) == EXPECTED_REMOVED
    assert (removed["identity"] >= 0.95).all() and (removed["coverage"] >= 0.5).all()
    assert set(removed.loc[removed["id"] == "sp:va:4", "hit_split"]) == {"test"}
    dropped = set(windows.loc[~windows["kept"], "id"])
    assert dropped == set(EXPECTED_REMOVED)
    assert (windows.loc[windows["id"].isin(dropped), "reason"] == "homology").all()
    # the 15%-diverged copy and the unrelated windows stay
    assert windows.set_index("id").loc[["sp:tr:3", "sp:tr:9", "sp2:c1:3"], "kept"].all()
    # store rows are renumbered 0..n-1 per split
    for split, group in windows[windows["kept"]].groupby("split"):
        assert list(group["row"]) == list(range(len(group)))
    by_species = summary.set_index("species")
    assert by_species.loc["sp", ["train_before", "test_before", "val_before"]].tolist() == [10, 5, 5]
    assert by_species.loc["sp", ["train_after", "test_after", "val_after"]].tolist() == [7, 5, 4]
    assert by_species.loc["sp2", ["train_before", "train_after", "removed_train"]].tolist() == [4, 3, 1]
    assert by_species.loc["all", "removed"] == len(removed) == 5
    assert by_species.loc["all", "removed_train_percent"] == pytest.approx(100 * 4 / 14, abs=0.01)


def test_disabled_filter_keeps_everything(planted: dict) -> None:
    windows, removed, summary = run_filter(planted, enabled=False)
    assert windows["kept"].all() and removed.empty
    assert (summary["removed"] == 0).all()


def test_empty_split_after_filter_is_an_error(planted: dict) -> None:
    table = planted["table"]
    only_copies = table[~table["id"].isin(["sp:tr:3"] + [f"sp:tr:{i}" for i in range(4, 10)] + ["sp2:c1:1",
                                                                                               "sp2:c1:2",
                                                                                               "sp2:c1:3"])]
    path = planted["tmp"] / "copies.tsv"
    only_copies.to_csv(path, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"split 'train' has no windows after the homology filter \(4 removed"):
        filter_splits(str(path), *(str(planted["tmp"] / f"x{i}.tsv") for i in range(3)), species="sp",
                      fastas=planted["fastas"], enabled=True, preset=None, min_identity=0.95, min_coverage=0.5,
                      threads=1)
    assert not (planted["tmp"] / "x0.tsv").exists()


def test_preset_follows_window_length() -> None:
    assert HomologySettings().preset_for(300) == "sr"
    assert HomologySettings().preset_for(16384) == "asm20"
    assert HomologySettings(preset="map-ont").preset_for(300) == "map-ont"


def test_16kb_copies_found_with_default_preset(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    held = [random_seq(rng, 16384) for _ in range(2)]
    queries = [diverge(rng, held[0], 0.02), diverge(rng, held[1], 0.15), random_seq(rng, 16384)]
    fasta = write_fasta(tmp_path / "g.fa", {"h": "".join(held), "q": "".join(queries)})
    records = lambda chrom, n: [(f"{chrom}{i}", fasta, chrom, i * 16384, (i + 1) * 16384) for i in range(n)]
    hits = find_homologs(records("q", 3), records("h", 2), HomologySettings())
    assert list(hits["id"]) == ["q0"] and list(hits["hit"]) == ["h0"]


def test_pretraining_corpus_excludes_homologs_of_held_out_windows(planted: dict) -> None:
    """Corpus windows tiled over the second genome: the one holding the copy of test window 1 is excluded."""
    tmp = planted["tmp"]
    run_filter(planted)
    genomes = corpus_genomes([{"id": "sp2", "species": "sp2", "fasta": planted["fastas"]["sp2"],
                               "fai": planted["fastas"]["sp2"] + ".fai", "exclude": [], "val": []}])
    tasks = {"t": {"species": "sp", "fasta": planted["fastas"]["sp"], "windows": str(tmp / "windows.tsv"),
                   "folds": None, "held_out_folds": []}}
    out = tmp / "excluded.tsv"
    homology = {"enabled": True, "preset": None, "min_identity": 0.95, "min_coverage": 0.5, "threads": 1}
    excluded = excluded_corpus_windows(genomes, tasks, str(out), window=L, stride=L, homology=homology)
    assert list(excluded["start"]) == [0] and list(excluded["hit"]) == ["t|sp:te:1"]
    before = len(index_windows(genomes, "train", L, L))
    exclude_windows(genomes, out)
    after = index_windows(genomes, "train", L, L)
    assert before == 4 and len(after) == 3 and 0 not in after.start


def test_pretraining_corpus_leaves_out_held_out_folds_and_validates_on_the_val_fold(planted: dict) -> None:
    """Fold task on the target genome: tr = fold 0 (train), va = fold 1 (val), te = fold 2 (test)."""
    tmp = planted["tmp"]
    fasta = planted["fastas"]["sp"]
    pd.DataFrame({"chrom": ["tr", "va", "te"], "start": [0, 0, 0], "end": [10 * L, 5 * L, 5 * L],
                  "fold": [0, 1, 2]}).to_csv(tmp / "folds.tsv", sep="\t", index=False)
    genomes = corpus_genomes([{"id": "sp", "species": "sp", "fasta": fasta, "fai": fasta + ".fai", "exclude": [],
                               "val": []}])
    tasks = {"t": {"species": "sp", "fasta": fasta, "windows": str(tmp / "assigned.tsv"),
                   "folds": str(tmp / "folds.tsv"), "held_out_folds": [1, 2]}}
    homology = {"enabled": False, "preset": None, "min_identity": 0.95, "min_coverage": 0.5, "threads": 1}
    out = tmp / "excluded_folds.tsv"
    excluded = excluded_corpus_windows(genomes, tasks, str(out), window=L, stride=L, homology=homology)
    assert excluded.groupby("chrom")["reason"].agg(set).to_dict() == {"va": {"val_fold"}, "te": {"held_out_fold"}}
    exclude_windows(genomes, out)
    train, val = index_windows(genomes, "train", L, L), index_windows(genomes, "val", L, L)
    assert len(train) == 10 and {train.chrom_names[c] for c in train.chrom} == {"tr"}
    assert len(val) == 5 and {val.chrom_names[c] for c in val.chrom} == {"va"}


def test_report_shows_the_before_after_table(planted: dict, tmp_path: Path) -> None:
    from dnalm.report import write_report

    run_filter(planted)
    summary = tmp_path / "results" / "splits" / "t" / "summary.tsv"
    summary.parent.mkdir(parents=True)
    summary.write_text((planted["tmp"] / "summary.tsv").read_text())
    excluded = tmp_path / "results" / "pretrain" / "lm" / "homology_excluded.tsv"
    excluded.parent.mkdir(parents=True)
    excluded.write_text("genome\tchrom\tstart\tend\treason\thit\tidentity\tcoverage\n"
                        "sp2\tc1\t0\t300\thomology\tt|sp:te:1\t0.98\t1.0\n")
    out = tmp_path / "report.html"
    manifest = [{"kind": "homology_summary", "task": "t", "task_type": "profile", "path": str(summary)},
                {"kind": "pretrain_homology", "lm": "lm", "path": str(excluded)}]
    write_report(str(out), manifest, n_examples=0, interpret_examples=0)
    text = out.read_text()
    assert '<section id="homology"><h2>Homology filter</h2>' in text
    # study 2's layout: train / test / val before, after, train removed (%)
    assert "<td>sp</td><td class=\"num\">10 / 5 / 5</td><td class=\"num\">7 / 5 / 4</td>" in text
    assert "<td>all</td><td class=\"num\">14 / 5 / 5</td><td class=\"num\">10 / 5 / 4</td>" in text
    assert "4 (28.6%)" in text
    assert "Language model lm: 1 corpus train windows excluded (1 homology)." in text


def test_report_counts_windows_dropped_at_fold_boundaries(tmp_path: Path) -> None:
    from dnalm.report import write_report

    counts = tmp_path / "results" / "splits" / "t" / "counts.tsv"
    counts.parent.mkdir(parents=True)
    counts.write_text("species\tsplit\tsites\tdropped_n\tdropped_subsample\tdropped_fold\twindows\n"
                      "sp\ttrain\t100\t1\t0\t7\t92\nsp\tval\t20\t0\t0\t2\t18\nsp\ttest\t20\t0\t0\t0\t20\n")
    out = tmp_path / "report.html"
    manifest = [{"kind": "split_counts", "task": "t", "task_type": "profile", "path": str(counts)}]
    write_report(str(out), manifest, n_examples=0, interpret_examples=0)
    text = out.read_text()
    assert "<th>dropped (crosses fold)</th><th>windows</th>" in text
    assert '<td class="num">7</td><td class="num">92</td>' in text


def test_pretraining_corpus_without_tasks_excludes_nothing(planted: dict) -> None:
    fasta = planted["fastas"]["sp2"]
    genomes = corpus_genomes([{"id": "sp2", "species": "sp2", "fasta": fasta, "fai": fasta + ".fai", "exclude": [],
                               "val": []}])
    homology = {"enabled": True, "preset": None, "min_identity": 0.95, "min_coverage": 0.5, "threads": 1}
    out = planted["tmp"] / "excluded_none.tsv"
    assert excluded_corpus_windows(genomes, {}, str(out), window=L, stride=L, homology=homology).empty
    assert pd.read_csv(out, sep="\t").columns.tolist()[:5] == ["genome", "chrom", "start", "end", "reason"]


def test_coverage_is_a_share_of_the_shorter_window():
    """A 500 bp held-out window inside a 2 kb corpus window is a homolog: the alignment covers all of the shorter
    window (a share of the longer one, 0.25, would let it through at min_coverage 0.5)."""
    import mappy

    from dnalm.homology import best_hit

    rng = np.random.default_rng(3)
    target = "".join(rng.choice(list("ACGT"), 500))
    query = "".join(rng.choice(list("ACGT"), 750)) + target + "".join(rng.choice(list("ACGT"), 750))
    hit = best_hit(mappy.Aligner(seq=target, preset="asm20"), query, 0.95, 0.5)
    assert hit is not None and hit[2] > 0.99, hit
    unrelated = "".join(rng.choice(list("ACGT"), 2000))
    assert best_hit(mappy.Aligner(seq=target, preset="asm20"), unrelated, 0.95, 0.5) is None
