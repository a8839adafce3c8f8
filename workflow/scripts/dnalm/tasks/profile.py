"""Profile tasks: base-resolution stranded signal in windows placed around sites (BPNet's profile and count outputs).

Windows: sites called from a stranded target (rule make_windows), each window placed at a seeded offset around its
site. Targets: the signal of every target channel at each base. Head: `profile` (profile logits and log total
counts). Loss: multinomial NLL of the profile plus the count weight × MSE of log(1 + total). Metrics: SEEDS.md §1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnalm.tasks.base import TaskType, prediction_datasets


def site_target(task: str, spec: dict) -> dict:
    """The stranded target whose signal gives the task's sites (`sites.target`, or the first stranded one)."""
    stranded = [t for t in spec["targets"] if "plus" in t]
    name = spec["sites"]["target"]
    chosen = [t for t in stranded if t["name"] == name] if name else stranded[:1]
    if not chosen:
        raise ValueError(f"tasks.{task}.sites.target: no stranded target named {name!r} "
                         f"(stranded targets: {[t['name'] for t in stranded]})")
    return chosen[0]


def window_totals(store) -> np.ndarray:
    """Total count of every window (without its flanks) per channel, (N, C), stored placement."""
    crop = slice(store.flank, store.flank + store.length)
    return np.concatenate([chunk[:, :, crop].sum(axis=-1) for chunk in store.target_chunks(4096)])


def auto_count_weight(store) -> float:
    """chrombpnet's rule, median total count per window divided by 10 (at least 1e-3), the total summed over channels.

    The profile NLL of a window is summed over its channels and grows with all of their counts, so its scale is the
    window's total over channels. Per (window, channel), a stranded task whose sites sit on one strand would get the
    median of mostly empty opposite-strand channels, and its count head would barely train.
    """
    return max(float(np.median(window_totals(store).sum(axis=1))) / 10.0, 1e-3)


def mean_log_count(store) -> np.ndarray:
    """Mean over train windows of log(1 + total count) per channel (the count head's target), stored placement."""
    return np.log1p(window_totals(store)).mean(axis=0)


def expected_signal(logits, log_counts):
    """Predicted signal per base: softmax profile × predicted total count."""
    import torch

    return torch.softmax(logits, dim=-1) * torch.expm1(log_counts).clamp_min(0).unsqueeze(-1)


class ProfileTask(TaskType):
    """Base-resolution profile tasks (see the module docstring)."""

    name = "profile"
    windows = "candidates"
    site_centred = True

    def check(self, task: str, spec: dict, cfg: dict) -> None:
        """The site target exists."""
        site_target(task, spec)

    def window_params(self, spec: dict, species: str) -> dict:
        """Params of rule make_windows (`dnalm.windows.make_windows`): site calling and window placement."""
        window = spec["window"]
        return {"species": species, "min_reads": spec["sites"]["min_reads"],
                "min_distance": spec["sites"]["min_distance"], "length": window["length"],
                "max_offset": window["max_offset"], "flank": window["flank"], "seed": spec["seed"]}

    def head(self, store, tp: dict, arch: str = "bpnet") -> tuple[str, dict]:
        return "profile", {}

    def count_weight(self, store, tp: dict) -> float:
        """train.count_weight, or `auto_count_weight` when it is null."""
        configured = tp.get("count_weight")
        return configured if configured is not None else auto_count_weight(store)

    def prepare(self, model, store, revcomp: bool) -> bool:
        """Start the count head at the data's mean: its bias := mean log(1 + total count) per channel.

        With `revcomp` (augmentation that swaps strands half the time) each channel's mean is averaged with that of
        the channel it swaps with: what training will show the head. Without this the head starts near 0 while the
        targets sit at log(1 + counts) (≈ 3–6 for 3'-end data), and AdamW moves a bias by about the learning rate
        per step: thousands of steps before the head even predicts the mean.
        """
        import torch

        layer = getattr(model, "count_layer", None)
        if layer is None or layer.bias is None:
            return False
        mean = mean_log_count(store)
        if revcomp:
            mean = (mean + mean[store.rc_perm]) / 2
        with torch.no_grad():
            layer.bias.copy_(torch.as_tensor(mean, dtype=layer.bias.dtype))
        return True

    def loss(self, output, target, count_weight: float):
        from dnalm.losses import profile_count_loss

        logits, log_counts = output
        return profile_count_loss(logits, log_counts, target, count_weight)

    def val_pearson(self, output, target) -> np.ndarray:
        from dnalm.metrics import pearson_rows

        return pearson_rows(expected_signal(*output).numpy(), target.numpy())

    def totals(self, output):
        import torch

        logits, log_counts = output
        return log_counts, torch.softmax(logits, dim=-1)

    def ensemble(self, outputs: list):
        """The mean profile (as logits: log of the mean probabilities) and the log of the mean total."""
        import math

        import torch

        logits = torch.stack([torch.log_softmax(o[0], dim=-1) for o in outputs])
        counts = torch.stack([o[1] for o in outputs])
        return (torch.logsumexp(logits, dim=0) - math.log(len(outputs)),
                torch.logsumexp(counts, dim=0) - math.log(len(outputs)))

    def evaluate(self, batches, info: dict, store, out_predictions: str, *, site_threshold: float, **context) -> dict:
        """Write predictions.h5 (base resolution) and return the loss and `dnalm.metrics.profile_metrics`."""
        import h5py

        from dnalm.metrics import profile_metrics

        tmp = Path(out_predictions).with_name(f".{Path(out_predictions).name}.tmp")
        losses = np.zeros(3)
        with h5py.File(tmp, "w") as h5:
            obs, pred = prediction_datasets(h5, store, store.length)
            for index, (logits, log_counts), y in batches:
                parts = self.loss((logits, log_counts), y, info["count_weight"])
                losses += np.array([p.item() for p in parts]) * len(index)
                obs[index[0] : index[-1] + 1] = y.numpy()
                pred[index[0] : index[-1] + 1] = expected_signal(logits, log_counts).numpy()
            metrics = profile_metrics(pred[:], obs[:], site_threshold)
        tmp.replace(out_predictions)
        total, profile, count = losses / max(len(store), 1)
        metrics.update(test_loss=total, profile_nll=profile, count_mse=count)
        return metrics
