"""End to end, planted ground truth: a classification task whose positives carry a sigma70-like pair of boxes
(TTGACA, 18 bp, TATAAT) at a fixed place, the negatives none or one of the two (so only both make a promoter), and
every example a decoy box (CACGTG) at random in both classes. Labelled intervals on a generated genome, a chromosome holdout, BPNet and a LoRA-fine-tuned BERT with
the pooled head, an extra test set of random negatives, attribution of the class logit -> MoDISco -> TOMTOM, and the
report. Every model must reach AUROC >= 0.95 and the attributions must find both boxes and not the decoy."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from dnalm.interpret import read_motif_table
from dnalm.motifs import consensus_ppm, write_meme
from helpers import run_to_report, tiny_bert, tiny_nt

REPO = Path(__file__).resolve().parents[2]
PLANTED = {"box35_TTGACA": "TTGACA", "box10_TATAAT": "TATAAT"}
DECOYS = {"decoy_CACGTG": "CACGTG", "decoy_GGATCC": "GGATCC", "decoy_CCAAT": "CCAATCA"}
LENGTH, CHROMS, PER_CHROM = 81, ("c1", "c2", "c3", "c4"), 500


def _dna(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list("ACGT"), n))


def planted_data(directory: Path, seed: int = 0) -> dict[str, Path]:
    """A genome of four chromosomes, 500 labelled 81-bp intervals on each (half promoters: TTGACA at 12, TATAAT 18
    bp after it, both in the phase of the Nucleotide Transformer's 6-mers; of the background a third with TTGACA alone and a third with TATAAT alone, so a model needs both
    boxes; every interval CACGTG at a random place outside the boxes), a random-negative FASTA and the motif file."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    genome, rows = [], ["chrom\tstart\tend\tstrand\tid\tlabel"]
    for chrom in CHROMS:
        seq = list(_dna(rng, PER_CHROM * 200 + 200))
        for i in range(PER_CHROM):
            start = 100 + i * 200
            label = "promoter" if i % 2 else "background"
            window = list(_dna(rng, LENGTH))
            boxes = {"promoter": (True, True)}.get(label, [(False, False), (True, False), (False, True)][i // 2 % 3])
            if boxes[0]:
                window[12:18] = "TTGACA"
            if boxes[1]:
                window[36:42] = "TATAAT"
            decoy = int(rng.choice([d for d in range(LENGTH - 6) if d + 6 <= 12 or 18 <= d <= 30 or d >= 42]))
            window[decoy : decoy + 6] = "CACGTG"
            seq[start : start + LENGTH] = window
            rows.append(f"{chrom}\t{start}\t{start + LENGTH}\t+\t{chrom}_{i}\t{label}")
        genome.append(f">{chrom}\n{''.join(seq)}\n")
    (directory / "genome.fa").write_text("".join(genome))
    (directory / "intervals.tsv").write_text("\n".join(rows) + "\n")
    (directory / "random.fa").write_text("".join(f">random_{i}\n{_dna(rng, LENGTH)}\n" for i in range(60)))
    write_meme(directory / "motifs.meme", {k: consensus_ppm(v) for k, v in {**PLANTED, **DECOYS}.items()})
    return {name: directory / name for name in ("genome.fa", "intervals.tsv", "random.fa", "motifs.meme")}


def classification_config(data: dict[str, Path], backbone: str, nt_backbone: str) -> dict:
    train = {"epochs": 25, "batch_size": 32, "lr": 0.003, "patience": 8, "jitter": 8, "revcomp": False,
             "precision": "fp32", "class_balance": "weights", "head_dropout": 0.1}
    return {
        "species": {"synth": {"genome": {"path": str(data["genome.fa"])}}},
        "tasks": {"promoters": {
            "type": "classification", "species": "synth", "window": {"flank": 8},
            "examples": {"intervals": {"path": str(data["intervals.tsv"])}},
            "split": {"chromosomes": {"train": ["c1", "c2"], "val": ["c3"], "test": ["c4"]}},
            "calibration": {"method": "platt", "threshold": "mcc"},
            "test_sets": {"random_negatives": {"fasta": [{"path": str(data["random.fa"]), "label": "background"}],
                                               "test_classes": ["promoter"]}}}},
        "models": {
            "bpnet": {"arch": "bpnet", "bpnet": {"filters": 32, "layers": 3, "input_kernel": 11}, "train": train},
            "bert_lora": {"arch": "lm", "lm": {"backbone": backbone, "finetune": "lora", "head": "conv",
                                               "lora": {"r": 8, "dropout": 0.1},
                                               "conv_head": {"widths": [32, 32, 32], "kernel_size": 7}},
                          "train": {**train, "lr": 0.002}},
            "nt_lora": {"arch": "lm", "lm": {"backbone": nt_backbone, "finetune": "lora", "head": "conv",
                                             "conv_head": {"widths": [32, 32, 32], "kernel_size": 7}},
                        # jitter 0, boxes in token phase: a random NT's frozen 6-mer embeddings share nothing
                        # between the 64 tokens a box split across two 6-mers makes (a pretrained NT has learned
                        # that), so out of phase it memorises train tokens; in phase each box is one token
                        "train": {**train, "lr": 0.002, "jitter": 0}},
        },
        "interpret": {"models": ["bpnet"], "windows": 250, "n_shuffles": 5, "motifs": [str(data["motifs.meme"])],
                      "modisco": {"max_seqlets": 1000, "n_leiden_runs": 1, "min_metacluster_size": 20,
                                  "final_min_cluster_size": 10}},
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("classification")
    data = planted_data(workdir / "data")
    (workdir / "backbone").mkdir()
    tiny_bert(workdir / "backbone", "nucleotide", ["synth"], {"layers": 1, "hidden": 32, "heads": 2,
                                                              "intermediate": 64, "max_positions": 128})
    (workdir / "nt").mkdir()
    tiny_nt(workdir / "nt", {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64})
    config = classification_config(data, str(workdir / "backbone"), str(workdir / "nt"))
    return run_to_report(workdir, config)


@pytest.mark.slow
def test_examples_are_split_by_chromosome_and_stored_as_classes(run: Path) -> None:
    windows = pd.read_csv(run / "results/windows/promoters/windows.tsv", sep="\t")
    kept = windows[windows["kept"]]
    assert set(kept.groupby("split")["source_chrom"].unique().map(tuple)) == {("c1", "c2"), ("c3",), ("c4",)}
    meta = json.loads((run / "results/windows/promoters/test.json").read_text())
    assert meta["channels"] == ["background", "promoter"] and meta["n"] == PER_CHROM


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bpnet", "bert_lora", "nt_lora"])
def test_every_model_learns_the_planted_boxes(run: Path, model: str) -> None:
    metrics = json.loads((run / f"results/eval/promoters/{model}/metrics.json").read_text())
    assert metrics["auroc"] >= 0.95, metrics
    assert metrics["n_examples"] == PER_CHROM and metrics["calibration"]["method"] == "platt"
    for key in ("accuracy", "mcc", "sensitivity", "specificity", "brier", "ece", "accuracy_calibrated"):
        assert np.isfinite(metrics[key]), key
    history = pd.read_csv(run / f"results/models/promoters/{model}/history.tsv", sep="\t")
    assert {"val_accuracy", "val_auroc"} <= set(history.columns)
    info = json.loads((run / f"results/models/promoters/{model}/model.json").read_text())
    assert info["head"]["params"]["pool"] == ("mean" if model == "bpnet" else "meanmax")  # head_pool: auto


@pytest.mark.slow
def test_predictions_join_on_the_input_ids_and_projection_covers_the_test_split(run: Path) -> None:
    table = pd.read_csv(run / "results/eval/promoters/bpnet/predictions.tsv", sep="\t")
    intervals = pd.read_csv(run / "data/intervals.tsv", sep="\t").set_index("id")
    test = table[table["split"] == "test"]
    assert len(test) == PER_CHROM and (intervals.loc[test["id"], "label"].to_numpy() == test["label"]).all()
    assert set(test["outcome"]) <= {"TP", "FN", "TN", "FP"}
    assert np.allclose(test[["prob_background", "prob_promoter"]].sum(axis=1), 1, atol=1e-5)
    projection = pd.read_csv(run / "results/eval/promoters/bpnet/projection.tsv", sep="\t")
    assert sorted(projection["id"]) == sorted(test["id"])
    with h5py.File(run / "results/eval/promoters/bpnet/predictions.h5") as h5:
        assert h5["test/embedding"].shape == (PER_CHROM, 32)


@pytest.mark.slow
def test_extra_test_set_holds_test_promoters_and_random_negatives(run: Path) -> None:
    windows = pd.read_csv(run / "results/windows/promoters/test_sets/random_negatives.tsv", sep="\t")
    assert windows["label"].value_counts().to_dict() == {"background": 60, "promoter": PER_CHROM // 2}
    table = pd.read_csv(run / "results/eval/promoters/test_sets/random_negatives/comparison.tsv", sep="\t")
    assert sorted(table["model"]) == ["bert_lora", "bpnet", "nt_lora"]
    assert (table["auroc"] >= 0.95).all(), table.to_string()


@pytest.mark.slow
def test_attributions_find_both_boxes_and_no_decoy(run: Path) -> None:
    table = read_motif_table(run / "results/interpret/promoters/bpnet/motifs.tsv")
    found = set(table.loc[table["found"], "best_match"])
    assert found == set(PLANTED), table.to_string()
    assert not set(table["best_match"].dropna()) & set(DECOYS), table.to_string()


@pytest.mark.slow
def test_report_has_the_classification_section(run: Path) -> None:
    report = (run / "results/report.html").read_text()
    assert "random_negatives" in report and "Classification" in report
