"""Tests for dnalm.checkpoint: the run directory's lock (a second holder waits, naming the first; a killed holder
leaves no lock) and loading with weights only (a checkpoint that carries another object is refused, naming the file).
Exact resume from real checkpoints is tested in test_training.py and test_pretrain.py."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dnalm.checkpoint import LOCK_NAME, UnsafeCheckpoint, load_verified, lock_holder, run_lock, save_atomic
from helpers import Planted, start_python

HOLD_CODE = """
import time
from dnalm.checkpoint import run_lock
with run_lock(args["dir"]):
    time.sleep(600)
"""


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not true after {timeout} s"
        time.sleep(0.01)


@pytest.fixture
def holder(tmp_path: Path):
    """Another process holding the lock of `tmp_path`; SIGKILLed at the end if the test left it running."""
    proc = start_python(HOLD_CODE, {"dir": str(tmp_path)})
    lock = tmp_path / LOCK_NAME
    wait_for(lambda: proc.poll() is not None or (lock.exists() and f"pid {proc.pid} " in lock.read_text()))
    assert proc.poll() is None, proc.stderr.read().decode()
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_a_second_holder_waits_naming_the_first_and_takes_over_when_it_is_killed(holder, tmp_path, caplog):
    host = socket.gethostname()
    assert lock_holder(tmp_path / LOCK_NAME).startswith(f"pid {holder.pid} on host {host} since ")
    inside = threading.Event()

    def second() -> None:
        with run_lock(tmp_path):
            inside.set()

    with caplog.at_level(logging.INFO, logger="dnalm"):
        thread = threading.Thread(target=second, daemon=True)
        thread.start()
        wait_for(lambda: "is in use by another training" in caplog.text)
        assert f"{tmp_path} is in use by another training: pid {holder.pid} on host {host} since " in caplog.text
        assert not inside.wait(1.0)  # still waiting while the holder lives
        os.kill(holder.pid, signal.SIGKILL)  # the kernel drops a killed process's lock: nothing stale is left
        assert inside.wait(30.0)
        thread.join()
    assert f"released by pid {holder.pid} on host {host}" in caplog.text
    assert (tmp_path / LOCK_NAME).read_text() == ""  # released: nobody named


def test_a_killed_holder_leaves_no_lock(holder, tmp_path):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    started = time.monotonic()
    with run_lock(tmp_path) as lock:
        assert lock.read_text().startswith(f"pid {os.getpid()} on host {socket.gethostname()} since ")
    assert time.monotonic() - started < 5


def test_the_lock_is_released_at_the_end_of_the_block(tmp_path):
    for _ in range(2):  # the same process twice in a row: the first block released it
        with run_lock(tmp_path / "run") as lock:
            assert lock == tmp_path / "run" / LOCK_NAME and f"pid {os.getpid()} " in lock.read_text()


def test_a_file_system_without_locks_warns_and_trains_unprotected(tmp_path, caplog, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with caplog.at_level(logging.WARNING, logger="dnalm"), run_lock(tmp_path) as lock:
        assert f"pid {os.getpid()} " in lock.read_text()
    assert f"cannot lock {lock} ([Errno {errno.ENOLCK}] No locks available): this file system" in caplog.text


def test_a_checkpoint_carrying_another_object_is_refused_naming_the_file(tmp_path):
    marker, path = tmp_path / "code_ran", tmp_path / "last.ckpt"
    save_atomic({"model": {"w": torch.zeros(2)}, "epoch": 1, "extra": Planted(marker)}, path)  # a valid checksum
    with pytest.raises(UnsafeCheckpoint, match=f"refusing to load {path}: it holds posix.mkdir"):
        load_verified(path)
    assert not marker.exists()


def test_plain_checkpoints_load_with_numpy_scalars_of_older_checkpoints(tmp_path):
    """Tensors, numbers, strings, containers and a numpy generator's state load; so do the numpy float64 values
    that histories held before they were saved as Python floats."""
    rng = np.random.default_rng([0, 1])
    state = {"model": {"w": torch.arange(3.0)}, "torch_rng": torch.get_rng_state(), "rng": rng.bit_generator.state,
             "history": [{"epoch": 1, "val_loss": np.float64(0.5), "best": True}],
             "head": {"kind": "profile", "params": {"kernel": (9,)}}, "progress": None, "fingerprint": "ab"}
    save_atomic(state, tmp_path / "last.ckpt")
    loaded = load_verified(tmp_path / "last.ckpt")
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["rng"] == state["rng"]
    assert loaded["history"] == state["history"] and type(loaded["history"][0]["val_loss"]) is np.float64
    assert loaded["head"] == state["head"] and loaded["fingerprint"] == "ab"
