"""Evaluation of a trained model on test windows, and the comparison table across models."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dnalm import tasks
from dnalm.device import autocast, pick_device, set_threads
from dnalm.metrics import pearson_rows
from dnalm.predict import load_model, predict_outputs
from dnalm.store import WindowStore
from dnalm.tasks.base import COMPARISON_METRICS

log = logging.getLogger(__name__)

METRICS = list(COMPARISON_METRICS)


def evaluate(checkpoint: str, store: WindowStore, out_predictions: str, out_metrics: str, *, site_threshold: float,
             out_counterfactual: str | None = None, counterfactual_species: list[str] | None = None,
             batch_size: int = 64, threads: int = 1, device: str | None = None, val_store: WindowStore | None = None,
             **settings) -> dict:
    """Predict the test windows, write `predictions.h5`, `metrics.json` and the species-token counterfactual.

    Args:
        checkpoint: `best.ckpt` of a model.
        store: Test windows.
        out_predictions: HDF5 with observed and predicted signal (N, C, L), window ids and channel names (the task
            type's `evaluate`; tracks: (N, C, bins) on the original scale).
        out_metrics: JSON of the task type's test metrics.
        site_threshold: Observed signal that makes a base a site (AUROC/AUPRC; profile tasks only).
        out_counterfactual: TSV of `species_counterfactual` (None: not computed).
        counterfactual_species: Species tokens it swaps in (`evaluate.counterfactual_species`; None: every species
            of the model's vocabulary).
        batch_size: Windows per batch.
        threads: CPU threads.
        device: Device, or None to choose.
        val_store: Validation windows, for task types that fit something on them (classification: calibration).
        settings: The task type's further evaluation settings (`TaskType.eval_settings`).

    Returns:
        The metrics.
    """
    set_threads(threads)
    dev = pick_device(device)
    model, info = load_model(checkpoint, dev)
    val = (val_store, predict_outputs(model, val_store, batch_size, dev)) if val_store is not None else None
    metrics = _test_metrics(model, info, store, out_predictions, out_metrics, batch_size, dev, run_summary(info),
                            site_threshold=site_threshold, val=val, **settings)
    if out_counterfactual is not None:
        table = species_counterfactual(model, store, batch_size, dev, counterfactual_species)
        table.to_csv(out_counterfactual, sep="\t", index=False, float_format="%.5f")
    log.info("test metrics: %s", metrics)
    return metrics


def run_summary(info: dict) -> dict:
    """The keys of metrics.json that describe the run (from its checkpoint's summary)."""
    return {"arch": info["arch"], "best_epoch": info["best_epoch"], "trainable_params": info["trainable_params"]}


def _test_metrics(model, info: dict, store: WindowStore, out_predictions: str, out_metrics: str, batch_size: int,
                  device: torch.device, extra: dict, **settings) -> dict:
    """The task type's evaluation of `model` on the test store, with `extra` keys, written to `out_metrics`."""
    batches = predict_outputs(model, store, batch_size, device)
    return write_test_metrics(batches, info, store, out_predictions, out_metrics, extra, model=model, **settings)


def write_test_metrics(batches, info: dict, store: WindowStore, out_predictions: str, out_metrics: str, extra: dict,
                       **context) -> dict:
    """The task type's evaluation of the test store's outputs `batches` (`dnalm.predict.predict_outputs`'s, or a
    merge's of shards), with `extra` keys, written to `out_metrics`; `context` as the type's `evaluate` takes it."""
    metrics = tasks.get(store.task_type).evaluate(batches, info, store, out_predictions, **context)
    metrics.update(extra)
    Path(out_metrics).write_text(json.dumps(metrics, indent=2))
    return metrics


COUNTERFACTUAL_COLUMNS = ["species", "token_in_use", "mean_delta_log_count", "mean_abs_delta_log_count",
                          "profile_pearson_median", "n_windows"]


def species_counterfactual(model, store: WindowStore, batch_size: int, device: torch.device,
                           species: list[str] | None = None) -> pd.DataFrame:
    """Predictions on the test windows with the species token swapped to each of `species` (or every species of the
    model's vocabulary).

    For each species: the mean change of the predicted log total per channel against the true token's prediction
    (signed and absolute, over windows and channels), and the median per-window Pearson between the swapped and the
    original predicted shapes (`TaskType.totals`: profile probabilities, or each track's share of its bins). Models
    without a species token (BPNet, and language models in the Nucleotide Transformer's layout) give an empty
    table.

    Args:
        model: A trained model; a language-model trunk has `use_species` and `vocab`.
        store: Test windows.
        batch_size: Windows per batch.
        device: The model's device; each batch is moved there and every species is run on it.
        species: Species tokens to swap in (`evaluate.counterfactual_species`), each checked against the vocabulary;
            the token in use is always a row. None: every species of the vocabulary.

    Returns:
        One row per species token in vocabulary order (the one in use always included, as the no-change reference).
    """
    parts = counterfactual_parts(model, store, batch_size, device, species)
    return counterfactual_table(parts, 0 if parts is None else len(store))  # no species token: the store is not read


def counterfactual_parts(model, store: WindowStore, batch_size: int, device: torch.device,
                         species: list[str] | None = None, rows: range | None = None) -> dict | None:
    """The per-window values `species_counterfactual` summarises, for `rows` of the store (None: every row).

    Returns:
        None for a model without a species token; else `names` (the species, vocabulary order), `in_use`, and per
        name the changes of the log totals (`delta`, flattened over windows and channels) and the shape Pearsons
        (`pearson`), in row order.
    """
    trunk = getattr(model, "trunk", None)
    if not hasattr(trunk, "use_species") or trunk.species is None:
        return None
    names = counterfactual_names(trunk.vocab, trunk.species, species)
    task = tasks.get(store.task_type)
    deltas: dict[str, list] = {name: [] for name in names}
    pearsons: dict[str, list] = {name: [] for name in names}
    rows = range(len(store)) if rows is None else rows
    was_training = model.training
    model.eval()
    try:
        for start in range(rows.start, rows.stop, batch_size):
            x = torch.from_numpy(store.batch(np.arange(start, min(start + batch_size, rows.stop)))[0]).to(device)
            with torch.no_grad(), autocast(device):
                ref_totals, ref_shapes = (t.float() for t in task.totals(model(x)))
                for name in names:
                    with trunk.use_species(name):
                        totals, shapes = (t.float() for t in task.totals(model(x)))
                    deltas[name].append((totals - ref_totals).cpu().numpy().ravel())
                    pearsons[name].append(pearson_rows(shapes.cpu().numpy(), ref_shapes.cpu().numpy()))
    finally:
        model.train(was_training)
    return {"names": names, "in_use": trunk.species,
            "delta": {name: _joined(deltas[name]) for name in names},
            "pearson": {name: _joined(pearsons[name]) for name in names}}


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """Per-batch arrays joined in order (an empty float32 array for none)."""
    return np.concatenate(arrays) if arrays else np.zeros(0, np.float32)


def counterfactual_table(parts: dict | None, n_windows: int) -> pd.DataFrame:
    """The counterfactual's table (`species_counterfactual`) from its values on every test window
    (`counterfactual_parts`; None: an empty table)."""
    if parts is None:
        return pd.DataFrame(columns=COUNTERFACTUAL_COLUMNS)
    rows = []
    for name in parts["names"]:
        delta = parts["delta"][name]
        rows.append({"species": name, "token_in_use": name == parts["in_use"],
                     "mean_delta_log_count": float(delta.mean()), "mean_abs_delta_log_count": float(np.abs(delta).mean()),
                     "profile_pearson_median": float(np.nanmedian(parts["pearson"][name])),
                     "n_windows": n_windows})
    return pd.DataFrame(rows, columns=COUNTERFACTUAL_COLUMNS)


def counterfactual_names(vocab: dict[str, int], in_use: str, species: list[str] | None) -> list[str]:
    """The counterfactual's species tokens in vocabulary order: `species` (None: the vocabulary's) and the one in use.

    Raises:
        ValueError: naming `evaluate.counterfactual_species` and the vocabulary's species, for a name that is not one.
    """
    from dnalm.tokenize import species_names

    known = species_names(vocab)
    names = known if species is None else [str(s).lower() for s in species]
    unknown = [s for s in names if s not in known]
    if unknown:
        raise ValueError(f"evaluate.counterfactual_species: {unknown} are not species tokens of the model's "
                         f"vocabulary; its species ({len(known)}): {', '.join(known[:50])}"
                         f"{' …' if len(known) > 50 else ''}")
    chosen = {in_use, *names}
    return [name for name in known if name in chosen]


def run_metrics(metric_files: list[str], runs: list[dict] | None = None, task_type: str = "profile") -> pd.DataFrame:
    """One row per training run from its `metrics.json` (the run id: that of `runs` in the same position when `runs`
    lists one per file, as for a classification test set's files, else the parent directory's name).

    The columns are the task type's `metrics`; its `extra_metrics` (e.g. tracks tasks' transformed-scale and
    per-track Pearson) follow after n_windows.

    Args:
        metric_files: Metrics JSON paths.
        runs: Dicts with `run`, `point` (the model the run belongs to: the configured id, or a sweep point) and
            `seed`; None (or a run not listed) makes each run its own model with an unknown seed.
        task_type: The task's type (`dnalm.tasks`).

    Returns:
        run, model, seed, arch, the metrics, n_windows, then the extra metrics any run has.
    """
    task = tasks.get(task_type)
    known = {r["run"]: r for r in runs or []}
    in_order = [r["run"] for r in runs or []] if len(runs or []) == len(metric_files) else None
    rows, extra = [], {}
    for i, path in enumerate(metric_files):
        metrics = json.loads(Path(path).read_text())
        run = in_order[i] if in_order else Path(path).parent.name
        info = known.get(run, {"point": run, "seed": None})
        more = {k: v for k, v in metrics.items() if task.extra_metrics and k.startswith(task.extra_metrics)
                and (v is None or isinstance(v, (int, float)) and not isinstance(v, bool))}  # numbers only
        extra.update(dict.fromkeys(more))
        rows.append({"run": run, "model": info["point"], "seed": info["seed"], "arch": metrics["arch"],
                     **{m: metrics[m] for m in task.metrics}, "n_windows": metrics["n_windows"], **more})
    return pd.DataFrame(rows, columns=["run", "model", "seed", "arch", *task.metrics, "n_windows", *extra])


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
    after = list(per_run.columns).index("n_windows") + 1
    extra = [c for c in per_run.columns[after:] if c not in columns]
    for column in extra:  # a task type's extra metrics (tracks: per-track), after n_windows
        table[column] = groups[column].mean().to_numpy()
    return table


def compare_models(metric_files: list[str], out_tsv: str, runs: list[dict] | None = None,
                   out_runs: str | None = None, task_type: str = "profile") -> pd.DataFrame:
    """One row per model (mean ± sd over its seeds) from `results/eval/<task>/<run>/metrics.json` files.

    The layout of SEEDS.md §1 with an sd column after every metric and the number of runs (`n_seeds`): repeated
    seeds (`models.<id>.seeds`) are averaged, each sweep point is a model of its own.

    Args:
        metric_files: Metrics JSON paths (the run id is the parent directory's name).
        out_tsv: Output comparison table.
        runs: Run → model and seed (see `run_metrics`).
        out_runs: Output table of every run, or None.
        task_type: The task's type: which metrics the table holds.

    Returns:
        The comparison table.
    """
    per_run = run_metrics(metric_files, runs, task_type)
    table = summarize_runs(per_run, list(tasks.get(task_type).metrics))
    table.to_csv(out_tsv, sep="\t", index=False, float_format="%.4f")
    if out_runs is not None:
        per_run.to_csv(out_runs, sep="\t", index=False, float_format="%.4f")
    return table


def sweep_table(metric_files: list[str], history_files: list[str], runs: list[dict], out_tsv: str,
                task_type: str = "profile") -> pd.DataFrame:
    """Summary of one model's sweep: a row per point with its parameter values, the best validation loss and test
    metrics (mean ± sd over seeds), and `best` marking the point with the lowest mean validation loss.

    The best point is chosen on validation loss, not on a test metric, so the test metrics stay an honest estimate.

    Args:
        metric_files: `metrics.json` of every run of the model.
        history_files: `history.tsv` of the same runs (their minimum `val_loss`).
        runs: Dicts with `run`, `point`, `seed` and `overrides` (dotted key → value).
        out_tsv: Output table (`results/eval/<task>/sweeps/<model>.tsv`).
        task_type: The task's type: which metrics the table holds.

    Returns:
        The table.
    """
    per_run = run_metrics(metric_files, runs, task_type)
    val = {Path(h).parent.name: pd.read_csv(h, sep="\t")["val_loss"].min() for h in history_files}
    per_run["val_loss"] = per_run["run"].map(val)
    table = summarize_runs(per_run, ["val_loss", *tasks.get(task_type).metrics]).drop(columns="arch")
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


class Ensemble(torch.nn.Module):
    """Models evaluated together: each runs on the batch, the task type's `ensemble` combines their outputs."""

    def __init__(self, models: list, task_type: str):
        super().__init__()
        self.members = torch.nn.ModuleList(models)
        self.task_type = task_type

    def forward(self, x):
        return tasks.get(self.task_type).ensemble([m(x) for m in self.members])


def evaluate_ensemble(checkpoints: list[str], store: WindowStore, out_predictions: str, out_metrics: str, *,
                      site_threshold: float, batch_size: int = 64, threads: int = 1, device: str | None = None,
                      **settings) -> dict:
    """Test metrics of several models' combined predictions (`Ensemble`) on one store, written like `evaluate`'s.

    The fold ensemble (`dnalm.crossfold`): a fold's test windows, the models that never trained on them.
    """
    set_threads(threads)
    dev = pick_device(device)
    loaded = [load_model(c, dev) for c in checkpoints]
    model = Ensemble([m for m, _ in loaded], store.task_type).eval()
    metrics = _test_metrics(model, loaded[0][1], store, out_predictions, out_metrics, batch_size, dev,
                            {"members": len(checkpoints), "checkpoints": list(checkpoints)},
                            site_threshold=site_threshold, **settings)
    log.info("ensemble of %d models: %s", len(checkpoints), metrics)
    return metrics
