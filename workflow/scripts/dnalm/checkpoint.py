"""Checkpoint files that are never half-read, and the clock and signals that decide when a run writes one.

A checkpoint is `torch.save`'s output followed by a trailer: the SHA-256 of everything before it and a magic
string. `torch.load` ignores the trailer (so the files stay ordinary torch checkpoints), and `load_verified` refuses
a file whose trailer is missing or does not match: a truncated copy, a flipped bit or a write cut short by a kill is
never loaded. Files are written to a temporary name, fsynced and renamed; the file they replace is kept as
`<name>.prev`, the fallback when the newest one turns out unreadable.

`Checkpointer` tells a training loop when to save between its regular checkpoints: every `every_steps` steps,
every `minutes` of wall time, and at the next step after SIGTERM or SIGUSR1 (what Slurm sends at cancel, at the time
limit, or before it with `--signal`); after that save the loop raises `TrainingInterrupted`, so the job exits
non-zero and Snakemake or Slurm runs it again from the checkpoint.

Checkpoints are read with `torch.load(weights_only=True)`: tensors, numbers, strings, plain containers and numpy
scalars only, so a `.ckpt` from elsewhere (a shared results folder, a colleague's run) cannot run code when it is
loaded; one that holds anything else is refused (`UnsafeCheckpoint`).

`run_lock` holds an exclusive lock on a run directory for the life of a training, so two trainings (e.g. one left
running after Snakemake was killed, and the rerun) never write the same checkpoint: the second waits for the first.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import pickle
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import numpy as np
import torch

log = logging.getLogger(__name__)

MAGIC = b"DNALMCK1"
_TRAILER = 32 + len(MAGIC)
_BLOCK = 1 << 22
#: Signals that ask a run to checkpoint and stop: Slurm's cancel/time limit (TERM) and a chosen early warning.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
#: What `torch.load(weights_only=True)` may build besides tensors, numbers, strings and plain containers: numpy
#: float64 scalars, which the validation losses in histories were before they were saved as Python floats.
SAFE_GLOBALS = [np._core.multiarray.scalar, np.dtype, np.dtypes.Float64DType]
#: The file in a run directory that `run_lock` locks; it names the holder (pid, host, since when).
LOCK_NAME = ".train.lock"


class TrainingInterrupted(RuntimeError):
    """Raised after the checkpoint written on a stop signal; the job exits non-zero to be run again."""


class CorruptCheckpoint(ValueError):
    """A checkpoint whose checksum trailer is missing or wrong."""


class UnsafeCheckpoint(ValueError):
    """A checkpoint that holds objects other than tensors, numbers, strings and containers (it could run code)."""


def _digest(path: Path, size: int) -> bytes:
    """SHA-256 of the first `size` bytes of a file, read in blocks."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while size > 0:
            block = handle.read(min(_BLOCK, size))
            if not block:
                break
            sha.update(block)
            size -= len(block)
    return sha.digest()


def save_atomic(obj: dict, path: str | Path, keep_previous: bool = False) -> None:
    """torch.save with a checksum trailer to a temp file, fsync, then rename: `path` is never half-written.

    Args:
        obj: What to save.
        path: Destination.
        keep_previous: Move the file being replaced to `<path>.prev` first (the fallback of `load_verified`).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
    size = tmp.stat().st_size
    with open(tmp, "ab") as handle:
        handle.write(_digest(tmp, size) + MAGIC)
        handle.flush()
        os.fsync(handle.fileno())
    if keep_previous and path.exists():
        path.replace(previous(path))
    tmp.replace(path)


def previous(path: str | Path) -> Path:
    """Where `save_atomic(..., keep_previous=True)` keeps the file it replaced."""
    path = Path(path)
    return path.with_name(path.name + ".prev")


def load_verified(path: str | Path) -> dict:
    """torch.load a checkpoint after checking its trailer.

    Raises:
        CorruptCheckpoint: when the trailer is missing (truncated, or not written by `save_atomic`) or the checksum
            does not match the content.
        UnsafeCheckpoint: when it holds anything but tensors, numbers, strings, containers and numpy scalars.
    """
    path = Path(path)
    size = path.stat().st_size - _TRAILER
    with open(path, "rb") as handle:
        handle.seek(max(size, 0))
        trailer = handle.read()
    if size <= 0 or trailer[32:] != MAGIC:
        raise CorruptCheckpoint(f"{path} has no checksum trailer (truncated, or not written by dnalm)")
    if _digest(path, size) != trailer[:32]:
        raise CorruptCheckpoint(f"{path} does not match its checksum (damaged or half-written)")
    return _load_weights_only(path)


def _load_weights_only(path: Path) -> dict:
    """torch.load with `weights_only=True` and `SAFE_GLOBALS`; an object of another class is an `UnsafeCheckpoint`."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL (\S+)|got (<[^>]+>)", str(err))
        what = next(g for g in found.groups() if g) if found else "an object that is not plain data"
        raise UnsafeCheckpoint(
            f"refusing to load {path}: it holds {what}, and a dnalm checkpoint holds only tensors, numbers, strings "
            "and containers (loading it could run code). If it did not come from a dnalm run you trust, delete it; "
            "if it is your own run's last.ckpt, delete it and last.ckpt.prev to train from scratch") from err


def resume_candidates(path: str | Path) -> list[Path]:
    """The newest checkpoint and its kept predecessor, in the order to try them."""
    return [Path(path), previous(path)]


