"""The E. coli promoter example (config/examples/ecoli_promoters.yaml) at a reduced size, from the repository's own
resources: sigma70 promoters and coding fragments as intervals on NC_000913.3, a 5-fold genome split, a small BPNet
with the pooled head, the random-negative test set, and the report. The full example adds the pretrained LM and its
LoRA-dropout sweep and the interpretation (benchmarks/RESULTS.md has its figures)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import run_to_report

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ecoli_run(tmp_path_factory) -> Path:
    """The example with BPNet only (8 epochs), capped split sizes, no LM and no interpretation, run in a temporary
    directory on the repository's resources (relative paths resolve against the repository)."""
    workdir = tmp_path_factory.mktemp("ecoli")
    config = yaml.safe_load((REPO / "config" / "examples" / "ecoli_promoters.yaml").read_text())
    config["pretrain"] = {}
    config["models"] = {"bpnet": config["models"]["bpnet"]}
    config["models"]["bpnet"]["bpnet"] = {"filters": 32, "layers": 3, "input_kernel": 15}
    config["models"]["bpnet"]["train"].update(epochs=8, patience=8, lr=0.002)
    config["tasks"]["promoters"]["max_windows"] = {"train": 1200, "val": 300, "test": None}
    config["interpret"] = {"models": []}
    return run_to_report(workdir, config)


@pytest.mark.slow
def test_promoters_are_held_out_by_genome_fold(ecoli_run: Path) -> None:
    windows = pd.read_csv(ecoli_run / "results/windows/promoters/windows.tsv", sep="\t")
    folds = pd.read_csv(ecoli_run / "results/splits/promoters/folds.tsv", sep="\t")
    test_fold = folds[folds["fold"] == 4].iloc[0]
    test = windows[(windows["split"] == "test") & windows["kept"]]
    assert len(test) > 500 and set(test["label"]) == {"non_promoter", "promoter"}
    assert ((test["source_start"] >= test_fold["start"]) & (test["source_end"] <= test_fold["end"])).all()
    meta = json.loads((ecoli_run / "results/windows/promoters/train.json").read_text())
    assert meta["channels"] == ["non_promoter", "promoter"] and meta["length"] == 81 and meta["flank"] == 10


@pytest.mark.slow
def test_bpnet_tells_promoters_from_coding_and_random_sequence(ecoli_run: Path) -> None:
    metrics = json.loads((ecoli_run / "results/eval/promoters/bpnet/metrics.json").read_text())
    assert metrics["auroc"] > 0.7, metrics  # 8 epochs of a small BPNet; the full example trains longer
    table = pd.read_csv(ecoli_run / "results/eval/promoters/test_sets/random_negatives/comparison.tsv", sep="\t")
    assert table["model"].tolist() == ["bpnet"] and table["n_windows"].iloc[0] > 1000
    report = (ecoli_run / "results/report.html").read_text()
    assert "random_negatives" in report
