"""Training loop with early stopping and checkpoints that resume to the same result after a kill."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dnalm import tasks
from dnalm.checkpoint import LOCK_NAME, Checkpointer, load_resume, previous, run_lock, save_atomic
from dnalm.device import as_float, autocast, pick_device, resolve_precision, set_threads
from dnalm.models import build_model
from dnalm.predict import predict_outputs
from dnalm.store import WindowStore

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_profile_loss", "val_count_loss", "val_pearson_median",
                   "lr", "seconds", "best", "trainable_params", "total_params"]
#: Train settings that decide only when checkpoints are written, not the result (left out of the fingerprint).
CHECKPOINT_KEYS = ("checkpoint_every", "checkpoint_minutes")


def fingerprint(arch: str, model_params: dict, train_params: dict, seed: int, store: WindowStore) -> str:
    """Hash of everything that defines a run, so a checkpoint of another run is never resumed.

    A language model's backbone directory counts by the size and modification time of its files (not the lock file
    of its pretraining), so a backbone that was pretrained again invalidates the fine-tuning checkpoints made from the
    old one.
    """
    backbone = model_params.get("backbone") if isinstance(model_params, dict) else None
    files = [f for f in sorted(Path(backbone).glob("*")) if f.name != LOCK_NAME] if backbone else []
    data = {"arch": arch, "model": model_params, "train": train_params, "seed": seed, "n": len(store),
            "channels": store.channels, "ids": hashlib.sha1("\n".join(store.meta["ids"]).encode()).hexdigest(),
            "backbone": [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]}
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()


def run_epoch(model, store: WindowStore, optimizer, *, epoch: int, seed: int, batch_size: int, jitter: int,
              revcomp: bool, max_batches: int | None, count_weight: float, device: torch.device,
              progress: dict | None = None, on_batch: Callable[[Callable[[], dict]], None] | None = None,
              precision: str = "fp32", tp: dict | None = None) -> float:
    """Train one epoch; batch order, jitter, flips and dropout are seeded by (seed, epoch). Returns the mean loss.

    Args:
        precision: `fp32` or `bf16` (autocast of the forward pass; see `resolve_precision`).
        tp: The train block, for the task type's epoch order (`TaskType.epoch_order`).
        progress: Where a mid-epoch checkpoint of this epoch left off (see `epoch_progress`), or None to start it.
        on_batch: Called after every batch with a function that returns the epoch's progress so far; it may save
            it (and then raise to stop).
    """
    rng = np.random.default_rng([seed, epoch])
    torch.manual_seed(seed * 100003 + epoch)
    task = tasks.get(store.task_type)
    order = task.epoch_order(store, rng, tp or {})
    n_batches = math.ceil(len(order) / batch_size)
    if max_batches is not None:
        n_batches = min(n_batches, max_batches)
    losses, start = [], 0
    if progress is not None:
        losses, start = list(progress["losses"]), progress["batch"]
        restore_rng(rng, progress, device)
    model.train()
    for b in range(start, n_batches):
        index = order[b * batch_size : (b + 1) * batch_size]
        step = store.bin_size  # binned targets move by whole bins
        shifts = rng.integers(-(jitter // step), jitter // step + 1, size=len(index)) * step if jitter else None
        flips = rng.random(len(index)) < 0.5 if revcomp else None
        x, y = store.batch(index, shifts, flips)
        x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        with autocast(device, precision):
            output = as_float(model(x))
        loss, _, _ = task.loss(output, y, count_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if on_batch is not None:
            on_batch(functools.partial(epoch_progress, epoch, b + 1, losses, rng, device))
    return float(np.mean(losses)) if losses else float("nan")


def epoch_progress(epoch: int, batch: int, losses: list[float], rng: np.random.Generator,
                   device: torch.device) -> dict:
    """Everything a mid-epoch checkpoint needs to continue the epoch exactly: position, losses, random states."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"epoch": epoch, "batch": batch, "losses": list(losses), "rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(), "cuda_rng": cuda}


