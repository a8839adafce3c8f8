"""Tests for dnalm.qc with the real tools (mash, tantan, BUSCO with hmmer/prodigal/AUGUSTUS): no mocks.

The BUSCO tests build a tiny lineage in seconds: 5 protein families (HMMs from hmmbuild), a genome or proteome with 3
of them single-copy, one duplicated and one absent, so BUSCO must report exactly C:80% [S:60%, D:20%], F:0%, M:20%.
The builders are imported by tests/integration/test_qc_workflow.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnalm.io.errors import QCError
from dnalm.qc import annotation, assembly, gate, tools
from dnalm.report import write_report

REPO = Path(__file__).resolve().parents[2]
AMINO = "ACDEFGHIKLMNPQRSTVWY"
CODON = {"A": "GCT", "C": "TGT", "D": "GAT", "E": "GAA", "F": "TTT", "G": "GGT", "H": "CAT", "I": "ATT", "K": "AAA",
         "L": "CTG", "M": "ATG", "N": "AAT", "P": "CCG", "Q": "CAG", "R": "CGT", "S": "TCT", "T": "ACC", "V": "GTT",
         "W": "TGG", "Y": "TAT"}  # fmt: skip
EXPECTED_BUSCO = {"complete": 80.0, "single": 60.0, "duplicated": 20.0, "fragmented": 0.0, "missing": 20.0, "n": 5}
AUGUSTUS_QIJ = "/usr/share/augustus/config/profile/default.qij"


def needs(*tools: str):
    """Skip only when a tool is truly absent on a developer's machine; in CI (CI set) a missing tool fails the test.

    `make test` installs every tool of envs/apt.txt, so CI never skips these.
    """
    missing = [t for t in tools if shutil.which(t) is None]
    return pytest.mark.skipif(bool(missing) and not os.environ.get("CI"),
                              reason=f"not installed: {missing} (see envs/apt.txt)")


# ------------------------------------------------------------------------------------------------------- builders


def write_fasta(path: Path, records: dict[str, str], width: int = 60) -> Path:
    """Write records as a FASTA file with `width`-column lines."""
    with open(path, "w") as out:
        for name, seq in records.items():
            out.write(f">{name}\n")
            out.writelines(f"{seq[i : i + width]}\n" for i in range(0, len(seq), width))
    return path


def random_dna(rng: np.random.Generator, n: int, gc: float = 0.5) -> str:
    """A random DNA string with the given GC content."""
    p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    return rng.choice(np.frombuffer(b"ACGT", dtype=np.uint8), n, p=p).tobytes().decode()


def mutate_dna(rng: np.random.Generator, seq: str, rate: float) -> str:
    """Substitute exactly round(rate × length) positions, each by one of the three other bases."""
    arr = np.frombuffer(seq.encode(), dtype=np.uint8).copy()
    positions = rng.choice(arr.size, round(rate * arr.size), replace=False)
    for pos in positions:
        arr[pos] = rng.choice([b for b in b"ACGT" if b != arr[pos]])
    return arr.tobytes().decode()


def random_protein(rng: np.random.Generator, length: int) -> str:
    """A random protein starting with M."""
    return "M" + "".join(rng.choice(list(AMINO), length - 1))


def mutate_protein(rng: np.random.Generator, protein: str, rate: float = 0.1) -> str:
    """Substitute residues (never the first M) at the given rate."""
    return "".join(c if i == 0 or rng.random() >= rate else rng.choice(list(AMINO)) for i, c in enumerate(protein))


def make_lineage(root: Path, domain: str = "prokaryota", length: int = 200, seed: int = 0) -> tuple[Path, dict]:
    """A 5-family BUSCO lineage `toy_odb10` under `root`: HMMs, dataset.cfg, scores_cutoff, lengths_cutoff.

    Eukaryote lineages also get ancestral, ancestral_variants and prfl/ profiles (msa2prfl.pl) for AUGUSTUS.

    Returns:
        The lineage directory and family id → ancestral protein.
    """
    rng = np.random.default_rng(seed)
    lineage = root / "toy_odb10"
    (lineage / "hmms").mkdir(parents=True)
    families = {f"{1000 + i}at4751": random_protein(rng, length) for i in range(5)}
    for fid, ancestor in families.items():
        members = write_fasta(root / f"{fid}.fa", {f"{fid}_{j}": mutate_protein(rng, ancestor) for j in range(8)})
        subprocess.run(["hmmbuild", "--amino", "-n", fid, str(lineage / "hmms" / f"{fid}.hmm"), str(members)],
                       check=True, capture_output=True)  # fmt: skip
        if domain == "eukaryota":
            (lineage / "prfl").mkdir(exist_ok=True)
            with open(lineage / "prfl" / f"{fid}.prfl", "w") as out:
                subprocess.run(["perl", "/usr/share/augustus/scripts/msa2prfl.pl", f"--qij={AUGUSTUS_QIJ}",
                                str(members)], stdout=out, stderr=subprocess.DEVNULL, check=True)  # fmt: skip
    (lineage / "scores_cutoff").write_text("".join(f"{f}\t50.0\n" for f in families))
    (lineage / "lengths_cutoff").write_text("".join(f"{f}\t0\t10.0\t{length}\n" for f in families))
    species = "saccharomyces" if domain == "eukaryota" else "E_coli_K12"
    (lineage / "dataset.cfg").write_text(
        f"name=toy_odb10\nspecies={species}\ndomain={domain}\ncreation_date=2024-01-01\n"
        "number_of_BUSCOs=5\nnumber_of_species=8\n"
    )
    if domain == "eukaryota":
        ancestral = "".join(f">{f}\n{p}\n" for f, p in families.items())
        (lineage / "ancestral").write_text(ancestral)
        (lineage / "ancestral_variants").write_text(ancestral)
    return lineage, families


def busco_proteome(families: dict[str, str], seed: int = 1, fillers: int = 60) -> dict[str, str]:
    """Proteins: families 1-3 once, family 4 twice (two variants), family 5 absent, plus unrelated filler proteins."""
    rng = np.random.default_rng(seed)
    ids = list(families)
    proteins = {f"single{i}": mutate_protein(rng, families[ids[i]]) for i in range(3)}
    proteins.update({f"dup{j}": mutate_protein(rng, families[ids[3]]) for j in range(2)})
    proteins.update({f"filler{i}": random_protein(rng, 250) for i in range(fillers)})
    order = rng.permutation(len(proteins))
    names = list(proteins)
    return {names[i]: proteins[names[i]] for i in order}


def prokaryote_genome(proteins: dict[str, str], seed: int = 2) -> str:
    """A gene-dense genome: each protein as an ORF (ATG … TAA) after an RBS (AGGAGG), on either strand."""
    rng = np.random.default_rng(seed)
    parts = []
    for protein in proteins.values():
        unit = random_dna(rng, 60, gc=0.4) + "AGGAGG" + random_dna(rng, 8, gc=0.4)
        unit += "".join(CODON[a] for a in protein) + "TAA"
        parts.append(unit if rng.random() < 0.5 else unit[::-1].translate(str.maketrans("ACGT", "TGCA")))
    return "".join(parts) + random_dna(rng, 200, gc=0.4)


def eukaryote_genome(proteins: dict[str, str], seed: int = 2) -> str:
    """Intron-less genes (ATG … TAA) on the + strand between 800 bp AT-rich spacers, which AUGUSTUS (yeast
    parameters) predicts reliably; genes on both strands packed as densely as in prokaryote_genome are not."""
    rng = np.random.default_rng(seed)
    genes = ["".join(CODON[a] for a in protein) + "TAA" for protein in proteins.values()]
    return "".join(random_dna(rng, 800, gc=0.35) + gene for gene in genes) + random_dna(rng, 800, gc=0.35)


# -------------------------------------------------------------------------------------------- FASTA and assembly


def test_assembly_stats_count_gc_n_and_iupac(tmp_path: Path) -> None:
    fasta = write_fasta(tmp_path / "g.fa", {"a": "ACGTACGTNN" * 10, "b": "GGGGCCCCRY" + "acgt" * 5, "c": "ATWS"})
    stats = assembly.assembly_stats(assembly.scan_genome(fasta))
    assert stats["length"] == 100 + 30 + 4 and stats["sequences"] == 3
    assert stats["n50"] == 100
    assert stats["n_count"] == 20 and stats["n_fraction"] == pytest.approx(20 / 134)
    assert stats["iupac"] == {"R": 1, "Y": 1, "S": 1, "W": 1} and stats["iupac_count"] == 4
    # unambiguous bases: a: 80 (40 GC); b: 8 GC + 20 (10 GC); c: AT
    assert stats["gc_fraction"] == pytest.approx((40 + 8 + 10) / (80 + 8 + 20 + 2))
    assert stats["lowercase_fraction"] == pytest.approx(20 / 134)


@pytest.mark.parametrize(("lengths", "expected"), [([100], 100), ([50, 30, 20], 50), ([10, 10, 40, 40], 40),
                                                   ([1, 2, 3, 4, 5, 6], 5), ([], 0)])  # fmt: skip
def test_n50(lengths: list[int], expected: int) -> None:
    assert assembly.n50(lengths) == expected


def test_iupac_genome_is_counted_not_rejected(tmp_path: Path) -> None:
    """The C. albicans demo genome carries IUPAC codes: they are counted, and the genome is QC'd."""
    import gzip

    source = REPO / "resources/demo/calb/Candida_albicans_SC5314_chr1A_chr6A.fasta.gz"
    fasta = tmp_path / "calb.fa"
    fasta.write_bytes(gzip.decompress(source.read_bytes()))
    stats = assembly.assembly_stats(assembly.scan_genome(fasta))
    assert stats["sequences"] == 2 and stats["length"] == 3_188_341 + 1_033_292
    assert stats["iupac"] == {"R": 144, "Y": 146, "S": 40, "W": 72, "K": 60, "M": 58}
    assert stats["iupac_count"] == 520 and stats["n_count"] == 1056


