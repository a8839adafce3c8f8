"""Tests for dnalm.genome_tracks: tiled genome-wide predictions and attributions as bigWigs, read back with pyBigWig."""

from __future__ import annotations

import itertools

import numpy as np
import pyBigWig
import pytest
import torch

from dnalm.genome_tracks import genome_sizes, predict_tracks, read_regions, write_attribution_bigwig
from dnalm.models import build_model
from dnalm.store import ONEHOT, encode
from dnalm.tasks.profile import expected_signal
from dnalm.tasks.tracks import inverse_transform

torch.use_deterministic_algorithms(True)

LENGTH, OVERLAP = 96, 32
TILE, MARGIN = LENGTH - OVERLAP, OVERLAP // 2


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    """Three chromosomes, not in name order: one with a 300 bp N run, one shorter than a window."""
    rng = np.random.default_rng(0)
    seqs = {
        "chrC": "".join(rng.choice(list("ACGT"), 601)) + "N" * 300 + "".join(rng.choice(list("ACGT"), 602)),
        "chrA": "".join(rng.choice(list("ACGT"), 50)),
        "chrB": "".join(rng.choice(list("ACGT"), 777)),
    }
    path = tmp_path_factory.mktemp("genome") / "genome.fa"
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in seqs.items()))
    return path, seqs


def model(head: str, n_outputs: int, **trunk) -> torch.nn.Module:
    torch.manual_seed(0)
    params = {"filters": 8, "layers": 2, "input_kernel": 5, "profile_kernel": 7, **trunk}
    return build_model("bpnet", params, head, n_outputs, {"bin_size": 4} if head == "binned" else {}).eval()


def forward(net, seq: str, start: int, length: int = LENGTH):
    """The model's outputs on the window [start, start + length) of a chromosome, N past its end."""
    codes = encode(seq.ljust(start + length, "N")[start : start + length])
    with torch.no_grad():
        return net(torch.from_numpy(ONEHOT[codes].T.copy())[None])