def restore_rng(rng: np.random.Generator, progress: dict, device: torch.device) -> None:
    """Put the augmentation and dropout generators back where `epoch_progress` found them."""
    rng.bit_generator.state = progress["rng"]
    torch.set_rng_state(progress["torch_rng"])
    if device.type == "cuda" and progress.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(progress["cuda_rng"], device)


def validate(model, store: WindowStore, batch_size: int, count_weight, device: torch.device) -> dict:
    """Validation loss (total and its two parts, weighted by windows) and the task type's summary of the batches'
    `val_pearson` (`TaskType.loss`, `TaskType.val_summary`: the median per-window Pearson, or classification's
    accuracy and AUROC)."""
    task = tasks.get(store.task_type)
    sums = np.zeros(3)
    parts = []
    for index, output, y in predict_outputs(model, store, batch_size, device):
        sums += np.array([p.item() for p in task.loss(output, y, count_weight)]) * len(index)
        parts.append(task.val_pearson(output, y))
    total, profile, count = sums / max(len(store), 1)
    return {"val_loss": float(total), "val_profile_loss": float(profile), "val_count_loss": float(count),
            **task.val_summary(parts)}


def initial_state(model, optimizer) -> dict:
    """Training state before the first epoch."""
    return {"epoch": 0, "history": [], "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0,
            "best_state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "done": False, "progress": None}


def train(train_store: WindowStore, val_store: WindowStore, out_dir: str, *, arch: str, model_params: dict,
          train_params: dict, seed: int, threads: int = 1, device: str | None = None) -> dict:
    """Train a model with early stopping on validation loss, resuming from `out_dir/last.ckpt` when present.

    Writes `last.ckpt` (resumable state) after every epoch and, within an epoch, every `train.checkpoint_every`
    batches, every `train.checkpoint_minutes` of wall time and on SIGTERM/SIGUSR1 (then raising
    `TrainingInterrupted`); at the end `best.ckpt` (weights of the best epoch), `history.tsv` and `model.json`.
    Holds `out_dir`'s lock throughout (`dnalm.checkpoint.run_lock`): a second training of the directory waits.

    Args:
        train_store: Training windows.
        val_store: Validation windows.
        out_dir: Model directory.
        arch: Architecture (see `dnalm.models.build_model`).
        model_params: Architecture config.
        train_params: The model's `train` config block.
        seed: Seed of initialisation, batch order and augmentation.
        threads: CPU threads for torch.
        device: Device name, or None to choose automatically.

    Returns:
        The model summary written to `model.json`.
    """
    set_threads(threads)
    with run_lock(out_dir):
        return _train(train_store, val_store, Path(out_dir), arch=arch, model_params=model_params,
                      train_params=train_params, seed=seed, dev=pick_device(device))


def _train(train_store: WindowStore, val_store: WindowStore, out: Path, *, arch: str, model_params: dict,
           train_params: dict, seed: int, dev: torch.device) -> dict:
    """`train` once the directory is locked."""
    tp = dict(train_params)
    if tp["jitter"] > train_store.flank:
        raise ValueError(f"train.jitter={tp['jitter']} exceeds the task's window.flank={train_store.flank}")
    task = tasks.get(train_store.task_type)
    count_weight = task.count_weight(train_store, tp)
    head, head_params = task.head(train_store, tp, arch)
    torch.manual_seed(seed)
    model = build_model(arch, model_params, head, len(train_store.channels), head_params)
    task.prepare(model, train_store, revcomp=tp["revcomp"])
    model = model.to(dev)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=tp["lr"], weight_decay=tp["weight_decay"])
    fp = fingerprint(arch, model_params, {k: v for k, v in tp.items() if k not in CHECKPOINT_KEYS}, seed,
                     train_store)
    last = out / "last.ckpt"
    state = load_resume(last, fp, model, optimizer) or initial_state(model, optimizer)
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in trainable)
    precision = resolve_precision(tp.get("precision"), dev)
    log.info("%s: %d parameters (%d trainable) on %s, %s; loss weight %s", arch, n_params, n_train, dev, precision,
             count_weight)
    with Checkpointer(tp.get("checkpoint_every"), tp.get("checkpoint_minutes")) as clock:

        def on_batch(progress: Callable[[], dict]) -> None:
            if clock.step():
                now = progress()
                save_atomic({**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "progress": now, "fingerprint": fp}, last, keep_previous=True)
                clock.saved(f"{last} ({now['batch']} batches into epoch {now['epoch']})")

        while not state["done"] and state["epoch"] < tp["epochs"]:
            state = train_one(model, optimizer, train_store, val_store, state, tp, seed, count_weight, dev, on_batch,
                              precision)
            state["history"][-1].update(trainable_params=n_train, total_params=n_params)
            save_atomic({**state, "fingerprint": fp}, last, keep_previous=True)
            clock.saved(f"{last} (end of epoch {state['epoch']})")
    summary = {"arch": arch, "model_params": model_params, "train_params": tp, "seed": seed,
               "count_weight": count_weight, "total_params": n_params, "trainable_params": n_train,
               "best_epoch": state["best_epoch"], "epochs_run": state["epoch"], "device": str(dev),
               "precision": precision,
               "head": model.head_spec, "task_type": task.name,
               "channels": train_store.channels, "length": train_store.length, "bin_size": train_store.bin_size,
               "transform": train_store.transform}
    save_atomic({**summary, "state_dict": state["best_state"]}, out / "best.ckpt")
    pd.DataFrame(state["history"], columns=[*HISTORY_COLUMNS, *task.val_columns]).to_csv(out / "history.tsv", sep="\t", index=False)
    (out / "model.json").write_text(json.dumps(summary, indent=2))
    previous(last).unlink(missing_ok=True)  # the fallback is not needed once the run is complete
    return summary


