"""docs/make_results.py: the results page is made from a run directory's files, values copied, nothing typed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("make_results", REPO / "docs" / "make_results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_results"] = module
    spec.loader.exec_module(module)
    return module


make_results = _load()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _tsv(path: Path, rows: list[list[object]]) -> None:
    _write(path, "".join("\t".join(map(str, row)) + "\n" for row in rows))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A finished run in the layout the workflow writes, with made-up values."""
    run = tmp_path / "demo_run"
    results = run / "results"
    _tsv(results / "qc" / "summary.tsv", [
        ["species", "length", "mash_distance", "coding_fraction", "pass", "reasons", "not_checked"],
        ["scer", 12157105, 0.0, 0.7056, True, "", "busco_complete: BUSCO skipped"],
        ["calb", 3188548, 0.3291, "", False, "mash_distance 0.329 > 0.25", ""],
    ])
    _tsv(results / "splits" / "polya" / "summary.tsv", [
        ["species", "train_before", "test_before", "val_before", "train_after", "test_after", "val_after", "removed",
         "removed_train", "removed_train_percent"],
        ["scer", 4000, 872, 900, 3992, 872, 898, 10, 8, 0.2],
    ])
    _write(results / "pretrain" / "fungal_lm" / "pretrain.json", json.dumps({
        "tokenizer": "nucleotide", "species": ["saccharomyces_cerevisiae", "candida_albicans"], "steps": 300,
        "corpus": [{"genome": "scer", "species": "saccharomyces_cerevisiae", "train_chroms": 14, "val_chroms": 1}],
        "parameters": 170123, "final_val_accuracy": 0.3769}))
    _tsv(results / "eval" / "polya" / "comparison.tsv", [
        ["model", "arch", "n_seeds", "pearson_median", "pearson_median_sd", "auroc", "auroc_sd", "n_windows"],
        ["bpnet", "bpnet", 1, 0.0512, "", 0.8071, "", 872],
        ["lm_lora~seed", "lm", 3, 0.0531, 0.0042, 0.7813, 0.0107, 872],
    ])
    motif_header = ["output", "pattern", "sign", "n_seqlets", "consensus", "best_match", "q_value", "p_value",
                    "offset", "strand", "significant", "second_match", "second_q_value"]
    _tsv(results / "interpret" / "polya" / "bpnet" / "motifs.tsv", [
        [*motif_header, "found"],
        ["count", "pos_patterns.pattern_0", "+", 233, "TATATATA", "efficiency_UAUAUA", 0.0081234, 0.0001, 0, "+",
         True, "positioning_UAUAAA", 0.0142, True],
        ["count", "pos_patterns.pattern_1", "+", 41, "ATATATAT", "efficiency_UAUAUA", 0.0094, 0.0002, 1, "-", True,
         "", "", True],
        ["profile", "neg_patterns.pattern_0", "-", 22, "GCGCGC", "Abf1", 0.61, 0.3, 2, "+", False, "Reb1", 0.7, False],
        ["profile", "neg_patterns.pattern_1", "-", 12, "TTTTTT", "positioning_AAAAAA", 0.01, 0.001, 0, "-", True,
         "", "", False],  # significant, too few seqlets: not found
    ])
    _tsv(results / "interpret" / "polya" / "bpnet" / "positional.tsv", [
        ["output", "kmer", "start", "end", "mean_contribution", "windows", "enrichment"],
        ["profile", "TTTCA", -4, 0, 15.18, 1.0, 222.8],
    ])
    _tsv(results / "interpret" / "polya" / "lm_lora_conv" / "motifs.tsv", [
        motif_header,
        ["count", "pos_patterns.pattern_0", "+", 118, "AAAAAA", "positioning_AAAAAA", 0.005, 0.0001, 0, "-", True,
         "u_rich", 0.006],
    ])
    _write(run / "config.yaml", "tasks: {}\n")
    return run


def _rows(page: str, heading: str) -> list[list[str]]:
    """Cells of the first table after the heading line `heading` (header row first, no separator row)."""
    lines = page.splitlines()
    start = lines.index(heading)
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|---"):
            continue
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split(" | ")])
        elif table:
            break
    return table


