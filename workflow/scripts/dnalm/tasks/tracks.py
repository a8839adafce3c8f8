"""Tracks tasks: binned multi-track coverage in windows tiled along the genome (Borzoi-style targets).

Windows: tiles of `window.length` every `window.stride` bp along the split's chromosomes (rule tile_windows,
`dnalm.tiling`). Targets: each target's bigWig signal summed or averaged into bins and transformed (`transform`;
evaluation inverts it exactly). Head: `binned` (a log-rate per track and bin). Loss: Poisson NLL on the transformed
scale. Metrics: Pearson over bins per window and track, per-track Pearson, count Pearson, on both scales. Attributions:
the `tracks` output (`dnalm.attribution_outputs`) of the channels and central bins `attribution_selection` picks.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dnalm.tasks.base import TaskType, channel_layout, prediction_datasets

log = logging.getLogger(__name__)

#: Target transforms; each has an exact inverse (`inverse_transform`).
TRANSFORMS = ("none", "log1p", "squash")
#: Borzoi's squashed scale: y ** SQUASH_EXPONENT, then soft clip above SQUASH_CLIP.
SQUASH_EXPONENT = 0.75
SQUASH_CLIP = 384.0
AGGREGATES = ("mean", "sum")


def transform(y: np.ndarray, kind: str) -> np.ndarray:
    """Transform non-negative binned signal.

    `log1p`: log(1 + y). `squash` (Borzoi, Linder et al. 2025): z = y^(3/4), then above 384 the soft clip
    z ← 384 + sqrt(z − 384), applied to the y^(3/4)-scaled value. `none`: y unchanged.

    Raises:
        ValueError: Negative values (neither transform is defined for them).
    """
    y = np.asarray(y, dtype=np.float64)
    if kind == "none":
        return y
    if np.any(y < 0):
        raise ValueError(f"transform {kind!r} needs non-negative signal; got a minimum of {y.min()}; "
                         "use bins.transform: none for signed tracks")
    if kind == "log1p":
        return np.log1p(y)
    if kind == "squash":
        z = y ** SQUASH_EXPONENT
        over = z > SQUASH_CLIP
        z[over] = SQUASH_CLIP + np.sqrt(z[over] - SQUASH_CLIP)
        return z
    raise ValueError(f"unknown transform {kind!r}; known: {', '.join(TRANSFORMS)}")


def inverse_transform(z: np.ndarray, kind: str) -> np.ndarray:
    """Exact inverse of `transform` (values below the transform's range are clipped to its minimum, 0)."""
    z = np.asarray(z, dtype=np.float64)
    if kind == "none":
        return z
    if kind == "log1p":
        return np.expm1(np.clip(z, 0, None))
    if kind == "squash":
        z = np.clip(z, 0, None)
        over = z > SQUASH_CLIP
        z = z.copy()
        z[over] = SQUASH_CLIP + (z[over] - SQUASH_CLIP) ** 2
        return z ** (1 / SQUASH_EXPONENT)
    raise ValueError(f"unknown transform {kind!r}; known: {', '.join(TRANSFORMS)}")


def bin_signal(values: np.ndarray, bin_size: int, aggregate: str) -> np.ndarray:
    """Sum or average base-resolution signal (C, L) into bins (C, L // bin_size); L must be a multiple of bin_size."""
    channels, length = values.shape
    if length % bin_size:
        raise ValueError(f"window length {length} is not a multiple of bins.size={bin_size}")
    binned = values.reshape(channels, length // bin_size, bin_size).astype(np.float64)
    if aggregate == "sum":
        return binned.sum(axis=2)
    if aggregate == "mean":
        return binned.mean(axis=2)
    raise ValueError(f"unknown bins.aggregate {aggregate!r}; known: {', '.join(AGGREGATES)}")


def attribution_selection(channels: list[str], length: int, bin_size: int, targets: list[str] | None,
                          width: int | None, where: str) -> dict:
    """The tracks and bins whose predicted signal the `tracks` attribution output sums (`interpret.tracks`).

    Args:
        channels: The task's output channels (`<name>/+`, `<name>/-` for a stranded target).
        length: Window length (bp); the model predicts length / bin_size bins.
        bin_size: Bases per bin.
        targets: Channel or target names (a stranded target's name selects both strands); None: every channel.
        width: The central bp whose bins are summed (every bin that overlaps them); None: the central quarter.
        where: The task's config key, for errors.

    Returns:
        `channels` (indices), `names` (their names), `bins` ([start, end) of the bins), `bp` (the bins' bases).

    Raises:
        ValueError: An unknown name (the error lists the channels) or a range longer than the window.
    """
    index: list[int] = []
    for name in targets if targets is not None else channels:
        hits = [i for i, c in enumerate(channels) if c in (name, f"{name}/+", f"{name}/-")]
        if not hits:
            raise ValueError(f"interpret.tracks.targets: {name!r} is not a channel of {where} (its channels: "
                             f"{', '.join(channels)}; a stranded target's name selects both of its strands)")
        index += [i for i in hits if i not in index]
    width = max(length // 4, 1) if width is None else width
    if width > length:
        raise ValueError(f"interpret.tracks.range: {width} bp is longer than the {length} bp windows of {where}")
    lo = (length - width) // 2
    bins = [lo // bin_size, -(-(lo + width) // bin_size)]
    return {"channels": index, "names": [channels[i] for i in index], "bins": bins,
            "bp": [bins[0] * bin_size, bins[1] * bin_size]}


class TracksTask(TaskType):
    """Binned multi-track tasks (see the module docstring)."""

    name = "tracks"
    windows = "tiles"
    extra_metrics = ("pearson_median_transformed", "pearson_mean_transformed", "track_pearson",
                     "window_pearson_median")
    attribution_outputs = ("tracks",)

    def attribution_selection(self, task: str, spec: dict, interpret: dict) -> dict:
        """`interpret.tracks` resolved against the task's channels and windows (`attribution_selection`)."""
        keys = interpret["tracks"]
        return attribution_selection(channel_layout(spec["targets"])[0], spec["window"]["length"],
                                     spec["bins"]["size"], keys["targets"], keys["range"], f"tasks.{task}")

    def check(self, task: str, spec: dict, cfg: dict) -> None:
        """Window length and flank are whole bins; no extra train species (their windows are made around sites)."""
        size = spec["bins"]["size"]
        for key in ("length", "flank"):
            if spec["window"][key] % size:
                raise ValueError(f"tasks.{task}.window.{key} ({spec['window'][key]}) must be a multiple of "
                                 f"tasks.{task}.bins.size ({size})")
        if spec["extra_train_species"]:
            raise ValueError(f"tasks.{task}.extra_train_species: not available for tracks tasks yet (extra species' "
                             "windows are made around sites, as for profile tasks); remove the key or use a profile "
                             "task")

    def window_params(self, spec: dict, species: str) -> dict:
        """Params of rule tile_windows (`dnalm.tiling.tile_windows`): the split's chromosomes (None: the whole
        genome) and the window keys."""
        chroms = spec["split"].get("chromosomes")
        names = None
        if chroms is not None and chroms["train"] is not None:
            names = list(dict.fromkeys(chroms["train"] + chroms["val"] + chroms["test"]))
        keys = ("length", "stride", "flank", "max_n_fraction", "gap_length")
        return {"species": species, "chromosomes": names, **{k: spec["window"][k] for k in keys}}

    def store_bins(self, spec: dict) -> dict | None:
        return dict(spec["bins"])

    def head(self, store, tp: dict, arch: str = "bpnet") -> tuple[str, dict]:
        return "binned", {"bin_size": store.bin_size}

    def loss(self, output, target, count_weight: float):
        import torch

        from dnalm.losses import poisson_nll

        loss = poisson_nll(output, target)
        return loss, loss, torch.zeros((), dtype=loss.dtype)

    def val_pearson(self, output, target) -> np.ndarray:
        """One Pearson per window and track over its bins, on the transformed scale (as in evaluation)."""
        from dnalm.metrics import pearson_rows

        signal, obs = output.exp().numpy(), target.numpy()
        return pearson_rows(signal.reshape(-1, signal.shape[-1]), obs.reshape(-1, obs.shape[-1]))

    def totals(self, output):
        import torch

        return torch.logsumexp(output, dim=-1), torch.softmax(output, dim=-1)

    def evaluate(self, batches, info: dict, store, out_predictions: str, *, site_threshold: float, **context) -> dict:
        """Predictions and metrics on the original scale, and the metrics on the transformed (training) scale.

        The model predicts the transformed targets (the store's `transform`); `inverse_transform` takes predictions
        and targets back to the bigWig's binned scale, where `pearson_*`, `track_pearson/*` and `count_pearson` are
        computed; the `*_transformed` keys are the same metrics on the training scale. `test_loss` is the Poisson
        NLL on the transformed scale (the training loss). predictions.h5 holds (N, tracks, bins), original scale.
        """
        import h5py

        from dnalm.metrics import track_metrics

        tmp = Path(out_predictions).with_name(f".{Path(out_predictions).name}.tmp")
        loss, n_bins = 0.0, store.length // store.bin_size
        pred_t = np.empty((len(store), len(store.channels), n_bins), dtype=np.float32)
        obs_t = np.empty_like(pred_t)
        for index, output, y in batches:
            loss += self.loss(output, y, 0.0)[0].item() * len(index)
            pred_t[index] = output.exp().numpy()
            obs_t[index] = y.numpy()
        pred, obs = inverse_transform(pred_t, store.transform), inverse_transform(obs_t, store.transform)
        with h5py.File(tmp, "w") as h5:
            obs_ds, pred_ds = prediction_datasets(h5, store, n_bins)
            obs_ds[:], pred_ds[:] = obs, pred
            h5.attrs.update(bin_size=store.bin_size, transform=store.transform, scale="original")
        tmp.replace(out_predictions)
        return {**track_metrics(pred, obs, store.channels),
                **track_metrics(pred_t, obs_t, store.channels, suffix="_transformed"),
                "auroc": float("nan"), "auprc": float("nan"), "test_loss": loss / max(len(store), 1),
                "n_windows": len(store), "bin_size": store.bin_size, "transform": store.transform,
                "metrics_scale": "original (inverse-transformed); *_transformed: training scale"}
