"""Motif files, modisco on planted attributions, TOMTOM matching, the synthetic genome and the report section."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyBigWig
import pytest

from dnalm.attribution import save_npz_atomic, select_windows
from dnalm.interpret import (
    Pattern,
    correlation_columns,
    match_motifs,
    read_motif_table,
    read_patterns,
    run_modisco,
    tomtom_matches,
)
from dnalm.motifs import bh_qvalues, consensus_ppm, read_meme, read_motif_files, write_meme
from dnalm.synthetic import DECOYS, PLANTED, synthetic_decoys, write_synthetic

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


def as_pattern(ppm: np.ndarray, sign: str = "+") -> Pattern:
    """A pattern whose CWM is its (L, 4) PPM, so trimming keeps every column."""
    return Pattern("count", "pattern", sign, 50, ppm, ppm, ppm)


def synthetic_motifs() -> dict[str, np.ndarray]:
    """The known-motif file of the synthetic genome: planted elements and decoys."""
    return {name: consensus_ppm(c) for name, c in {**PLANTED, **synthetic_decoys()}.items()}


def test_correlation_columns_are_sqrt_two_minus_two_r_apart() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.dirichlet(np.ones(4), size=20).T, rng.dirichlet(np.ones(4), size=20).T
    r = np.array([np.corrcoef(a[:, i], b[:, i])[0, 1] for i in range(20)])
    distance = np.linalg.norm(correlation_columns(a, 4) - correlation_columns(b, 5), axis=0)
    np.testing.assert_allclose(distance, np.sqrt(2 - 2 * r), atol=1e-9)
    flat = np.full((4, 1), 0.25)  # an N: correlates with nothing, not even another N
    for query, target in ((flat, b[:, :1]), (a[:, :1], flat), (flat, flat)):
        np.testing.assert_allclose(np.linalg.norm(correlation_columns(query, 4) - correlation_columns(target, 5)),
                                   np.sqrt(2))


def test_every_known_motif_matches_itself_on_its_strand() -> None:
    motifs = synthetic_motifs()
    names = list(motifs)
    for name, consensus in {**PLANTED, **synthetic_decoys()}.items():
        minus = consensus[::-1].translate(str.maketrans("ACGTRYSWKMN", "TGCAYRSWMKN"))
        for seq, strand in ((consensus, "+"), (minus, "-")):
            _, q, _, strands = tomtom_matches([as_pattern(consensus_ppm(seq, 0.7).T)], motifs)
            best = int(q[0].argmin())
            assert names[best] == name and q[0, best] < 0.05, (seq, names[best], q[0, best])
            if consensus != minus:  # a palindrome matches both strands equally
                assert ("-" if strands[0, best] else "+") == strand, seq


# A negative count pattern of the k-mer LM on the synthetic genome (48 seqlets, config/examples/synthetic_motifs.yaml,
# 400 windows): one A amid A/T-rich columns near the genome's base composition, i.e. no motif.
UNINFORMATIVE = np.array([
    [0.31, 0.21, 0.08, 0.40], [0.33, 0.19, 0.10, 0.38], [0.35, 0.17, 0.15, 0.33], [0.31, 0.15, 0.08, 0.46],
    [0.40, 0.17, 0.10, 0.33], [0.33, 0.12, 0.23, 0.31], [0.27, 0.08, 0.25, 0.40], [0.33, 0.12, 0.12, 0.42],
    [0.31, 0.17, 0.12, 0.40], [0.25, 0.23, 0.17, 0.35], [0.29, 0.15, 0.29, 0.27], [0.96, 0.02, 0.00, 0.02],
    [0.38, 0.23, 0.08, 0.31], [0.44, 0.15, 0.10, 0.31], [0.50, 0.17, 0.12, 0.21]])


def test_an_uninformative_pattern_matches_no_gapped_motif() -> None:
    """Under memelite's Euclidean distance its near-background columns sit closest to Abf1's NNNNN (q ≈ 0.01)."""
    from memelite import tomtom

    motifs = synthetic_motifs()
    ppm = UNINFORMATIVE / UNINFORMATIVE.sum(axis=1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        euclidean = bh_qvalues(tomtom([np.ascontiguousarray(ppm.T)], list(motifs.values()))[0])[0]
    assert list(motifs)[int(euclidean.argmin())] == "Abf1_RTCRYNNNNNACG" and euclidean.min() < 0.05
    _, q, _, _ = tomtom_matches([as_pattern(ppm, "-")], motifs)
    assert q.min() > 0.05


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
    assert best["found"]  # no support threshold
    assert read_motif_table(tmp_path / "motifs.tsv")[["significant", "found"]].equals(table[["significant", "found"]])
    # a pattern with fewer seqlets than the support threshold keeps its match but is not reported as found
    weak = match_motifs({"count": str(tmp_path / "m.h5")}, [str(data["motifs"])], str(tmp_path / "weak.tsv"),
                        min_seqlets=int(best["n_seqlets"]) + 1)
    assert weak.iloc[0]["significant"] and not weak.iloc[0]["found"]
    with pytest.raises(ValueError, match="no 'profile' attributions"):
        run_modisco(str(tmp_path / "a.npz"), "profile", str(tmp_path / "p.h5"), max_seqlets=10)
    assert not (tmp_path / "p.h5").exists()


def test_modisco_runs_when_no_contribution_is_negative(tmp_path: Path) -> None:
    """modisco-lite alone raises on this (no negative window sums); the positive patterns must still come out."""
    seqs, hyp = planted_attributions(seed=1)
    hyp = np.abs(hyp)
    save_npz_atomic(tmp_path / "a.npz", onehot=seqs, profile_hyp=hyp, profile_attr=hyp * seqs)
    summary = run_modisco(str(tmp_path / "a.npz"), "profile", str(tmp_path / "m.h5"), max_seqlets=500,
                          n_leiden_runs=1, min_metacluster_size=50)
    assert summary["neg_patterns"] == 0 and summary["pos_patterns"] >= 1
    assert "AATAAA" in read_patterns(str(tmp_path / "m.h5"))[0].consensus()


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
            if not pd.isna(s.positioning_distance):
                d = int(s.positioning_distance)
                assert up[-1 - d - 5:len(up) - d] == "AATAAA"
            if not pd.isna(s.efficiency_distance):
                d = int(s.efficiency_distance)
                assert up[-1 - d - 5:len(up) - d] == "TATATA"
            bw = plus if s.strand == "+" else minus
            values = np.nan_to_num(bw.values(s.chrom, s.site - 1, s.site + 2, numpy=True))
            assert values[1] == values.max() > 0
    for column, factor in (("efficiency_distance", 4), ("positioning_distance", 3)):
        with_element = sites[column].notna()
        assert 0.3 < with_element.mean() < 0.9
        assert sites.loc[with_element, "reads"].median() > 0.6 * factor * sites.loc[~with_element, "reads"].median()
    motifs = read_meme(paths["motifs"])
    assert set(motifs) == set(PLANTED) | set(synthetic_decoys())
    # a decoy that holds a planted element on either strand is not a decoy: Ste12's TGAAACA is TGTTTCA reversed
    assert "Ste12_PRE_TGAAACA" in DECOYS and "Ste12_PRE_TGAAACA" not in motifs


def fake_modisco(path: Path, consensus: dict[str, tuple[str, int]]) -> None:
    """A file in modisco-lite's layout: one positive pattern per (consensus, seqlets), with 3 random flank bases."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as handle:
        group = handle.create_group("pos_patterns")
        for i, (seq, n) in enumerate(consensus.values()):
            ppm = onehot("CGC" + seq + "GCG").T * 0.9 + 0.025
            cwm = onehot("CGC" + seq + "GCG").T * np.r_[[0.01] * 3, [1.0] * len(seq), [0.01] * 3][:, None]
            p = group.create_group(f"pattern_{i}")
            p["sequence"], p["contrib_scores"], p["hypothetical_contribs"] = ppm, cwm, cwm + rng.normal(0, .01, cwm.shape)
            p.create_group("seqlets")["n_seqlets"] = np.array([n])


