"""Tests for dnalm.pretrain: MLM learning on a structured corpus, masking rules, exact resume after SIGKILL between
evaluations and after SIGTERM, damaged checkpoints, loadable output."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dnalm import tokenize
from dnalm.checkpoint import UnsafeCheckpoint, load_verified, save_atomic
from dnalm.corpus import corpus_genomes, index_windows
from dnalm.pretrain import HISTORY_COLUMNS, mask_tokens, pretrain_lm
from helpers import Planted, signal_when, start_python

torch.use_deterministic_algorithms(True)

UNIT = "TTGACAGCTAGT"
N_START, N_END = 1000, 1003  # an N run in chr1 (train)
SPECIES = ["saccharomyces_cerevisiae", "candida_glabrata"]
SPEC = {"tokenizer": "kmer6_species", "window": 48, "stride": 8, "layers": 1, "hidden": 32, "heads": 2,
        "intermediate": 64, "steps": 40, "batch_size": 16, "lr": 5e-3, "warmup": 0.1, "mask_prob": 0.15,
        "attention_dropout": 0.1, "eval_every": 4, "val_windows": 32, "seed": 0, "checkpoint_minutes": None,
        "precision": "fp32"}  # exact on any CPU
RUN = {"species": SPECIES, "threads": 1, "device": "cpu"}


def structured(n: int, rng: np.random.Generator) -> str:
    """A tandem repeat of UNIT with 5% random substitutions: masked tokens are predictable from their context."""
    seq = np.array(list(UNIT * (n // len(UNIT) + 1)))[:n]
    mutated = rng.random(n) < 0.05
    seq[mutated] = rng.choice(list("ACGT"), mutated.sum())
    return "".join(seq)


@pytest.fixture(scope="module")
def genomes(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("genomes")
    rng = np.random.default_rng(0)
    out = []
    for name in SPECIES:
        chroms = {c: structured(3000, rng) for c in ["chr1", "chr2", "chr3"]}
        chroms["chr1"] = chroms["chr1"][:N_START] + "N" * (N_END - N_START) + chroms["chr1"][N_END:]
        path = tmp / f"{name}.fa"
        path.write_text("".join(f">{c}\n{s}\n" for c, s in chroms.items()))
        out.append({"species": name, "fasta": str(path), "train_chroms": ["chr1", "chr2"], "val_chroms": ["chr3"]})
    return out


@pytest.fixture(scope="module")
def reference(genomes, tmp_path_factory) -> Path:
    """An uninterrupted run with RUN."""
    out = tmp_path_factory.mktemp("reference") / "lm"
    pretrain_lm(genomes, str(out), SPEC, **RUN)
    return out


def test_mlm_loss_falls_and_outputs_are_written(reference):
    history = pd.read_csv(reference / "history.tsv", sep="\t")
    assert list(history.columns) == HISTORY_COLUMNS
    assert list(history["step"]) == list(range(4, 41, 4))
    assert history["val_loss"].iloc[-1] < 0.6 * history["val_loss"].iloc[0]
    assert history["val_accuracy"].iloc[-1] > 0.02  # chance is 1/4096
    summary = json.loads((reference / "pretrain.json").read_text())
    windows_per_chrom = (3000 - 48) // 8 + 1
    overlapping_n = sum(1 for s in range(0, 3000 - 48 + 1, 8) if s < N_END and s + 48 > N_START)
    assert summary["dropped_train_windows"] == 2 * overlapping_n  # one N run per genome
    assert summary["train_windows"] == 2 * (2 * windows_per_chrom - overlapping_n)
    assert summary["val_windows_available"] == 2 * windows_per_chrom and summary["val_windows_used"] == 32


def test_output_loads_with_auto_classes_offline_and_as_a_backbone(reference, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from dnalm.models import build_model

    model = AutoModelForMaskedLM.from_pretrained(str(reference), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(reference), local_files_only=True)
    assert model.config.num_hidden_layers == 1 and model.config.vocab_size == 4101 + 2
    assert tok(tokenize.to_text("ACGTGCA", "kmer6_species", "candida_glabrata"))["input_ids"] == [2, 4102, 739, 2941, 3]
    torch.manual_seed(0)
    lm = build_model("lm", {"backbone": str(reference), "finetune": "lora", "species": "candida_glabrata"}, "profile", 2)
    assert torch.equal(lm.trunk.encoder.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight)


def test_masking_never_touches_specials_and_keeps_80_10_10():
    rng = np.random.default_rng(0)
    batch, length = 400, 300
    codes = rng.integers(0, 4, (batch, length)).astype(np.uint8)
    ids = tokenize.encode(codes, "kmer6_species", species=4101)
    inputs, labels = mask_tokens(ids, "kmer6_species", 0.15, rng)
    for col in [0, 1, -1]:
        assert np.array_equal(inputs[:, col], ids[:, col]) and (labels[:, col] == -100).all()
    selected = labels != -100
    assert np.array_equal(labels[selected], ids[selected])
    assert selected[:, 2:-1].mean() == pytest.approx(0.15, abs=0.01)
    masked = inputs[selected] == tokenize.MASK
    unchanged = inputs[selected] == ids[selected]
    randomised = ~masked & ~unchanged
    assert masked.mean() == pytest.approx(0.8, abs=0.01)
    assert unchanged.mean() == pytest.approx(0.1, abs=0.01)
    assert randomised.mean() == pytest.approx(0.1, abs=0.01)
    assert (inputs[selected][randomised] >= 5).all() and (inputs[selected][randomised] <= 4100).all()
    assert np.array_equal(inputs[~selected], ids[~selected])

    # spans: every run of selected 6-mers inside the body is at least 6 tokens long
    body = selected[:, 2:-1]
    for row in body[:50]:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
        starts, ends = edges[::2], edges[1::2]
        inner = (starts > 0) & (ends < len(row))
        assert ((ends - starts)[inner] >= 6).all()


def test_nucleotide_masking_is_per_token():
    rng = np.random.default_rng(1)
    ids = tokenize.encode(rng.integers(0, 4, (200, 300)).astype(np.uint8), "nucleotide", species=9)
    inputs, labels = mask_tokens(ids, "nucleotide", 0.15, rng)
    selected = labels != -100
    assert selected[:, 2:-1].mean() == pytest.approx(0.15, abs=0.01)
    assert not selected[:, [0, 1, -1]].any()
    randomised = selected & (inputs != ids) & (inputs != tokenize.MASK)
    assert ((inputs[randomised] >= 5) & (inputs[randomised] <= 8)).all()


def test_index_windows_tiles_and_drops_windows_with_n(genomes):
    index = index_windows(genomes[:1], "train", 48, 8)
    assert index.chrom_names == ["chr1", "chr2"]
    starts = index.start[index.chrom == 0]
    assert starts[0] == 0 and set(np.diff(starts)) <= {8, 16, 24, 32, 40, 48, 56}
    assert not ((starts < N_END) & (starts + 48 > N_START)).any()
    assert index.dropped == sum(1 for s in range(0, 3000 - 48 + 1, 8) if s < N_END and s + 48 > N_START)
    with pytest.raises(ValueError, match="chrX"):
        index_windows([{**genomes[0], "train_chroms": ["chrX"]}], "train", 48, 8)


def test_corpus_genomes_applies_the_gate_and_holds_out_chromosomes(tmp_path):
    fai = tmp_path / "genome.fa.fai"
    fai.write_text("chrI\t100\t6\t100\t101\nchrVII\t100\t0\t100\t101\nchrXV\t100\t0\t100\t101\n")
    candidates = [{"id": sid, "species": sid.lower(), "fasta": "genome.fa", "fai": str(fai),
                   "exclude": ["chrVII", "chrXV"], "val": ["chrXV"]} for sid in ["Scer", "Cgla"]]
    gate = tmp_path / "pretrain_genomes.txt"
    gate.write_text("Cgla\n")
    assert corpus_genomes(candidates, gate) == [
        {"id": "Cgla", "species": "cgla", "fasta": "genome.fa", "train_chroms": ["chrI"], "val_chroms": ["chrXV"]}]
    assert [g["species"] for g in corpus_genomes(candidates)] == ["scer", "cgla"]
    gate.write_text("")
    with pytest.raises(ValueError, match="admitted none"):
        corpus_genomes(candidates, gate)


PRETRAIN_CODE = """
from dnalm.pretrain import pretrain_lm
pretrain_lm(args["genomes"], args["out"], args["spec"], **args["run"])
"""
#: The same, sending itself SIGTERM while it reads the first training batch after the first evaluation's checkpoint
#: (so the signal lands mid-interval however fast the tiny steps run; an outside sender may hit the evaluation).
PRETRAIN_SIGTERM_CODE = """
import os, signal
from pathlib import Path
import dnalm.pretrain as pretrain
batch_ids = pretrain.batch_ids
def batch_then_signal(*call):
    if (Path(args["out"]) / "last.ckpt").exists():  # written after an evaluation: the next call is a train batch
        os.kill(os.getpid(), signal.SIGTERM)
    return batch_ids(*call)