class Checkpointer:
    """When to write a checkpoint between the regular ones, and whether a stop signal arrived.

    Use as a context manager around the training loop: it installs handlers for SIGTERM and SIGUSR1 (in the main
    thread only) that just record the signal, and restores the previous handlers on exit.

    Args:
        every_steps: Save after this many steps since the last save (None: never by count).
        minutes: Save when this much wall time passed since the last save (None: never by time; 0: every step).
    """

    def __init__(self, every_steps: int | None = None, minutes: float | None = None):
        self.every_steps = every_steps
        self.minutes = minutes
        self.signal: int | None = None
        self._steps = 0
        self._last = time.monotonic()
        self._saved: dict = {}

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._saved[sig] = signal.signal(sig, self._record)
        self._last = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()

    def _record(self, signum: int, frame) -> None:
        log.warning("received %s: checkpointing at the next step, then stopping", signal.Signals(signum).name)
        self.signal = signum

    def step(self) -> bool:
        """Count one step; True when a checkpoint is due (by count, by time, or for a stop signal)."""
        self._steps += 1
        if self.signal is not None:
            return True
        if self.every_steps is not None and self._steps >= self.every_steps:
            return True
        return self.minutes is not None and time.monotonic() - self._last >= 60 * self.minutes

    def saved(self, where: str) -> None:
        """Note a written checkpoint; raise `TrainingInterrupted` if a stop signal asked for it.

        Args:
            where: The checkpoint and position, for the messages.
        """
        self._steps = 0
        self._last = time.monotonic()
        if self.signal is not None:
            name = signal.Signals(self.signal).name
            log.error("stopped on %s after writing %s; run the job again to resume", name, where)
            raise TrainingInterrupted(f"stopped on {name}; checkpoint {where} written; run again to resume")


def load_resume(path: Path, fp: str, model, optimizer) -> dict | None:
    """Load a resumable checkpoint of the same run, or None (absent, damaged, or another run's).

    Tries `path`, then the copy `save_atomic` kept of the one before (`<path>.prev`). A file that fails its checksum
    or does not fit the model is skipped with a warning naming it; the model and optimizer are left untouched then.
    """
    for candidate in resume_candidates(path):
        if not candidate.exists():
            continue
        try:
            state = load_verified(candidate)
        except (CorruptCheckpoint, RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:  # unreadable
            log.warning("ignoring damaged checkpoint %s (%s)", candidate, err)
            continue
        if state.get("fingerprint") != fp:
            log.info("checkpoint %s belongs to another configuration; not resuming from it", candidate)
            continue
        if _load_states(candidate, state, model, optimizer):
            unit = "epoch" if "epoch" in state else "step"
            where = f" (mid-epoch, {state['progress']['batch']} batches into epoch {state['epoch'] + 1})" \
                if state.get("progress") else ""
            log.info("resuming from %s after %s %d%s", candidate, unit, state[unit], where)
            return state
    return None


def _load_states(path: Path, state: dict, model, optimizer) -> bool:
    """Load model and optimizer state; on a mismatch restore both, warn naming the file and return False."""
    model_before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer_before = optimizer.state_dict()
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (KeyError, RuntimeError, ValueError) as err:
        log.warning("ignoring checkpoint %s: it does not fit the model (%s)", path, err)
        model.load_state_dict(model_before)
        optimizer.load_state_dict(optimizer_before)
        return False
    return True


@contextmanager
def run_lock(directory: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on a run directory for the duration of the block; wait while another process holds it.

    The lock is `flock` on `<directory>/.train.lock`, which the holder fills with its pid and host. The kernel
    releases it when the holder exits or is killed, so a crash never leaves a stale lock. A second training of the
    same directory (the rerun after Snakemake was killed while its training went on) logs who holds the lock and
    waits; when the holder ends, however it ends, the waiting run continues from the checkpoint it left.

    Args:
        directory: The run directory (created if missing).

    Yields:
        The lock file.
    """
    path = Path(directory) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    held = False
    try:
        if _try_lock(fd, path) is False:
            holder = lock_holder(path)
            log.warning("%s is in use by another training: %s. Waiting for it to end, then continuing from the "
                        "checkpoint it leaves. If it was left running by a Snakemake that was killed, let it finish, "
                        "or end it to go on now (`kill` that pid on that host; on Slurm, `scancel` its job).",
                        path.parent, holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
            log.info("%s was released by %s; continuing", path, holder)
        held = True
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()} since {time.ctime()}\n".encode(), 0)
        yield path
    finally:
        if held:
            os.ftruncate(fd, 0)  # an empty file: nobody holds it (or the next holder has not written itself yet)
        os.close(fd)  # releases the lock


def _try_lock(fd: int, path: Path) -> bool | None:
    """Take the exclusive lock of an open file without waiting.

    Returns:
        True when taken, False when another open file holds it, None (after a warning) on a file system that has no
        `flock` (e.g. Lustre mounted with `noflock`): the run goes on unprotected rather than not at all.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as err:
        if err.errno not in (errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP):
            raise
        log.warning("cannot lock %s (%s): this file system does not lock files, so nothing stops a second training "
                    "of %s; make sure none runs", path, err, path.parent)
        return None
    return True


def lock_holder(path: str | Path, tries: int = 20) -> str:
    """Who holds a `run_lock` file, as it wrote itself (`pid 123 on host node7 since …`).

    A new holder writes itself just after taking the lock, so an empty file is read again a few times.
    """
    for _ in range(tries):
        text = Path(path).read_text().strip()
        if text:
            return text
        time.sleep(0.05)
    return "a process that has not written its pid and host"
