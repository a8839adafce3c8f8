"""End to end: the workflow on a reduced demo config (real yeast data from resources/demo) in a temporary directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import report_structure

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile")]


def reduced_config() -> dict:
    """The demo config on fewer windows: train on II, IV and V, validate on XV, test on VII (all 873 windows)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    task = config["tasks"]["polya"]
    task["split"]["chromosomes"]["train"] = ["II", "IV", "V"]
    task["max_windows"] = {"train": 2000, "val": 300}
    bpnet = config["models"]["bpnet"]
    bpnet["train"].update(epochs=6, patience=6)
    config["models"]["untrained"] = {"arch": "bpnet", "bpnet": bpnet["bpnet"], "train": {"epochs": 0}}
    # One language model through the whole path: pretraining (a few steps), LoRA fine-tuning, export, counterfactual.
    # The demo's LM reads nucleotides; here the SpeciesLM layout (6-mers + species token) goes end to end.
    config["pretrain"]["fungal_lm"].update(tokenizer="kmer6_species", steps=20, batch_size=8, eval_every=10,
                                           val_windows=16)
    lm = config["models"]["lm_lora_conv"]
    lm["train"] = {**lm["train"], "epochs": 2, "max_batches_per_epoch": 5}
    # A sweep of 2 learning rates × 2 seeds of a tiny BPNet: 4 training jobs, 2 models in the comparison.
    config["models"]["bpnet_tiny"] = {"arch": "bpnet", "bpnet": {"filters": 8, "layers": 2}, "seeds": [0, 1],
                                      "train": {"epochs": 1, "batch_size": 32, "max_batches_per_epoch": 3},
                                      "sweep": {"train.lr": [0.001, 0.01]}}
    config["models"] = {m: config["models"][m] for m in ("bpnet", "untrained", "lm_lora_conv", "bpnet_tiny")}
    config["interpret"].update(models=["bpnet"], windows=100)  # the whole interpretation path, on fewer windows
    config["variants"]["models"] = ["bpnet", "lm_lora_conv"]  # the demo's VCF; the tracks of VII as in the demo
    return config


