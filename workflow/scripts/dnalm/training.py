"""Training loop with early stopping and checkpoints that resume to the same result after a kill.

Data-parallel training (`train.devices` × `train.nodes` > 1 processes, `dnalm.distributed`): every process draws the
same epoch order, jitter and flips for each global batch of `train.batch_size` windows and trains on its share of it
(windows rank, rank + world, …), in micro-batches of at most `train.micro_batch` windows; each micro-batch's loss is
weighted by its share of the batch's loss weight (`TaskType.loss_weight`), so the all-reduced gradient is that of the
loss over the whole batch whatever the number of processes. Validation batches are spread the same way and gathered
in batch order. Rank 0 alone writes checkpoints, whose state does not depend on the number of processes: a run
resumes from them with another number of processes (or with one).
"""

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

from dnalm import distributed, tasks
from dnalm.checkpoint import LOCK_NAME, Checkpointer, load_resume, previous, run_lock, save_atomic
from dnalm.device import as_float, autocast, pick_device, resolve_precision, set_threads
from dnalm.distributed import SINGLE, Group, all_sum, checkpoint_due, gather
from dnalm.jobs import world_size
from dnalm.models import build_model
from dnalm.models.backbones import checkpoint_activations
from dnalm.predict import predict_outputs
from dnalm.store import WindowStore

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_profile_loss", "val_count_loss", "val_pearson_median",
                   "lr", "seconds", "best", "trainable_params", "total_params"]
#: Train settings that decide only when checkpoints are written or how the work is spread over processes and
#: micro-batches, not the result (left out of the fingerprint, so a run resumes under other values of them).
CHECKPOINT_KEYS = ("checkpoint_every", "checkpoint_minutes", "devices", "nodes", "micro_batch")


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
              precision: str = "fp32", tp: dict | None = None, group: Group = SINGLE) -> float:
    """Train one epoch; batch order, jitter, flips and dropout are seeded by (seed, epoch). Returns the mean loss.

    Args:
        precision: `fp32` or `bf16` (autocast of the forward pass; see `resolve_precision`).
        tp: The train block, for the task type's epoch order (`TaskType.epoch_order`) and `micro_batch`.
        group: This process's place in a data-parallel run (model is then its DistributedDataParallel).
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
        losses.append(train_step(model, optimizer, store, index, shifts, flips, count_weight=count_weight,
                                 device=device, precision=precision, group=group,
                                 micro_batch=(tp or {}).get("micro_batch")))
        if on_batch is not None:
            on_batch(functools.partial(epoch_progress, epoch, b + 1, losses, rng, device))
    return float(np.mean(losses)) if losses else float("nan")


def train_step(model, optimizer, store: WindowStore, index: np.ndarray, shifts: np.ndarray | None,
               flips: np.ndarray | None, *, count_weight, device: torch.device, precision: str = "fp32",
               group: Group = SINGLE, micro_batch: int | None = None) -> float:
    """One optimizer step on the global batch `index` (with its shifts and flips); returns the batch's loss.

    This process takes windows rank, rank + world, … (a process left without one takes part with a window of weight
    0), in micro-batches of at most `micro_batch`; each backward is weighted by its micro-batch's share of the whole
    batch's loss weight (times the world size, which DistributedDataParallel's averaging divides out).
    """
    task = tasks.get(store.task_type)
    chunks, empty = distributed.share(len(index), group, micro_batch)
    batches = [store.batch(index[c], None if shifts is None else shifts[c], None if flips is None else flips[c])
               for c in chunks]
    weights = [0.0 if empty else task.loss_weight(y, count_weight) for _, y in batches]
    total = all_sum([sum(weights)], group)[0]
    optimizer.zero_grad(set_to_none=True)
    loss_sum = 0.0
    for i, ((x, y), weight) in enumerate(zip(batches, weights, strict=True)):
        with distributed.no_sync(model, last=i == len(batches) - 1):
            x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
            with autocast(device, precision):
                output = as_float(model(x))
            loss, _, _ = task.loss(output, y, count_weight)
            scale = weight * group.world / total
            (loss if scale == 1 else loss * scale).backward()
        loss_sum += loss.item() * weight
    optimizer.step()
    return all_sum([loss_sum], group)[0] / total


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


def validate(model, store: WindowStore, batch_size: int, count_weight, device: torch.device,
             group: Group = SINGLE) -> dict:
    """Validation loss (total and its two parts, weighted by windows) and the task type's summary of the batches'
    `val_pearson` (`TaskType.loss`, `TaskType.val_summary`: the median per-window Pearson, or classification's
    accuracy and AUROC). In a data-parallel run each process takes every world-th batch; the batches are gathered
    and summed in their order, so the result does not depend on the number of processes."""
    task = tasks.get(store.task_type)
    mine = []
    batches = range(group.rank, math.ceil(len(store) / batch_size), group.world)
    for index, output, y in predict_outputs(model, store, batch_size, device, batches=batches):
        losses = np.array([p.item() for p in task.loss(output, y, count_weight)]) * len(index)
        mine.append((int(index[0]), losses, task.val_pearson(output, y)))
    done = sorted((row for rows in gather(mine, group) for row in rows), key=lambda row: row[0])
    sums = np.zeros(3)
    for row in done:
        sums += row[1]
    parts = [row[2] for row in done]
    total, profile, count = sums / max(len(store), 1)
    return {"val_loss": float(total), "val_profile_loss": float(profile), "val_count_loss": float(count),
            **task.val_summary(parts)}


def initial_state(model, optimizer) -> dict:
    """Training state before the first epoch."""
    return {"epoch": 0, "history": [], "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0,
            "best_state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "done": False, "progress": None}


def train(train_store: WindowStore, val_store: WindowStore, out_dir: str, *, arch: str, model_params: dict,
          train_params: dict, seed: int, threads: int = 1, device: str | None = None,
          log_file: str | None = None) -> dict:
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
        threads: CPU threads for torch (of all processes together).
        device: Device name, or None to choose automatically.
        log_file: The job's log, which the processes of a data-parallel run append to.

    Returns:
        The model summary written to `model.json`.
    """
    devices, nodes = world_size(train_params)
    with run_lock(out_dir):
        if devices * nodes > 1:
            kwargs = {"train_prefix": train_store.prefix, "val_prefix": val_store.prefix, "out_dir": str(out_dir),
                      "arch": arch, "model_params": model_params, "train_params": train_params, "seed": seed,
                      "device": device}
            return distributed.launch("dnalm.training:train_rank", kwargs, devices=devices, nodes=nodes,
                                      threads=threads, run_dir=out_dir, log_file=log_file)
        set_threads(threads)
        return _train(train_store, val_store, Path(out_dir), arch=arch, model_params=model_params,
                      train_params=train_params, seed=seed, dev=pick_device(device))


