"""Training loop with early stopping and checkpoints that resume to the same result after a kill."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dnalm.checkpoint import Checkpointer, load_verified, previous, resume_candidates, save_atomic
from dnalm.losses import task_loss
from dnalm.metrics import pearson_rows
from dnalm.models import build_model
from dnalm.store import WindowStore

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_profile_loss", "val_count_loss", "val_pearson_median",
                   "lr", "seconds", "best", "trainable_params", "total_params"]
#: Train settings that decide only when checkpoints are written, not the result (left out of the fingerprint).
CHECKPOINT_KEYS = ("checkpoint_every", "checkpoint_minutes")


def pick_device(device: str | None = None) -> torch.device:
    """The device to use: the one asked for, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


#: Values of `train.precision` (and `pretrain.<name>.precision`).
PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bf16 matrices natively: a CUDA GPU with bf16 support, or a CPU with AVX512-BF16 or
    AMX instructions (where oneDNN's bf16 products run ~2.3× the fp32 rate)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """`fp32` or `bf16`: `auto` (or None) is bf16 where the device has native bf16 (`native_bf16`), else fp32."""
    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(device: torch.device, precision: str | None = None):
    """Autocast context of a forward pass: bf16 when `precision` is "bf16", none when "fp32".

    None is the rule of inference (evaluation, attribution): bf16 on CUDA, fp32 on the CPU, so CPU predictions are
    exact whatever precision the model was trained in. Weights, gradients, optimizer state and losses stay fp32.
    """
    if precision is None:
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def as_float(output):
    """A model output (a tensor or a tuple of tensors) in fp32, so losses are computed in full precision."""
    if isinstance(output, torch.Tensor):
        return output.float()
    return tuple(o.float() for o in output)


def fingerprint(arch: str, model_params: dict, train_params: dict, seed: int, store: WindowStore) -> str:
    """Hash of everything that defines a run, so a checkpoint of another run is never resumed.

    A language model's backbone directory counts by the size and modification time of its files, so a backbone that
    was pretrained again invalidates the fine-tuning checkpoints made from the old one.
    """
    backbone = model_params.get("backbone") if isinstance(model_params, dict) else None
    files = sorted(Path(backbone).glob("*")) if backbone else []
    data = {"arch": arch, "model": model_params, "train": train_params, "seed": seed, "n": len(store),
            "channels": store.channels, "ids": hashlib.sha1("\n".join(store.meta["ids"]).encode()).hexdigest(),
            "backbone": [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]}
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()


def auto_count_weight(store: WindowStore) -> float:
    """chrombpnet's rule, median total count per window divided by 10 (at least 1e-3), the total summed over channels.

    The profile NLL of a window is summed over its channels and grows with all of their counts, so its scale is the
    window's total over channels. Per (window, channel) — the rule before — a stranded task whose sites sit on one
    strand gets the median of mostly empty opposite-strand channels: the synthetic planted-motif genome got 0.7
    instead of 11.6, and its count head barely trained.
    """
    return max(float(np.median(window_totals(store).sum(axis=1))) / 10.0, 1e-3)


def window_totals(store: WindowStore) -> np.ndarray:
    """Total count of every window (without its flanks) per channel, (N, C), stored placement."""
    crop = slice(store.flank, store.flank + store.length)
    return np.concatenate([chunk[:, :, crop].sum(axis=-1) for chunk in store.target_chunks(4096)])


def mean_log_count(store: WindowStore) -> np.ndarray:
    """Mean over train windows of log(1 + total count) per channel (the count head's target), stored placement."""
    return np.log1p(window_totals(store)).mean(axis=0)


def init_count_bias(model, store: WindowStore, revcomp: bool = False) -> bool:
    """Start the count head at the data's mean: its bias := mean log(1 + total count) per channel.

    With `revcomp` (augmentation that swaps strands half the time), each channel's mean is averaged with that of the
    channel it swaps with: what training will show the head.

    Without this the head starts near 0 while the targets sit at log(1 + counts) (≈ 3–6 for 3'-end data), and
    AdamW moves a bias by about the learning rate per step: thousands of steps at lr 0.001 before the head even
    predicts the mean, let alone the differences between windows that count attributions explain. Profile models
    only (those with a `count_layer`); returns whether it applied.
    """
    layer = getattr(model, "count_layer", None)
    if layer is None or layer.bias is None or store.task_type == "tracks":
        return False
    mean = mean_log_count(store)
    if revcomp:
        mean = (mean + mean[store.rc_perm]) / 2
    with torch.no_grad():
        layer.bias.copy_(torch.as_tensor(mean, dtype=layer.bias.dtype))
    return True


def run_epoch(model, store: WindowStore, optimizer, *, epoch: int, seed: int, batch_size: int, jitter: int,
              revcomp: bool, max_batches: int | None, count_weight: float, device: torch.device,
              progress: dict | None = None, on_batch: Callable[[Callable[[], dict]], None] | None = None,
              precision: str = "fp32") -> float:
    """Train one epoch; batch order, jitter, flips and dropout are seeded by (seed, epoch). Returns the mean loss.

    Args:
        precision: `fp32` or `bf16` (autocast of the forward pass; see `resolve_precision`).
        progress: Where a mid-epoch checkpoint of this epoch left off (see `epoch_progress`), or None to start it.
        on_batch: Called after every batch with a function that returns the epoch's progress so far; it may save
            it (and then raise to stop).
    """
    rng = np.random.default_rng([seed, epoch])
    torch.manual_seed(seed * 100003 + epoch)
    order = rng.permutation(len(store))
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
        loss, _, _ = task_loss(output, y, count_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if on_batch is not None:
            on_batch(lambda: epoch_progress(epoch, b + 1, losses, rng, device))
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


@torch.no_grad()
def predict_outputs(model, store: WindowStore, batch_size: int, device: torch.device):
    """Run the model on every window of a store (stored placement, no augmentation); restores the model's mode.

    Yields:
        (index, output, targets) per batch: output is the model's (a tensor or a tuple of tensors) as float CPU
        tensors.
    """
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(store), batch_size):
            index = np.arange(start, min(start + batch_size, len(store)))
            x, y = store.batch(index)
            with autocast(device):
                output = as_float(model(torch.from_numpy(x).to(device)))
            if isinstance(output, torch.Tensor):
                output = output.cpu()
            else:
                output = tuple(o.cpu() for o in output)
            yield index, output, torch.from_numpy(y)
    finally:
        model.train(was_training)


def predict(model, store: WindowStore, batch_size: int, device: torch.device):
    """`predict_outputs` for profile models.

    Yields:
        (index, profile logits, log counts, targets) per batch, as CPU tensors.
    """
    for index, (logits, log_counts), y in predict_outputs(model, store, batch_size, device):
        yield index, logits, log_counts, y


def expected_signal(logits: torch.Tensor, log_counts: torch.Tensor) -> torch.Tensor:
    """Predicted signal per base: softmax profile × predicted total count."""
    return torch.softmax(logits, dim=-1) * torch.expm1(log_counts).clamp_min(0).unsqueeze(-1)


def predicted_signal(output) -> torch.Tensor:
    """Predicted signal of either task type: `expected_signal` of a profile output, exp(log-rate) of a tracks one
    (on the store's transformed scale)."""
    if isinstance(output, torch.Tensor):
        return torch.exp(output)
    return expected_signal(*output)


def validate(model, store: WindowStore, batch_size: int, count_weight: float, device: torch.device) -> dict:
    """Validation loss (total, profile, count, weighted by windows) and median per-window Pearson.

    For tracks stores the loss is the Poisson loss (count part 0) and the Pearson is over the bins of each window
    and track (median over both), on the transformed scale: the test's `pearson_median_transformed`.
    """
    sums = np.zeros(3)
    pearsons = []
    for index, output, y in predict_outputs(model, store, batch_size, device):
        parts = task_loss(output, y, count_weight)
        sums += np.array([p.item() for p in parts]) * len(index)
        signal, obs = predicted_signal(output).numpy(), y.numpy()
        if isinstance(output, torch.Tensor):  # tracks: one Pearson per window and track, as in evaluation
            signal, obs = signal.reshape(-1, signal.shape[-1]), obs.reshape(-1, obs.shape[-1])
        pearsons.append(pearson_rows(signal, obs))
    total, profile, count = sums / max(len(store), 1)
    r = np.concatenate(pearsons) if pearsons else np.array([np.nan])
    return {"val_loss": total, "val_profile_loss": profile, "val_count_loss": count,
            "val_pearson_median": float(np.nanmedian(r)) if np.isfinite(r).any() else float("nan")}


def initial_state(model, optimizer) -> dict:
    """Training state before the first epoch."""
    return {"epoch": 0, "history": [], "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0,
            "best_state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "done": False, "progress": None}


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
        except Exception as err:  # CorruptCheckpoint, or a file torch cannot read
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


def train(train_store: WindowStore, val_store: WindowStore, out_dir: str, *, arch: str, model_params: dict,
          train_params: dict, seed: int, threads: int = 1, device: str | None = None) -> dict:
    """Train a model with early stopping on validation loss, resuming from `out_dir/last.ckpt` when present.

    Writes `last.ckpt` (resumable state) after every epoch and, within an epoch, every `train.checkpoint_every`
    batches, every `train.checkpoint_minutes` of wall time and on SIGTERM/SIGUSR1 (then raising
    `TrainingInterrupted`); at the end `best.ckpt` (weights of the best epoch), `history.tsv` and `model.json`.

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
    torch.set_num_threads(threads)
    dev = pick_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tp = dict(train_params)
    if tp["jitter"] > train_store.flank:
        raise ValueError(f"train.jitter={tp['jitter']} exceeds the task's window.flank={train_store.flank}")
    tracks = train_store.task_type == "tracks"
    count_weight = tp["count_weight"] if tp["count_weight"] is not None else (
        0.0 if tracks else auto_count_weight(train_store))
    bin_size = train_store.bin_size if tracks else None
    torch.manual_seed(seed)
    model = build_model(arch, len(train_store.channels), model_params, bin_size)
    init_count_bias(model, train_store, revcomp=tp["revcomp"])
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
    log.info("%s: %d parameters (%d trainable) on %s, %s; count weight %.4g", arch, n_params, n_train, dev, precision,
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
               "channels": train_store.channels, "length": train_store.length, "bin_size": bin_size,
               "transform": train_store.transform}
    save_atomic({**summary, "state_dict": state["best_state"]}, out / "best.ckpt")
    pd.DataFrame(state["history"], columns=HISTORY_COLUMNS).to_csv(out / "history.tsv", sep="\t", index=False)
    (out / "model.json").write_text(json.dumps(summary, indent=2))
    previous(last).unlink(missing_ok=True)  # the fallback is not needed once the run is complete
    return summary


def train_one(model, optimizer, train_store, val_store, state: dict, tp: dict, seed: int, count_weight: float,
              device: torch.device, on_batch: Callable | None = None, precision: str = "fp32") -> dict:
    """Run one epoch (or its rest, after a mid-epoch checkpoint) and validation; update history, best weights and
    early-stopping counters."""
    epoch = state["epoch"] + 1
    t0 = time.perf_counter()
    train_loss = run_epoch(model, train_store, optimizer, epoch=epoch, seed=seed, batch_size=tp["batch_size"],
                           jitter=tp["jitter"], revcomp=tp["revcomp"], max_batches=tp["max_batches_per_epoch"],
                           count_weight=count_weight, device=device, progress=state.get("progress"),
                           on_batch=on_batch, precision=precision)
    val = validate(model, val_store, tp["batch_size"], count_weight, device)
    improved = val["val_loss"] < state["best_val"]
    row = {"epoch": epoch, "train_loss": train_loss, **val, "lr": tp["lr"], "seconds": time.perf_counter() - t0,
           "best": int(improved)}
    log.info("epoch %d: train %.3f, val %.3f, val Pearson %.3f, %.1f s%s", epoch, train_loss, val["val_loss"],
             val["val_pearson_median"], row["seconds"], " (best)" if improved else "")
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


def load_model(checkpoint: str, device: torch.device | None = None) -> tuple[torch.nn.Module, dict]:
    """Load a `best.ckpt` as an eval-mode model and its summary."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = build_model(ckpt["arch"], len(ckpt["channels"]), ckpt["model_params"], ckpt.get("bin_size"))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model.to(device or torch.device("cpu")), {k: v for k, v in ckpt.items() if k != "state_dict"}
