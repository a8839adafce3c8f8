"""Tests for dnalm.conservation and dnalm.conservation_codons: masked inputs, base distributions of nucleotide and
6-mer LMs, entropy and C = 2 − H, codon positions from GFF3 phases, the codon control, and scores of an LM that
memorised a planted repeat (high there, near 0 on random sequence)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pybigtools
import pytest
import torch
from transformers import BertForMaskedLM

from dnalm import tokenize
from dnalm.conservation import (
    base_probabilities,
    conservation,
    entropy_bits,
    load_mlm,
    masked_inputs,
    read_scores,
    run_conservation,
    window_starts,
)
from dnalm.conservation_codons import cds_codons, codon_control, read_codons
from dnalm.io.errors import InputError
from dnalm.models.backbones import bert_config
from dnalm.pretrain import pretrain_lm
from dnalm.report.manifest import Manifest
from dnalm.report.sections import conservation as conservation_section

torch.use_deterministic_algorithms(True)

SPECIES = ["saccharomyces_cerevisiae", "candida_glabrata"]
UNIT = "TTGACAGCTAGT"
BLOCK = 240


def tiny_mlm(kind: str, seed: int = 0) -> tuple[BertForMaskedLM, dict[str, int]]:
    vocab = tokenize.vocabulary(kind, SPECIES)
    torch.manual_seed(seed)
    config = bert_config(len(vocab), {"layers": 1, "hidden": 16, "heads": 2, "intermediate": 32, "max_positions": 64})
    return BertForMaskedLM(config).eval(), vocab


def test_masked_inputs_mask_the_base_or_the_six_kmers_covering_it():
    rng = np.random.default_rng(0)
    windows = rng.integers(0, 4, (3, 13)).astype(np.uint8)
    offsets = np.array([0, 6, 12])
    ids, tokens = masked_inputs(windows, offsets, "nucleotide", 9)
    plain = tokenize.model_input(windows, "nucleotide", 9)
    assert tokens.tolist() == [[0], [6], [12]]
    for row, offset in enumerate(offsets):
        assert ids[row, offset + 2] == tokenize.MASK
        assert np.array_equal(np.delete(ids[row], offset + 2), np.delete(plain[row], offset + 2))
    ids, tokens = masked_inputs(windows, offsets, "kmer6_species", 4101)
    assert tokens.tolist() == [[0, -1, -1, -1, -1, -1], [6, 5, 4, 3, 2, 1], [-1, -1, -1, -1, -1, 7]]  # 8 6-mers
    assert (ids[1, 3:9] == tokenize.MASK).all() and (ids[1, [2, 9]] != tokenize.MASK).all()
    assert (ids[2] == tokenize.MASK).sum() == 1 and ids[2, 9] == tokenize.MASK  # the last base: in the last 6-mer only
    assert (ids[0] == tokenize.MASK).sum() == 1 and ids[0, 2] == tokenize.MASK
    assert window_starts(np.array([0, 5, 50, 99]), 100, 21).tolist() == [0, 0, 40, 79]


@pytest.mark.parametrize("kind", ["nucleotide", "kmer6_species"])
def test_base_probabilities_are_the_masked_logits_read_per_base(kind):
    model, vocab = tiny_mlm(kind)
    windows = np.random.default_rng(1).integers(0, 4, (4, 15)).astype(np.uint8)
    offsets = np.array([7, 0, 14, 3])
    ids, tokens = masked_inputs(windows, offsets, kind, vocab[SPECIES[1]])
    probs = base_probabilities(model, ids, tokens, offsets, kind, torch.device("cpu"))
    with torch.no_grad():
        logits = model(input_ids=torch.from_numpy(ids)).logits
    for row, offset in enumerate(offsets):
        if kind == "nucleotide":
            expected = torch.softmax(logits[row, offset + 2, 5:9], -1).numpy()
        else:  # each masked 6-mer's distribution summed by the letter at the base's offset, then averaged
            columns = []
            for t in tokens[row][tokens[row] >= 0]:
                p = torch.softmax(logits[row, t + 2, 5:4101], -1).numpy()
                columns.append([p[[k for k, s in enumerate(tokenize.kmers()) if s[offset - t] == b]].sum()
                                for b in "ACGT"])
            expected = np.mean(columns, axis=0)
        np.testing.assert_allclose(probs[row], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)


def test_entropy_and_conservation():
    probs = np.array([[0.25] * 4, [1, 0, 0, 0], [0.5, 0.5, 0, 0], [np.nan] * 4])
    np.testing.assert_allclose(entropy_bits(probs)[:3], [2, 0, 1])
    np.testing.assert_allclose(conservation(probs)[:3], [0, 2, 1])
    assert np.isnan(conservation(probs)[3])


def test_codon_positions_follow_strand_and_phase(tmp_path):
    # + strand, phase 1: the first base is the end of a codon begun in the previous exon
    assert cds_codons(10, 20, "+", 1).tolist() == [[11, 12, 13], [14, 15, 16], [17, 18, 19]]
    assert cds_codons(10, 20, "-", 0).tolist() == [[19, 18, 17], [16, 15, 14], [13, 12, 11]]
    assert cds_codons(10, 20, "-", 2).tolist() == [[17, 16, 15], [14, 13, 12]]
    gff = tmp_path / "a.gff3"
    gff.write_text("##gff-version 3\n"
                   "c1\tx\tgene\t1\t30\t.\t+\t.\tID=g\n"
                   "c1\tx\tCDS\t11\t19\t.\t+\t0\tID=a;Parent=g\n"
                   "c1\tx\tCDS\t11\t19\t.\t+\t0\tID=b;Parent=g\n"  # another transcript's copy: counted once
                   "c1\tx\tCDS\t21\t26\t.\t-\t0\tID=c\n")
    codons = read_codons(gff, {"c1": 40})
    assert codons["c1"].tolist() == [[10, 11, 12], [13, 14, 15], [16, 17, 18], [22, 21, 20], [25, 24, 23]]
    gff.write_text("c1\tx\tCDS\t11\t19\t.\t+\t.\tID=a\n")
    with pytest.raises(InputError, match=r"a.gff3, line 1: a CDS needs strand \+ or - and phase 0, 1 or 2"):
        read_codons(gff, {"c1": 40})
    gff.write_text("c2\tx\tCDS\t11\t19\t.\t+\t0\tID=a\n")
    with pytest.raises(InputError, match="line 1: CDS on 'c2', not a chromosome of the genome"):
        read_codons(gff, {"c1": 40})


def test_codon_control_tests_third_positions_against_first_and_second():
    rng = np.random.default_rng(0)
    first = np.arange(0, 600, 3)
    codons = {"c1": np.stack([first, first + 1, first + 2], axis=1)}
    scores = np.tile([1.0, 1.2, 0.6], 200) + rng.normal(0, 0.1, 600)
    scores = np.concatenate([scores, np.full(100, 0.3)])
    scores[650] = np.nan
    out = codon_control(codons, [("c1", 0, 700)], [scores])
    assert out["codons"] == 200 and out["holds"] and out["c3_below_c1"] and out["c3_below_c2"]
    assert out["mean_c3"] == pytest.approx(0.6, abs=0.03) and out["p_c3_below_c2"] < 1e-10
    assert out["mean_noncoding"] == pytest.approx(0.3)
    flat = codon_control(codons, [("c1", 0, 700)], [np.tile([1.0, 0.5, 1.5], 234)[:700] + rng.normal(0, 0.1, 700)])
    assert not flat["holds"] and not flat["c3_below_c1"] and flat["c3_below_c2"] is False
    partial = codon_control(codons, [("c1", 4, 100)], [np.ones(96)])  # codons cut by the region's start left out
    assert partial["codons"] == 31 and partial["p_c3_below_c1"] == 1 and not partial["holds"]


def planted_genome(path: Path, rng: np.random.Generator) -> str:
    """chr1: blocks of a tandem repeat of UNIT alternating with random blocks; returns the sequence."""
    blocks = []
    for i in range(16):
        if i % 2 == 0:
            blocks.append((UNIT * (BLOCK // len(UNIT)))[:BLOCK])
        else:
            blocks.append("".join(rng.choice(list("ACGT"), BLOCK)))
    seq = "".join(blocks)
    path.write_text(f">chr1\n{seq}\n>chr2\n{seq[::-1]}\n")
    return seq


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, Path]:
    """A genome of repeat and random blocks and a nucleotide LM pretrained on it (a few seconds)."""
    tmp = tmp_path_factory.mktemp("planted")
    fasta = tmp / "genome.fa"
    planted_genome(fasta, np.random.default_rng(0))
    spec = {"tokenizer": "nucleotide", "window": 24, "stride": 4, "layers": 2, "hidden": 32, "heads": 2,
            "intermediate": 64, "steps": 300, "batch_size": 32, "lr": 5e-3, "warmup": 0.1, "mask_prob": 0.15,
            "dropout": 0.0, "attention_dropout": 0.0, "eval_every": 300, "val_windows": 16, "seed": 0, "precision": "fp32"}
    genomes = [{"species": SPECIES[0], "fasta": str(fasta), "train_chroms": ["chr1"], "val_chroms": ["chr2"]}]
    pretrain_lm(genomes, str(tmp / "lm"), spec, species=SPECIES, threads=1, device="cpu")
    return fasta, tmp / "lm"


def test_a_memorised_repeat_scores_high_and_random_sequence_near_zero(planted, tmp_path):
    fasta, lm = planted
    bed = tmp_path / "regions.bed"
    bed.write_text(f"chr1\t{2 * BLOCK}\t{6 * BLOCK}\n")  # a repeat block, a random one, a repeat, a random one
    gff = tmp_path / "a.gff3"
    gff.write_text(f"chr1\tx\tCDS\t{2 * BLOCK + 1}\t{3 * BLOCK}\t.\t+\t0\tID=a\n")
    out = {k: tmp_path / f"c.{k}" for k in ("bw", "npz", "json")}
    summary = run_conservation(str(lm), str(fasta), str(gff), str(out["bw"]), str(out["npz"]), str(out["json"]),
                               species=SPECIES[0], regions=str(bed), context=11, batch_size=64)
    regions, scores = read_scores(out["npz"])
    assert regions == [("chr1", 2 * BLOCK, 6 * BLOCK)]
    c = scores[0].reshape(4, BLOCK)[:, 12:-12].mean(axis=1)  # away from the blocks' borders
    # 300 steps learn the repeat only in part (train loss ~1.0 nats, not the ~0.7 of a model that knew it): C ~0.25
    # bits there against ~0.03 on random sequence, where no base can be predicted
    assert min(c[0], c[2]) > 0.15 and max(c[1], c[3]) < 0.06 and min(c[0], c[2]) > 4 * max(c[1], c[3]), c
    with pybigtools.open(str(out["bw"])) as bw:
        values = np.array(bw.values("chr1", 2 * BLOCK, 6 * BLOCK, fillna=None))
    np.testing.assert_allclose(values, scores[0], rtol=1e-6)
    assert json.loads(out["json"].read_text()) == summary
    assert summary["bases"] == 4 * BLOCK and summary["codon_control"]["codons"] == BLOCK // 3
    with np.load(out["npz"]) as npz:  # the CDS's codon positions, for the report's figure
        assert npz["codon"][:BLOCK].tolist() == [1, 2, 3] * (BLOCK // 3) and not npz["codon"][BLOCK:].any()
    section = conservation_section.build(Manifest.from_records([
        {"kind": "conservation", "lm": "lm", "species": "scer", "path": str(out["json"])},
        {"kind": "conservation_scores", "lm": "lm", "species": "scer", "path": str(out["npz"])}]))
    assert "C 3rd" in section and section.count("data:image/png;base64,") == 1
    assert f"<td>{BLOCK // 3:,}</td>" in section.replace(' class="num"', "")
    with pytest.raises(ValueError, match="conservation.context 300: windows of 601 bases make 604 tokens, more than"):
        run_conservation(str(lm), str(fasta), None, *(str(out[k]) for k in ("bw", "npz", "json")),
                         species=SPECIES[0], regions=str(bed), context=300)
    with pytest.raises(ValueError, match="unknown species 'homo_sapiens'.*candida_glabrata"):
        run_conservation(str(lm), str(fasta), None, *(str(out[k]) for k in ("bw", "npz", "json")),
                         species="homo_sapiens", regions=str(bed))


def test_only_masked_lm_directories_are_scored(planted, tmp_path):
    _, lm = planted
    model, vocab = load_mlm(lm, torch.device("cpu"))
    assert not model.training and tokenize.infer_kind(vocab) == "nucleotide"
    config = json.loads((lm / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "architectures": ["BertModel"]}))
    with pytest.raises(ValueError, match="without a masked-LM head"):
        load_mlm(tmp_path, torch.device("cpu"))
    with pytest.raises(ValueError, match="no config.json"):
        load_mlm(tmp_path / "missing", torch.device("cpu"))


def test_config_check_names_the_key_of_a_missing_lm_species_or_annotation():
    from dnalm.config_conservation import check_conservation, conservation_jobs

    cfg = {"pretrain": {"lm": {}}, "species": {"scer": {"reference": True, "annotation": {"path": "a.gff3"}},
                                               "calb": {"reference": False, "annotation": None}},
           "conservation": {"models": ["lm"], "species": None}}
    check_conservation(cfg)
    assert conservation_jobs(cfg) == [("lm", "scer")]  # null: the reference species
    for block, message in [({"models": ["other"]}, "conservation.models: 'other' is not under pretrain"),
                           ({"species": ["calb"]}, "species.calb.annotation: conservation scores calb"),
                           ({"species": ["hsap"]}, "conservation.species: 'hsap' is not under species")]:
        with pytest.raises(ValueError, match=message):
            check_conservation({**cfg, "conservation": {**cfg["conservation"], **block}})
    cfg["species"]["scer"]["reference"] = False
    with pytest.raises(ValueError, match="conservation.species: null means the reference species"):
        check_conservation(cfg)
    assert conservation_jobs({**cfg, "conservation": {"models": [], "species": None}}) == []


def test_a_6mer_lm_scores_every_base_but_n_up_to_the_chromosome_ends(tmp_path):
    from dnalm.conservation import score_genome
    from helpers import tiny_bert

    lm = tiny_bert(tmp_path / "lm", "kmer6_species", SPECIES, {"layers": 1, "hidden": 16, "heads": 2,
                                                                 "intermediate": 32, "max_positions": 64})
    seq = "".join(np.random.default_rng(2).choice(list("ACGT"), 40))
    (tmp_path / "g.fa").write_text(f">c1\n{seq[:17]}N{seq[18:]}\n>c2\nACGTA\n")  # c2: shorter than a window
    regions, probs = score_genome(lm, tmp_path / "g.fa", species=SPECIES[1], context=4, batch_size=7)
    assert regions == [("c1", 0, 40), ("c2", 0, 5)]
    assert np.isnan(probs[0][17]).all() and np.isfinite(np.delete(probs[0], 17, axis=0)).all()
    np.testing.assert_allclose(np.nansum(probs[0], axis=1)[np.arange(40) != 17], 1, rtol=1e-5)
    np.testing.assert_allclose(probs[1].sum(axis=1), 1, rtol=1e-5)
    one = score_genome(lm, tmp_path / "g.fa", species=SPECIES[1], context=4, batch_size=40)[1]
    np.testing.assert_allclose(one[0], probs[0], rtol=1e-5)  # the batch size changes nothing


def test_codons_of_r64_chri_are_read_in_frame(tmp_path):
    """The RefSeq GFF3 of R64 chrI (resources/demo/saccharomyces_chrI): codons read from CDS strand and phase hold
    almost no stop codons (one per CDS, the last), where the same codons shifted by one base hold many."""
    import gzip

    from dnalm.genome_tracks import genome_sizes
    from dnalm.io.fasta import open_fasta

    data = Path(__file__).resolve().parents[2] / "resources/demo/saccharomyces_chrI"
    fasta, gff = tmp_path / "chrI.fa", tmp_path / "chrI.gff3"
    fasta.write_bytes(gzip.decompress((data / "ScerR64_I_GCF_000146045.2_R64_genomic.fna.gz").read_bytes()))
    gff.write_bytes(gzip.decompress((data / "ScerR64_I.gff.gz").read_bytes()))
    codons = read_codons(gff, genome_sizes(fasta))["NC_001133.9"]
    with open_fasta(fasta) as handle:
        seq = np.array(list(str(handle["NC_001133.9"][:]).upper()))
    minus = codons[:, 0] > codons[:, 2]
    complement = dict(zip("ACGTN", "TGCAN", strict=True))

    def stops(positions: np.ndarray) -> float:
        letters = seq[positions]
        letters[minus] = [[complement[b] for b in row] for row in letters[minus]]
        words = ["".join(row) for row in letters]
        return np.mean([w in ("TAA", "TAG", "TGA") for w in words])

    shift = np.where(minus, -1, 1)[:, None]
    assert len(codons) > 30_000 and minus.any() and (~minus).any()
    assert stops(codons) < 0.005 and stops(codons + shift) > 0.02
