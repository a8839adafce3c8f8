"""A cross-validated task through Snakemake: `split.folds` without val and test trains one model per fold, shares
the fold layout and candidate windows, evaluates fold ensembles and writes the cross-fold table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHROM = 12_000
SITES = np.arange(400, CHROM - 300, 600)  # 20 sites per chromosome, + strand


def _write_inputs(directory: Path, chroms: dict[str, np.ndarray]) -> None:
    (directory / "genome.fa").write_text("".join(f">{c}\n{''.join(np.array(list('ACGT'))[s])}\n"
                                                 for c, s in chroms.items()))
    for strand in ("plus", "minus"):
        bw = pyBigWig.open(str(directory / f"{strand}.bw"), "w")
        bw.addHeader([(c, CHROM) for c in chroms])
        for c in chroms:
            ends = SITES + 1 if strand == "plus" else SITES[:2] + 1
            bw.addEntries([c] * len(ends), (ends - 1).tolist(), ends=ends.tolist(), values=[20.0] * len(ends))
        bw.close()


@pytest.mark.slow
def test_three_folds_train_one_model_each_and_are_summarised(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    _write_inputs(tmp_path, {f"chr{i}": rng.integers(0, 4, CHROM) for i in range(1, 4)})
    config = {
        "species": {"tgt": {"genome": {"path": str(tmp_path / "genome.fa")},
                            "tracks": {"p": {"path": str(tmp_path / "plus.bw")},
                                       "m": {"path": str(tmp_path / "minus.bw")}}}},
        "tasks": {"t": {"species": "tgt", "targets": [{"name": "site", "plus": "p", "minus": "m"}],
                        "window": {"length": 200, "max_offset": 20, "flank": 8},
                        "split": {"folds": {"k": 3}, "homology": {"enabled": False}}}},
        "models": {"cnn": {"arch": "bpnet", "tasks": ["t"], "bpnet": {"filters": 8, "layers": 2},
                           "train": {"epochs": 1, "batch_size": 16, "jitter": 8}}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--directory",
           str(tmp_path), "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", "results/eval/t/cross_fold.tsv"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    # one fold layout and one set of candidate windows for the group, not one per fold
    assert (tmp_path / "results/splits/t/folds.tsv").exists() and (tmp_path / "results/windows/t/candidates.tsv").exists()
    assert not list(tmp_path.glob("results/splits/t_fold*/folds.tsv"))
    # fold i tests on fold i and validates on fold i + 1: every chromosome (one fold each) is test once, val once
    for i in range(3):
        meta = {s: json.loads((tmp_path / f"results/windows/t_fold{i}/{s}.json").read_text()) for s in ("val", "test")}
        assert {w.split(":")[1] for w in meta["test"]["ids"]} == {f"chr{i + 1}"}
        assert {w.split(":")[1] for w in meta["val"]["ids"]} == {f"chr{(i + 1) % 3 + 1}"}
        ensemble = json.loads((tmp_path / f"results/eval/t_fold{i}/cnn/ensemble.json").read_text())
        assert ensemble["checkpoints"] == [f"results/models/t_fold{i}/cnn/best.ckpt",
                                           f"results/models/t_fold{(i - 1) % 3}/cnn/best.ckpt"]

    table = pd.read_csv(tmp_path / "results/eval/t/cross_fold.tsv", sep="\t")
    single = table[(table["predictor"] == "single")].set_index("metric")
    folds = [json.loads((tmp_path / f"results/eval/t_fold{i}/cnn/metrics.json").read_text())["pearson_median"]
             for i in range(3)]
    row = single.loc["pearson_median"]
    assert [row[f"fold_{i}"] for i in range(3)] == pytest.approx(folds, abs=1e-4)
    assert row["mean"] == pytest.approx(np.mean(folds), abs=1e-4) and row["n_folds"] == 3
    shown = [row[f"fold_{i}"] for i in range(3)]
    assert row["ci95"] == pytest.approx(4.302653 * np.std(shown, ddof=1) / np.sqrt(3), rel=1e-3)  # t(0.975, 2)
    assert set(table.loc[table["predictor"] == "ensemble", "metric"]) >= {"pearson_median", "test_loss"}
