"""Motif files, modisco on planted attributions, TOMTOM matching, the synthetic genome and the report section."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyBigWig
import pytest

from dnalm.interpret import match_motifs, read_patterns, run_modisco, save_npz_atomic, select_windows
from dnalm.motifs import bh_qvalues, consensus_ppm, read_meme, read_motif_files, write_meme
from dnalm.synthetic import DECOYS, PLANTED, write_synthetic

REPO = Path(__file__).resolve().parents[2]
POLYA = REPO / "resources" / "motifs" / "polya_yeast.meme"
TF = REPO / "resources" / "motifs" / "yeast_tf_consensus.meme"


def onehot(seq: str) -> np.ndarray:
    """(4, L) one-hot of a DNA string."""
    return np.array([[float(b == c) for b in seq] for c in "ACGT"], dtype=np.float32)


def test_shipped_motif_files_parse() -> None:
    polya = read_meme(POLYA)
    assert {"positioning_AATAAA", "positioning_TATAAA", "positioning_AAAAAA", "efficiency_TATATA", "cleavage_YA",
            "U_rich_flank"} == set(polya)
    consensus = {n: "".join("ACGT"[i] for i in m.argmax(axis=0)) for n, m in polya.items()}
    assert consensus["positioning_AATAAA"] == "AATAAA" and consensus["efficiency_TATATA"] == "TATATA"
    assert consensus["cleavage_YA"].endswith("CA")
    for matrix in polya.values():
        np.testing.assert_allclose(matrix.sum(axis=0), 1, atol=1e-6)
    assert len(read_motif_files([str(POLYA), str(TF)])) == len(polya) + len(DECOYS)


@pytest.mark.parametrize("text, line, what", [
    ("MOTIF a\nletter-probability matrix: alength= 4 w= 2\n0.5 0.5 0 0\n0.5 0.5\n", 4, "4 probabilities"),
    ("MOTIF a\nletter-probability matrix: alength= 4 w= 2\n0.5 0.5 0 0\n0.9 0.5 0 0\n", 4, "summing to 1"),
    ("MOTIF a\nletter-probability matrix: alength= 4\n", 2, "w= <width>"),
    ("MOTIF a\nletter-probability matrix: alength= 4 w= 3\n0.5 0.5 0 0\n", 3, "ends before"),
    ("ALPHABET= ACDEFGHIKLMNPQRSTVWY\n", 1, "only DNA"),
    ("MOTIF a\nletter-probability matrix: w= 1\n1 0 0 0\nMOTIF a\n", 4, "appears twice"),
])
def test_bad_motif_file_names_file_and_line(tmp_path: Path, text: str, line: int, what: str) -> None:
    path = tmp_path / "bad.meme"
    path.write_text("MEME version 4\n" + text)
    with pytest.raises(ValueError, match=rf"bad\.meme, line {line + 1}: .*{what}"):
        read_meme(path)


def test_empty_and_duplicate_motif_files(tmp_path: Path) -> None:
    (tmp_path / "empty.meme").write_text("MEME version 4\n")
    with pytest.raises(ValueError, match="empty.meme: no motifs"):
        read_meme(tmp_path / "empty.meme")
    with pytest.raises(ValueError, match="positioning_AATAAA.*in both"):
        read_motif_files([str(POLYA), str(POLYA)])


def test_consensus_and_meme_round_trip(tmp_path: Path) -> None:
    ppm = consensus_ppm("AYN")
    np.testing.assert_allclose(ppm[:, 0], [0.85, 0.05, 0.05, 0.05])
    np.testing.assert_allclose(ppm[:, 1], [0.075, 0.425, 0.075, 0.425])
    np.testing.assert_allclose(ppm[:, 2], 0.25)
    write_meme(tmp_path / "m.meme", {"x": ppm})
    np.testing.assert_allclose(read_meme(tmp_path / "m.meme")["x"], ppm, atol=1e-4)
    with pytest.raises(ValueError, match="'Z' is not an IUPAC"):
        consensus_ppm("AZ")


def test_bh_qvalues_match_the_definition() -> None:
    p = np.array([[0.01, 0.04, 0.03, 0.5], [0.2, 0.2, 0.9, 0.001]])
    q = bh_qvalues(p)
    np.testing.assert_allclose(q[0], [0.04, 0.16 / 3, 0.16 / 3, 0.5])  # 0.03 × 4 / 2 > 0.04 × 4 / 3
    np.testing.assert_allclose(q[1], [4 / 15, 4 / 15, 0.9, 0.004])


def test_select_windows_is_seeded_and_sorted() -> None:
    assert list(select_windows(5, 10, 0)) == [0, 1, 2, 3, 4]
    rows = select_windows(1000, 50, 3)
    assert len(set(rows)) == 50 and list(rows) == sorted(rows) and list(rows) == list(select_windows(1000, 50, 3))


def planted_attributions(n: int = 300, length: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random windows with AATAAA at a random place; hypothetical contributions: +1 for each base of it there."""
    rng = np.random.default_rng(seed)
    seqs, hyp = np.zeros((n, 4, length), np.float32), np.zeros((n, 4, length), np.float32)
    for i in range(n):
        seq = "".join(rng.choice(list("ACGT"), size=length))
        at = int(rng.integers(10, length - 16))
        seq = seq[:at] + "AATAAA" + seq[at + 6:]
        seqs[i] = onehot(seq)
        hyp[i, :, at:at + 6] = onehot("AATAAA")
        hyp[i] += rng.normal(0, 0.01, size=(4, length)).astype(np.float32)
    return seqs, hyp