def test_empty_fasta_is_an_error_naming_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    with pytest.raises(QCError, match=r"empty\.fa: empty FASTA"):
        assembly.scan_genome(empty)
    no_bases = write_fasta(tmp_path / "nobases.fa", {"chr1": "ACGT", "chr2": ""})
    with pytest.raises(QCError, match=r"nobases\.fa: empty sequence\(s\) \['chr2'\]"):
        assembly.scan_genome(no_bases)


def test_duplicate_names_are_an_error_naming_them(tmp_path: Path) -> None:
    fasta = tmp_path / "dup.fa"
    fasta.write_text(">chrI first\nACGT\n>chrII\nACGT\n>chrI second\nACGT\n")
    with pytest.raises(QCError, match=r"dup\.fa, line 5: duplicate FASTA record 'chrI'"):
        assembly.scan_genome(fasta)


def test_non_nucleotide_characters_are_an_error(tmp_path: Path) -> None:
    fasta = write_fasta(tmp_path / "bad.fa", {"chr1": "ACGT-ACGT*"})
    with pytest.raises(QCError, match=r"bad\.fa: sequence 'chr1' has characters .*'\*', '-'|'-', '\*'"):
        assembly.scan_genome(fasta)


def test_annotation_naming_absent_chromosomes_is_an_error(tmp_path: Path) -> None:
    gff = tmp_path / "ann.gff3"
    gff.write_text("##gff-version 3\nchrI\tx\tCDS\t1\t10\t.\t+\t0\tID=c1\n"
                   "chrX\tx\tCDS\t1\t10\t.\t+\t0\tID=c2\nchrY\tx\tgene\t1\t10\t.\t+\t.\tID=g\n")  # fmt: skip
    with pytest.raises(QCError, match=r"ann\.gff3: .*not in genome\.fa: chrX \(1 features\), chrY \(1 features\)"):
        annotation.annotation_stats(gff, {"chrI": 100}, fasta="genome.fa")


