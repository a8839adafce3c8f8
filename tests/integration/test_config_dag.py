"""The config is validated before anything runs (a bad key stops Snakemake naming it), the workflow lints clean,
and every example config builds its DAG."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def dry_run(tmp_path: Path, config: dict) -> subprocess.CompletedProcess:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--directory",
           str(tmp_path), "--configfile", str(tmp_path / "config.yaml"), "-n", "--cores", "1"]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def test_demo_config_builds_the_dag(tmp_path: Path) -> None:
    proc = dry_run(tmp_path, DEMO)
    assert proc.returncode == 0, proc.stderr
    for rule in ("download_genome", "make_windows", "assign_splits", "train_model", "evaluate_model", "report"):
        assert rule in proc.stdout


def edit(path: list[str], value) -> dict:
    config = copy.deepcopy(DEMO)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return config


def test_a_bad_config_stops_snakemake_with_the_dotted_key(tmp_path: Path) -> None:
    """Every cross-check has a unit test (tests/unit/test_config.py); this one shows the message reaches the user."""
    proc = dry_run(tmp_path, edit(["models", "bpnet", "train", "jitter"], 40))
    assert proc.returncode != 0
    assert "models.bpnet.train.jitter (40) exceeds tasks.polya.window.flank (16)" in proc.stdout + proc.stderr


def test_a_missing_bed_file_is_named_with_its_key(tmp_path: Path) -> None:
    config = edit(["interpret", "ism"], {"regions": "nowhere/promoters.bed"})
    proc = dry_run(tmp_path, config)
    assert proc.returncode != 0
    assert "interpret.ism.regions: BED file 'nowhere/promoters.bed' not found" in proc.stdout + proc.stderr


def test_a_unet_pretrain_and_unet_models_build_the_dag(tmp_path: Path) -> None:
    config = copy.deepcopy(DEMO)
    config["pretrain"]["unet_mlm"] = {"arch": "unet", "window": 256, "steps": 10}
    config["models"].update({"u_lora": {"arch": "unet", "unet": {"backbone": "unet_mlm", "finetune": "lora"}},
                             "u_scratch": {"arch": "unet", "unet": {"backbone": "unet_mlm", "finetune": "scratch"}}})
    proc = dry_run(tmp_path, config)
    assert proc.returncode == 0, proc.stderr
    for path in ("results/pretrain/unet_mlm/model.safetensors", "results/models/polya/u_lora/best.ckpt",
                 "results/models/polya/u_scratch/best.ckpt", "results/eval/polya/u_lora/metrics.json"):
        assert path in proc.stdout, path
    assert "results/models/polya/u_lora/hf" not in proc.stdout  # only BERT-style LMs are exported

def test_an_enbed_pretrain_and_enbed_models_build_the_dag(tmp_path: Path) -> None:
    """pretrain_lm writes an enbed directory (its five outputs) and train_model of a model on it waits for its
    weights; the scratch twin too (same backbone); both are exported (their encoders, as LMs are)."""
    config = copy.deepcopy(DEMO)
    config["pretrain"]["ed"] = {"arch": "enbed", "window": 1024, "steps": 10}
    config["models"].update({"e_full": {"arch": "enbed", "enbed": {"backbone": "ed"}},
                             "e_scratch": {"arch": "enbed", "enbed": {"backbone": "ed", "finetune": "scratch"}}})
    proc = dry_run(tmp_path, config)
    assert proc.returncode == 0, proc.stderr
    outputs = ("config.json", "model.safetensors", "tokenizer.json", "pretrain.json", "history.tsv")
    assert all(f"results/pretrain/ed/{name}" in proc.stdout for name in outputs)
    for model in ("e_full", "e_scratch"):
        job = re.search(rf"rule train_model:\n\s+input: ([^\n]*)\n\s+output: results/models/polya/{model}/", proc.stdout)
        assert job and "results/pretrain/ed/model.safetensors" in job[1], model
    assert "results/models/polya/e_full/hf" in proc.stdout and "results/models/polya/e_scratch/hf" in proc.stdout


def test_conservation_of_the_reference_species_joins_the_dag(tmp_path: Path) -> None:
    config = edit(["conservation"], {"models": ["fungal_lm"], "regions": "resources/demo/scer/chrVII.bed"})
    proc = dry_run(tmp_path, config)
    assert proc.returncode == 0, proc.stderr
    assert "score_conservation" in proc.stdout and "results/conservation/fungal_lm/scer.bw" in proc.stdout
    # the config check's errors (an LM that is not pretrained here, a species without annotation) are unit-tested
    # in tests/unit/test_conservation.py


def test_lint_and_format() -> None:
    lint = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "-s", str(REPO / "workflow" / "Snakefile")],
                          capture_output=True, text=True, cwd=REPO, check=False)
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    fmt = subprocess.run([str(Path(sys.executable).with_name("snakefmt")), "--check", "workflow/"],
                         capture_output=True, text=True, cwd=REPO, check=False)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_sharded_inference_builds_shard_and_merge_rules_and_lints_clean(tmp_path: Path) -> None:
    """inference.shards: 2 (tracks: 3) replaces each run's evaluate_model, attribute, predict_tracks and
    score_variants job by its shards and a merge; the files downstream rules read are the same."""
    config = edit(["inference"], {"shards": 2, "prediction_tracks": 3})
    proc = dry_run(tmp_path, config)
    assert proc.returncode == 0, proc.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.MULTILINE))
    runs = int(counts["merge_evaluation"])
    assert runs >= 2 and int(counts["evaluate_shard"]) == 2 * runs and "evaluate_model" not in counts
    assert counts["predict_tracks_shard"] == "3" and counts["merge_prediction_tracks"] == "1"
    variants = int(counts["merge_variant_scores"])
    assert variants >= 1 and int(counts["score_variants_shard"]) == 2 * variants and "score_variants" not in counts
    interpreted = int(counts["merge_attributions"])
    assert interpreted >= 1 and int(counts["attribute_shard"]) == 2 * interpreted and "attribute" not in counts
    assert "results/eval/polya/bpnet/shards/1.npz" in proc.stdout and "compare_models" in counts
    lint = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "-s", str(REPO / "workflow" / "Snakefile"),
                           "--configfile", str(tmp_path / "config.yaml")], capture_output=True, text=True, cwd=REPO,
                          check=False)
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr


@pytest.mark.parametrize("example", sorted((REPO / "config" / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_build_their_dag_as_their_header_says(example: Path) -> None:
    """From the repository root, as each file's header tells a user: the example stands alone (the demo's
    config/config.yaml, the default, does not leak its tasks and models into it)."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile",
           str(example.relative_to(REPO))]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "train_model" in proc.stdout
    tasks = yaml.safe_load(example.read_text())["tasks"]
    jobs = {re.sub(r"_fold\d+$", "", j) for j in re.findall(r"results/\w+/(\w+)/", proc.stdout)}  # cross-validated
    assert jobs <= {*tasks, "busco", "mash", *yaml.safe_load(example.read_text()).get("pretrain", {})}, jobs
    if yaml.safe_load(example.read_text()).get("interpret", {}).get("models") != []:  # interpreted, as configured
        assert {"attribute", "run_modisco", "match_motifs"} <= set(re.findall(r"rule (\w+):", proc.stdout))
        for task in (t for t, spec in tasks.items() if spec.get("type") == "tracks"):  # the tracks output
            assert re.search(rf"results/interpret/{task}(_fold0)?/\w+/modisco\.tracks\.h5", proc.stdout)  # folds: fold 0