def test_modisco_and_tomtom_find_a_planted_motif(tmp_path: Path) -> None:
    seqs, hyp = planted_attributions()
    save_npz_atomic(tmp_path / "a.npz", onehot=seqs, count_hyp=hyp, count_attr=hyp * seqs)
    summary = run_modisco(str(tmp_path / "a.npz"), "count", str(tmp_path / "m.h5"), max_seqlets=500,
                          n_leiden_runs=1, min_metacluster_size=50)
    assert summary["pos_patterns"] >= 1
    patterns = read_patterns(str(tmp_path / "m.h5"))
    assert patterns[0].sign == "+" and "AATAAA" in patterns[0].consensus() and patterns[0].n_seqlets >= 50
    data = write_synthetic(tmp_path / "synth", n_chroms=1, length=2000)
    table = match_motifs({"count": str(tmp_path / "m.h5")}, [str(data["motifs"])], str(tmp_path / "motifs.tsv"))
    best = table.iloc[0]
    assert best["best_match"] == "positioning_AATAAA" and best["q_value"] < 0.05 and best["significant"]
    assert pd.read_csv(tmp_path / "motifs.tsv", sep="\t").shape == table.shape
    with pytest.raises(ValueError, match="no 'profile' attributions"):
        run_modisco(str(tmp_path / "a.npz"), "profile", str(tmp_path / "p.h5"), max_seqlets=10)
    assert not (tmp_path / "p.h5").exists()


def test_synthetic_genome_plants_motifs_where_it_says(tmp_path: Path) -> None:
    paths = write_synthetic(tmp_path, n_chroms=2, length=6000, seed=1)
    genome = {}
    for block in paths["genome"].read_text().split(">")[1:]:
        name, *lines = block.split("\n")
        genome[name] = "".join(lines)
    sites = pd.read_csv(paths["sites"], sep="\t")
    assert len(sites) >= 30 and set(sites["strand"]) == {"+", "-"}
    rc = str.maketrans("ACGT", "TGCA")
    with pyBigWig.open(str(paths["plus"])) as plus, pyBigWig.open(str(paths["minus"])) as minus:
        for s in sites.itertuples():
            seq = genome[s.chrom]
            up = seq[s.site - 60:s.site + 1] if s.strand == "+" else seq[s.site:s.site + 61][::-1].translate(rc)
            assert up.endswith("TTTCA")  # the site is the A of the cleavage element's CA
            assert up[-1 - s.positioning_distance - 5:len(up) - s.positioning_distance] == "AATAAA"
            if not pd.isna(s.efficiency_distance):
                d = int(s.efficiency_distance)
                assert up[-1 - d - 5:len(up) - d] == "TATATA"
            bw = plus if s.strand == "+" else minus
            values = np.nan_to_num(bw.values(s.chrom, s.site - 1, s.site + 2, numpy=True))
            assert values[1] == values.max() > 0
    efficient = sites["efficiency_distance"].notna()
    assert sites.loc[efficient, "reads"].median() > 2.5 * sites.loc[~efficient, "reads"].median()
    motifs = read_meme(paths["motifs"])
    assert set(motifs) == set(PLANTED) | set(DECOYS)
