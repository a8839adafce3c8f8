"""Genome QC through the workflow: real mash, tantan and BUSCO (toy lineage) on demo genomes and toy genomes.

Runs `snakemake … results/report.html` once in a temporary directory on a config with no task: S. cerevisiae and
S. kudriavzevii chromosome I from resources/demo, plus a toy prokaryote genome given as a proteome (BUSCO proteins
mode) and as a genome (BUSCO genome mode, prodigal), with the toy lineage of tests/unit/test_qc.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "unit"))
from test_qc import busco_proteome, make_lineage, prokaryote_genome, write_fasta

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile")]
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def qc_config(root: Path) -> dict:
    """Demo genomes plus a toy genome and proteome, BUSCO with the toy lineage, no tasks."""
    lineage, families = make_lineage(root)
    proteome = busco_proteome(families)
    genome = write_fasta(root / "toy.fa", {"chr": prokaryote_genome(proteome)})
    proteins = write_fasta(root / "toy.faa", proteome)
    species = {name: DEMO["species"][name] for name in ("scer_chrI", "skud_chrI")}
    species["scer_chrI"] = {**species["scer_chrI"], "reference": True}
    species["skud_chrI"] = {k: v for k, v in species["skud_chrI"].items() if k != "qc_reference"}
    species["toy"] = {"genome": {"path": str(genome)}, "proteins": {"path": str(proteins)}, "qc_reference": "toy_dna"}
    species["toy_dna"] = {"genome": {"path": str(genome)}, "qc_reference": "toy_dna"}
    thresholds = {**DEMO["qc"]["thresholds"], "min_busco_complete": 75}
    return {"species": species, "qc": {**DEMO["qc"], "busco": {"lineage": str(lineage)}, "thresholds": thresholds}}


def run(workdir: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def qc_workflow(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("qc_workflow")
    proc = run(workdir, qc_config(workdir), "--cores", "2", "results/report.html")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return workdir


@pytest.mark.slow
def test_busco_modes_and_scores(qc_workflow: Path) -> None:
    table = pd.read_csv(qc_workflow / "results/qc/summary.tsv", sep="\t").set_index("species")
    assert list(table.index) == ["scer_chrI", "skud_chrI", "toy", "toy_dna"]
    for species in ("toy", "toy_dna"):
        row = table.loc[species]
        assert (row["busco_complete"], row["busco_single"], row["busco_duplicated"]) == (80, 60, 20)
        assert (row["busco_fragmented"], row["busco_missing"], row["busco_n"]) == (0, 20, 5)
    log = (qc_workflow / "logs/run_busco/toy.log").read_text()
    assert "-m proteins" in log and "--offline" in log
    assert "-m genome" in (qc_workflow / "logs/run_busco/toy_dna.log").read_text()
    assert (qc_workflow / "resources/toy/proteins.fa").exists()
    assert table.loc["scer_chrI", "busco_complete"] == 0  # a yeast chromosome has none of the toy families


@pytest.mark.slow
def test_gate_admits_the_genomes_that_pass(qc_workflow: Path) -> None:
    table = pd.read_csv(qc_workflow / "results/qc/summary.tsv", sep="\t").set_index("species")
    assert (qc_workflow / "results/qc/pretrain_genomes.txt").read_text() == "toy\ntoy_dna\n"
    assert table.loc["scer_chrI", "reasons"] == "busco_complete 0 < 75"
    assert pd.isna(table.loc["toy", "reasons"]) and pd.isna(table.loc["toy_dna", "reasons"])
    assert table.loc["skud_chrI", "mash_reference"] == "scer_chrI"
    assert table.loc["skud_chrI", "mash_distance"] == pytest.approx(0.169, abs=0.01)
    assert table.loc["toy", "mash_distance"] == 0 and table.loc["scer_chrI", "repeat_method"] == "softmask"
    assert table.loc["toy", "repeat_method"] == "tantan+windowmasker"
    matrix = pd.read_csv(qc_workflow / "results/qc/mash_distances.tsv", sep="\t", index_col=0)
    assert matrix.loc["toy", "toy_dna"] == 0 and matrix.loc["scer_chrI", "toy"] == 1


@pytest.mark.slow
def test_report_shows_qc(qc_workflow: Path) -> None:
    html = (qc_workflow / "results/report.html").read_text()
    assert "the gate admitted 2 to language-model pretraining" in html
    assert "C:80.0%[S:60.0%,D:20.0%],F:0.0%,M:20.0%,n:5" in html
    assert "BUSCO was not run" not in html


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"qc": {"busco": {"lineage": "/", "mode": "proteins"}}}, "species.scer_chrI.proteins"),
    ],
)
def test_bad_qc_config_names_the_key(tmp_path: Path, edit: dict, expected: str) -> None:
    config = {"species": {n: dict(DEMO["species"][n]) for n in ("scer_chrI", "skud_chrI")}, "qc": {}}
    for section, values in edit.items():
        for key, value in values.items():
            config[section][key] = {**config[section].get(key, {}), **value}
    proc = run(tmp_path, config, "-n", "--cores", "1")
    assert proc.returncode != 0 and expected in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]
