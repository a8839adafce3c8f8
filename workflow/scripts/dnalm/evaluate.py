"""Evaluation of a trained model on test windows, and the comparison table across models."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch

from dnalm.losses import profile_count_loss, task_loss
from dnalm.metrics import pearson_rows, profile_metrics, track_metrics
from dnalm.store import WindowStore
from dnalm.tracks import inverse_transform
from dnalm.training import (autocast, expected_signal, load_model, pick_device, predict, predict_outputs,
                            predicted_signal)

log = logging.getLogger(__name__)

METRICS = ["pearson_median", "pearson_mean", "auprc", "auroc", "test_loss", "count_pearson"]
#: Tracks tasks' extra comparison.tsv columns (after n_windows): transformed-scale and per-track metrics.
TRACK_METRIC_PREFIXES = ("pearson_median_transformed", "pearson_mean_transformed", "track_pearson",
                         "window_pearson_median")


def evaluate(checkpoint: str, store: WindowStore, out_predictions: str, out_metrics: str, *, site_threshold: float,
             out_counterfactual: str | None = None, batch_size: int = 64, threads: int = 1,
             device: str | None = None) -> dict:
    """Predict the test windows, write `predictions.h5`, `metrics.json` and the species-token counterfactual.

    Args:
        checkpoint: `best.ckpt` of a model.
        store: Test windows.
        out_predictions: HDF5 with observed and predicted signal (N, C, L), window ids and channel names; for a
            tracks store (N, C, bins) on the original scale (`evaluate_tracks`).
        out_metrics: JSON of test loss and the metrics of `dnalm.metrics.profile_metrics` (tracks stores:
            `dnalm.metrics.track_metrics` on both scales).
        site_threshold: Observed signal that makes a base a site (AUROC/AUPRC; profile tasks only).
        out_counterfactual: TSV of `species_counterfactual` (None: not computed).
        batch_size: Windows per batch.
        threads: CPU threads.
        device: Device, or None to choose.

    Returns:
        The metrics.
    """
    torch.set_num_threads(threads)
    dev = pick_device(device)
    model, info = load_model(checkpoint, dev)
    if store.task_type == "tracks":
        metrics = evaluate_tracks(model, info, store, out_predictions, batch_size, dev)
    else:
        metrics = evaluate_profiles(model, info, store, out_predictions, site_threshold, batch_size, dev)
    metrics.update(arch=info["arch"], best_epoch=info["best_epoch"], trainable_params=info["trainable_params"])
    Path(out_metrics).write_text(json.dumps(metrics, indent=2))
    if out_counterfactual is not None:
        table = species_counterfactual(model, store, batch_size, dev)
        table.to_csv(out_counterfactual, sep="\t", index=False, float_format="%.5f")
    log.info("test metrics: %s", metrics)
    return metrics


def _prediction_datasets(h5: h5py.File, store: WindowStore, width: int):
    """Create the observed and predicted (N, C, width) datasets, window ids and channel names of predictions.h5."""
    n, c = len(store), len(store.channels)
    obs = h5.create_dataset("observed", (n, c, width), dtype="f4", chunks=(max(min(n, 256), 1), c, width))
    pred = h5.create_dataset("predicted", (n, c, width), dtype="f4", chunks=(max(min(n, 256), 1), c, width))
    h5.create_dataset("window_id", data=np.array(store.meta["ids"], dtype="S"))
    h5.attrs["channels"] = store.channels
    return obs, pred


def evaluate_profiles(model, info: dict, store: WindowStore, out_predictions: str, site_threshold: float,
                      batch_size: int, device: torch.device) -> dict:
    """Profile tasks: write predictions.h5 (base resolution) and return loss and `profile_metrics`."""
    tmp = Path(out_predictions).with_name(f".{Path(out_predictions).name}.tmp")
    losses = np.zeros(3)
    with h5py.File(tmp, "w") as h5:
        obs, pred = _prediction_datasets(h5, store, store.length)
        for index, logits, log_counts, y in predict(model, store, batch_size, device):
            parts = profile_count_loss(logits, log_counts, y, info["count_weight"])
            losses += np.array([p.item() for p in parts]) * len(index)
            obs[index[0] : index[-1] + 1] = y.numpy()
            pred[index[0] : index[-1] + 1] = expected_signal(logits, log_counts).numpy()
        metrics = profile_metrics(pred[:], obs[:], site_threshold)
    tmp.replace(out_predictions)
    total, profile, count = losses / max(len(store), 1)
    metrics.update(test_loss=total, profile_nll=profile, count_mse=count)
    return metrics


def evaluate_tracks(model, info: dict, store: WindowStore, out_predictions: str, batch_size: int,
                    device: torch.device) -> dict:
    """Tracks tasks: predictions and metrics on the original scale, and metrics on the transformed scale too.

    The model predicts the transformed targets (the store's `transform`); `inverse_transform` takes predictions and
    targets back to the bigWig's binned scale, where `pearson_*`, `track_pearson/*` and `count_pearson` are
    computed; the `*_transformed` keys are the same metrics on the training scale. `test_loss` is the Poisson NLL on
    the transformed scale (the training loss). predictions.h5 holds (N, tracks, bins) on the original scale.
    """
    tmp = Path(out_predictions).with_name(f".{Path(out_predictions).name}.tmp")
    loss, n_bins = 0.0, store.length // store.bin_size
    pred_t = np.empty((len(store), len(store.channels), n_bins), dtype=np.float32)
    obs_t = np.empty_like(pred_t)
    for index, output, y in predict_outputs(model, store, batch_size, device):
        loss += task_loss(output, y, 0.0)[0].item() * len(index)
        pred_t[index] = predicted_signal(output).numpy()
        obs_t[index] = y.numpy()
    pred, obs = inverse_transform(pred_t, store.transform), inverse_transform(obs_t, store.transform)
    with h5py.File(tmp, "w") as h5:
        obs_ds, pred_ds = _prediction_datasets(h5, store, n_bins)
        obs_ds[:], pred_ds[:] = obs, pred
        h5.attrs.update(bin_size=store.bin_size, transform=store.transform, scale="original")
    tmp.replace(out_predictions)
    metrics = {**track_metrics(pred, obs, store.channels),
               **track_metrics(pred_t, obs_t, store.channels, suffix="_transformed"),
               "auroc": float("nan"), "auprc": float("nan"), "test_loss": loss / max(len(store), 1),
               "n_windows": len(store), "bin_size": store.bin_size, "transform": store.transform,
               "metrics_scale": "original (inverse-transformed); *_transformed: training scale"}
    return metrics


COUNTERFACTUAL_COLUMNS = ["species", "token_in_use", "mean_delta_log_count", "mean_abs_delta_log_count",
                          "profile_pearson_median", "n_windows"]


def species_counterfactual(model, store: WindowStore, batch_size: int, device: torch.device) -> pd.DataFrame:
    """Predictions on the test windows with the species token swapped to every species of the model's vocabulary.

    For each species: the mean change of the predicted log(1 + total count) against the true token's prediction
    (signed and absolute, over windows and channels), and the median per-window Pearson between the swapped and the
    original predicted profiles. Models without a species token (BPNet) give an empty table.

    Args:
        model: A trained model; language models have `use_species` and `vocab`.
        store: Test windows.
        batch_size: Windows per batch.
        device: Device.

    Returns:
        One row per species token (the one in use included, as the no-change reference).
    """
    if not hasattr(model, "use_species"):
        return pd.DataFrame(columns=COUNTERFACTUAL_COLUMNS)
    from dnalm.tokenize import species_names

    names = species_names(model.vocab)
    deltas: dict[str, list] = {name: [] for name in names}
    pearsons: dict[str, list] = {name: [] for name in names}
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(store), batch_size):
            x = torch.from_numpy(store.batch(np.arange(start, min(start + batch_size, len(store))))[0]).to(device)
            with torch.no_grad(), autocast(device):
                ref_logits, ref_counts = (t.float() for t in model(x))
                for name in names:
                    with model.use_species(name):
                        logits, counts = (t.float() for t in model(x))
                    deltas[name].append((counts - ref_counts).cpu().numpy().ravel())
                    pearsons[name].append(pearson_rows(torch.softmax(logits, -1).cpu().numpy(),
                                                       torch.softmax(ref_logits, -1).cpu().numpy()))
    finally:
        model.train(was_training)
    rows = []
    for name in names:
        delta = np.concatenate(deltas[name])
        rows.append({"species": name, "token_in_use": name == model.species,
                     "mean_delta_log_count": float(delta.mean()), "mean_abs_delta_log_count": float(np.abs(delta).mean()),
                     "profile_pearson_median": float(np.nanmedian(np.concatenate(pearsons[name]))),
                     "n_windows": len(store)})
    return pd.DataFrame(rows, columns=COUNTERFACTUAL_COLUMNS)


RUN_COLUMNS = ["run", "model", "seed", "arch", *METRICS, "n_windows"]


def run_metrics(metric_files: list[str], runs: list[dict] | None = None) -> pd.DataFrame:
    """One row per training run from its `metrics.json` (the run id is the parent directory's name).

    Tracks tasks add columns after n_windows: the transformed-scale Pearson and per-track metrics
    (`track_pearson/<track>`, `window_pearson_median/<track>` and their `_transformed` forms).

    Args:
        metric_files: Metrics JSON paths.
        runs: Dicts with `run`, `point` (the model the run belongs to: the configured id, or a sweep point) and
            `seed`; None (or a run not listed) makes each run its own model with an unknown seed.

    Returns:
        Columns `RUN_COLUMNS`, then the tracks metrics any run has.
    """
    known = {r["run"]: r for r in runs or []}
    rows, extra = [], {}
    for path in metric_files:
        metrics = json.loads(Path(path).read_text())
        run = Path(path).parent.name
        info = known.get(run, {"point": run, "seed": None})
        tracks = {k: v for k, v in metrics.items() if k.startswith(TRACK_METRIC_PREFIXES)}
        extra.update(dict.fromkeys(tracks))
        rows.append({"run": run, "model": info["point"], "seed": info["seed"], "arch": metrics["arch"],
                     **{m: metrics[m] for m in METRICS}, "n_windows": metrics["n_windows"], **tracks})
    return pd.DataFrame(rows, columns=[*RUN_COLUMNS, *extra])


def summarize_runs(per_run: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Mean, sample sd (ddof 1; empty for a single run) and number of runs of `columns` per model, in input order.

    Returns:
        `model`, `arch`, `n_seeds`, then `<column>` and `<column>_sd` for each column, then `n_windows`.
    """
    groups = per_run.groupby("model", sort=False)
    table = pd.DataFrame({"model": list(groups.groups), "arch": groups["arch"].first().to_numpy(),
                          "n_seeds": groups.size().to_numpy()})
    for column in columns:
        values = groups[column]
        table[column] = values.mean().to_numpy()
        table[f"{column}_sd"] = values.std(ddof=1).to_numpy()
    table["n_windows"] = groups["n_windows"].first().to_numpy()
    extra = [c for c in per_run.columns[len(RUN_COLUMNS):] if c not in columns]
    for column in extra:  # tracks tasks' per-track metrics, after n_windows
        table[column] = groups[column].mean().to_numpy()
    return table


def compare_models(metric_files: list[str], out_tsv: str, runs: list[dict] | None = None,
                   out_runs: str | None = None) -> pd.DataFrame:
    """One row per model (mean ± sd over its seeds) from `results/eval/<task>/<run>/metrics.json` files.

    The layout of SEEDS.md §1 with an sd column after every metric and the number of runs (`n_seeds`): repeated
    seeds (`models.<id>.seeds`) are averaged, each sweep point is a model of its own.

    Args:
        metric_files: Metrics JSON paths (the run id is the parent directory's name).
        out_tsv: Output comparison table.
        runs: Run → model and seed (see `run_metrics`).
        out_runs: Output table of every run (`RUN_COLUMNS`), or None.

    Returns:
        The comparison table.
    """
    per_run = run_metrics(metric_files, runs)
    table = summarize_runs(per_run, METRICS)
    table.to_csv(out_tsv, sep="\t", index=False, float_format="%.4f")
    if out_runs is not None:
        per_run.to_csv(out_runs, sep="\t", index=False, float_format="%.4f")
    return table


def sweep_table(metric_files: list[str], history_files: list[str], runs: list[dict], out_tsv: str) -> pd.DataFrame:
    """Summary of one model's sweep: a row per point with its parameter values, the best validation loss and test
    metrics (mean ± sd over seeds), and `best` marking the point with the lowest mean validation loss.

    The best point is chosen on validation loss, not on a test metric, so the test metrics stay an honest estimate.

    Args:
        metric_files: `metrics.json` of every run of the model.
        history_files: `history.tsv` of the same runs (their minimum `val_loss`).
        runs: Dicts with `run`, `point`, `seed` and `overrides` (dotted key → value).
        out_tsv: Output table (`results/eval/<task>/sweeps/<model>.tsv`).

    Returns:
        The table.
    """
    per_run = run_metrics(metric_files, runs)
    val = {Path(h).parent.name: pd.read_csv(h, sep="\t")["val_loss"].min() for h in history_files}
    per_run["val_loss"] = per_run["run"].map(val)
    table = summarize_runs(per_run, ["val_loss", *METRICS]).drop(columns="arch")
    overrides = {r["point"]: r["overrides"] for r in runs}
    keys = list(dict.fromkeys(k for r in runs for k in r["overrides"]))
    for i, key in enumerate(keys):
        table.insert(1 + i, key, [_cell(overrides[m].get(key)) for m in table["model"]])
    table["best"] = table["val_loss"] == table["val_loss"].min()
    table.to_csv(out_tsv, sep="\t", index=False, float_format="%.6g")
    return table


def _cell(value):
    """A swept value as a table cell (lists joined with commas)."""
    return ",".join(map(str, value)) if isinstance(value, list) else value
