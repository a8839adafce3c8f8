"""Planted ground truth: BPNet and a k-mer language model trained on a synthetic genome whose poly(A)-like signal is
caused by planted motifs; attribute -> modisco -> TOMTOM must recover every planted motif and no decoy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dnalm.synthetic import PLANTED, synthetic_decoys, write_synthetic

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile")]
TOP_PATTERNS = 6


def synthetic_config(data: dict[str, Path]) -> dict:
    """A small task on the synthetic genome, a small BPNet and a k-mer LM from scratch, reduced modisco settings."""
    train = {"epochs": 8, "batch_size": 32, "lr": 0.002, "patience": 8, "jitter": 8}
    return {
        "species": {"synth": {"genome": {"path": str(data["genome"])},
                              "tracks": {"pa_plus": {"path": str(data["plus"])},
                                         "pa_minus": {"path": str(data["minus"])}}}},
        "tasks": {"synth": {"species": "synth", "targets": [{"name": "polya", "plus": "pa_plus", "minus": "pa_minus"}],
                            "sites": {"min_reads": 10}, "window": {"length": 200, "max_offset": 30, "flank": 8},
                            "split": {"chromosomes": {"train": ["chr1", "chr2", "chr3", "chr4"], "val": ["chr5"],
                                                      "test": ["chr6"]}}}},
        "models": {
            "bpnet": {"arch": "bpnet", "bpnet": {"filters": 32, "layers": 4, "input_kernel": 15, "profile_kernel": 25},
                      "train": train},
            "kmer_lm": {"arch": "lm", "lm": {"backbone": None, "finetune": "scratch", "tokenizer": "kmer6_species",
                                             "architecture": {"layers": 1, "hidden": 64, "heads": 4}, "head": "conv"},
                        "train": {**train, "lr": 0.002}},
        },
        "interpret": {"windows": 400, "n_shuffles": 5, "motifs": [str(data["motifs"])],
                      "modisco": {"max_seqlets": 1000, "n_leiden_runs": 1, "min_metacluster_size": 50,
                                  "final_min_cluster_size": 15}},
    }


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    """Generate the synthetic data and run the workflow to both models' motifs.tsv."""
    workdir = tmp_path_factory.mktemp("synthetic")
    data = write_synthetic(workdir / "data", seed=0)
    (workdir / "config.yaml").write_text(yaml.safe_dump(synthetic_config(data)))
    targets = [f"results/interpret/synth/{m}/motifs.tsv" for m in ("bpnet", "kmer_lm")]
    cmd = [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores", "2",
           *targets]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return workdir


def recovered(table: pd.DataFrame) -> tuple[set[str], set[str]]:
    """(planted motifs that are the significant best match of a top pattern, decoys that any pattern matches)."""
    top = table.sort_values("n_seqlets", ascending=False).groupby("output").head(TOP_PATTERNS)
    hits = set(top.loc[top["significant"], "best_match"])
    decoys = set(table.loc[table["significant"], "best_match"]) & set(synthetic_decoys())
    return hits & set(PLANTED), decoys


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bpnet", "kmer_lm"])
def test_planted_motifs_recovered(synthetic_run: Path, model: str) -> None:
    table = pd.read_csv(synthetic_run / f"results/interpret/synth/{model}/motifs.tsv", sep="\t")
    found, decoys = recovered(table)
    assert found == set(PLANTED), f"{model} recovered only {found}:\n{table.to_string()}"
    assert not decoys, f"{model} patterns match decoys {decoys}:\n{table.to_string()}"
