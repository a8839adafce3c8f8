"""Prediction with trained models: loading a checkpoint, running it over a window store, prediction files."""

from __future__ import annotations

import numpy as np
import torch

from dnalm.checkpoint import load_verified
from dnalm.device import as_float, autocast
from dnalm.models import SequenceModel, build_model
from dnalm.store import WindowStore


def load_model(checkpoint: str, device: torch.device | None = None) -> tuple[SequenceModel, dict]:
    """Load a `best.ckpt` as an eval-mode model and its summary (architecture, head, channels, training)."""
    ckpt = load_verified(checkpoint)
    head = ckpt["head"]
    model = build_model(ckpt["arch"], ckpt["model_params"], head["kind"], head["n_outputs"], head["params"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model.to(device or torch.device("cpu")), {k: v for k, v in ckpt.items() if k != "state_dict"}


@torch.no_grad()
def predict_outputs(model, store: WindowStore, batch_size: int, device: torch.device, rows: range | None = None,
                    batches=None):
    """Run the model on every window of a store (stored placement, no augmentation); restores the model's mode.

    Args:
        model: The model.
        store: The windows.
        batch_size: Windows per forward pass.
        device: The model's device.
        rows: Only these rows, batched from their first (a shard, `dnalm.shards.shard_rows`); None: every row.
        batches: Numbers of the batches (of `batch_size` consecutive rows) to run, or None for all (a data-parallel
            validation gives each process every world-th batch).

    Yields:
        (index, output, targets) per batch: output is the model's (a tensor or a tuple of tensors) as float CPU
        tensors.
    """
    was_training = model.training
    model.eval()
    try:
        rows = range(len(store)) if rows is None else rows
        starts = range(rows.start, rows.stop, batch_size)
        for start in starts if batches is None else (starts[b] for b in batches if b < len(starts)):
            index = np.arange(start, min(start + batch_size, rows.stop))
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
