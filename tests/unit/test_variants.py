"""Tests for variant effects: the VCF reader's checks (dnalm.io.vcf via dnalm.download.prepare_variants), the REF/ALT
windows, agreement with tangermeme's substitution_effect, strand averaging and each task type's scores."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pandas as pd
import pysam
import pytest
import torch

from dnalm.download import prepare_variants
from dnalm.io.errors import DownloadError
from dnalm.models import build_model
from dnalm.variants import predictions, rc_permutation, score_runs, scores, variant_windows

RNG = np.random.default_rng(7)
GENOME = {"chrA": "".join(RNG.choice(list("ACGT"), 3000)), "chrB": "".join(RNG.choice(list("ACGT"), 1500))}
HEADER = """##fileformat=VCFv4.2
##INFO=<ID=AF,Number=A,Type=Float,Description="allele frequency">
##INFO=<ID=CLASS,Number=1,Type=String,Description="a label">
##INFO=<ID=DB,Number=0,Type=Flag,Description="known">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO
"""
PROFILE_INFO = {"task_type": "profile", "channels": ["polya/+", "polya/-"], "length": 120}
SETTINGS = {"strands": "forward", "range": None, "max_indel": 50, "batch_size": 16, "top": 2, "group_by": None}


SIZES = {name: len(seq) for name, seq in GENOME.items()}


@pytest.fixture(scope="module")
def genome(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("genome") / "genome.fa"
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in GENOME.items()))
    pysam.faidx(str(path))
    return str(path)


def write_vcf(path, rows: list[str], compress: str | None = None) -> str:
    text = HEADER + "".join(row + "\n" for row in rows)
    if compress == "gzip":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
        if compress == "bgzip":
            pysam.tabix_compress(str(path), str(path) + ".gz")
            return str(path) + ".gz"
    return str(path)


def read(tmp_path, genome: str, rows: list[str], compress: str | None = None, **options):
    vcf = write_vcf(tmp_path / "in.vcf", rows, compress)
    info = prepare_variants(vcf, str(tmp_path / "v.tsv"), str(tmp_path / "v.json"), genome, **options)
    return pd.read_csv(tmp_path / "v.tsv", sep="\t", dtype={"id": str}), info


@pytest.mark.parametrize("compress", [None, "gzip", "bgzip"])
def test_vcf_alleles_are_split_checked_and_counted(tmp_path, genome, compress):
    a = GENOME["chrA"]
    wrong = "A" if a[29] != "A" else "C"
    rows = [f"A\t10\trs1\t{a[9]}\tG,T\t.\t.\tAF=0.1,0.25;CLASS=x;DB",   # two ALTs: two rows, AF per allele
            f"A\t20\t.\t{a[19:22]}\t{a[19]}\t.\t.\tCLASS=y",           # a deletion, no ID
            f"A\t30\trs3\t{wrong}\tG\t.\t.\t.",                        # REF is not the genome's
            f"A\t40\trs4\t{a[39]}\t<DEL>\t.\t.\t.",                    # symbolic
            f"A\t50\trs5\t{a[49]}\tN\t.\t.\t."]                        # not ACGT
    table, info = read(tmp_path, genome, rows, compress, aliases={"A": "chrA"})
    assert table[["chrom", "pos", "id", "alt"]].values.tolist() == [
        ["chrA", 10, "rs1", "G"], ["chrA", 10, "rs1", "T"], ["chrA", 20, f"chrA:20:{a[19:22]}>{a[19]}", a[19]]]
    assert table["INFO/AF"].tolist()[:2] == [0.1, 0.25] and table["INFO/DB"].tolist() == [True, True, False]
    assert (info["records"], info["alleles"], info["kept"]) == (5, 6, 3)
    assert (info["ref_mismatch"], info["symbolic"], info["non_acgt"]) == (1, 1, 1)
    assert info["mismatches"] == [f"record 3 (A:30): REF {wrong}, genome {a[29]}"]
    assert json.loads((tmp_path / "v.json").read_text())["kept"] == 3


def test_vcf_chromosomes_missing_from_the_genome_are_listed_and_nothing_is_written(tmp_path, genome):
    rows = [f"chrA\t10\t.\t{GENOME['chrA'][9]}\tG\t.\t.\t.", "chrZ\t5\t.\tA\tG\t.\t.\t.", "Mito\t5\t.\tA\tG\t.\t.\t."]
    with pytest.raises(DownloadError, match=r"'chrZ' \(first at record 2\), 'Mito' \(first at record 3\).*"
                                            r"chrA, chrB.*chrom_aliases"):
        read(tmp_path, genome, rows)
    assert not (tmp_path / "v.tsv").exists() and not (tmp_path / "v.json").exists()


@pytest.mark.parametrize(("rows", "message"), [
    (["chrB\t1499\t.\tAAAA\tA\t.\t.\t."], r"record 1 \(chrB:1499\) has REF AAAA past the end of chrB \(1500 bp\)"),
    (["chrA\tten\t.\tA\tG\t.\t.\t."], r"in\.vcf: unreadable VCF record"),
])
def test_vcf_bad_records_name_the_record(tmp_path, genome, rows, message):
    with pytest.raises(DownloadError, match=message):
        read(tmp_path, genome, rows)


def test_a_file_that_is_not_a_vcf_is_named(tmp_path, genome):
    (tmp_path / "in.vcf").write_text("chrom\tstart\tend\nchrA\t1\t2\n")
    with pytest.raises(DownloadError, match=r"in\.vcf: not a readable VCF"):
        prepare_variants(str(tmp_path / "in.vcf"), str(tmp_path / "v.tsv"), str(tmp_path / "v.json"), genome)


def decode(onehot: np.ndarray) -> str:
    return "".join("ACGT"[i] if onehot[i, j] else "N" for j, i in enumerate(onehot.argmax(0)))


def test_windows_centre_the_variant_and_keep_the_left_part_for_indels():
    a = GENOME["chrA"]
    table = pd.DataFrame({"chrom": ["chrA"] * 3 + ["chrB"], "pos": [1001, 1001, 1001, 3],
                          "ref": [a[1000], a[1000:1003], a[1000], GENOME["chrB"][2]],
                          "alt": ["G" if a[1000] != "G" else "C", a[1000], a[1000] + "TT", "A"]})
    ref, alt = variant_windows(table, GENOME, SIZES, 20)
    assert decode(ref[0]) == a[990:1010] and decode(alt[0]) == a[990:1000] + table["alt"][0] + a[1001:1010]
    assert decode(alt[1]) == a[990:1001] + a[1003:1012]         # deletion: more bases pulled in on the right
    assert decode(alt[2]) == a[990:1001] + "TT" + a[1001:1008]  # insertion: bases pushed out on the right
    assert decode(ref[3]) == "N" * 8 + GENOME["chrB"][:12]        # N beyond the chromosome's start


def test_reverse_complement_swaps_stranded_channels_only():
    assert rc_permutation(["a/+", "a/-", "b", "c/-", "c/+"]).tolist() == [1, 0, 2, 4, 3]


@pytest.fixture(scope="module")
def bpnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("bpnet", {"filters": 16, "layers": 3, "input_kernel": 9, "profile_kernel": 15}, "profile",
                       2).eval()


def snvs(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pos = rng.choice(np.arange(100, 2900), n, replace=False) + 1
    ref = [GENOME["chrA"][p - 1] for p in pos]
    alt = [rng.choice([b for b in "ACGT" if b != r]) for r in ref]
    return pd.DataFrame({"chrom": "chrA", "pos": pos, "id": [f"v{i}" for i in range(n)], "ref": ref, "alt": alt})


def test_profile_scores_agree_with_tangermeme_substitution_effect(bpnet):
    from tangermeme.variant_effect import substitution_effect

    table = snvs(12)
    ref_x, alt_x = variant_windows(table, GENOME, SIZES, 120)
    subs = np.array([[i, 60, "ACGT".index(a)] for i, a in enumerate(table["alt"])])
    before, after = substitution_effect(bpnet, torch.from_numpy(ref_x), subs, device="cpu", batch_size=8, verbose=False)
    ours = scores(PROFILE_INFO, predictions(bpnet, ref_x, PROFILE_INFO, strands="forward", device="cpu", batch_size=5),
                  predictions(bpnet, alt_x, PROFILE_INFO, strands="forward", device="cpu", batch_size=5))
    lfc = ((after[1] - before[1]) / math.log(2)).double().numpy()
    np.testing.assert_allclose(ours[["log2fc.polya/+", "log2fc.polya/-"]].to_numpy(), lfc, atol=1e-5)
    total = (torch.logsumexp(after[1], -1) - torch.logsumexp(before[1], -1)) / math.log(2)
    np.testing.assert_allclose(ours["effect"], total.double().numpy(), atol=1e-5)
    p, q = torch.softmax(before[0].double(), -1), torch.softmax(after[0].double(), -1)
    m = (p + q) / 2
    jsd = torch.sqrt(((p * (p / m).log2()).sum(-1) + (q * (q / m).log2()).sum(-1)) / 2)
    np.testing.assert_allclose(ours[["jsd.polya/+", "jsd.polya/-"]].to_numpy(), jsd.numpy(), atol=1e-5)


def test_both_strands_average_the_flipped_reverse_complement(bpnet):
    ref_x, _ = variant_windows(snvs(4), GENOME, SIZES, 120)
    forward = predictions(bpnet, ref_x, PROFILE_INFO, strands="forward", device="cpu", batch_size=8)
    flipped = predictions(bpnet, np.ascontiguousarray(ref_x[:, ::-1, ::-1]), PROFILE_INFO, strands="forward",
                          device="cpu", batch_size=8)
    both = predictions(bpnet, ref_x, PROFILE_INFO, strands="both", device="cpu", batch_size=3)
    np.testing.assert_allclose(both[0], (forward[0] + flipped[0][:, ::-1]) / 2, atol=1e-6)
    np.testing.assert_allclose(both[1], (forward[1] + flipped[1][:, ::-1, ::-1]) / 2, atol=1e-6)


def test_classification_effect_is_the_change_of_the_calibrated_probability():
    info = {"task_type": "classification", "channels": ["neg", "pos"]}
    ref, alt = np.array([[0.0, 1.0], [2.0, 0.0]]), np.array([[0.0, 3.0], [0.0, 0.0]])
    calibration = {"method": "temperature", "temperature": 2.0}
    table = scores(info, [ref], [alt], calibration=calibration)

    def p(z):
        return 1 / (1 + np.exp(-(z[:, 1] - z[:, 0]) / 2))

    np.testing.assert_allclose(table["effect"], p(alt) - p(ref))
    np.testing.assert_allclose(table["delta_p.neg"], -(p(alt) - p(ref)))


def test_tracks_effect_sums_the_central_range_on_the_original_scale():
    info = {"task_type": "tracks", "channels": ["rna", "pol2"], "bin_size": 10}
    ref, alt = np.ones((1, 2, 8)), np.ones((1, 2, 8))
    alt[0, 0, 3:5] = 4.0   # the central 20 bp of track rna
    alt[0, 1, 0] = 100.0   # outside the range of track pol2
    table = scores(info, [ref], [alt], range_bp=20)
    assert table["delta.rna"][0] == 6.0 and table["delta.pol2"][0] == 0.0
    assert table["log2fc.rna"][0] == pytest.approx(math.log2(9 / 3))
    assert table["effect"][0] == pytest.approx(math.log2(9 / 3) / 2)


def test_runs_give_mean_and_sd_and_too_long_indels_are_counted(bpnet):
    torch.manual_seed(1)
    other = build_model("bpnet", {"filters": 16, "layers": 3, "input_kernel": 9, "profile_kernel": 15}, "profile",
                        2).eval()
    table = snvs(5)
    long_del = {"chrom": "chrA", "pos": 2000, "id": "long", "ref": GENOME["chrA"][1999:2080], "alt": GENOME["chrA"][1999]}
    table = pd.concat([table, pd.DataFrame([long_del])], ignore_index=True)
    runs = [(bpnet, PROFILE_INFO, None), (other, PROFILE_INFO, None)]
    scored, counts = score_runs(runs, table, GENOME, SIZES, SETTINGS, "cpu")
    assert counts == {"scored": 5, "too_long": 1, "max_indel": 50} and "long" not in set(scored["id"])
    single = [score_runs([run], table, GENOME, SIZES, SETTINGS, "cpu")[0] for run in runs]
    np.testing.assert_allclose(scored["effect"], (single[0]["effect"] + single[1]["effect"]) / 2)
    np.testing.assert_allclose(scored["effect.sd"], np.std([single[0]["effect"], single[1]["effect"]], 0, ddof=1))
    assert single[0]["effect.sd"].isna().all() and (scored["n_runs"] == 2).all()
    assert list(scored.columns[:7]) == ["chrom", "pos", "id", "ref", "alt", "n_runs", "effect"]
