"""Sequencing-error detection: per-base tags of substitutions, insertions and deletions simulated on genome windows.

Windows: tiles of the species' genome along the split's chromosomes, as tracks tasks make them (rule tile_windows,
the same splits and homology filter). Examples: each window's sequence with errors simulated by `dnalm.seqerrors`
(`tasks.<id>.errors`: rates per kind, substitution matrix, homopolymer indel factor, seed), written by
`dnalm.seqerror_store`; validation and test windows get one fixed noisy copy, training windows `errors.copies` fixed
copies, of which each epoch shows one per window, drawn anew every epoch (`epoch_order`). Targets: 4 tags per noisy
base (`dnalm.seqerrors.CHANNELS`: substitution, insertion, and a deletion seen from its left and right side). Head:
`tagger` (a logit per tag and base). Loss: binary cross-entropy per tag, optionally weighted (`train.class_balance:
weights`: each tag's errors weigh as much as its correct bases). Metrics: per error kind, precision, recall and F1
of the calls p ≥ 0.5 and AUPRC, at the base (deletions: the gap) level (`dnalm.metrics.tagging_metrics`).
Attributions, variant effects and genome-wide prediction tracks are not defined for this type (`interpretable`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dnalm.tasks.base import TaskType, prediction_datasets
from dnalm.tasks.tracks import TracksTask

log = logging.getLogger(__name__)

#: Error kinds reported, in table order.
KINDS = ("substitution", "insertion", "deletion")
#: Test metrics of the comparison table (mean ± sd over seeds).
METRICS = (*(f"f1_{k}" for k in KINDS), *(f"auprc_{k}" for k in KINDS), "test_loss")
#: Prefixes of the further per-run metrics kept after n_windows.
EXTRA_METRICS = ("precision_", "recall_", "prevalence_", "errors_")


def tag_counts(store) -> tuple[np.ndarray, int]:
    """Tagged bases per channel over a store's windows (without flanks), and the number of bases per channel."""
    lo, hi = store.flank, store.flank + store.length
    counts = np.zeros(len(store.channels), dtype=np.int64)
    for chunk in store.target_chunks(1024):
        counts += chunk[:, :, lo:hi].sum(axis=(0, 2), dtype=np.int64)
    return counts, len(store) * store.length


def models_on(cfg: dict, task: str) -> list[str]:
    """Models that train on a task (their `tasks`, or every task)."""
    return [m for m, spec in cfg["models"].items() if not spec["tasks"] or task in spec["tasks"]]