def test_report_section_side_by_side(tmp_path: Path) -> None:
    from dnalm.report import write_report

    motifs = [str(POLYA), str(TF)]
    manifest = []
    for model, patterns in {"bpnet": {"a": ("AATAAA", 120), "b": ("TATATA", 40)},
                            "lm": {"a": ("AATAAA", 60), "c": ("GGGCCCGGGCCC", 30)}}.items():
        root = tmp_path / "results" / "interpret" / "polya" / model
        root.mkdir(parents=True)
        fake_modisco(root / "modisco.count.h5", patterns)
        match_motifs({"count": str(root / "modisco.count.h5")}, motifs, str(root / "motifs.tsv"))
        x = np.stack([onehot("ACGT" * 25)] * 4)
        save_npz_atomic(root / "attributions.npz", onehot=x, window_ids=np.array([f"w{i}" for i in range(4)]),
                        count_attr=x * np.arange(1, 5)[:, None, None], count_hyp=x)
        names = {"task": "polya", "task_type": "profile", "model": model}
        manifest += [{"kind": "attributions", **names, "path": str(root / "attributions.npz")},
                     {"kind": "motifs", **names, "path": str(root / "motifs.tsv")},
                     {"kind": "modisco", **names, "output": "count", "path": str(root / "modisco.count.h5")}]
    out = tmp_path / "report.html"
    write_report(str(out), manifest, n_examples=0, interpret_examples=2)
    text = out.read_text()
    section = text[text.index('<section id="interpretation">'):]
    table = section[:section.index("</table>")]
    assert "<th>bpnet</th><th>lm</th>" in table  # models side by side
    assert "positioning_AATAAA" in table and "efficiency_TATATA" in table
    row = table[table.index("efficiency_TATATA"):]
    assert row.index("40 seqlets") < row.index("not found")  # bpnet found it, the LM did not
    assert "GGGCCCGGGCCC" in section  # an unmatched pattern is listed too
    # 4 patterns × one logo figure each, plus 2 example windows
    assert section.count('src="data:image/png;base64,') == 6
    assert "Window w3" in section and "Window w2" in section and "Window w0" not in section
    assert 'src="http' not in text


def test_report_without_interpretation(tmp_path: Path) -> None:
    from dnalm.report import write_report

    write_report(str(tmp_path / "r.html"), [], n_examples=0, interpret_examples=2)
    assert "No model was interpreted" in (tmp_path / "r.html").read_text()
    lone = tmp_path / "results/interpret/t/m/attributions.npz"
    lone.parent.mkdir(parents=True)
    lone.write_bytes(b"")
    record = {"kind": "attributions", "task": "t", "task_type": "profile", "model": "m", "path": str(lone)}
    with pytest.raises(ValueError, match="task 't', model 'm' has no motifs.tsv"):
        write_report(str(tmp_path / "r.html"), [record], n_examples=0, interpret_examples=2)
