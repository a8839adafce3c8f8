"""End to end: a seqerror task through Snakemake (tiled windows, splits, noisy stores, a tiny BPNet, evaluation,
the comparison table and the report), on a planted genome where substitutions can be found from context.

The planted genome: every chromosome is a chain of 64 bp segments, each a fresh random 8-mer repeated 8 times. A
base then equals the bases 8 bp to either side within its segment, except at a simulated error, and nothing else about a base can be
learnt (the units are random and differ between segments, so the model cannot memorise them). A model that
learns the period finds substitutions; one that learns nothing ranks them at chance, AUPRC = the substitution rate
(0.08). The bar, AUPRC ≥ 5× chance (0.40) after 30 epochs of 300 windows (a few seconds of training), is far above
chance and well below what the model reaches (AUPRC 0.70, precision of the calls 0.76, recall 0.51 on this machine,
2 cores under load): a tag misaligned by one base, a loss on the wrong channel or a store that pairs windows with
another window's tags would leave it at chance. Insertions and deletions break the period as well; their bar is 3×
chance (measured: 13× and 16×).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import run_to_report

SUBSTITUTION = 0.08


def planted_genome(path: Path, n_chroms: int = 3, length: int = 80_000, seed: int = 5) -> None:
    rng = np.random.default_rng(seed)
    bases = np.array(list("ACGT"))
    chroms = []
    for i in range(n_chroms):
        units = rng.integers(0, 4, (length // 64, 8))
        chroms.append(f">c{i + 1}\n{''.join(bases[np.tile(units, 8).ravel()])}\n")
    path.write_text("".join(chroms))


@pytest.fixture(scope="module")
def seqerror_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("seqerror")
    planted_genome(workdir / "genome.fa")
    config = {
        "species": {"syn": {"genome": {"path": str(workdir / "genome.fa")}}},
        "tasks": {"noise": {
            "type": "seqerror", "species": "syn",
            "window": {"length": 256, "stride": 256, "flank": 8},
            "split": {"chromosomes": {"train": ["c1"], "val": ["c2"], "test": ["c3"]}, "homology": {"enabled": False}},
            "max_windows": {"train": 300, "val": 32, "test": 32},
            "errors": {"rates": {"substitution": SUBSTITUTION, "insertion": 0.02, "deletion": 0.02}, "copies": 2,
                       "seed": 1}}},
        "models": {"bpnet": {"arch": "bpnet", "bpnet": {"filters": 16, "layers": 4, "profile_kernel": 9},
                             "train": {"epochs": 30, "batch_size": 16, "lr": 0.004, "jitter": 8, "patience": 30}}},
        "report": {"examples": 1},
    }
    return run_to_report(workdir, config, cores=1)


@pytest.mark.slow
def test_the_noisy_stores_evaluation_table_and_report_of_a_seqerror_task(seqerror_run: Path) -> None:
    meta = {s: json.loads((seqerror_run / f"results/windows/noise/{s}.json").read_text()) for s in ("train", "test")}
    assert meta["train"]["task_type"] == "seqerror" and meta["train"]["copies"] == 2 and meta["test"]["copies"] == 1
    assert meta["train"]["n"] == 600 and meta["test"]["n"] == 32
    assert meta["train"]["channels"] == ["substitution", "insertion", "deletion_after", "deletion_before"]
    history = pd.read_csv(seqerror_run / "results/models/noise/bpnet/history.tsv", sep="\t")
    assert {"val_f1_substitution", "val_f1_insertion", "val_f1_deletion"} <= set(history.columns)
    table = pd.read_csv(seqerror_run / "results/eval/noise/comparison.tsv", sep="\t").set_index("model")
    for kind in ("substitution", "insertion", "deletion"):
        assert 0 <= table.loc["bpnet", f"f1_{kind}"] <= 1 and 0 < table.loc["bpnet", f"auprc_{kind}"] <= 1
    metrics = json.loads((seqerror_run / "results/eval/noise/bpnet/metrics.json").read_text())
    assert metrics["errors_substitution"] > 400 and metrics["n_windows"] == 32
    assert abs(metrics["prevalence_substitution"] - SUBSTITUTION) < 0.02  # the simulated rate, seen in the test set
    assert not (seqerror_run / "results/interpret").exists()  # interpretation is not defined for seqerror tasks
    report = (seqerror_run / "results/report.html").read_text()
    assert '<section id="seqerror">' in report and "Sequencing-error detection" in report
    assert "chance AUPRC (error rate)" in report and "<th>F1 substitution</th>" in report


@pytest.mark.slow
def test_planted_a_tiny_bpnet_detects_substitutions_far_above_chance(seqerror_run: Path) -> None:
    """The module docstring's bars: AUPRC of substitutions ≥ 5× their rate, of insertions and deletions ≥ 3×."""
    metrics = json.loads((seqerror_run / "results/eval/noise/bpnet/metrics.json").read_text())
    assert metrics["auprc_substitution"] >= 5 * metrics["prevalence_substitution"], metrics
    for kind in ("insertion", "deletion"):
        assert metrics[f"auprc_{kind}"] >= 3 * metrics[f"prevalence_{kind}"], (kind, metrics)