def test_annotation_features_with_start_after_end_are_counted_and_left_out(tmp_path: Path, caplog) -> None:
    gff = tmp_path / "ann.gff3"
    gff.write_text("##gff-version 3\nc1\tx\tgene\t1\t300\t.\t+\t.\tID=g1\n"
                   "c1\tx\tCDS\t11\t100\t.\t+\t0\tParent=g1\nc1\tx\tCDS\t500\t401\t.\t+\t0\tParent=g1\n"
                   "c1\tx\tgene\t900\t700\t.\t+\t.\tID=g2\n")  # fmt: skip
    stats = annotation.annotation_stats(gff, {"c1": 1000}, window=1000)
    assert stats["reversed_features"] == 2 and stats["cds_bases"] == 90 and stats["genes"] == 1
    assert f"{gff}: 2 features with start > end left out (lines 4, 5)" in caplog.text


def test_annotation_of_only_reversed_features_is_an_error(tmp_path: Path) -> None:
    gff = tmp_path / "ann.gff3"
    gff.write_text("##gff-version 3\nc1\tx\tCDS\t100\t11\t.\t+\t0\tID=c\nc1\tx\tgene\t9\t1\t.\t+\t.\tID=g\n")
    with pytest.raises(QCError, match=r"ann\.gff3: every feature \(2\) has its start after its end \(lines 2, 3\)"):
        annotation.annotation_stats(gff, {"c1": 1000})


