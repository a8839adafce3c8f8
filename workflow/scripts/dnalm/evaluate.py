"""Evaluation of a trained model on test windows, and the comparison table across models."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch

from dnalm.losses import profile_count_loss
from dnalm.metrics import profile_metrics
from dnalm.store import WindowStore
from dnalm.training import expected_signal, load_model, pick_device, predict

log = logging.getLogger(__name__)

METRICS = ["pearson_median", "pearson_mean", "auprc", "auroc", "test_loss", "count_pearson"]


def evaluate(checkpoint: str, store: WindowStore, out_predictions: str, out_metrics: str, *, site_threshold: float,
             batch_size: int = 64, threads: int = 1, device: str | None = None) -> dict:
    """Predict the test windows, write `predictions.h5` and `metrics.json`.

    Args:
        checkpoint: `best.ckpt` of a model.
        store: Test windows.
        out_predictions: HDF5 with observed and predicted signal (N, C, L), window ids and channel names.
        out_metrics: JSON of test loss and the metrics of `dnalm.metrics.profile_metrics`.
        site_threshold: Observed signal that makes a base a site (AUROC/AUPRC).
        batch_size: Windows per batch.
        threads: CPU threads.
        device: Device, or None to choose.

    Returns:
        The metrics.
    """
    torch.set_num_threads(threads)
    dev = pick_device(device)
    model, info = load_model(checkpoint, dev)
    n, c, length = len(store), len(store.channels), store.length
    tmp = Path(out_predictions).with_name(f".{Path(out_predictions).name}.tmp")
    losses = np.zeros(3)
    with h5py.File(tmp, "w") as h5:
        obs = h5.create_dataset("observed", (n, c, length), dtype="f4", chunks=(min(n, 256), c, length))
        pred = h5.create_dataset("predicted", (n, c, length), dtype="f4", chunks=(min(n, 256), c, length))
        h5.create_dataset("window_id", data=np.array(store.meta["ids"], dtype="S"))
        h5.attrs["channels"] = store.channels
        for index, logits, log_counts, y in predict(model, store, batch_size, dev):
            parts = profile_count_loss(logits, log_counts, y, info["count_weight"])
            losses += np.array([p.item() for p in parts]) * len(index)
            obs[index[0] : index[-1] + 1] = y.numpy()
            pred[index[0] : index[-1] + 1] = expected_signal(logits, log_counts).numpy()
        metrics = profile_metrics(pred[:], obs[:], site_threshold)
    tmp.replace(out_predictions)
    total, profile, count = losses / max(n, 1)
    metrics.update(test_loss=total, profile_nll=profile, count_mse=count, arch=info["arch"],
                   best_epoch=info["best_epoch"], trainable_params=info["trainable_params"])
    Path(out_metrics).write_text(json.dumps(metrics, indent=2))
    log.info("test metrics: %s", metrics)
    return metrics


def compare_models(metric_files: list[str], out_tsv: str) -> pd.DataFrame:
    """One row per model from `results/eval/<task>/<model>/metrics.json` files, in the layout of SEEDS.md §1.

    Args:
        metric_files: Metrics JSON paths (the model id is the parent directory's name).
        out_tsv: Output comparison table.

    Returns:
        The table.
    """
    rows = []
    for path in metric_files:
        metrics = json.loads(Path(path).read_text())
        rows.append({"model": Path(path).parent.name, "arch": metrics["arch"], "n_seeds": 1,
                     **{m: metrics[m] for m in METRICS}, "n_windows": metrics["n_windows"]})
    table = pd.DataFrame(rows, columns=["model", "arch", "n_seeds", *METRICS, "n_windows"])
    table.to_csv(out_tsv, sep="\t", index=False, float_format="%.4f")
    return table