def train_one(model, optimizer, train_store, val_store, state: dict, tp: dict, seed: int, count_weight,
              device: torch.device, on_batch: Callable | None = None, precision: str = "fp32") -> dict:
    """Run one epoch (or its rest, after a mid-epoch checkpoint) and validation; update history, best weights and
    early-stopping counters."""
    epoch = state["epoch"] + 1
    t0 = time.perf_counter()
    train_loss = run_epoch(model, train_store, optimizer, epoch=epoch, seed=seed, batch_size=tp["batch_size"],
                           jitter=tp["jitter"], revcomp=tp["revcomp"], max_batches=tp["max_batches_per_epoch"],
                           count_weight=count_weight, device=device, progress=state.get("progress"),
                           on_batch=on_batch, precision=precision, tp=tp)
    val = validate(model, val_store, tp["batch_size"], count_weight, device)
    improved = val["val_loss"] < state["best_val"]
    row = {"epoch": epoch, "train_loss": train_loss, **val, "lr": tp["lr"], "seconds": time.perf_counter() - t0,
           "best": int(improved)}
    scores = ", ".join(f"{k} {v:.3f}" for k, v in val.items() if k not in ("val_profile_loss", "val_count_loss")
                       and not (k == "val_pearson_median" and math.isnan(v)))
    log.info("epoch %d: train %.3f, %s, %.1f s%s", epoch, train_loss, scores, row["seconds"],
             " (best)" if improved else "")
    new = dict(state, epoch=epoch, history=state["history"] + [row], model=model.state_dict(),
               optimizer=optimizer.state_dict(), progress=None)
    if improved:
        new.update(best_val=val["val_loss"], best_epoch=epoch, bad_epochs=0,
                   best_state={k: v.detach().clone() for k, v in model.state_dict().items()})
    else:
        new["bad_epochs"] = state["bad_epochs"] + 1
        if new["bad_epochs"] >= tp["patience"]:
            log.info("early stopping: no better validation loss for %d epochs", tp["patience"])
            new["done"] = True
    return new