# ------------------------------------------------------------------------------------------ coding and gene density


def test_coding_fraction_merges_cds_and_counts_genes_by_midpoint(tmp_path: Path) -> None:
    gff = tmp_path / "ann.gff3"
    gff.write_text(
        "##gff-version 3\n"
        # gene g1 (1-300) with two transcripts whose CDSs overlap: merged CDS 11-200 = 190 bp; midpoint 150 -> window 0
        "c1\tx\tgene\t1\t300\t.\t+\t.\tID=g1\n"
        "c1\tx\tmRNA\t1\t300\t.\t+\t.\tID=t1;Parent=g1\n"
        "c1\tx\tCDS\t11\t100\t.\t+\t0\tID=cds1;Parent=t1\n"
        "c1\tx\tmRNA\t1\t300\t.\t+\t.\tID=t2;Parent=g1\n"
        "c1\tx\tCDS\t51\t200\t.\t+\t0\tID=cds2;Parent=t2\n"
        # ncRNA gene: no CDS, not counted
        "c1\tx\tgene\t400\t500\t.\t+\t.\tID=g2\n"
        # a CDS without parent (prokaryote style), 901-1100 on the minus strand: midpoint 1000 -> window 1
        "c1\tx\tCDS\t901\t1100\t.\t-\t0\tID=orphan\n"
        # a gene on c2 straddling windows, midpoint 1100 -> window 1 of c2; c2's last partial window is dropped
        "c2\tx\tgene\t1001\t1200\t.\t+\t.\tID=g3\n"
        "c2\tx\tCDS\t1001\t1200\t.\t+\t0\tParent=g3\n"
        "c2\tx\tgene\t2001\t2100\t.\t+\t.\tID=g4\n"
        "c2\tx\tCDS\t2001\t2100\t.\t+\t0\tParent=g4\n"
    )
    lengths = {"c1": 2000, "c2": 2500}
    stats = annotation.annotation_stats(gff, lengths, window=1000)
    assert stats["cds_bases"] == 190 + 200 + 200 + 100
    assert stats["coding_fraction"] == pytest.approx(690 / 4500)
    assert stats["genes"] == 4
    # windows: c1 [0,1000) 1 gene, [1000,2000) 1 gene (orphan, midpoint 1000); c2 [0,1000) 0, [1000,2000) 1;
    # g4 (midpoint 2050) lies in c2's partial last window and is not counted.
    assert stats["windows"] == 4
    assert stats["genes_per_window"] == {"median": 1.0, "mean": 0.75, "histogram": [1, 3]}


def test_merged_length() -> None:
    assert assembly.merged_length([(0, 10), (5, 20), (30, 40), (40, 45)]) == 35
    assert assembly.merged_length([]) == 0