def train_rank(train_prefix: str, val_prefix: str, out_dir: str, *, arch: str, model_params: dict, train_params: dict,
               seed: int, device: str | None = None) -> dict:
    """One process of a data-parallel `train` (started by `dnalm.distributed.launch`, which holds the lock)."""
    group = distributed.current()
    set_threads(torch.get_num_threads())
    return _train(WindowStore(train_prefix), WindowStore(val_prefix), Path(out_dir), arch=arch,
                  model_params=model_params, train_params=train_params, seed=seed,
                  dev=distributed.device(group, device), group=group)


def _train(train_store: WindowStore, val_store: WindowStore, out: Path, *, arch: str, model_params: dict,
           train_params: dict, seed: int, dev: torch.device, group: Group = SINGLE) -> dict:
    """`train` once the directory is locked (in each process of a data-parallel run)."""
    tp = dict(train_params)
    if tp["jitter"] > train_store.flank:
        raise ValueError(f"train.jitter={tp['jitter']} exceeds the task's window.flank={train_store.flank}")
    task = tasks.get(train_store.task_type)
    count_weight = task.count_weight(train_store, tp)
    head, head_params = task.head(train_store, tp, arch)
    torch.manual_seed(seed)
    model = build_model(arch, model_params, head, len(train_store.channels), head_params)
    task.prepare(model, train_store, revcomp=tp["revcomp"])
    if tp.get("activation_checkpointing"):
        checkpoint_activations(model, arch)
    model = model.to(dev)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=tp["lr"], weight_decay=tp["weight_decay"])
    fp = fingerprint(arch, model_params, {k: v for k, v in tp.items() if k not in CHECKPOINT_KEYS}, seed,
                     train_store)
    last = out / "last.ckpt"
    state = load_resume(last, fp, model, optimizer) or initial_state(model, optimizer)
    parallel = distributed.wrap(model, group, dev)
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in trainable)
    precision = resolve_precision(tp.get("precision"), dev)
    log.info("%s: %d parameters (%d trainable) on %s, %s; loss weight %s; %d process(es)", arch, n_params, n_train,
             dev, precision, count_weight, group.world)
    with Checkpointer(tp.get("checkpoint_every"), tp.get("checkpoint_minutes")) as clock:

        def on_batch(progress: Callable[[], dict]) -> None:
            if checkpoint_due(clock, group):
                now = progress()
                if group.main:
                    save_atomic({**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                 "progress": now, "fingerprint": fp}, last, keep_previous=True)
                clock.saved(f"{last} ({now['batch']} batches into epoch {now['epoch']})")

        while not state["done"] and state["epoch"] < tp["epochs"]:
            state = train_one(parallel, optimizer, train_store, val_store, state, tp, seed, count_weight, dev,
                              on_batch, precision, group)
            state["history"][-1].update(trainable_params=n_train, total_params=n_params)
            if group.main:
                save_atomic({**state, "fingerprint": fp}, last, keep_previous=True)
            checkpoint_due(clock, group)  # every process stops here if any was asked to
            clock.saved(f"{last} (end of epoch {state['epoch']})")
    summary = {"arch": arch, "model_params": model_params, "train_params": tp, "seed": seed,
               "count_weight": count_weight, "total_params": n_params, "trainable_params": n_train,
               "best_epoch": state["best_epoch"], "epochs_run": state["epoch"], "device": str(dev),
               "precision": precision,
               "head": model.head_spec, "task_type": task.name,
               "channels": train_store.channels, "length": train_store.length, "bin_size": train_store.bin_size,
               "transform": train_store.transform, "processes": group.world}
    if not group.main:
        return summary
    save_atomic({**summary, "state_dict": state["best_state"]}, out / "best.ckpt")
    pd.DataFrame(state["history"], columns=[*HISTORY_COLUMNS, *task.val_columns]).to_csv(out / "history.tsv", sep="\t", index=False)
    (out / "model.json").write_text(json.dumps(summary, indent=2))
    previous(last).unlink(missing_ok=True)  # the fallback is not needed once the run is complete
    return summary


