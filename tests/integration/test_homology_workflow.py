"""Through Snakemake on synthetic genomes: 4 genome folds, an extra train species holding a 2%-diverged copy of the
target's val fold, the homology filter, and the window stores of all three splits."""

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
CHROM = 20_000
SITES = np.arange(500, CHROM, 1000)  # 20 sites per chromosome, + strand


def write_genome(path: Path, chroms: dict[str, np.ndarray]) -> None:
    path.write_text("".join(f">{c}\n{''.join(np.array(list('ACGT'))[s])}\n" for c, s in chroms.items()))


def write_tracks(directory: Path, chroms: list[str]) -> None:
    for strand in ("plus", "minus"):
        bw = pyBigWig.open(str(directory / f"{strand}.bw"), "w")
        bw.addHeader([(c, CHROM) for c in chroms])
        if strand == "plus":
            for c in chroms:
                bw.addEntries([c] * len(SITES), SITES.tolist(), ends=(SITES + 1).tolist(), values=[20.0] * len(SITES))
        else:
            bw.addEntries([chroms[0]], [5], ends=[6], values=[1.0])
        bw.close()


@pytest.mark.slow
def test_folds_extra_species_and_homology_filter_through_snakemake(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    target = {f"chr{i}": rng.integers(0, 4, CHROM) for i in range(1, 5)}
    copy = target["chr2"][:10_000].copy()  # chr2 is the val fold
    pos = rng.choice(10_000, 200, replace=False)
    copy[pos] = (copy[pos] + rng.integers(1, 4, 200)) % 4
    extra = {"ext1": np.concatenate([copy, rng.integers(0, 4, CHROM - 10_000)])}
    for name, chroms in (("tgt", target), ("ext", extra)):
        (tmp_path / name).mkdir()
        write_genome(tmp_path / name / "genome.fa", chroms)
        write_tracks(tmp_path / name, list(chroms))
    species = {name: {"genome": {"path": str(tmp_path / name / "genome.fa")},
                      "tracks": {"site_plus": {"path": str(tmp_path / name / "plus.bw")},
                                 "site_minus": {"path": str(tmp_path / name / "minus.bw")}}}
               for name in ("tgt", "ext")}
    config = {
        "species": species,
        "tasks": {"t": {"species": "tgt", "targets": [{"name": "site", "plus": "site_plus", "minus": "site_minus"}],
                        "window": {"length": 300, "max_offset": 50, "flank": 16},
                        "split": {"folds": {"k": 4, "val": 1, "test": 2}, "homology": {"enabled": True}},
                        "extra_train_species": ["ext"]}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    stores = [f"results/windows/t/{s}.json" for s in ("train", "val", "test")]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--directory",
           str(tmp_path), "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", *stores]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    folds = pd.read_csv(tmp_path / "results/splits/t/folds.tsv", sep="\t")
    assert folds.values.tolist() == [[f"chr{i}", 0, CHROM, i - 1] for i in range(1, 5)]  # cut at chromosome ends
    summary = pd.read_csv(tmp_path / "results/splits/t/summary.tsv", sep="\t").set_index("species")
    assert summary.loc["tgt", ["train_before", "test_before", "val_before"]].tolist() == [40, 20, 20]
    assert summary.loc["tgt", ["train_after", "test_after", "val_after"]].tolist() == [40, 20, 20]
    # the extra species' windows over the copy of chr2:0-10,000 (sites 500 ... 9,500) are removed, the rest kept
    assert summary.loc["ext", ["train_before", "train_after", "removed"]].tolist() == [20, 10, 10]
    removed = pd.read_csv(tmp_path / "results/splits/t/homology.tsv", sep="\t")
    assert sorted(removed["id"]) == sorted(f"ext:ext1:{s}:+" for s in SITES[:10])
    assert set(removed["hit_split"]) == {"val"} and (removed["identity"] >= 0.95).all()
    meta = {s: json.loads((tmp_path / f"results/windows/t/{s}.json").read_text()) for s in ("train", "val", "test")}
    assert [meta[s]["n"] for s in ("train", "val", "test")] == [50, 20, 20]
    assert sum(i.startswith("ext:") for i in meta["train"]["ids"]) == 10
    seq = np.load(tmp_path / "results/windows/t/train.seq.npy")
    row = meta["train"]["ids"].index("ext:ext1:15500:+")
    windows = pd.read_csv(tmp_path / "results/windows/t/windows.tsv", sep="\t").set_index("id")
    start = int(windows.loc["ext:ext1:15500:+", "start"]) - 16
    assert (seq[row] == extra["ext1"][start : start + 332]).all()  # read from the extra species' genome
