"""The interface every task type implements: windows, targets, head, loss, validation and test metrics."""

from __future__ import annotations

from typing import Any

import numpy as np

#: Test metrics every comparison table shows, in order (a task type may leave some NaN).
COMPARISON_METRICS = ("pearson_median", "pearson_mean", "auprc", "auroc", "test_loss", "count_pearson")


class TaskType:
    """What a task type decides; one subclass per module of `dnalm.tasks`, one instance in `TASK_TYPES`.

    Config-side attributes and `check` need nothing heavier than numpy, so the Snakefile reads them at parse time;
    the training and evaluation methods import torch when called.

    Attributes:
        name: The config's `tasks.<id>.type`.
        windows: Which rule makes the candidate windows: `candidates` (rule make_windows, site-centred) or `tiles`
            (rule tile_windows); the file is results/windows/<task>/<windows>.tsv.
        metrics: Columns of comparison.tsv after the run columns (mean ± sd over seeds).
        extra_metrics: Prefixes of further per-run metric keys kept after `n_windows` (per-track metrics).
        site_centred: Windows are placed around sites: attributions are also summarised by offset from the site
            (`dnalm.positional`).
        val_columns: Columns of history.tsv after the common ones (`val_summary`'s keys besides
            val_pearson_median).
        fold_ensemble: Cross-validated tasks of this type get a fold ensemble (`dnalm.crossfold`); not where
            evaluation fits something on the validation windows, which the ensemble's second model trained on.
        interpretable: Attributions, variant effects and genome-wide prediction tracks are defined for this type's
            outputs; the workflow skips them for tasks of a type without (`dnalm.config.interpret_pairs`,
            `dnalm.config_variants`), and a model named in `interpret.models`, `variants.models` or
            `prediction_tracks.models` needs a task of a type with them.
        attribution_outputs: The outputs attributions explain (`dnalm.attribution_outputs.OUTPUTS`); None: the config's
            interpret.outputs.
        eval_splits: The splits whose model outputs `evaluate` reads (`test`, and `val` where it fits something on
            the validation windows); a sharded evaluation predicts these.
    """

    name: str = ""
    windows: str = "candidates"
    metrics: tuple[str, ...] = COMPARISON_METRICS
    extra_metrics: tuple[str, ...] = ()
    site_centred: bool = False
    val_columns: tuple[str, ...] = ()
    attribution_outputs: tuple[str, ...] | None = None
    fold_ensemble: bool = True
    eval_splits: tuple[str, ...] = ("test",)
    interpretable: bool = True

    # ------------------------------------------------------------------------------------------------ config side
    def check(self, task: str, spec: dict, cfg: dict) -> None:
        """Cross-checks of one task's config block; errors name the dotted key."""

    def window_params(self, spec: dict, species: str) -> dict:
        """Params of the rule that makes this type's candidate windows, for one species' genome."""
        raise NotImplementedError

    def store_bins(self, spec: dict) -> dict | None:
        """The window store's binning of the targets (None: base resolution)."""
        return None

    def attribution_selection(self, task: str, spec: dict, interpret: dict) -> dict | None:
        """What this type's attribution outputs select from the model's outputs (tracks: channels and bins; None:
        nothing to select), from the config's `interpret` block; errors name the key."""
        return None

    def eval_settings(self, spec: dict) -> dict:
        """Settings of the task's evaluation besides the site threshold (keyword arguments of `evaluate`)."""
        return {}

    # ---------------------------------------------------------------------------------------------- training side
    def head(self, store, tp: dict, arch: str = "bpnet") -> tuple[str, dict]:
        """The head every trunk gets on this task type (`dnalm.models.heads.HEADS`) and its settings (`tp`: the
        model's train block; `arch`: its trunk)."""
        raise NotImplementedError

    def count_weight(self, store, tp: dict):
        """The loss's setting from the train block `tp` and the training data (profile: the count weight; 0 for
        types without one), passed to every `loss` call."""
        return 0.0

    def epoch_order(self, store, rng: np.random.Generator, tp: dict) -> np.ndarray:
        """The order of the training windows in one epoch (default: a permutation)."""
        return rng.permutation(len(store))

    def prepare(self, model, store, revcomp: bool) -> bool:
        """Set data-dependent starting values of the head (e.g. a count bias); returns whether it did."""
        return False

    def loss(self, output, target, count_weight: float):
        """(total, first part, second part) of a batch's loss, each a scalar tensor."""
        raise NotImplementedError

    def loss_weight(self, target, count_weight) -> float:
        """What `loss` averages over in a batch of these targets: the number of windows (the loss is a mean over
        windows). A data-parallel step weighs each process's part of the global batch by it, so the step's gradient
        is that of the loss over the whole batch (`dnalm.training.train_step`)."""
        return float(len(target))

    def val_pearson(self, output, target) -> np.ndarray:
        """Per-window (and channel) Pearson of predicted and observed signal, for the validation history."""
        raise NotImplementedError

    def val_summary(self, parts: list[np.ndarray]) -> dict:
        """History columns of one validation from the `val_pearson` of its batches: their median Pearson."""
        r = np.concatenate(parts) if parts else np.array([np.nan])
        return {"val_pearson_median": float(np.nanmedian(r)) if np.isfinite(r).any() else float("nan")}

    def totals(self, output) -> tuple[Any, Any]:
        """(log total per channel (B, C), shape over positions (B, C, L) summing to 1): what the species-token
        counterfactual compares."""
        raise NotImplementedError

    def ensemble(self, outputs: list):
        """One output from the outputs of several models on the same batch (the fold ensemble): the default, for
        log-rate tensors (tracks), is the log of the mean rate."""
        import math

        import torch

        return torch.logsumexp(torch.stack(outputs), dim=0) - math.log(len(outputs))

    # -------------------------------------------------------------------------------------------- evaluation side
    def capture(self, model):
        """A context manager collecting what `evaluate` reads from `model` besides its outputs, one array per forward
        pass while it is open (classification: the head's pooled features); it yields name → list of arrays.
        Default: nothing."""
        from contextlib import nullcontext

        return nullcontext({})

    def evaluate(self, batches, info: dict, store, out_predictions: str, *, site_threshold: float, **context) -> dict:
        """Write predictions.h5 from the model's outputs on every test window and return the test metrics.

        Args:
            batches: (index, output, targets) of every batch of the store, in order (`dnalm.predict.predict_outputs`).
            info: The model's summary (`best.ckpt`), e.g. its count weight.
            store: The test windows.
            out_predictions: predictions.h5 to write (`prediction_datasets`).
            site_threshold: Observed signal that makes a base a site (profile tasks).
            context: `model` (the model the batches come from), `val` ((validation store, its batches)), `captured`
                (split → name → list of arrays: what `capture` collected, for batches that were not computed here, as a
                sharded evaluation's merge gives them) and the task type's `eval_settings`, for the types that use
                them.
        """
        raise NotImplementedError


def prediction_datasets(h5, store, width: int):
    """Create the observed and predicted (N, C, width) datasets, window ids and channel names of predictions.h5."""
    n, c = len(store), len(store.channels)
    chunks = (max(min(n, 256), 1), c, width)
    obs = h5.create_dataset("observed", (n, c, width), dtype="f4", chunks=chunks)
    pred = h5.create_dataset("predicted", (n, c, width), dtype="f4", chunks=chunks)
    h5.create_dataset("window_id", data=np.array(store.meta["ids"], dtype="S"))
    h5.attrs["channels"] = store.channels
    return obs, pred


def channel_layout(targets: list[dict]) -> tuple[list[str], list[int]]:
    """Channel names and the channel permutation that reverse-complementing a window applies.

    A stranded target gives channels `<name>/+` (the window's strand) and `<name>/-` (the other strand), swapped
    by reverse-complementing; an unstranded target gives one channel `<name>`.
    """
    names, perm = [], []
    for target in targets:
        if "track" in target:
            perm.append(len(names))
            names.append(target["name"])
        else:
            i = len(names)
            perm.extend([i + 1, i])
            names.extend([f"{target['name']}/+", f"{target['name']}/-"])
    return names, perm
