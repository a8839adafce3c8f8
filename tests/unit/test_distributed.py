"""Data-parallel training (dnalm.distributed, dnalm.training) for real: 2 gloo processes on this CPU against 1.

Tolerance. Two processes sum their halves' gradients in another order than one process sums the whole batch, so
weights differ by float32 rounding (~1e-7 relative per step), which Adam carries forward. Losses and weights are
compared at 1e-5 relative / 1e-4 absolute: rounding stays far below that over these runs, while one window too many
or too few in a step (a wrong share, a wrong weight) moves the loss by ~1e-2. One parameter is compared through the
model's outputs instead: the profile convolution's bias, a constant added to logits that a softmax over positions
ignores, so its gradient is zero up to rounding and Adam turns that rounding into steps of ±lr; it changes no
prediction.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_training import PARAMS, RUN, write_store

from dnalm import distributed
from dnalm.predict import load_model, predict_outputs
from dnalm.store import WindowStore
from dnalm.training import train
from helpers import signal_when, start_python

#: Every step weighs: 64 windows in batches of 21 leave a last batch of 1 window, so one process gets none.
DDP = {**PARAMS, "epochs": 3, "batch_size": 21, "patience": 10}
#: The parameter whose gradient is zero up to rounding (see the module docstring).
SHIFT_ONLY = "head.fconv.bias"

TRAIN_CODE = """
from dnalm.store import WindowStore
from dnalm.training import train
train(WindowStore(args["train"]), WindowStore(args["val"]), args["out"], train_params=args["params"], **args["run"])
"""


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("stores")
    return {"train": write_store(tmp, "train", 64, seed=1), "val": write_store(tmp, "val", 32, seed=2)}


def run(stores: dict, out: Path, log_file: Path | None = None, **overrides) -> Path:
    train(WindowStore(stores["train"]), WindowStore(stores["val"]), str(out), train_params={**DDP, **overrides},
          log_file=log_file and str(log_file), **RUN)
    return out


@pytest.fixture(scope="module")
def one(stores, tmp_path_factory) -> Path:
    """The reference: one process."""
    return run(stores, tmp_path_factory.mktemp("one") / "model")


@pytest.fixture(scope="module")
def two(stores, tmp_path_factory) -> Path:
    """The same run in two gloo processes."""
    return run(stores, tmp_path_factory.mktemp("two") / "model", devices=2)


def assert_same_training(reference: Path, other: Path, stores: dict) -> None:
    """Histories, weights and validation predictions of two runs agree within the module's tolerance."""
    a, b = (pd.read_csv(d / "history.tsv", sep="\t") for d in (reference, other))
    assert len(a) == len(b) == DDP["epochs"]
    for column in ("train_loss", "val_loss", "val_profile_loss", "val_count_loss", "val_pearson_median"):
        np.testing.assert_allclose(b[column], a[column], rtol=1e-5, err_msg=column)
    (ma, _), (mb, _) = (load_model(str(d / "best.ckpt")) for d in (reference, other))
    wa, wb = ma.state_dict(), mb.state_dict()
    for name in wa:
        if name != SHIFT_ONLY:
            np.testing.assert_allclose(wb[name].numpy(), wa[name].numpy(), rtol=1e-5, atol=1e-4, err_msg=name)
    store = WindowStore(stores["val"])
    outputs = [[o for _, o, _ in predict_outputs(m, store, 32, torch.device("cpu"))] for m in (ma, mb)]
    for (logits_a, counts_a), (logits_b, counts_b) in zip(*outputs, strict=True):
        np.testing.assert_allclose(torch.softmax(logits_b, -1), torch.softmax(logits_a, -1), atol=1e-5)
        np.testing.assert_allclose(counts_b, counts_a, rtol=1e-5, atol=1e-5)


def test_two_processes_train_as_one_at_every_step(one, two, stores):
    assert_same_training(one, two, stores)
    assert '"processes": 2' in (two / "model.json").read_text()
    assert not (two / distributed.PAYLOAD).exists()


def test_micro_batches_train_as_whole_batches(one, stores, tmp_path):
    assert_same_training(one, run(stores, tmp_path / "micro", micro_batch=4), stores)


def start_training(stores: dict, out: Path, **overrides) -> subprocess.Popen:
    args = {"train": stores["train"], "val": stores["val"], "out": str(out), "params": {**DDP, **overrides},
            "run": RUN}
    return start_python(TRAIN_CODE, args)


def workers_of(out: Path) -> list[str]:
    """Processes still running a payload of this run directory."""
    found = subprocess.run(["pgrep", "-af", str(out / distributed.PAYLOAD)], capture_output=True, text=True,
                           check=False).stdout
    return [line for line in found.splitlines() if "pgrep" not in line]


@pytest.mark.parametrize(("killed", "resumed"), [(2, 1), (1, 2)])
def test_a_run_killed_mid_epoch_resumes_with_another_number_of_processes(one, stores, tmp_path, caplog, killed,
                                                                         resumed):
    out = tmp_path / "model"
    proc = start_training(stores, out, devices=killed, checkpoint_every=1)

    def started() -> bool:  # a checkpoint written, the run not finished
        return (out / "last.ckpt").exists() and not (out / "history.tsv").exists()

    signal_when(proc, started, signal.SIGKILL, timeout=180)
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while workers_of(out) and time.monotonic() < deadline:  # the launcher's processes die with it
        time.sleep(0.1)
    assert not workers_of(out)
    assert not (out / "best.ckpt").exists()
    log = tmp_path / "train.log"  # where the processes of a data-parallel run log
    with caplog.at_level(logging.INFO, logger="dnalm"):
        run(stores, out, log, devices=resumed, checkpoint_every=1)
    logged = caplog.text + (log.read_text() if log.exists() else "")
    assert f"resuming from {out / 'last.ckpt'}" in logged, logged
    assert_same_training(one, out, stores)