def test_r64_coding_fraction_and_genes_per_window(tmp_path: Path) -> None:
    """The demo's R64 (Ensembl 96 GTF → GFF3 by gffread in the download step): study 2 reports 72.46% and a median
    of 9. gffread puts each GTF stop_codon into its CDS, as GFF3 has it (docs/gtf.md): 8,596,583 coding bases, against
    8,578,446 (70.56%) when the stop codons were left out."""
    from dnalm.download import prepare_annotation

    demo = REPO / "resources/demo/scer"
    gff = tmp_path / "annotation.gff3"
    prepare_annotation(str(demo / "Saccharomyces_cerevisiae.R64-1-1.96.gtf.gz"), str(gff), str(tmp_path / "a.json"))
    lengths = dict(line.split()[:2] for line in (demo / "chrom.sizes").read_text().splitlines())
    stats = annotation.annotation_stats(gff, {k: int(v) for k, v in lengths.items()})
    assert stats["genes"] == 6600  # protein-coding genes of Ensembl 96
    assert stats["coding_fraction"] == pytest.approx(0.7071, abs=5e-4)
    assert stats["genes_per_window"]["median"] == 9 and stats["windows"] == 733


# -------------------------------------------------------------------------------------------------------- repeats


@needs("tantan", "windowmasker")
def test_tantan_finds_planted_tandem_repeats(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    seq = np.frombuffer(random_dna(rng, 200_000).encode(), dtype=np.uint8).copy()
    planted = np.zeros(seq.size, dtype=bool)
    for i in range(20):
        unit = np.frombuffer(random_dna(rng, int(rng.integers(2, 12))).encode(), dtype=np.uint8)
        start = 5_000 + 9_000 * i
        seq[start : start + 300] = np.tile(unit, 300 // unit.size + 1)[:300]
        planted[start : start + 300] = True
    fasta = write_fasta(tmp_path / "g.fa", {"chr1": seq.tobytes().decode()})
    found = np.zeros(seq.size, dtype=bool)
    for start, end in tools.tantan_intervals(fasta)["chr1"]:
        found[start:end] = True
    assert found[planted].mean() > 0.95
    assert found[~planted].mean() < 0.01
    result = assembly.repeat_fraction(fasta, assembly.scan_genome(fasta), "tantan")
    assert result["method"] == "tantan" and result["fraction"] == pytest.approx(found.mean())
    assert result["tandem"] == {"tool": "tantan", "bases": found.sum(), "fraction": pytest.approx(found.mean())}


@needs("tantan", "windowmasker")
def test_softmask_fraction_is_read(tmp_path: Path) -> None:
    fasta = write_fasta(tmp_path / "g.fa", {"a": "ACGT" * 25 + "acgtn" * 10, "b": "ACGTNNNNNN" + "ttttt"})
    result = assembly.repeat_fraction(fasta, assembly.scan_genome(fasta))
    assert (result["method"], result["bases"], result["fraction"]) == ("softmask", 55, pytest.approx(55 / 165))


@needs("tantan", "windowmasker")
def test_all_lower_case_fasta_is_not_taken_as_soft_masked(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    fasta = write_fasta(tmp_path / "g.fa", {"a": random_dna(rng, 20_000).lower()})
    result = assembly.repeat_fraction(fasta, assembly.scan_genome(fasta))
    assert result["method"] == "tantan+windowmasker" and result["fraction"] < 0.02


# ----------------------------------------------------------------------------------------------------------- Mash


@pytest.fixture(scope="module")
def mash_genomes(tmp_path_factory) -> dict[str, Path]:
    """Sketches of a 2 Mb random genome, a copy mutated at 2% and an unrelated genome (k=21, s=10000)."""
    root = tmp_path_factory.mktemp("mash")
    rng = np.random.default_rng(7)
    source = random_dna(rng, 2_000_000)
    genomes = {"source": source, "mutated": mutate_dna(rng, source, 0.02), "unrelated": random_dna(rng, 2_000_000)}
    sketches = {}
    for name, seq in genomes.items():
        fasta = write_fasta(root / f"{name}.fa", {"chr1": seq[:1_200_000], "chr2": seq[1_200_000:]})
        sketches[name] = root / f"{name}.msh"
        tools.mash_sketch(fasta, sketches[name], k=21, sketch_size=10_000, seed=42)
    return sketches


@needs("mash")
def test_mash_distance_of_a_2_percent_mutant(mash_genomes: dict[str, Path]) -> None:
    result = tools.mash_distance(mash_genomes["source"], mash_genomes["mutated"])
    assert abs(result["distance"] - 0.02) < 0.005
    assert result["p_value"] < 1e-10 and result["sketch_hashes"] == 10_000
    assert 3_000 < result["shared_hashes"] < 10_000


@needs("mash")
def test_mash_distance_of_unrelated_genomes_is_1(mash_genomes: dict[str, Path]) -> None:
    result = tools.mash_distance(mash_genomes["source"], mash_genomes["unrelated"])
    assert result["distance"] == 1.0 and result["shared_hashes"] == 0


@needs("mash")
def test_mash_matrix_is_symmetric_in_the_given_order(mash_genomes: dict[str, Path], tmp_path: Path) -> None:
    order = {name: mash_genomes[name] for name in ("unrelated", "source", "mutated")}
    matrix = tools.write_mash_matrix(order, tmp_path / "m.tsv")
    assert list(matrix.index) == list(matrix.columns) == list(order)
    assert np.allclose(matrix.to_numpy(), matrix.to_numpy().T) and (np.diag(matrix) == 0).all()
    pair = tools.mash_distance(mash_genomes["source"], mash_genomes["mutated"])["distance"]
    assert matrix.loc["source", "mutated"] == pytest.approx(pair)
    assert matrix.loc["unrelated", "source"] == 1.0
    assert pd.read_csv(tmp_path / "m.tsv", sep="\t", index_col=0).equals(matrix.rename_axis("species"))


def test_sketch_name_must_end_in_msh(tmp_path: Path) -> None:
    with pytest.raises(QCError, match=r"must end in \.msh"):
        tools.mash_sketch(tmp_path / "g.fa", tmp_path / "g.sketch")


# ---------------------------------------------------------------------------------------------------------- BUSCO


def _assert_busco(scores: dict, mode: str) -> None:
    assert {k: scores[k] for k in EXPECTED_BUSCO} == EXPECTED_BUSCO
    assert scores["counts"] == {"complete": 4, "single": 3, "duplicated": 1, "fragmented": 0, "missing": 1}
    assert scores["summary"] == "C:80.0%[S:60.0%,D:20.0%],F:0.0%,M:20.0%,n:5"
    assert scores["mode"] == mode and scores["lineage"] == "toy_odb10" and scores["version"] == "5.4.4"


@needs("busco", "hmmbuild")
def test_busco_proteins_mode(tmp_path: Path) -> None:
    lineage, families = make_lineage(tmp_path)
    proteins = write_fasta(tmp_path / "proteins.faa", busco_proteome(families))
    out = tmp_path / "busco.json"
    scores = tools.run_busco(proteins, lineage, out, tmp_path / "work", mode="proteins")
    _assert_busco(scores, "proteins")
    assert json.loads(out.read_text()) == scores
    assert not list(tmp_path.glob("busco_*.log")) and not (Path.cwd() / "busco_downloads").exists()


@needs("busco", "hmmbuild", "prodigal")
def test_busco_prokaryote_genome_with_prodigal(tmp_path: Path) -> None:
    lineage, families = make_lineage(tmp_path)
    genome = write_fasta(tmp_path / "genome.fa", {"chr": prokaryote_genome(busco_proteome(families))})
    scores = tools.run_busco(genome, lineage, tmp_path / "busco.json", tmp_path / "work", mode="genome")
    _assert_busco(scores, "genome")
    assert scores["domain"] == "prokaryota"


@needs("busco", "hmmbuild", "augustus", "tblastn")
def test_busco_eukaryote_genome_with_augustus(tmp_path: Path) -> None:
    """--augustus with a writable AUGUSTUS config copy in the work directory, removed afterwards."""
    lineage, families = make_lineage(tmp_path, domain="eukaryota")
    genome = write_fasta(tmp_path / "genome.fa", {"chr": eukaryote_genome(busco_proteome(families, fillers=10))})
    work = tmp_path / "work"
    scores = tools.run_busco(genome, lineage, tmp_path / "busco.json", work, mode="genome", threads=2)
    _assert_busco(scores, "genome")
    assert scores["domain"] == "eukaryota"
    assert not (work / "augustus_config").exists()
    assert "augustus" in json.loads((work / "run/run_toy_odb10/short_summary.json").read_text())["versions"]


def test_lineage_checks_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(QCError, match="not a directory"):
        tools.read_lineage(tmp_path / "nope_odb10")
    (tmp_path / "fungi").mkdir()
    with pytest.raises(QCError, match="ending in _odb10"):
        tools.read_lineage(tmp_path / "fungi")
    lineage = tmp_path / "fungi_odb10"
    (lineage / "hmms").mkdir(parents=True)
    (lineage / "dataset.cfg").write_text("name=fungi_odb10\ndomain=eukaryota\n")
    with pytest.raises(QCError, match="creation_date"):
        tools.read_lineage(lineage)


# ------------------------------------------------------------------------------------------------------- the gate

THRESHOLDS = {"max_mash_distance": 0.25, "min_busco_complete": 90, "max_repeat_fraction": 0.3,
              "min_coding_fraction": 0.5, "max_n_fraction": 0.05}  # fmt: skip


def _row(**values) -> dict:
    row = {"mash_distance": 0.1, "busco_complete": 95.0, "repeat_fraction": 0.1, "coding_fraction": 0.7,
           "n_fraction": 0.0}  # fmt: skip
    return {**row, **values}


def test_gate_passes_fails_and_names_the_reasons() -> None:
    assert gate.gate(_row(), {}, THRESHOLDS) == {"pass": True, "reasons": "", "not_checked": ""}
    result = gate.gate(_row(mash_distance=1.0, coding_fraction=0.41), {}, THRESHOLDS)
    assert result["pass"] is False
    assert result["reasons"] == "mash_distance 1 > 0.25; coding_fraction 0.41 < 0.5"
    assert gate.gate(_row(busco_complete=89.9), {}, THRESHOLDS)["reasons"] == "busco_complete 89.9 < 90"
    assert gate.gate(_row(n_fraction=0.05), {}, THRESHOLDS)["pass"]  # limits are inclusive


def test_null_threshold_is_off_and_missing_measures_are_not_checked() -> None:
    off = {**THRESHOLDS, "max_mash_distance": None}
    assert gate.gate(_row(mash_distance=1.0), {}, off)["pass"]
    result = gate.gate(_row(coding_fraction=None, busco_complete=None), {"coding_fraction": "no annotation"}, THRESHOLDS)
    assert result["pass"] and result["reasons"] == ""
    assert result["not_checked"] == "busco_complete (not measured); coding_fraction (no annotation)"


# -------------------------------------------------------------------------------------- one genome, summary, report


@pytest.fixture(scope="module")
def qc_run(tmp_path_factory) -> Path:
    """assess_genome on three small genomes (soft-masked and annotated; mutated; unrelated), then the gate."""
    root = tmp_path_factory.mktemp("qc")
    rng = np.random.default_rng(11)
    ref = random_dna(rng, 400_000)
    masked = ref[:100_000] + ref[100_000:140_000].lower() + ref[140_000:]
    genomes = {
        "ref": {"chr1": masked},
        "near": {"chr1": mutate_dna(rng, ref, 0.01)},
        "far": {"chr1": random_dna(rng, 300_000)[:150_000] + "N" * 50_000 + "RYK"},
    }
    gff = root / "ref.gff3"
    genes = range(1, 400_000, 4_000)  # a 3 kb gene (all CDS) every 4 kb
    gff.write_text("##gff-version 3\n" + "".join(f"chr1\tx\tgene\t{s}\t{s + 2999}\t.\t+\t.\tID=g{s}\n"
                   f"chr1\tx\tCDS\t{s}\t{s + 2999}\t.\t+\t0\tParent=g{s}\n" for s in genes))  # fmt: skip
    for name, records in genomes.items():
        write_fasta(root / f"{name}.fa", records)
        tools.mash_sketch(root / f"{name}.fa", root / f"{name}.msh")
    jsons = []
    for name in genomes:
        jsons.append(root / f"{name}.json")
        gate.assess_genome(name, root / f"{name}.fa", jsons[-1], annotation=gff if name == "ref" else None,
                         sketch=root / f"{name}.msh", reference_sketch=root / "ref.msh", reference="ref",
                         mash={"k": 21, "sketch_size": 10_000, "seed": 42})  # fmt: skip
    gate.gate_genomes(jsons, root / "summary.tsv", root / "pretrain.txt", root / "thresholds.tsv", THRESHOLDS, True)
    tools.write_mash_matrix({n: root / f"{n}.msh" for n in genomes}, root / "mash_distances.tsv")
    return root


@needs("mash", "tantan", "windowmasker")
def test_assess_genome_measures(qc_run: Path) -> None:
    ref = json.loads((qc_run / "ref.json").read_text())
    repeats = ref["repeats"]
    assert (repeats["method"], repeats["bases"], repeats["fraction"]) == ("softmask", 40_000, 0.1)
    assert repeats["union"]["bases"] >= max(repeats["tandem"]["bases"], repeats["interspersed"]["bases"])
    assert ref["annotation"]["coding_fraction"] == pytest.approx(0.75)
    assert ref["annotation"]["genes_per_window"]["median"] == 4  # one 3 kb gene every 4 kb, 16,384 bp windows
    assert ref["mash"]["distance"] == 0 and ref["busco"] == {"skipped": "qc.busco.lineage is null"}
    far = json.loads((qc_run / "far.json").read_text())
    assert far["assembly"]["n_count"] == 50_000 and far["assembly"]["iupac_count"] == 3
    assert far["repeats"]["method"] == "tantan+windowmasker" and far["annotation"] is None
    near = json.loads((qc_run / "near.json").read_text())
    assert abs(near["mash"]["distance"] - 0.01) < 0.004


@needs("mash", "tantan", "windowmasker")
def test_summary_gate_and_pretrain_list(qc_run: Path) -> None:
    table = pd.read_csv(qc_run / "summary.tsv", sep="\t").set_index("species")
    assert list(table.index) == ["ref", "near", "far"] and list(table.reset_index().columns) == gate.SUMMARY_COLUMNS
    assert table.loc["ref", "pass"] and table.loc["near", "pass"] and not table.loc["far", "pass"]
    assert table.loc["far", "reasons"] == "mash_distance 1 > 0.25; n_fraction 0.25 > 0.05"
    assert "coding_fraction (no annotation)" in table.loc["near", "not_checked"]
    assert "busco_complete (BUSCO skipped: qc.busco.lineage is null)" in table.loc["ref", "not_checked"]
    assert (qc_run / "pretrain.txt").read_text() == "ref\nnear\n"
    far = json.loads((qc_run / "far.json").read_text())["repeats"]
    assert table.loc["far", "repeat_fraction"] == pytest.approx(far["union"]["fraction"])
    assert table.loc["far", "interspersed_repeat_fraction"] == pytest.approx(far["interspersed"]["fraction"])
    assert table.loc["ref", "repeat_fraction"] == 0.1 and table.loc["ref", "repeat_union_fraction"] < 0.05
    thresholds = pd.read_csv(qc_run / "thresholds.tsv", sep="\t").set_index("threshold")
    assert thresholds.loc["min_busco_complete", "status"].startswith("not applied: BUSCO skipped")
    assert thresholds.loc["max_mash_distance", "status"] == "applied"


@needs("mash", "tantan", "windowmasker")
def test_report_qc_section(qc_run: Path, tmp_path: Path) -> None:
    # the report reads species and table names from the manifest's records, not from the paths
    manifest = [{"kind": "qc_genome", "species": s, "path": str(qc_run / f"{s}.json")} for s in ("ref", "near", "far")]
    tables = ("summary", "thresholds", "mash_distances")
    manifest += [{"kind": f"qc_{t}", "path": str(qc_run / f"{t}.tsv")} for t in tables]
    out = tmp_path / "report.html"
    write_report(str(out), manifest, n_examples=0, interpret_examples=0)
    html = out.read_text()
    assert '<section id="qc"><h2>Genome QC</h2>' in html
    assert "the gate admitted 2 to language-model pretraining" in html and "ref, near" in html
    assert "Rejected: far (mash_distance 1 &gt; 0.25; n_fraction 0.25 &gt; 0.05)" in html
    assert "BUSCO was not run: qc.busco.lineage is null" in html
    assert "<th>tandem / interspersed / union</th>" in html and "10.0% (softmask)" in html
    assert html.count('src="data:image/png;base64,') == 3  # bars, Mash heat map, genes per window


def test_report_without_qc_says_so(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    write_report(str(out), [], n_examples=0, interpret_examples=0)
    assert "Genome QC was not run" in out.read_text()
