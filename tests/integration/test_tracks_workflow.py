"""End to end: a tracks task (tiled windows, binned bigWig targets) on a reduced yeast_tracks example, with BPNet and
a language model fine-tuned with LoRA (any trunk on any task type), through evaluation, export, interpretation (the
`tracks` output: attributions, MoDISco, motif matching, ISM) and the report."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyBigWig
import pytest
import yaml

from helpers import run_to_report, tiny_bert

REPO = Path(__file__).resolve().parents[2]
CHANNELS = ["rna/+", "rna/-", "polii", "scc1", "mnase"]
FILES = {"rna/+": "RNA.fwd.bw", "rna/-": "RNA.rev.bw", "polii": "PolII.bw", "scc1": "Scc1.bw", "mnase": "MNase.bw"}


def reduced_config(backbone: str = "backbone") -> dict:
    """The example with 2 kb windows, few windows per split, a tiny BPNet and a tiny LM (LoRA, conv head) on a
    local backbone directory; both interpreted on the RNA tracks' central 512 bp, on 4 test windows."""
    config = yaml.safe_load((REPO / "config" / "examples" / "yeast_tracks.yaml").read_text())
    task = config["tasks"]["coverage"]
    task["window"].update(length=2048, stride=2048, flank=64)
    task["max_windows"] = {"train": 48, "val": 16, "test": 16}
    config["models"]["bpnet"] = {"arch": "bpnet", "bpnet": {"filters": 8, "layers": 3, "profile_kernel": 9},
                                 "train": {"epochs": 2, "batch_size": 16, "jitter": 64, "patience": 2}}
    config["models"]["lm_lora"] = {"arch": "lm", "lm": {"backbone": backbone, "finetune": "lora", "head": "conv",
                                                        "conv_head": {"widths": [16, 16, 8]}},
                                   "train": {"epochs": 2, "batch_size": 4, "max_batches_per_epoch": 3, "jitter": 64,
                                             "patience": 2}}
    config["interpret"] = {**config["interpret"], "windows": 4, "n_shuffles": 2, "ig_steps": 4, "examples": 1,
                           "tracks": {"targets": ["rna"], "range": 512}, "ism": {"windows": 1, "span": 16},
                           "modisco": {"max_seqlets": 200, "n_leiden_runs": 1, "window": 1024,
                                       "min_metacluster_size": 10, "final_min_cluster_size": 5}}
    return config


@pytest.fixture(scope="module")
def tracks_run(tmp_path_factory) -> Path:
    """Run the reduced example to the report, the LM on a small random checkpoint in SpeciesLM's layout."""
    workdir = tmp_path_factory.mktemp("tracks")
    architecture = {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "max_positions": 2048 + 8}
    (workdir / "backbone").mkdir()
    tiny_bert(workdir / "backbone", "nucleotide", ["saccharomyces_cerevisiae"], architecture)
    return run_to_report(workdir, reduced_config(str(workdir / "backbone")))