def expected_profile(net, seq: str, start: int, end: int, channel: int) -> np.ndarray:
    """Per base of [start, end): the signal of the window whose central part holds it (one forward pass a window)."""
    padded = max(len(seq), LENGTH)
    out, signals = np.full(end - start, np.nan), {}
    for p in range(start, end):
        s = int(np.clip(start + (p - start) // TILE * TILE - MARGIN, 0, padded - LENGTH))
        if set(seq[s : s + LENGTH]) == {"N"}:
            continue
        if s not in signals:
            signals[s] = expected_signal(*forward(net, seq, s))[0, channel].numpy()
        out[p - start] = signals[s][p - s]
    return out


def covered_once(bw, chrom: str) -> int:
    """Bases with a value, checking that intervals are sorted and never overlap (0 for a chromosome left out)."""
    intervals = bw.intervals(chrom) if chrom in bw.chroms() else ()
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(intervals))
    return sum(end - start for start, end, _ in intervals)


def test_profile_tracks_equal_direct_forward_passes(genome, tmp_path):
    """Every base's value is its window's softmax × count; each base once; all-N windows leave a gap; header = genome."""
    fasta, seqs = genome
    net = model("profile", 2)
    paths = [tmp_path / "plus.bw", tmp_path / "minus.bw"]
    summary = predict_tracks(net, fasta, paths, length=LENGTH, overlap=OVERLAP, batch_size=5, device="cpu")
    assert summary["bases"] == sum(map(len, seqs.values())) and summary["tile"] == TILE
    for channel, path in enumerate(paths):
        bw = pyBigWig.open(str(path))
        assert bw.chroms() == {name: len(seq) for name, seq in seqs.items()} == genome_sizes(fasta)
        for chrom, seq in seqs.items():
            expected = expected_profile(net, seq, 0, len(seq), channel)
            np.testing.assert_allclose(bw.values(chrom, 0, len(seq), numpy=True), expected, rtol=1e-5, atol=1e-7)
            assert covered_once(bw, chrom) == np.isfinite(expected).sum()
        gap = bw.values("chrC", 601 + MARGIN + TILE, 901 - MARGIN - TILE, numpy=True)
        assert np.isnan(gap).all() and len(gap) > 0
        bw.close()


def test_regions_are_merged_and_predicted_alone(genome, tmp_path):
    fasta, seqs = genome
    net = model("profile", 2)
    path = tmp_path / "plus.bw"
    regions = [("chrB", 250, 400), ("chrB", 100, 300)]
    predict_tracks(net, fasta, [path, tmp_path / "minus.bw"], length=LENGTH, overlap=OVERLAP, regions=regions)
    bw = pyBigWig.open(str(path))
    values = bw.values("chrB", 0, 777, numpy=True)
    assert np.isnan(values[:100]).all() and np.isnan(values[400:]).all()
    np.testing.assert_allclose(values[100:400], expected_profile(net, seqs["chrB"], 100, 400, 0), rtol=1e-5)
    assert covered_once(bw, "chrB") == 300 and bw.chroms() == {"chrB": 777}  # chromosomes without values left out
    bw.close()


def test_binned_tracks_are_local_predictions_at_bin_resolution(genome, tmp_path):
    """A model that sees 4 bases either side: each bin equals any window that holds it away from its edges."""
    fasta, seqs = genome
    net = model("binned", 1, layers=1, input_kernel=3, profile_kernel=3)
    path = tmp_path / "track.bw"
    predict_tracks(net, fasta, [path], length=64, overlap=32, transform="log1p", batch_size=3, device="cpu")
    bw = pyBigWig.open(str(path))
    seq = seqs["chrB"]
    intervals = bw.intervals("chrB")
    assert [end - start for start, end, _ in intervals[:-1]] == [4] * 194 and intervals[-1][:2] == (776, 777)
    for bin_start in range(32, 777 - 64, 4):
        window = forward(net, seq, bin_start - 32, 64)[0, 0, 8].exp().numpy()
        expected = inverse_transform(window, "log1p")
        assert bw.values("chrB", bin_start, bin_start + 4) == pytest.approx([expected] * 4, rel=1e-5)
    bw.close()


def test_classifier_scan_track(genome, tmp_path):
    fasta, seqs = genome
    net = model("pooled", 2)
    path = tmp_path / "p.bw"
    predict_tracks(net, fasta, [path], length=LENGTH, scan_stride=10, class_index=1, device="cpu")
    bw = pyBigWig.open(str(path))
    seq = seqs["chrB"]
    intervals = bw.intervals("chrB")
    assert [start for start, _, _ in intervals] == list(range(0, 777, 10)) and intervals[-1][1] == 777
    for start, _, value in intervals:
        window = int(np.clip(start + 5 - LENGTH // 2, 0, 777 - LENGTH))
        assert value == pytest.approx(torch.softmax(forward(net, seq, window), -1)[0, 1].item(), rel=1e-6)
    assert covered_once(bw, "chrA") == 50
    bw.close()


def test_attribution_bigwig_averages_overlaps_and_reverses_minus_strand(genome, tmp_path):
    fasta, _ = genome
    sizes = genome_sizes(fasta)
    rng = np.random.default_rng(1)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (3, 20))].transpose(0, 2, 1)
    attributions = rng.normal(size=(3, 4, 20))
    per_base = (attributions * onehot).sum(1)
    path = tmp_path / "attr.bw"
    written = write_attribution_bigwig(
        path, sizes, ["chrB", "chrB", "chrC"], [100, 110, 5], attributions, onehot, ["+", "+", "-"]
    )
    assert written == 50
    bw = pyBigWig.open(str(path))
    values = bw.values("chrB", 100, 130, numpy=True)
    np.testing.assert_allclose(values[:10], per_base[0, :10], rtol=1e-6)
    np.testing.assert_allclose(values[10:20], (per_base[0, 10:] + per_base[1, :10]) / 2, rtol=1e-6)
    np.testing.assert_allclose(values[20:], per_base[1, 10:], rtol=1e-6)
    np.testing.assert_allclose(bw.values("chrC", 5, 25, numpy=True), per_base[2, ::-1], rtol=1e-6)
    assert covered_once(bw, "chrA") == 0
    bw.close()
    with pytest.raises(ValueError, match="chrA:40-60 is not within the genome"):
        write_attribution_bigwig(path, sizes, ["chrA"], [40], attributions[:1], onehot[:1])


def test_errors_name_what_to_fix(genome, tmp_path):
    fasta, _ = genome
    with pytest.raises(ValueError, match="writes 2 bigWig"):
        predict_tracks(model("profile", 2), fasta, [tmp_path / "a.bw"], length=LENGTH)
    with pytest.raises(ValueError, match="multiple of 8"):
        predict_tracks(model("binned", 1), fasta, [tmp_path / "a.bw"], length=64, overlap=12)
    with pytest.raises(ValueError, match="chrA:40-60 is empty or outside"):
        predict_tracks(
            model("profile", 2),
            fasta,
            [tmp_path / "a.bw", tmp_path / "b.bw"],
            length=LENGTH,
            regions=[("chrA", 40, 60)],
        )
    bed = tmp_path / "regions.bed"
    bed.write_text("track name=x\nchrB\t10\t20\nchr9\t1\t5\n")
    with pytest.raises(ValueError, match=r"regions.bed, line 3: chromosome 'chr9' is not in the genome"):
        read_regions(bed, genome_sizes(fasta))
    bed.write_text("chrB\t10\t20\tname\n")
    assert read_regions(bed, genome_sizes(fasta)) == [("chrB", 10, 20)]
