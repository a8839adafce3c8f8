"""End to end: evaluation, attribution, prediction tracks and variant scoring run in 2 shards (inference.shards: 2,
each step a shard rule and a merge rule) write the same files as one job per step (the default), on a reduced demo
run."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile")]
#: The outputs of one run that sharded inference writes, each compared with the unsharded job's.
OUTPUTS = ["results/eval/polya/bpnet/predictions.h5", "results/eval/polya/bpnet/metrics.json",
           "results/eval/polya/bpnet/counterfactual.tsv", "results/tracks/polya/bpnet/predictions.json",
           "results/tracks/polya/bpnet/predictions/polya.plus.bw", "results/tracks/polya/bpnet/predictions/polya.minus.bw",
           "results/variants/polya/bpnet/pas_elements.tsv", "results/variants/polya/bpnet/pas_elements.json",
           "results/variants/polya/bpnet/pas_elements.top.npz", "results/interpret/polya/bpnet/attributions.npz"]
TARGETS = [OUTPUTS[1], OUTPUTS[3], OUTPUTS[6], OUTPUTS[9]]


def reduced_config(workdir: Path, shards: int) -> dict:
    """The demo's task on a few hundred windows (train on II), a tiny BPNet for one short epoch; its tracks over
    200 kb of chromosome VII, the demo VCF scored, 24 test windows attributed; no LM, no QC."""
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    task = demo["tasks"]["polya"]
    task["split"]["chromosomes"]["train"] = ["II"]
    task["max_windows"] = {"train": 128, "val": 64, "test": 150}
    bpnet = {"arch": "bpnet", "bpnet": {"filters": 8, "layers": 2},
             "train": {"epochs": 1, "batch_size": 32, "max_batches_per_epoch": 2}}
    (workdir / "vii.bed").write_text("VII\t0\t120000\nVII\t300000\t380000\n")
    return {"species": {"scer": demo["species"]["scer"]}, "tasks": {"polya": task}, "models": {"bpnet": bpnet},
            "qc": demo["qc"], "variants": {"models": ["bpnet"], "batch_size": 32, "top": 2},
            "prediction_tracks": {"models": ["bpnet"], "regions": str(workdir / "vii.bed"), "batch_size": 64},
            "interpret": {"models": ["bpnet"], "windows": 24, "n_shuffles": 2}, "inference": {"shards": shards}}


def run(workdir: Path, shards: int) -> str:
    (workdir / "config.yaml").write_text(yaml.safe_dump(reduced_config(workdir, shards)))
    cmd = [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores", "2",
           *TARGETS]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_two_shards_write_the_outputs_of_one_job(tmp_path: Path) -> None:
    one = run(tmp_path, 1)
    assert "evaluate_model" in one and "evaluate_shard" not in one
    expected = tmp_path / "expected"
    for path in OUTPUTS:
        (expected / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(tmp_path / path, expected / path)
    two = run(tmp_path, 2)  # the same trained model: only the removed outputs are made again
    assert "train_model" not in two and "evaluate_model" not in two and "score_variants " not in two
    for rule in ("evaluate_shard", "merge_evaluation", "attribute_shard", "merge_attributions", "predict_tracks_shard",
                 "merge_prediction_tracks", "score_variants_shard", "merge_variant_scores"):
        assert rule in two, rule
    for shard in (0, 1):
        assert (tmp_path / f"logs/evaluate_shard/polya/bpnet/{shard}.log").exists()
    assert not (tmp_path / "results/eval/polya/bpnet/shards").exists() or not any(
        (tmp_path / "results/eval/polya/bpnet/shards").iterdir())  # the parts are temporary
    for path in OUTPUTS:
        if path.endswith((".h5", ".npz")):
            continue
        assert filecmp.cmp(tmp_path / path, expected / path, shallow=False), path
    with h5py.File(tmp_path / OUTPUTS[0]) as got, h5py.File(expected / OUTPUTS[0]) as want:
        assert got["predicted"].shape == (150, 2, 300)
        for key in ("observed", "predicted", "window_id"):
            np.testing.assert_array_equal(got[key][:], want[key][:])
    for path, key, rows in ((OUTPUTS[8], "ids", 2), (OUTPUTS[9], "count_attr", 24)):
        with np.load(tmp_path / path) as got, np.load(expected / path) as want:
            assert got.files == want.files and len(want[key]) == rows, path
            for name in want.files:
                np.testing.assert_array_equal(got[name], want[name], err_msg=f"{path}: {name}")