pretrain.batch_ids = batch_then_signal
pretrain.pretrain_lm(args["genomes"], args["out"], args["spec"], **args["run"])
"""


def assert_same_weights_and_history(a: Path, b: Path) -> None:
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    ha, hb = (pd.read_csv(p / "history.tsv", sep="\t").drop(columns="seconds") for p in (a, b))
    pd.testing.assert_frame_equal(ha, hb, check_exact=True)


def ckpt(out: Path) -> dict:
    return load_verified(out / "last.ckpt")  # weights only, as pretraining loads it


def test_resume_after_sigkill_between_evaluations_gives_the_uninterrupted_result(reference, genomes, tmp_path):
    out = tmp_path / "lm"
    spec = {**SPEC, "checkpoint_minutes": 0}  # a checkpoint after every step
    proc = start_python(PRETRAIN_CODE, {"genomes": genomes, "out": str(out), "spec": spec, "run": RUN})
    signal_when(proc, (out / "last.ckpt").exists, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    if not ckpt(out)["losses"]:  # (rare) the kill came just after an evaluation: resume from the checkpoint before it
        (out / "last.ckpt").unlink()
        (out / "last.ckpt.prev").rename(out / "last.ckpt")
    killed = ckpt(out)
    assert 1 <= killed["step"] < SPEC["steps"] and not (out / "model.safetensors").exists()
    evaluated = killed["history"][-1]["step"] if killed["history"] else 0
    assert len(killed["losses"]) == killed["step"] - evaluated > 0  # a checkpoint between evaluations

    pretrain_lm(genomes, str(out), spec, **RUN)
    assert_same_weights_and_history(reference, out)


def test_sigterm_checkpoints_and_stops_and_a_damaged_checkpoint_is_skipped(reference, genomes, tmp_path, caplog):
    out, last = tmp_path / "lm", tmp_path / "lm" / "last.ckpt"
    proc = start_python(PRETRAIN_SIGTERM_CODE, {"genomes": genomes, "out": str(out), "spec": SPEC, "run": RUN})
    _, stderr = proc.communicate(timeout=120)
    stderr = stderr.decode()
    stopped = ckpt(out)  # taken at the end of the step the signal came in
    assert proc.returncode == 1 and f"stopped on SIGTERM; checkpoint {last} (step {stopped['step']}" in stderr, stderr
    assert SPEC["eval_every"] < stopped["step"] < SPEC["steps"]
    prev_step = load_verified(f"{last}.prev")["step"]

    last.write_bytes(last.read_bytes()[:-100])  # cut short: the run falls back to the checkpoint before it
    with caplog.at_level(logging.INFO):
        pretrain_lm(genomes, str(out), SPEC, **RUN)
    assert f"ignoring damaged checkpoint {last}" in caplog.text
    assert f"resuming from {last}.prev after step {prev_step}" in caplog.text
    assert_same_weights_and_history(reference, out)


def test_a_checkpoint_carrying_another_object_is_refused(reference, genomes, tmp_path):
    out, marker = tmp_path / "lm", tmp_path / "code_ran"
    out.mkdir()
    save_atomic({**ckpt(reference), "losses": Planted(marker)}, out / "last.ckpt")  # a valid checksum
    with pytest.raises(UnsafeCheckpoint, match=f"refusing to load {out / 'last.ckpt'}: it holds posix.mkdir"):
        pretrain_lm(genomes, str(out), SPEC, **RUN)
    assert not marker.exists() and not (out / "model.safetensors").exists()


@pytest.mark.gpu
def test_cuda_pretraining_with_bf16_autocast_learns(genomes, tmp_path):
    """On a GPU the same code path pretrains under bf16 autocast and the masked-LM loss still falls."""
    torch.use_deterministic_algorithms(False)
    try:
        summary = pretrain_lm(genomes, str(tmp_path / "cuda"), {**SPEC, "precision": "auto"},
                              **{**RUN, "device": "cuda"})
    finally:
        torch.use_deterministic_algorithms(True)
    assert summary["precision"] == "bf16"
    history = pd.read_csv(tmp_path / "cuda" / "history.tsv", sep="\t")
    assert history["val_loss"].iloc[-1] < 0.6 * history["val_loss"].iloc[0]