def run(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake on `workdir`'s config.yaml."""
    cmd = [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def start_until_checkpoint(workdir: Path, model_dir: str = "results/models/polya/bpnet",
                           *args: str) -> subprocess.Popen:
    """Start the workflow towards a run's best.ckpt (in a session of its own, with more snakemake `args`) and return
    it once the training's first checkpoint exists."""
    cmd = [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores", "2",
           *args, f"{model_dir}/best.ckpt"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = workdir / model_dir / "last.ckpt"
    deadline = time.time() + 600
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert ckpt.exists(), "training never wrote last.ckpt"
    return proc


def kill_during_training(workdir: Path) -> None:
    """Start the workflow and SIGKILL it (and its jobs) once the first training checkpoint exists."""
    proc = start_until_checkpoint(workdir)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (workdir / "results/models/polya/bpnet/history.tsv").exists()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """Run the reduced demo once, killed mid-training and resumed, and return its directory."""
    workdir = tmp_path_factory.mktemp("demo")
    (workdir / "config.yaml").write_text(yaml.safe_dump(reduced_config()))
    kill_during_training(workdir)
    run(workdir, "--unlock")  # a killed snakemake leaves its lock, as after a crash: the user unlocks once
    run(workdir, "--cores", "2", "--rerun-incomplete", "results/report.html")
    return workdir


@pytest.mark.slow
def test_windows_and_splits(demo_run: Path) -> None:
    counts = pd.read_csv(demo_run / "results/splits/polya/counts.tsv", sep="\t").set_index("split")
    # 872 clusters with >= 10 reads on VII and 900 on XV (DESIGN.md); sites are local maxima 6 bp apart with their
    # reads summed over ±5 bp (sites.min_distance), which adds one site on each: two clusters of fewer reads, within
    # 5 bp of each other, that together reach 10. None has an N or leaves its chromosome.
    assert counts.loc["test", "sites"] == 873 and counts.loc["test", "windows"] == 873
    assert counts.loc["test", "merged_bases"] == 9  # bases with reads within 5 bp of a stronger site
    assert counts.loc["val", "sites"] == 901 and counts.loc["val", "windows"] == 300
    assert counts.loc["train", "windows"] == 2000
    windows = pd.read_csv(demo_run / "results/windows/polya/windows.tsv", sep="\t", dtype={"chrom": str})
    kept = windows[windows["kept"]]
    assert set(kept.loc[kept["split"] == "test", "chrom"]) == {"VII"}
    assert set(kept.loc[kept["split"] == "train", "chrom"]) == {"II", "IV", "V"}
    assert (kept["end"] - kept["start"] == 300).all()
    assert kept["offset"].abs().max() <= 50 and kept["offset"].std() > 10


@pytest.mark.slow
def test_download_checksums(demo_run: Path) -> None:
    info = json.loads((demo_run / "resources/scer/genome.json").read_text())
    assert info["md5"] == info["md5_expected"] == "103245e292833b928981d7bf813f615a"
    assert info["sequences"] == 17 and info["length"] == 12_157_105
    gff = (demo_run / "resources/scer/annotation.gff3").read_text()
    assert gff.startswith("##gff-version 3") and "ID=gene:YDL248W" in gff


@pytest.mark.slow
def test_training_resumed_after_kill(demo_run: Path) -> None:
    log = (demo_run / "logs/train_model/polya/bpnet.log").read_text()
    assert "resuming from" in log
    history = pd.read_csv(demo_run / "results/models/polya/bpnet/history.tsv", sep="\t")
    assert list(history["epoch"]) == list(range(1, 7))


@pytest.mark.slow
def test_trained_beats_untrained(demo_run: Path) -> None:
    table = pd.read_csv(demo_run / "results/eval/polya/comparison.tsv", sep="\t").set_index("model")
    trained, untrained = table.loc["bpnet"], table.loc["untrained"]
    assert trained["n_windows"] == untrained["n_windows"] == 873
    assert trained["pearson_mean"] > untrained["pearson_mean"] + 0.05
    assert trained["auroc"] > untrained["auroc"] + 0.1 and trained["auroc"] > 0.75
    assert trained["test_loss"] < untrained["test_loss"]
    for column in ("pearson_median", "pearson_mean", "count_pearson"):
        assert -1 <= trained[column] <= 1
    assert 0 < trained["auprc"] <= 1


@pytest.mark.slow
def test_report(demo_run: Path) -> None:
    html = (demo_run / "results/report.html").read_text()
    assert "103245e292833b928981d7bf813f615a" in html
    assert "Pearson median" in html and "untrained" in html
    assert "Interpretation: motifs" in html and "Known motifs found, side by side" in html
    assert re.search(r"sign [+−-], [\d,]+ seqlets", html)  # each found match with its pattern's sign and support
    positions = html[html.index('id="positions"'):]
    assert "Interpretation: positions relative to the site" in positions and "offset from the site" in positions
    assert html.count('src="data:image/png;base64,') >= 3
    assert 'src="http' not in html and 'href="http' not in html


@pytest.mark.slow
def test_report_shows_the_tables_and_figures_it_showed_before_the_layout_change(demo_run: Path) -> None:
    """tests/data/report_structure.json: the reduced demo's report as it was before the report became a package (the
    same sections, sub-headings, table headers and figure captions, numbers aside), updated on purpose since: the
    split table's merged bases, the site-aligned section, and the ISM, variant and tracks sections. Only the number
    of TF-MoDISco pattern logos may differ, as modisco's patterns depend on the trained model."""
    saved = json.loads((REPO / "tests/data/report_structure.json").read_text())["sections"]
    now = report_structure((demo_run / "results/report.html").read_text())["sections"]
    assert [(s["id"], s["title"]) for s in now] == [(s["id"], s["title"]) for s in saved]
    for before, after in zip(saved, now, strict=True):
        for key in ("h3", "h4", "tables"):
            assert after[key] == before[key], (before["id"], key)
        if before["id"] != "interpretation":
            assert after["figures"] == before["figures"], before["id"]
        else:
            assert after["figures"][-1] == before["figures"][-1] and len(after["figures"]) > 1


@pytest.mark.slow
def test_language_model_path(demo_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoModel, AutoTokenizer

    history = pd.read_csv(demo_run / "results/pretrain/fungal_lm/history.tsv", sep="\t")
    assert len(history) == 2
    # the corpus never trains on a task's validation or test chromosomes (a leak would inflate every LM result)
    corpus = {g["genome"]: g for g in json.loads((demo_run / "results/pretrain/fungal_lm/pretrain.json").read_text())
              ["corpus"]}
    split = yaml.safe_load((demo_run / "config.yaml").read_text())["tasks"]["polya"]["split"]["chromosomes"]
    assert corpus["scer"]["train_chroms"] and not set(corpus["scer"]["train_chroms"]) & {*split["val"], *split["test"]}
    assert corpus["scer"]["val_chroms"] == split["val"]
    table = pd.read_csv(demo_run / "results/eval/polya/comparison.tsv", sep="\t").set_index("model")
    assert table.loc["lm_lora_conv", "arch"] == "lm" and table.loc["lm_lora_conv", "n_windows"] == 873
    info = json.loads((demo_run / "results/models/polya/lm_lora_conv/model.json").read_text())
    assert 0 < info["trainable_params"] < info["total_params"] / 2  # LoRA: adapters and head only
    export = demo_run / "results/models/polya/lm_lora_conv/hf"
    tokenizer = AutoTokenizer.from_pretrained(export)
    assert tokenizer.convert_tokens_to_ids(["ACGTGC", "GGGGGG"]) == [739, 4100]
    assert AutoModel.from_pretrained(export).config.num_hidden_layers == 2
    counterfactual = pd.read_csv(demo_run / "results/eval/polya/lm_lora_conv/counterfactual.tsv", sep="\t")
    assert set(counterfactual["species"]) == {"saccharomyces_cerevisiae", "saccharomyces_kudriavzevii",
                                              "saccharomyces_mikatae", "candida_albicans"}
    swaps = counterfactual.set_index("species")
    own = swaps.loc["saccharomyces_cerevisiae"]
    assert bool(own["token_in_use"]) and own["mean_abs_delta_log_count"] == 0
    assert pd.read_csv(demo_run / "results/eval/polya/bpnet/counterfactual.tsv", sep="\t").empty
    # another species' token changes the predictions, by what the model itself gives with that token in place
    import numpy as np
    import torch

    from dnalm.predict import load_model
    from dnalm.store import WindowStore

    monkeypatch.chdir(demo_run)  # the checkpoint names its backbone as the rule saw it, relative to the run
    model, _ = load_model("results/models/polya/lm_lora_conv/best.ckpt")
    store = WindowStore(demo_run / "results/windows/polya/test")
    deltas = []
    with torch.no_grad():
        for rows in np.array_split(np.arange(len(store)), 8):
            x = torch.from_numpy(store.batch(rows)[0])
            with model.trunk.use_species("candida_albicans"):
                swapped = model(x)[1]
            deltas.append((swapped - model(x)[1]).abs().numpy().ravel())
    changed = float(np.concatenate(deltas).mean())
    assert changed > 0
    assert swaps.loc["candida_albicans", "mean_abs_delta_log_count"] == pytest.approx(changed, rel=1e-3, abs=1e-5)


@pytest.mark.slow
def test_sweep_and_seeds(demo_run: Path) -> None:
    """Each sweep point × seed is a run of its own; the comparison has one row per point with mean ± sd over seeds."""
    points = {"bpnet_tiny~lr0.001": 0.001, "bpnet_tiny~lr0.01": 0.01}
    table = pd.read_csv(demo_run / "results/eval/polya/comparison.tsv", sep="\t").set_index("model")
    runs = pd.read_csv(demo_run / "results/eval/polya/runs.tsv", sep="\t")
    for point, lr in points.items():
        metrics = []
        for seed in (0, 1):
            run = f"{point}~seed{seed}"
            info = json.loads((demo_run / f"results/models/polya/{run}/model.json").read_text())
            assert (info["seed"], info["train_params"]["lr"], info["epochs_run"]) == (seed, lr, 1)
            metrics.append(json.loads((demo_run / f"results/eval/polya/{run}/metrics.json").read_text()))
        row = table.loc[point]
        assert row["n_seeds"] == 2 and row["n_windows"] == 873
        for column in ("pearson_median", "auroc", "test_loss"):
            values = [m[column] for m in metrics]
            assert row[column] == pytest.approx(sum(values) / 2, abs=1e-4)
            assert row[f"{column}_sd"] == pytest.approx(abs(values[0] - values[1]) / 2**0.5, abs=1e-4)
        assert row["test_loss_sd"] > 0  # the seeds gave different models
        assert list(runs.loc[runs["model"] == point, "seed"]) == [0, 1]
    assert table.loc["bpnet", "n_seeds"] == 1 and pd.isna(table.loc["bpnet", "pearson_median_sd"])
    assert "bpnet_tiny" not in table.index  # the swept model itself is only its points

    sweep = pd.read_csv(demo_run / "results/eval/polya/sweeps/bpnet_tiny.tsv", sep="\t")
    assert list(sweep["model"]) == list(points) and list(sweep["train.lr"]) == list(points.values())
    assert sweep["best"].sum() == 1
    assert sweep.loc[sweep["best"], "val_loss"].item() == sweep["val_loss"].min()
    html = (demo_run / "results/report.html").read_text()
    best = sweep.loc[sweep["best"], "model"].item()
    assert f"Best point (lowest mean validation loss): {best}." in html
    assert "bpnet_tiny~lr0.01~seed1" in html  # every run is in the training section
    # the report's comparison shows each point's metrics as mean ± sd
    assert re.search(r'<td>bpnet_tiny~lr0\.01</td><td class="num">(<strong>)?-?[\d.,]+ ± [\d.,]+', html)


@pytest.mark.slow
def test_rerun_does_nothing(demo_run: Path) -> None:
    proc = run(demo_run, "--cores", "2", "results/report.html")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_snakemake_report(demo_run: Path) -> None:
    run(demo_run, "--report", str(demo_run / "snakemake_report.html"))
    assert "counts.tsv" in (demo_run / "snakemake_report.html").read_text()


def test_variants_tracks_and_ism(demo_run: Path) -> None:
    """The demo's VCF scored by both models, BPNet's bigWigs of chromosome VII, and ISM of attributed windows."""
    import numpy as np
    import pandas as pd
    import pyBigWig

    for model in ("bpnet", "lm_lora_conv"):
        table = pd.read_csv(demo_run / f"results/variants/polya/{model}/pas_elements.tsv", sep="\t")
        assert len(table) == 130 and set(table["INFO/CLASS"]) == {"element", "control"}
        assert table["effect"].notna().all() and (table["n_runs"] == 1).all()
    tracks = demo_run / "results/tracks/polya/bpnet"
    for name in ("predictions/polya.plus.bw", "predictions/polya.minus.bw", "attribution.count.bw"):
        with pyBigWig.open(str(tracks / name)) as bw:
            assert bw.chroms() == {"VII": 1_090_940}, name
    with np.load(demo_run / "results/interpret/polya/bpnet/ism.npz") as ism:
        assert ism["count_ism"].shape == (10, 4, 200) and np.isfinite(ism["count_r"]).all()
