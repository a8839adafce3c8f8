"""Tests for dnalm.training: learning a planted motif, checkpoints, exact resume after SIGKILL mid-epoch, SIGTERM
and SIGUSR1, damaged checkpoints, early stopping."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dnalm import tasks
from dnalm.checkpoint import LOCK_NAME, TrainingInterrupted, UnsafeCheckpoint, load_verified, save_atomic
from dnalm.device import native_bf16, resolve_precision
from dnalm.models import build_model
from dnalm.predict import load_model
from dnalm.store import WindowStore, encode
from dnalm.tasks.profile import mean_log_count
from dnalm.training import HISTORY_COLUMNS, train, validate
from helpers import Planted, save_store, signal_when, start_python

torch.use_deterministic_algorithms(True)

MOTIF = "TTGACA"
LENGTH, FLANK = 64, 4
MODEL = {"filters": 8, "layers": 2, "input_kernel": 7, "profile_kernel": 9}
PARAMS = {"epochs": 20, "batch_size": 16, "lr": 3e-2, "weight_decay": 0.0, "patience": 20, "count_weight": None,
          "jitter": FLANK, "revcomp": True, "max_batches_per_epoch": None, "checkpoint_every": None,
          "checkpoint_minutes": None, "precision": "fp32"}  # exact on any CPU; bf16 has a test of its own
RUN = {"arch": "bpnet", "model_params": MODEL, "seed": 0, "threads": 1, "device": "cpu"}


def revcomp(seq: str) -> str:
    return seq[::-1].translate(str.maketrans("ACGT", "TGCA"))


def write_store(directory: Path, split: str, n: int, seed: int) -> str:
    """A store in the `write_store` format where the signal is caused by a planted motif.

    Each window holds MOTIF on one strand; 20 reads sit 2 bases into the motif on that strand's channel
    (channel 0 = the window's strand), over sparse Poisson background. Reverse-complementing a window maps
    a valid example onto a valid example, so revcomp augmentation is consistent with the data.
    """
    rng = np.random.default_rng(seed)
    width = LENGTH + 2 * FLANK
    seq = rng.integers(0, 4, size=(n, width)).astype(np.uint8)
    targets = rng.poisson(0.05, size=(n, 2, width)).astype(np.float32)
    for i in range(n):
        pos = int(rng.integers(FLANK, FLANK + LENGTH - len(MOTIF)))
        if rng.random() < 0.5:
            seq[i, pos : pos + len(MOTIF)] = encode(MOTIF)
            targets[i, 0, pos + 2] += 20
        else:
            seq[i, pos : pos + len(MOTIF)] = encode(revcomp(MOTIF))
            targets[i, 1, pos + len(MOTIF) - 3] += 20
    return save_store(directory, split, seq, targets, length=LENGTH, flank=FLANK, channels=["pa/+", "pa/-"],
                      rc_perm=[1, 0])


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("stores")
    return {"train": write_store(tmp, "train", 64, seed=1), "val": write_store(tmp, "val", 32, seed=2)}


def run(stores: dict, out: Path, **overrides) -> dict:
    params = {**PARAMS, **overrides}
    return train(WindowStore(stores["train"]), WindowStore(stores["val"]), str(out), train_params=params, **RUN)


@pytest.fixture(scope="module")
def reference(stores, tmp_path_factory) -> Path:
    """An uninterrupted run with PARAMS."""
    out = tmp_path_factory.mktemp("reference") / "model"
    run(stores, out)
    return out


def last_ckpt(path: Path) -> dict:
    return load_verified(path / "last.ckpt")  # weights only, as training and prediction load them


def best_state(path: Path) -> dict:
    return load_verified(path / "best.ckpt")["state_dict"]


def assert_same_run(a: Path, b: Path) -> None:
    """Same best weights, same final weights and optimizer state, same losses in every epoch."""
    for name, sa, sb in [("best", best_state(a), best_state(b)),
                         ("last", last_ckpt(a)["model"], last_ckpt(b)["model"])]:
        assert sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), (name, key)
    la, lb = last_ckpt(a), last_ckpt(b)
    for key, value in la["optimizer"]["state"].items():
        for field in value:
            assert torch.equal(value[field], lb["optimizer"]["state"][key][field]), (key, field)
    ha = [{k: v for k, v in row.items() if k != "seconds"} for row in la["history"]]
    hb = [{k: v for k, v in row.items() if k != "seconds"} for row in lb["history"]]
    assert ha == hb
    ta, tb = (pd.read_csv(p / "history.tsv", sep="\t").drop(columns="seconds") for p in (a, b))
    pd.testing.assert_frame_equal(ta, tb, rtol=1e-6)
    ja, jb = (json.loads((p / "model.json").read_text()) for p in (a, b))
    for info in (ja, jb):  # when checkpoints were written does not change the result
        info["train_params"] = {k: v for k, v in info["train_params"].items() if not k.startswith("checkpoint")}
    assert ja == jb


def test_train_learns_and_writes_outputs(reference, stores):
    assert sorted(p.name for p in reference.iterdir()) == [LOCK_NAME, "best.ckpt", "history.tsv", "last.ckpt",
                                                           "model.json"]
    assert (reference / LOCK_NAME).read_text() == ""  # released, nobody named
    history = pd.read_csv(reference / "history.tsv", sep="\t")
    assert list(history.columns) == HISTORY_COLUMNS
    assert list(history["epoch"]) == list(range(1, PARAMS["epochs"] + 1))  # one row per epoch run

    summary = json.loads((reference / "model.json").read_text())
    best = int(history["val_loss"].idxmin())
    assert summary["epochs_run"] == PARAMS["epochs"]
    assert summary["best_epoch"] == history["epoch"][best]
    assert history["val_loss"][best] < 0.75 * history["val_loss"][0]
    assert history["val_pearson_median"][best] > history["val_pearson_median"][0] + 0.2
    running_min = history["val_loss"].cummin()
    assert list(history["best"]) == [1] + list((history["val_loss"] < running_min.shift())[1:].astype(int))
    window = np.load(stores["train"] + ".targets.npy")[:, :, FLANK : FLANK + LENGTH]  # the window, not its flanks
    assert summary["count_weight"] == pytest.approx(np.median(window.sum(axis=(1, 2))) / 10)  # over both strands
    assert summary["count_weight"] != pytest.approx(np.median(window.sum(axis=-1)) / 10)  # not per strand
    assert (summary["channels"], summary["length"], summary["arch"]) == (["pa/+", "pa/-"], LENGTH, "bpnet")


def test_best_checkpoint_holds_the_best_epoch_not_the_last(stores, tmp_path):
    """best.ckpt's weights reproduce the best epoch's validation loss, in a run whose last epoch is not the best."""
    summary = run(stores, tmp_path / "m", lr=0.3, epochs=8, patience=8, jitter=0)  # a large step: val loss wobbles
    history = pd.read_csv(tmp_path / "m" / "history.tsv", sep="\t")
    best = int(history["val_loss"].idxmin())
    assert summary["best_epoch"] == history["epoch"][best] < summary["epochs_run"]  # precondition, true for this data
    model, info = load_model(str(tmp_path / "m" / "best.ckpt"))
    val = validate(model, WindowStore(stores["val"]), 16, info["count_weight"], torch.device("cpu"))
    assert val["val_loss"] == pytest.approx(history["val_loss"][best], rel=1e-5)
    assert val["val_loss"] < history["val_loss"].iloc[-1]
    assert info["trainable_params"] == sum(p.numel() for p in model.parameters())


def test_count_head_starts_at_the_mean_log_count(stores):
    train_store = WindowStore(stores["train"])
    totals = np.load(stores["train"] + ".targets.npy")[:, :, FLANK : FLANK + LENGTH].sum(axis=-1)
    assert np.allclose(mean_log_count(train_store), np.log1p(totals).mean(axis=0))
    torch.manual_seed(0)
    model = build_model("bpnet", MODEL, "profile", 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert tasks.get("profile").prepare(model, train_store, revcomp=False)
    after = model.state_dict()
    assert torch.allclose(after["head.linear.bias"], torch.as_tensor(np.log1p(totals).mean(axis=0), dtype=torch.float32))
    assert all(torch.equal(after[k], before[k]) for k in before if k != "head.linear.bias")
    # with strand-swapping augmentation the head sees each channel's windows and its partner's, half the time each
    assert tasks.get("profile").prepare(model, train_store, revcomp=True)
    mean = np.log1p(totals).mean(axis=0)
    both = (mean + mean[train_store.rc_perm]) / 2
    assert train_store.rc_perm.tolist() == [1, 0] and not np.allclose(mean, both)  # precondition: strands differ
    assert torch.allclose(model.state_dict()["head.linear.bias"], torch.as_tensor(both, dtype=torch.float32))


def test_bf16_training_learns_and_records_its_precision(stores, tmp_path, reference):
    summary = run(stores, tmp_path / "bf16", precision="bf16", epochs=8)
    assert summary["precision"] == "bf16"
    history = pd.read_csv(tmp_path / "bf16" / "history.tsv", sep="\t")
    assert history["val_loss"].min() < 0.75 * history["val_loss"][0]
    exact = pd.read_csv(reference / "history.tsv", sep="\t")
    assert history["train_loss"][0] != exact["train_loss"][0]  # the forward pass really ran in bf16
    assert json.loads((reference / "model.json").read_text())["precision"] == "fp32"


def test_precision_auto_is_bf16_only_where_the_device_has_it():
    """Against the CPU's own flags (Linux's /proc/cpuinfo), not against `native_bf16` itself."""
    cpu = torch.device("cpu")
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else None
    if flags is not None:
        assert native_bf16(cpu) == bool(flags & {"avx512_bf16", "amx_tile"})
    assert resolve_precision("auto", cpu) == ("bf16" if native_bf16(cpu) else "fp32")
    assert resolve_precision(None, cpu) == resolve_precision("auto", cpu)
    assert (resolve_precision("fp32", cpu), resolve_precision("bf16", cpu)) == ("fp32", "bf16")
    with pytest.raises(ValueError, match="unknown precision 'fp16'; known: auto, fp32, bf16"):
        resolve_precision("fp16", cpu)


def test_zero_epochs_writes_the_untrained_model(stores, tmp_path):
    summary = run(stores, tmp_path / "m", epochs=0)
    assert summary["epochs_run"] == 0 and summary["best_epoch"] == 0
    history = pd.read_csv(tmp_path / "m" / "history.tsv", sep="\t")
    assert list(history.columns) == HISTORY_COLUMNS and len(history) == 0
    torch.manual_seed(RUN["seed"])
    fresh = build_model("bpnet", MODEL, "profile", 2)
    # the untrained network: random weights, the count head at the mean log count
    tasks.get("profile").prepare(fresh, WindowStore(stores["train"]), revcomp=PARAMS["revcomp"])
    saved = best_state(tmp_path / "m")
    assert all(torch.equal(saved[k], v) for k, v in fresh.state_dict().items())


TRAIN_CODE = """
from dnalm.store import WindowStore
from dnalm.training import train
train(WindowStore(args["train"]), WindowStore(args["val"]), args["out"], train_params=args["params"], **args["run"])
"""


def start_training(stores: dict, out: Path, **overrides) -> subprocess.Popen:
    args = {"train": stores["train"], "val": stores["val"], "out": str(out), "params": {**PARAMS, **overrides},
            "run": RUN}
    return start_python(TRAIN_CODE, args)


def test_resume_after_sigkill_mid_epoch_gives_the_uninterrupted_result(reference, stores, tmp_path):
    out = tmp_path / "model"
    proc = start_training(stores, out, checkpoint_every=1)  # a checkpoint after every batch
    signal_when(proc, (out / "last.ckpt").exists, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    if last_ckpt(out)["progress"] is None:  # (rare) the kill came just after an epoch's end: resume from the
        (out / "last.ckpt").unlink()        # checkpoint before it, after that epoch's last batch
        (out / "last.ckpt.prev").rename(out / "last.ckpt")
    killed = last_ckpt(out)
    assert killed["progress"] is not None and killed["progress"]["batch"] >= 1  # a checkpoint inside an epoch
    assert killed["epoch"] < PARAMS["epochs"] and not (out / "best.ckpt").exists()

    run(stores, out, checkpoint_every=1)
    assert last_ckpt(out)["epoch"] == PARAMS["epochs"]
    assert_same_run(reference, out)  # the reference wrote checkpoints only at epoch ends


def test_sigterm_checkpoints_mid_epoch_and_stops(reference, stores, tmp_path, caplog):
    """SIGTERM (Slurm's cancel and time limit) is answered by a checkpoint at the next batch and a non-zero exit;
    SIGUSR1 (an early warning with sbatch --signal) takes the same path, in the tests of damaged checkpoints."""
    out, last = tmp_path / "model", tmp_path / "model" / "last.ckpt"
    proc = start_training(stores, out)  # checkpoints only at epoch ends, and on the signal
    stderr = signal_when(proc, last.exists, signal.SIGTERM)
    assert proc.returncode == 1, stderr  # non-zero: Snakemake / Slurm run the job again
    state = last_ckpt(out)
    progress = state["progress"]  # the next batch's end, or the epoch's end when the signal came during validation
    where = (f"{progress['batch']} batches into epoch {progress['epoch']}" if progress
             else f"end of epoch {state['epoch']}")
    assert f"TrainingInterrupted: stopped on SIGTERM; checkpoint {last} ({where}) written" in stderr, stderr
    assert state["epoch"] < PARAMS["epochs"] and not (out / "best.ckpt").exists()

    with caplog.at_level(logging.INFO, logger="dnalm"):
        run(stores, out)
    assert f"resuming from {last} after epoch {state['epoch']}" in caplog.text
    assert_same_run(reference, out)


def interrupt_after_first_epoch(stores: dict, out: Path, monkeypatch) -> None:
    """Train in this process and stop it with SIGUSR1 while it loads the first batch after the first epoch's
    checkpoint (sent from the loader, so it lands mid-epoch however fast the tiny epochs run)."""
    batch = WindowStore.batch

    def batch_then_signal(self, *args, **kwargs):
        if (out / "last.ckpt").exists():
            os.kill(os.getpid(), signal.SIGUSR1)
        return batch(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(WindowStore, "batch", batch_then_signal)
        with pytest.raises(TrainingInterrupted, match="SIGUSR1"):
            run(stores, out)


@pytest.mark.parametrize("damage", ["last_truncated", "both_damaged"])
def test_damaged_checkpoint_is_skipped_with_a_warning(reference, stores, tmp_path, caplog, damage, monkeypatch):
    out = tmp_path / "model"
    interrupt_after_first_epoch(stores, out, monkeypatch)
    last, prev = out / "last.ckpt", out / "last.ckpt.prev"
    assert last_ckpt(out)["progress"] is not None
    previous_epoch = load_verified(prev)["epoch"]
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a copy cut short
    if damage == "both_damaged":
        data = bytearray(prev.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped bit in the weights: torch.load alone would not notice
        prev.write_bytes(bytes(data))

    with caplog.at_level(logging.INFO, logger="dnalm"):
        run(stores, out)
    assert f"ignoring damaged checkpoint {last}" in caplog.text
    if damage == "last_truncated":
        assert f"resuming from {prev} after epoch {previous_epoch}" in caplog.text
    else:
        assert f"ignoring damaged checkpoint {prev}" in caplog.text and "resuming" not in caplog.text
    assert_same_run(reference, out)


@pytest.mark.parametrize("stale", ["other_lr", "unreadable"])
def test_checkpoint_of_another_run_is_not_resumed(reference, stores, tmp_path, stale):
    out = tmp_path / "model"
    if stale == "other_lr":
        run(stores, out, epochs=3, lr=1e-2)
        assert last_ckpt(out)["epoch"] == 3
    else:
        out.mkdir()
        (out / "last.ckpt").write_bytes(b"not a checkpoint")
    run(stores, out)
    assert_same_run(reference, out)


@pytest.mark.parametrize("planted", ["last.ckpt", "best.ckpt"])
def test_a_checkpoint_carrying_another_object_is_refused(reference, stores, tmp_path, planted):
    """A last.ckpt to resume from or a best.ckpt to predict with that would run code when unpickled: training and
    prediction stop with a message naming the file, and the code never runs."""
    out, marker = tmp_path / "model", tmp_path / "code_ran"
    out.mkdir()
    state = {**load_verified(reference / planted), "history": Planted(marker)}
    save_atomic(state, out / planted)  # with a valid checksum: only loading with weights only stands in the way
    with pytest.raises(UnsafeCheckpoint, match=f"refusing to load {out / planted}: it holds posix.mkdir"):
        if planted == "last.ckpt":
            run(stores, out)
        else:
            load_model(str(out / planted))
    assert not marker.exists()


def test_early_stopping_after_patience_epochs_without_improvement(stores, tmp_path):
    out = tmp_path / "model"
    summary = run(stores, out, lr=0.0, epochs=10, patience=3)  # weights never change: no later epoch improves
    history = pd.read_csv(out / "history.tsv", sep="\t")
    assert summary["epochs_run"] == 4  # of 10 epochs
    assert summary["best_epoch"] == 1
    assert list(history["epoch"]) == [1, 2, 3, 4]
    assert list(history["best"]) == [1, 0, 0, 0]
    assert history["val_loss"].nunique() == 1

    again = run(stores, out, lr=0.0, epochs=10, patience=3)  # a finished run is not continued
    assert again["epochs_run"] == 4
    assert len(pd.read_csv(out / "history.tsv", sep="\t")) == 4


def test_jitter_larger_than_flank_is_an_error(stores, tmp_path):
    with pytest.raises(ValueError, match="jitter"):
        run(stores, tmp_path / "model", jitter=FLANK + 1)
    assert not (tmp_path / "model" / "last.ckpt").exists()


@pytest.mark.gpu
def test_cuda_training_with_bf16_autocast_learns(stores, tmp_path):
    """On a GPU the same code path trains under bf16 autocast and still learns the planted motif."""
    torch.use_deterministic_algorithms(False)
    try:
        summary = train(WindowStore(stores["train"]), WindowStore(stores["val"]), str(tmp_path / "cuda"),
                        train_params={**PARAMS, "precision": "auto"}, **{**RUN, "device": "cuda"})
    finally:
        torch.use_deterministic_algorithms(True)
    history = pd.read_csv(tmp_path / "cuda" / "history.tsv", sep="\t")
    assert summary["device"].startswith("cuda")
    assert summary["precision"] == "bf16"  # auto: every CUDA GPU dnalm targets multiplies bf16 natively
    assert history["val_loss"].min() < 0.75 * history["val_loss"][0]


FIRST_STEP_CODE = """
import hashlib, torch
from dnalm.device import set_threads
from dnalm.models import build_model
set_threads(2)
torch.manual_seed(0)
model = build_model("bpnet", {"filters": 32, "layers": 2}, "profile", 2)
x = torch.nn.functional.one_hot(torch.randint(0, 4, (8, 500)), 4).float().transpose(1, 2)
optimizer = torch.optim.Adam(model.parameters(), 1e-3)
sum(o.square().mean() for o in model(x)).backward()
optimizer.step()
open(args["out"], "w").write(hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest())
"""


def test_every_fresh_process_takes_the_same_first_training_step(tmp_path):
    # MKL's first square root in a process may differ in the last bit (3 of 16 processes); set_threads settles it
    procs = [start_python(FIRST_STEP_CODE, {"out": str(tmp_path / f"{i}.sha")}) for i in range(8)]
    for proc in procs:
        assert proc.wait() == 0, proc.stderr.read().decode()
    assert len({(tmp_path / f"{i}.sha").read_text() for i in range(8)}) == 1