class SeqErrorTask(TaskType):
    """Sequencing-error detection (see the module docstring)."""

    name = "seqerror"
    windows = "tiles"
    metrics = METRICS
    extra_metrics = EXTRA_METRICS
    val_columns = tuple(f"val_f1_{k}" for k in KINDS)
    interpretable = False

    # ------------------------------------------------------------------------------------------------ config side
    def check(self, task: str, spec: dict, cfg: dict) -> None:
        """No targets or extra species; a valid error profile with some error; no class-balanced sampling."""
        from dnalm.seqerrors import ErrorProfile

        where = f"tasks.{task}"
        if spec["targets"]:
            raise ValueError(f"{where}.targets: seqerror tasks make their own targets (the tags of simulated errors); "
                             "remove targets")
        if spec["extra_train_species"]:
            raise ValueError(f"{where}.extra_train_species: not available for seqerror tasks; remove it")
        profile = ErrorProfile.from_config(spec["errors"], f"{where}.errors")
        if not any(getattr(profile, k) > 0 for k in KINDS):
            raise ValueError(f"{where}.errors.rates: every rate is 0, so there is nothing to detect; set "
                             "substitution, insertion or deletion above 0")
        for model in models_on(cfg, task):
            if cfg["models"][model]["train"]["class_balance"] == "sampling":
                raise ValueError(f"models.{model}.train.class_balance: sampling draws windows by class, and the "
                                 f"windows of seqerror task {task} have no class; use weights or none")

    def window_params(self, spec: dict, species: str) -> dict:
        """Params of rule tile_windows, as for tracks tasks."""
        return TracksTask().window_params(spec, species)

    # ---------------------------------------------------------------------------------------------- training side
    def head(self, store, tp: dict, arch: str = "bpnet") -> tuple[str, dict]:
        return "tagger", {}

    def count_weight(self, store, tp: dict) -> list[float]:
        """Positive weights of the loss per tag: under train.class_balance: weights, correct / tagged bases of the
        training windows (so a tag's errors weigh as much as its correct bases), else all 1."""
        if tp.get("class_balance") != "weights":
            return [1.0] * len(store.channels)
        counts, n = tag_counts(store)
        return [float((n - c) / c) if c else 1.0 for c in counts]

    def epoch_order(self, store, rng: np.random.Generator, tp: dict) -> np.ndarray:
        """Each training window once, in a random order, each time as one of its `copies` noisy copies (rows
        window × copies + copy), drawn anew each epoch."""
        copies = int(store.meta.get("copies") or 1)
        n = len(store) // copies
        order = rng.permutation(n)
        return order * copies + rng.integers(0, copies, size=n)

    def prepare(self, model, store, revcomp: bool) -> bool:
        """Start each tag's logit bias at the log-odds of its frequency in the training windows."""
        import torch

        conv = getattr(getattr(model, "head", None), "conv", None)
        if conv is None or conv.bias is None:
            return False
        counts, n = tag_counts(store)
        p = np.clip(counts / max(n, 1), 1e-6, 1 - 1e-6)
        with torch.no_grad():
            conv.bias.copy_(torch.as_tensor(np.log(p / (1 - p)), dtype=conv.bias.dtype))
        return True

    def loss(self, output, target, count_weight):
        """Binary cross-entropy of the tag logits (B, 4, L), mean over tags and bases; errors weighted by
        `count_weight` (one positive weight per tag)."""
        import torch
        from torch.nn import functional as F

        weights = count_weight if isinstance(count_weight, list) else [1.0] * target.shape[1]
        pos_weight = torch.as_tensor(weights, dtype=torch.float32, device=output.device)[:, None]
        loss = F.binary_cross_entropy_with_logits(output.float(), target.float(), pos_weight=pos_weight)
        return loss, loss, torch.zeros((), dtype=loss.dtype, device=loss.device)

    def val_pearson(self, output, target) -> np.ndarray:
        """Per error kind, (true positives, calls, errors) of the batch's calls p ≥ 0.5, one row."""
        from dnalm.metrics import kind_scores

        prob, tags = output.sigmoid().numpy(), target.numpy()
        row = []
        for labels, scores in kind_scores(prob, tags).values():
            called, labels = scores >= 0.5, labels > 0
            row += [int((called & labels).sum()), int(called.sum()), int(labels.sum())]
        return np.array([row], dtype=np.float64)

    def val_summary(self, parts: list[np.ndarray]) -> dict:
        """Validation F1 per error kind (NaN with neither errors nor calls)."""
        sums = np.concatenate(parts).sum(axis=0) if parts else np.zeros(3 * len(KINDS))
        out = {"val_pearson_median": float("nan")}
        for i, kind in enumerate(KINDS):
            tp, called, errors = sums[3 * i : 3 * i + 3]
            out[f"val_f1_{kind}"] = float(2 * tp / (called + errors)) if called + errors else float("nan")
        return out

    def totals(self, output):
        """(log expected tagged bases per tag (B, 4), each tag's probabilities over positions summing to 1): what
        the species-token counterfactual compares."""
        import torch

        prob = torch.sigmoid(output)
        total = prob.sum(dim=-1)
        return torch.log(total), prob / total.unsqueeze(-1).clamp_min(1e-12)

    def ensemble(self, outputs: list):
        """The logit of the models' mean probability per tag and base."""
        import torch

        prob = torch.stack([torch.sigmoid(o) for o in outputs]).mean(dim=0)
        return torch.logit(prob, eps=1e-7)

    # -------------------------------------------------------------------------------------------- evaluation side
    def evaluate(self, batches, info: dict, store, out_predictions: str, *, site_threshold: float = 0.0,
                 **context) -> dict:
        """predictions.h5 (observed tags, predicted probabilities (N, 4, L), the noisy sequences) and the per-kind
        detection metrics of the test windows (`dnalm.metrics.tagging_metrics`); `test_loss` is the training loss
        (with the run's tag weights)."""
        import h5py
        import torch

        from dnalm.metrics import tagging_metrics

        weights = info.get("count_weight")
        n, c, length = len(store), len(store.channels), store.length
        prob, tags = np.zeros((n, c, length), np.float32), np.zeros((n, c, length), np.uint8)
        loss = 0.0
        for index, output, y in batches:
            loss += self.loss(output, y, weights)[0].item() * len(index)
            prob[index] = torch.sigmoid(output).numpy()
            tags[index] = y.numpy()
        tmp = Path(out_predictions).with_name(f".{Path(out_predictions).name}.tmp")
        with h5py.File(tmp, "w") as h5:
            obs_ds, pred_ds = prediction_datasets(h5, store, length)
            obs_ds[:], pred_ds[:] = tags, prob
            lo = store.flank
            h5.create_dataset("noisy", data=np.concatenate(
                [chunk[:, lo : lo + length] for chunk in _seq_chunks(store)]) if n else np.zeros((0, length), "u1"))
            h5.attrs["scale"] = "probability"
        tmp.replace(out_predictions)
        return {**tagging_metrics(prob, tags), "test_loss": loss / max(n, 1), "n_windows": n}


def _seq_chunks(store, size: int = 1024):
    """The stored (noisy) sequence codes in chunks of windows."""
    for start in range(0, len(store), size):
        yield store.read_rows("seq", np.arange(start, min(start + size, len(store))))
