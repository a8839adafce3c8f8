"""Evaluation split into window shards (`inference.evaluate`): each shard's model outputs, and their merge.

A shard (rule evaluate_shard) runs the model on its batches of the test windows (and of the validation windows, for
task types whose evaluation reads them: `TaskType.eval_splits`), with what the type captures besides the outputs
and the species-token counterfactual's per-window values, and saves them. The merge (rule merge_evaluation) feeds
the saved outputs, batch by batch in the unsharded order, to the same evaluation code `dnalm.evaluate.evaluate`
uses, so predictions.h5, metrics.json and counterfactual.tsv are those of the unsharded job, bit for bit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch

from dnalm import tasks
from dnalm.checkpoint import load_verified
from dnalm.device import pick_device, set_threads
from dnalm.evaluate import counterfactual_parts, counterfactual_table, run_summary, write_test_metrics
from dnalm.predict import load_model, predict_outputs
from dnalm.shards import check_parts, save_part, shard_rows
from dnalm.store import WindowStore

log = logging.getLogger(__name__)


def evaluate_shard(
    checkpoint: str,
    store: WindowStore,
    out_part: str,
    *,
    shard: int,
    shards: int,
    val_store: WindowStore | None = None,
    counterfactual: bool = True,
    counterfactual_species: list[str] | None = None,
    batch_size: int = 64,
    threads: int = 1,
    device: str | None = None,
    **settings,
) -> dict:
    """Predict one shard's test (and validation) batches and save its part of the evaluation.

    Args:
        checkpoint: `best.ckpt` of a model.
        store: Test windows.
        out_part: The shard's .npz: per split `<split>.rows` (first, stop), the outputs `<split>.out.<k>`, what the
            task type captures `<split>.captured.<name>`; the counterfactual's `cf.*` values.
        shard: This shard (0-based).
        shards: The evaluation's shards (`inference.evaluate`).
        val_store: Validation windows (predicted when the task type's evaluation reads them).
        counterfactual: Compute the species-token counterfactual's values.
        counterfactual_species: Its species (`dnalm.evaluate.species_counterfactual`).
        batch_size: Windows per batch: the unsharded evaluation's.
        threads: CPU threads.
        device: Device, or None to choose.
        settings: The task type's evaluation settings (unused here; the merge applies them).

    Returns:
        Rows predicted per split.
    """
    set_threads(threads)
    dev = pick_device(device)
    model, _ = load_model(checkpoint, dev)
    task = tasks.get(store.task_type)
    arrays: dict[str, np.ndarray] = {"shard": np.array([shard, shards])}
    done = {}
    for split, windows in (("test", store), ("val", val_store)):
        if split not in task.eval_splits or windows is None:
            continue
        rows = shard_rows(len(windows), batch_size, shards, shard)
        with task.capture(model) as captured:
            outputs = [output for _, output, _ in predict_outputs(model, windows, batch_size, dev, rows)]
        arrays.update(_pack(split, rows, outputs, captured))
        done[split] = len(rows)
    if counterfactual:
        rows = shard_rows(len(store), batch_size, shards, shard)
        parts = counterfactual_parts(model, store, batch_size, dev, counterfactual_species, rows)
        if parts is not None:
            arrays.update({"cf.names": np.array(parts["names"]), "cf.in_use": np.array(parts["in_use"])})
            for i, name in enumerate(parts["names"]):
                arrays[f"cf.delta.{i}"], arrays[f"cf.pearson.{i}"] = parts["delta"][name], parts["pearson"][name]
    save_part(out_part, **arrays)
    log.info("shard %d of %d: %s rows", shard, shards, done)
    return done


def _pack(split: str, rows: range, outputs: list, captured: dict) -> dict[str, np.ndarray]:
    """The arrays of one split of a shard: its rows, outputs joined over batches, captured arrays joined."""
    arrays = {f"{split}.rows": np.array([rows.start, rows.stop])}
    if outputs:
        is_tuple = not isinstance(outputs[0], torch.Tensor)
        columns = list(zip(*outputs, strict=True)) if is_tuple else [outputs]
        arrays[f"{split}.tuple"] = np.array(is_tuple)
        for k, column in enumerate(columns):
            arrays[f"{split}.out.{k}"] = torch.cat(column).numpy()
    for name, values in captured.items():
        if values:
            arrays[f"{split}.captured.{name}"] = np.concatenate([np.asarray(v) for v in values])
    return arrays


def merge_evaluation(
    checkpoint: str,
    store: WindowStore,
    parts: list[str],
    out_predictions: str,
    out_metrics: str,
    *,
    site_threshold: float,
    out_counterfactual: str | None = None,
    val_store: WindowStore | None = None,
    batch_size: int = 64,
    counterfactual_species: list[str] | None = None,
    **settings,
) -> dict:
    """Evaluate the shards' saved outputs as one run: the outputs `dnalm.evaluate.evaluate` writes, from the parts.

    Args:
        checkpoint: `best.ckpt` of the model (its summary; the model is not run).
        store: Test windows.
        parts: The shards' .npz files (`evaluate_shard`), in shard order.
        out_predictions: predictions.h5 (the task type's `evaluate`).
        out_metrics: metrics.json.
        site_threshold: Observed signal that makes a base a site (profile tasks).
        out_counterfactual: counterfactual.tsv, or None.
        val_store: Validation windows (task types whose evaluation reads them).
        batch_size: Windows per batch: the shards'.
        counterfactual_species: Unused (the shards chose the species); accepted with the evaluation's settings.
        settings: The task type's further evaluation settings.

    Returns:
        The metrics.
    """
    info = {k: v for k, v in load_verified(checkpoint).items() if k != "state_dict"}
    task = tasks.get(store.task_type)
    files = [np.load(p) for p in parts]
    try:
        splits = {"test": store, "val": val_store}
        splits = {s: w for s, w in splits.items() if s in task.eval_splits and w is not None}
        for i, f in enumerate(files):
            if f["shard"].tolist() != [i, len(files)]:
                raise ValueError(
                    f"{parts[i]} is shard {f['shard'].tolist()} (shard, shards), expected {[i, len(files)]}"
                )
        for split, windows in splits.items():
            check_parts([tuple(f[f"{split}.rows"].tolist()) for f in files], len(windows), parts)
        captured = {
            split: {
                key.rsplit(".", 1)[1]: [f[key] for f in files if key in f]
                for key in sorted({k for f in files for k in f.files if k.startswith(f"{split}.captured.")})
            }
            for split in splits
        }
        context = {"val": (val_store, _replay(files, "val", val_store, batch_size))} if "val" in splits else {}
        metrics = write_test_metrics(
            _replay(files, "test", store, batch_size),
            info,
            store,
            out_predictions,
            out_metrics,
            run_summary(info),
            site_threshold=site_threshold,
            captured=captured,
            **context,
            **settings,
        )
        if out_counterfactual is not None:
            counterfactual_table(_counterfactual(files), len(store)).to_csv(
                out_counterfactual, sep="\t", index=False, float_format="%.5f"
            )
    finally:
        for f in files:
            f.close()
    log.info("test metrics from %d shards: %s", len(parts), metrics)
    return metrics


def _replay(files: list, split: str, store: WindowStore, batch_size: int) -> Iterator[tuple]:
    """(index, output, targets) of every batch of a split from the shards' saved outputs, as `predict_outputs`
    yields them in the unsharded run (the same batches: shards start at multiples of `batch_size`)."""
    for f in files:
        first, stop = f[f"{split}.rows"].tolist()
        if stop == first:
            continue
        is_tuple = bool(f[f"{split}.tuple"])
        keys = sorted((k for k in f.files if k.startswith(f"{split}.out.")), key=lambda k: int(k.rsplit(".", 1)[1]))
        outputs = [torch.from_numpy(f[k]) for k in keys]
        for start in range(first, stop, batch_size):
            index = np.arange(start, min(start + batch_size, stop))
            rows = slice(start - first, start - first + len(index))
            output = tuple(o[rows].clone() for o in outputs) if is_tuple else outputs[0][rows].clone()
            yield index, output, torch.from_numpy(store.batch(index)[1])


def _counterfactual(files: list) -> dict | None:
    """The counterfactual's values (`dnalm.evaluate.counterfactual_parts`) joined over the shards; None without."""
    if "cf.names" not in files[0].files:
        return None
    names = files[0]["cf.names"].tolist()
    return {
        "names": names,
        "in_use": str(files[0]["cf.in_use"]),
        "delta": {n: np.concatenate([f[f"cf.delta.{i}"] for f in files]) for i, n in enumerate(names)},
        "pearson": {n: np.concatenate([f[f"cf.pearson.{i}"] for f in files]) for i, n in enumerate(names)},
    }