def test_tables_hold_the_run_values(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    assert make_results.main([str(run_dir), "--out", str(out)]) == 0
    page = out.read_text()

    comparison = _rows(page, "### Test metrics of task polya")
    assert comparison[0] == ["model", "arch", "n_seeds", "pearson_median", "auroc", "n_windows"]
    assert comparison[1] == ["bpnet", "bpnet", "1", "0.0512", "0.8071", "872"]
    assert comparison[2] == ["lm_lora~seed", "lm", "3", "0.0531 ± 0.0042", "0.7813 ± 0.0107", "872"]

    qc = {row[0]: row[1:] for row in _rows(page, "### Genome QC")}
    assert qc["measure"] == ["scer", "calb"]
    assert qc["`mash_distance`"] == ["0.0", "0.3291"]
    assert qc["`reasons`"] == ["", "mash_distance 0.329 > 0.25"]

    splits = _rows(page, "### Splits of task polya")
    assert splits[1] == ["scer", "4000", "872", "900", "3992", "872", "898", "10", "8", "0.2"]

    pretrain = {row[0]: row[1] for row in _rows(page, "### Pretraining of fungal_lm")}
    assert pretrain["`species`"] == "saccharomyces_cerevisiae, candida_albicans"
    assert pretrain["`final_val_accuracy`"] == "0.3769"
    assert "| scer | saccharomyces_cerevisiae | 14 | 1 |" in page

    bpnet = _rows(page, "#### Patterns of bpnet on polya")
    assert bpnet[0] == make_results.MOTIF_COLUMNS
    assert bpnet[1] == ["count", "pos_patterns.pattern_0", "+", "233", "TATATATA", "efficiency_UAUAUA", "0.00812",
                        "+", "True", "True", "positioning_UAUAAA", "0.0142"]
    assert len(bpnet) == 5
    assert _rows(page, "#### Positional elements of bpnet on polya")[1] == ["profile", "TTTCA", "-4", "0", "15.18",
                                                                              "1.0", "222.8"]


def test_known_motif_table_takes_each_models_best_found_match(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    make_results.main([str(run_dir), "--out", str(out)])
    page = out.read_text()
    known = {row[0]: row[1:] for row in _rows(page, "Matches reported as found (lowest q-value per known motif and "
                                                    "model):")}
    assert known["known motif"] == ["bpnet", "lm_lora_conv"]
    assert known["efficiency_UAUAUA"] == ["q = 0.00812: count pos_patterns.pattern_0 (+, 233 seqlets, strand +)", ""]
    assert known["positioning_AAAAAA"][0] == ""  # bpnet's match is significant but not found (too few seqlets)
    assert known["positioning_AAAAAA"][1].startswith("q = 0.005: count")  # a file without `found`: significant
    assert "Abf1" not in known  # not significant


def test_header_names_run_config_and_commit(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    config = tmp_path / "my.yaml"
    config.write_text("models: {}\n")
    assert make_results.main([str(run_dir), "--config", str(config), "--out", str(out)]) == 0
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    header = next(line for line in out.read_text().splitlines() if line.startswith("Run directory"))
    assert f"`{run_dir}`" in header
    assert f"`{config}`" in header
    assert f"commit `{head}" in header


def test_config_found_in_the_run_directory(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    make_results.main([str(run_dir), "--out", str(out)])
    assert f"config `{run_dir / 'config.yaml'}` (md5 " in out.read_text()


def test_several_runs_and_a_run_without_results(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    planted = tmp_path / "planted"
    header = (run_dir / "results" / "interpret" / "polya" / "bpnet" / "motifs.tsv").read_text().splitlines()[0]
    _tsv(planted / "results" / "interpret" / "synth" / "bpnet" / "motifs.tsv", [
        header.split("\t"),
        ["count", "pos_patterns.pattern_0", "+", 343, "TATATA", "TATATA", 0.006, 0.0001, 0, "+", True, "", ""],
    ])
    assert make_results.main([str(run_dir), str(planted), "--out", str(out)]) == 0
    page = out.read_text()
    assert page.index("## demo_run") < page.index("## planted")
    assert "config not recorded (pass --config)" in page
    planted_part = page[page.index("## planted"):]
    assert _rows(planted_part, "#### Patterns of bpnet on synth")[1][:4] == ["count", "pos_patterns.pattern_0", "+", "343"]
    assert "| TATATA | q = 0.006: count pos_patterns.pattern_0 (+, 343 seqlets, strand +) |" in planted_part
    assert make_results.main([str(tmp_path / "nothing"), "--out", str(out)]) == 1
