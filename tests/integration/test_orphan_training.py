"""A training left running by a Snakemake killed alone with SIGKILL (the job lives on as an orphan): after `--unlock`
and a rerun, exactly one process trained the model, the history is an uninterrupted run's, and the log still holds the
orphan's lines (Snakemake deletes a job's log before it runs the job again)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from test_interpret_synthetic import synthetic_config
from test_workflow import SNAKEMAKE, run, start_until_checkpoint

from dnalm.checkpoint import LOCK_NAME, lock_holder
from dnalm.store import WindowStore
from dnalm.synthetic import write_synthetic
from dnalm.training import train

MODEL_DIR = "results/models/synth/tiny"
LOG = "logs/train_model/synth/tiny.log"
EPOCHS = 10  # about 2 s of training after the first checkpoint: time to pause the orphan before it ends
#: One thread for training: two threads on the two shared cores of a loaded machine make the tiny epochs 10× slower.
THREADS = ("--set-threads=train_model=1",)


def tiny_config(workdir: Path) -> dict:
    """The planted-motif task on a small synthetic genome (6 × 6 kb, about 180 train windows) and one tiny BPNet
    that also checkpoints every 4 batches, so its first checkpoint comes early in the first epoch."""
    config = synthetic_config(write_synthetic(workdir / "data", length=6_000, seed=0))
    config["models"] = {"tiny": {"arch": "bpnet", "bpnet": {"filters": 8, "layers": 2},
                                 "train": {"epochs": EPOCHS, "patience": EPOCHS, "batch_size": 16, "jitter": 8,
                                           "precision": "fp32", "checkpoint_every": 4}}}
    del config["interpret"]
    return config


def wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll `condition` until it holds; fail naming `what` if `proc` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"snakemake ended before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.1)


def uninterrupted_history(workdir: Path) -> pd.DataFrame:
    """Train the same run again in this process, from scratch and uninterrupted, on the workflow's window stores with
    the settings the job had (its model.json, one thread), and return its history."""
    info = json.loads((workdir / MODEL_DIR / "model.json").read_text())
    threads = torch.get_num_threads()
    try:
        train(WindowStore(str(workdir / "results/windows/synth/train.json")),
              WindowStore(str(workdir / "results/windows/synth/val.json")), str(workdir / "uninterrupted"),
              arch=info["arch"], model_params=info["model_params"], train_params=info["train_params"],
              seed=info["seed"], threads=1, device="cpu")
    finally:
        torch.set_num_threads(threads)
    return pd.read_csv(workdir / "uninterrupted" / "history.tsv", sep="\t")


@pytest.mark.slow
def test_rerun_after_killing_snakemake_alone_waits_for_the_orphan_and_trains_once(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config(tmp_path)))
    snakemake = start_until_checkpoint(tmp_path, MODEL_DIR, *THREADS)
    orphan = int(lock_holder(tmp_path / MODEL_DIR / LOCK_NAME).split()[1])  # "pid 123 on host …"
    snakemake.kill()  # Snakemake alone: its training job lives on, as after `kill -9 <snakemake's pid>`
    snakemake.wait()
    # Pause the orphan until the rerun's job has started, however fast it trains (stopped only now: stopping it in
    # the group that Snakemake's death orphans would bring SIGHUP).
    os.kill(orphan, signal.SIGSTOP)
    try:
        assert not (tmp_path / MODEL_DIR / "history.tsv").exists(), "the orphan finished before it could be paused"
        run(tmp_path, "--unlock")
        cmd = [*SNAKEMAKE, "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"), "--cores",
               "2", *THREADS, "--rerun-incomplete", f"{MODEL_DIR}/best.ckpt"]
        with open(tmp_path / "rerun.out", "w") as out:
            rerun = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        log = tmp_path / LOG
        wait_for(lambda: log.exists() and "is in use by another training" in log.read_text(), "waiting message",
                 rerun)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGCONT)
    assert rerun.wait(timeout=120) == 0, (tmp_path / "rerun.out").read_text()[-5000:]

    text = log.read_text()
    assert f"in use by another training: pid {orphan} on host {socket.gethostname()} since " in text
    assert f"released by pid {orphan} on host" in text
    assert text.count("job environment: host=") == 2  # the orphan's first lines survived the rerun's start
    # every epoch was trained once, by the orphan; the rerun continued from its final checkpoint
    assert [text.count(f"INFO epoch {e}: ") for e in range(1, EPOCHS + 1)] == [1] * EPOCHS, text
    assert f"resuming from {MODEL_DIR}/last.ckpt after epoch {EPOCHS}" in text
    assert sorted(p.name for p in (tmp_path / MODEL_DIR).iterdir()) == [LOCK_NAME, "best.ckpt", "history.tsv",
                                                                         "last.ckpt", "model.json"]
    history = pd.read_csv(tmp_path / MODEL_DIR / "history.tsv", sep="\t")
    assert list(history["epoch"]) == list(range(1, EPOCHS + 1))
    pd.testing.assert_frame_equal(history.drop(columns="seconds"),
                                  uninterrupted_history(tmp_path).drop(columns="seconds"))