@pytest.mark.slow
def test_store_targets_equal_pybigwig(tracks_run: Path) -> None:
    meta = json.loads((tracks_run / "results/windows/coverage/test.json").read_text())
    assert meta["task_type"] == "tracks" and meta["bin_size"] == 32 and meta["transform"] == "squash"
    assert meta["channels"] == CHANNELS
    targets = np.load(tracks_run / "results/windows/coverage/test.targets.npy")
    assert targets.shape == (16, 5, (2048 + 2 * 64) // 32)
    windows = pd.read_csv(tracks_run / "results/windows/coverage/windows.tsv", sep="\t")
    row = windows[(windows["split"] == "test") & (windows["row"] == 7)].iloc[0]
    assert row["chrom"] == "II"
    lo, hi = int(row["start"]) - 64, int(row["end"]) + 64
    for c, name in enumerate(CHANNELS):
        with pyBigWig.open(str(REPO / "resources/demo/yeast_tracks" / FILES[name])) as bw:
            values = np.nan_to_num(np.asarray(bw.values("II", lo, hi, numpy=True), dtype=np.float64))
        expected = values.reshape(-1, 32).mean(axis=1) ** 0.75  # squash: y^(3/4), soft clip above 384
        expected = np.where(expected > 384, 384 + np.sqrt(np.clip(expected - 384, 0, None)), expected)
        np.testing.assert_allclose(targets[7, c], expected, rtol=1e-5, atol=1e-5)
    counts = pd.read_csv(tracks_run / "results/splits/coverage/counts.tsv", sep="\t").set_index("split")
    assert counts.loc["test", "windows"] == 16 and counts.loc["train", "windows"] == 48
    # II is 813,184 bp: (813,184 - 2 × 64 - 2,048) // 2,048 + 1 = 397 tiles, none with an N
    assert counts.loc["test", "sites"] == 397 and counts.loc["test", "dropped_n"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bpnet", "lm_lora"])
def test_training_and_evaluation_give_track_metrics(tracks_run: Path, model: str) -> None:
    history = pd.read_csv(tracks_run / f"results/models/coverage/{model}/history.tsv", sep="\t")
    assert len(history) == 2 and np.isfinite(history["val_loss"]).all()
    metrics = json.loads((tracks_run / f"results/eval/coverage/{model}/metrics.json").read_text())
    assert metrics["n_windows"] == 16 and metrics["transform"] == "squash"
    for name in CHANNELS:
        assert -1 <= metrics[f"track_pearson/{name}"] <= 1
        assert -1 <= metrics[f"track_pearson_transformed/{name}"] <= 1
    assert np.isfinite(metrics["pearson_median"]) and np.isfinite(metrics["test_loss"])
    with h5py.File(tracks_run / f"results/eval/coverage/{model}/predictions.h5") as h5:
        assert h5["observed"].shape == (16, 5, 2048 // 32) and h5.attrs["scale"] == "original"
        targets = np.load(tracks_run / "results/windows/coverage/test.targets.npy")[:, :, 2:-2]
        # observed is the store's squashed targets taken back to the bigWig's scale
        np.testing.assert_allclose(h5["observed"][:], (targets.astype(np.float64)) ** (4 / 3), rtol=1e-4, atol=1e-4)
    table = pd.read_csv(tracks_run / "results/eval/coverage/comparison.tsv", sep="\t")
    assert table["model"].tolist() == ["bpnet", "lm_lora"] and table["arch"].tolist() == ["bpnet", "lm"]
    assert {f"track_pearson/{name}" for name in CHANNELS} <= set(table.columns)


@pytest.mark.slow
def test_the_lm_on_tracks_is_fine_tuned_with_lora_exported_and_reported(tracks_run: Path) -> None:
    info = json.loads((tracks_run / "results/models/coverage/lm_lora/model.json").read_text())
    assert info["head"]["kind"] == "binned" and info["head"]["params"]["bin_size"] == 32
    assert 0 < info["trainable_params"] < info["total_params"]  # adapters, stack and head; the backbone is fixed
    head = json.loads((tracks_run / "results/models/coverage/lm_lora/hf/head.json").read_text())
    assert head["head"]["kind"] == "binned" and head["stack"]["kind"] == "conv"
    swap = pd.read_csv(tracks_run / "results/eval/coverage/lm_lora/counterfactual.tsv", sep="\t")
    assert swap["species"].tolist() == ["saccharomyces_cerevisiae"] and swap["mean_abs_delta_log_count"][0] == 0
    report = (tracks_run / "results/report.html").read_text()
    assert "lm_lora" in report and "coverage" in report


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bpnet", "lm_lora"])
def test_tracks_models_are_interpreted_on_the_chosen_tracks_and_bins(tracks_run: Path, model: str) -> None:
    """The `tracks` output of rna/+ and rna/-, bins 24-39 (the central 512 bp of 2,048): BPNet's DeepLIFT
    attributions are zero beyond those bins' receptive field (~±60 bp with 3 dilated layers); the LM (integrated
    gradients) sees the whole window. MoDISco, motif matching and ISM ran on the same output."""
    prefix = tracks_run / f"results/interpret/coverage/{model}"
    with np.load(prefix / "attributions.npz") as npz:
        assert list(npz["tracks_names"]) == ["rna/+", "rna/-"] and list(npz["tracks_channels"]) == [0, 1]
        assert list(npz["tracks_bins"]) == [24, 40]
        attr, hyp, onehot = npz["tracks_attr"], npz["tracks_hyp"], npz["onehot"]
    assert attr.shape == hyp.shape == onehot.shape == (4, 4, 2048)
    np.testing.assert_array_equal(attr, hyp * onehot)
    per_base = np.abs(attr).sum(axis=1)
    assert per_base[:, 768:1280].sum(axis=1).min() > 0
    if model == "bpnet":
        assert per_base[:, :640].max() == 0 and per_base[:, 1408:].max() == 0
    else:
        assert per_base[:, :640].sum() > 0
    assert (prefix / "modisco.tracks.h5").stat().st_size > 0
    motifs = pd.read_csv(prefix / "motifs.tsv", sep="\t")
    assert list(motifs.columns[:3]) == ["output", "pattern", "sign"] and set(motifs["output"]) <= {"tracks"}
    with np.load(prefix / "ism.npz") as ism:
        assert ism["tracks_ism"].shape == (1, 4, 16) and np.abs(ism["tracks_ism"]).max() > 0
        assert np.isfinite(ism["tracks_r"]).all()
    report = (tracks_run / "results/report.html").read_text()
    assert "<h2>Interpretation: motifs</h2>" in report and ": attributions (DeepLIFT/SHAP" in report  # example logos
    assert ("tracks: the log of the predicted signal of rna/+, rna/- summed over bases 768–1279 of the window (bins "
            "24–39; interpret.tracks)") in report
