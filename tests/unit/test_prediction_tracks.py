"""Tests for dnalm.prediction_tracks, the rules' side of genome-wide bigWigs: file names per output, the classifier's
class, and attributions placed at their windows' genomic coordinates and strands."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import torch

from dnalm.checkpoint import save_atomic
from dnalm.models import build_model
from dnalm.prediction_tracks import track_name, write_attribution_tracks, write_prediction_tracks

RNG = np.random.default_rng(3)
CHROMS = {"I": "".join(RNG.choice(list("ACGT"), 900)), "II": "".join(RNG.choice(list("ACGT"), 500))}
SETTINGS = {"overlap": None, "scan_stride": 50, "class": None, "batch_size": 16}


@pytest.fixture(scope="module")
def genome(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("g") / "genome.fa"
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in CHROMS.items()))
    return str(path)


def checkpoint(path, head: str, channels: list[str], task_type: str) -> str:
    torch.manual_seed(0)
    params = {"filters": 8, "layers": 2, "input_kernel": 5, "profile_kernel": 9}
    model = build_model("bpnet", params, head, len(channels))
    save_atomic({"arch": "bpnet", "model_params": params, "head": model.head_spec, "task_type": task_type,
                 "channels": channels, "length": 100, "bin_size": 1, "transform": "none",
                 "state_dict": model.state_dict()}, path)
    return str(path)


def test_channel_names_become_file_names():
    assert [track_name(c) for c in ("polya/+", "polya/-", "rna")] == ["polya.plus", "polya.minus", "rna"]


def test_profile_model_writes_one_bigwig_per_strand_over_the_genome(tmp_path, genome):
    best = checkpoint(tmp_path / "best.ckpt", "profile", ["polya/+", "polya/-"], "profile")
    summary = write_prediction_tracks(best, genome, str(tmp_path / "out"), str(tmp_path / "s.json"), settings=SETTINGS)
    assert summary["files"] == ["polya.plus.bw", "polya.minus.bw"] and summary["bases"] == 1400
    assert json.loads((tmp_path / "s.json").read_text())["windows"] == summary["windows"]
    with pyBigWig.open(str(tmp_path / "out" / "polya.plus.bw")) as bw:
        assert bw.chroms() == {"I": 900, "II": 500}
        assert np.isfinite(bw.values("II", 0, 500)).all()


def test_classifier_track_is_the_chosen_class_and_an_unknown_class_is_named(tmp_path, genome):
    best = checkpoint(tmp_path / "best.ckpt", "pooled", ["neg", "pos"], "classification")
    summary = write_prediction_tracks(best, genome, str(tmp_path / "o"), str(tmp_path / "s.json"),
                                      settings={**SETTINGS, "class": "neg"})
    assert summary["files"] == ["neg.probability.bw"]
    with pyBigWig.open(str(tmp_path / "o" / "neg.probability.bw")) as bw:
        values = np.array(bw.values("I", 0, 900))
    assert np.nanmin(values) > 0 and np.nanmax(values) < 1
    with pytest.raises(ValueError, match=r"prediction_tracks.class: 'promoter' is not a class"):
        write_prediction_tracks(best, genome, str(tmp_path / "x"), str(tmp_path / "x.json"),
                                settings={**SETTINGS, "class": "promoter"})


def test_attributions_land_on_their_windows_and_strands(tmp_path, genome):
    onehot = np.zeros((3, 4, 10), dtype=np.float32)
    onehot[:, 0, :] = 1.0                                   # every base an A
    attr = onehot * np.arange(10, dtype=np.float32)        # attribution = position in the window
    np.savez(tmp_path / "a.npz", onehot=onehot, window_ids=np.array(["w1", "w2", "fasta_example"]),
             count_attr=attr, count_hyp=attr)
    pd.DataFrame({"id": ["w1", "w2", "fasta_example"], "chrom": ["I", "II", "seq7"], "start": [100, 200, 0],
                  "strand": ["+", "-", "+"]}).to_csv(tmp_path / "windows.tsv", sep="\t", index=False)
    summary = write_attribution_tracks(str(tmp_path / "a.npz"), str(tmp_path / "windows.tsv"), genome,
                                       {"count": str(tmp_path / "count.bw")})
    assert summary["windows"] == 2 and summary["left_out"] == 1  # the example from a FASTA has no genomic place
    with pyBigWig.open(str(tmp_path / "count.bw")) as bw:
        assert bw.values("I", 100, 110) == list(range(10))
        assert bw.values("II", 200, 210) == list(range(9, -1, -1))  # a minus-strand window, reversed


def test_ism_of_bed_regions_mutates_each_region_in_the_window_centred_on_it(tmp_path, genome):
    from dnalm.ism import ism_regions, saturation_mutagenesis
    from dnalm.predict import load_model
    from dnalm.store import ONEHOT, encode

    best = checkpoint(tmp_path / "best.ckpt", "profile", ["polya/+", "polya/-"], "profile")
    (tmp_path / "r.bed").write_text("I\t400\t420\nII\t10\t30\nI\t100\t400\n")
    summary = ism_regions(best, genome, str(tmp_path / "r.bed"), str(tmp_path / "ism.npz"), outputs=["count"],
                          n_shuffles=2, ig_steps=4, seed=0)
    assert summary["regions"] == 3
    with np.load(tmp_path / "ism.npz") as ism:
        assert ism["regions"].tolist() == ["I:400-420", "II:10-30", "I:100-400"]
        assert ism["first"].tolist() == [400, 10, 200] and ism["width"].tolist() == [20, 20, 100]
        assert ism["count_ism"].shape == (3, 4, 100) and np.isfinite(ism["count_r"]).all()
        model, _ = load_model(best)
        window = CHROMS["I"][370:470]               # 100 bp centred on I:400-420
        x = ONEHOT[encode(window)].T[None]
        expected = saturation_mutagenesis(model, x, output="count", start=30, end=50)
        # float32 differences of log counts (~4): a few ulps apart with other batch sizes
        np.testing.assert_allclose(ism["count_ism"][0, :, :20], expected[0], atol=5e-6)
        # II:10-30's window starts 30 bases before the chromosome (N there); its span is still II:10-30
        np.testing.assert_array_equal(ism["onehot"][1, :, :20], ONEHOT[encode(CHROMS["II"][10:30])].T)
        np.testing.assert_array_equal(ism["onehot"][2], ONEHOT[encode(CHROMS["I"][200:300])].T)
        padded = ONEHOT[encode("N" * 30 + CHROMS["II"][:70])].T[None]
        expected = saturation_mutagenesis(model, padded, output="count", start=40, end=60)
        np.testing.assert_allclose(ism["count_ism"][1, :, :20], expected[0], atol=5e-6)