def train_one(model, optimizer, train_store, val_store, state: dict, tp: dict, seed: int, count_weight,
              device: torch.device, on_batch: Callable | None = None, precision: str = "fp32",
              group: Group = SINGLE) -> dict:
    """Run one epoch (or its rest, after a mid-epoch checkpoint) and validation; update history, best weights and
    early-stopping counters. `model` is the unwrapped model or its DistributedDataParallel (`group`)."""
    module = getattr(model, "module", model)
    epoch = state["epoch"] + 1
    t0 = time.perf_counter()
    train_loss = run_epoch(model, train_store, optimizer, epoch=epoch, seed=seed, batch_size=tp["batch_size"],
                           jitter=tp["jitter"], revcomp=tp["revcomp"], max_batches=tp["max_batches_per_epoch"],
                           count_weight=count_weight, device=device, progress=state.get("progress"),
                           on_batch=on_batch, precision=precision, tp=tp, group=group)
    val = validate(module, val_store, tp["batch_size"], count_weight, device, group)
    improved = val["val_loss"] < state["best_val"]
    row = {"epoch": epoch, "train_loss": train_loss, **val, "lr": tp["lr"], "seconds": time.perf_counter() - t0,
           "best": int(improved)}
    scores = ", ".join(f"{k} {v:.3f}" for k, v in val.items() if k not in ("val_profile_loss", "val_count_loss")
                       and not (k == "val_pearson_median" and math.isnan(v)))
    log.info("epoch %d: train %.3f, %s, %.1f s%s", epoch, train_loss, scores, row["seconds"],
             " (best)" if improved else "")
    new = dict(state, epoch=epoch, history=state["history"] + [row], model=module.state_dict(),
               optimizer=optimizer.state_dict(), progress=None)
    if improved:
        new.update(best_val=val["val_loss"], best_epoch=epoch, bad_epochs=0,
                   best_state={k: v.detach().clone() for k, v in module.state_dict().items()})
    else:
        new["bad_epochs"] = state["bad_epochs"] + 1
        if new["bad_epochs"] >= tp["patience"]:
            log.info("early stopping: no better validation loss for %d epochs", tp["patience"])
            new["done"] = True
    return new