def test_more_than_one_node_needs_slurm(stores, tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(RuntimeError, match="nodes: 2 needs a Slurm allocation"):
        run(stores, tmp_path / "model", nodes=2)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_two_gpus_train_as_one_with_nccl(one, stores, tmp_path):
    cuda = {**RUN, "device": None}
    train(WindowStore(stores["train"]), WindowStore(stores["val"]), str(tmp_path / "gpu"),
          train_params={**DDP, "devices": 2}, **cuda)
    history = pd.read_csv(tmp_path / "gpu" / "history.tsv", sep="\t")
    reference = pd.read_csv(one / "history.tsv", sep="\t")
    np.testing.assert_allclose(history["train_loss"], reference["train_loss"], rtol=1e-3)
    assert '"device": "cuda:0"' in (tmp_path / "gpu" / "model.json").read_text()


def classification_store(directory: Path, split: str, n: int, seed: int) -> str:
    """Labelled sequences, 1 in 4 of class 1 (which holds the motif), as the classification task type stores them."""
    from test_training import MOTIF

    from dnalm.store import encode
    from helpers import save_store

    rng = np.random.default_rng(seed)
    seq = rng.integers(0, 4, size=(n, 40)).astype(np.uint8)
    labels = (rng.random(n) < 0.25).astype(int)
    seq[labels == 1, 10 : 10 + len(MOTIF)] = encode(MOTIF)
    targets = np.zeros((n, 2, 1), dtype=np.float32)
    targets[np.arange(n), labels, 0] = 1.0
    return save_store(directory, split, seq, targets, length=40, flank=0, channels=["no", "yes"], rc_perm=[0, 1],
                      task_type="classification", labels=True)


def test_class_weighted_losses_split_into_parts_as_a_whole(tmp_path):
    """Classification's weighted cross-entropy divides by the batch's summed class weights, not by its windows: the
    parts of a batch (micro-batches here, processes' shares likewise) must be weighed by those sums to give the
    whole batch's gradient."""
    stores = {"train": classification_store(tmp_path, "train", 48, 1), "val": classification_store(tmp_path, "val", 16, 2)}
    params = {**DDP, "jitter": 0, "revcomp": False, "batch_size": 16, "class_balance": "weights", "head_pool": "mean"}
    runs = []
    for name, extra in (("whole", {}), ("parts", {"micro_batch": 3})):
        train(WindowStore(stores["train"]), WindowStore(stores["val"]), str(tmp_path / name),
              train_params={**params, **extra}, **RUN)
        runs.append(pd.read_csv(tmp_path / name / "history.tsv", sep="\t"))
    np.testing.assert_allclose(runs[1]["train_loss"], runs[0]["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(runs[1]["val_loss"], runs[0]["val_loss"], rtol=1e-5)


def test_pretraining_in_two_processes_and_in_micro_batches_matches_one_process(tmp_path):
    """The masked-LM loop's data parallelism: the same losses at every evaluation and the same weights (dropout off,
    so every process count draws the same; batches of 15 rows split 8/7 over two processes)."""
    from safetensors.torch import load_file
    from test_pretrain import RUN as PRETRAIN_RUN
    from test_pretrain import SPEC, structured

    from dnalm.pretrain import pretrain_lm

    rng = np.random.default_rng(0)
    fasta = tmp_path / "g.fa"
    fasta.write_text("".join(f">{c}\n{structured(2000, rng)}\n" for c in ("chr1", "chr2")))
    genomes = [{"species": PRETRAIN_RUN["species"][0], "fasta": str(fasta), "train_chroms": ["chr1"],
                "val_chroms": ["chr2"]}]
    spec = {**SPEC, "steps": 8, "eval_every": 4, "batch_size": 15, "dropout": 0.0, "attention_dropout": 0.0}
    runs = {}
    for name, extra in (("one", {}), ("two", {"devices": 2}), ("micro", {"micro_batch": 4})):
        pretrain_lm(genomes, str(tmp_path / name), {**spec, **extra}, **PRETRAIN_RUN)
        runs[name] = (pd.read_csv(tmp_path / name / "history.tsv", sep="\t"),
                      load_file(str(tmp_path / name / "model.safetensors")))
    history, weights = runs["one"]
    for name in ("two", "micro"):
        other_history, other_weights = runs[name]
        for column in ("train_loss", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(other_history[column], history[column], rtol=1e-5, err_msg=f"{name} {column}")
        for key, value in weights.items():
            np.testing.assert_allclose(other_weights[key], value, rtol=1e-5, atol=1e-4, err_msg=f"{name} {key}")


def test_sigterm_to_the_launcher_checkpoints_every_process_and_stops(one, stores, tmp_path):
    """Slurm's cancel and time limit (SIGTERM) reach the process Snakemake runs: its processes checkpoint at the next
    batch and stop, the job fails (so it is run again), and the rerun resumes to the uninterrupted result."""
    out = tmp_path / "model"
    proc = start_training(stores, out, devices=2)  # checkpoints at epoch ends, and on the signal
    stderr = signal_when(proc, (out / "last.ckpt").exists, signal.SIGTERM, timeout=180)
    assert proc.returncode != 0, stderr
    assert "TrainingInterrupted: stopped on SIGTERM" in stderr, stderr
    assert not (out / "best.ckpt").exists() and not workers_of(out)
    run(stores, out, tmp_path / "train.log", devices=2)
    assert f"resuming from {out / 'last.ckpt'}" in (tmp_path / "train.log").read_text()
    assert_same_training(one, out, stores)
